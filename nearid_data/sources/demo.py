"""The embedded default source: procedural identities rendered on the fly, with exact masks.

No files and no network: identity ``i`` and its views are drawn from the run seed, so the demo
dataset is the same on every machine and of any size.
"""

from __future__ import annotations

from pydantic import Field

from nearid_data.sources.base import Source, SourceConfig, SourceItem, SourceRecord
from nearid_data.sources.procedural import CATEGORIES, make_identity, render_view


class DemoConfig(SourceConfig):
    n_identities: int = Field(24, ge=1)
    views: int = Field(3, ge=1, le=16)
    categories: tuple[str, ...] = CATEGORIES
    image_size: int = Field(256, ge=64, le=1024)


class DemoSource(Source):
    Config = DemoConfig
    config: DemoConfig

    def items(self) -> list[SourceItem]:
        items: list[SourceItem] = []
        for index in range(self.config.n_identities):
            spec = make_identity(index, seed=self.seed, categories=self.config.categories)
            items.extend(
                SourceItem(spec.identity, spec.category, view, {"index": index})
                for view in range(self.config.views)
            )
        return items

    def load(self, item: SourceItem) -> SourceRecord:
        spec = make_identity(item.ref["index"], seed=self.seed, categories=self.config.categories)
        view = render_view(spec, item.view, size=self.config.image_size, seed=self.seed)
        return SourceRecord(image=view.image, mask=view.mask, box=view.box, caption=spec.caption)
