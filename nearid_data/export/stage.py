"""The export stage: uniform WebDataset shards per split, ready for the Hub and for training.

Samples are regrouped by split, sorted by identity and view, and cut into shards that never split
an identity (views of one identity stay together, so streaming loaders find positives in one
shard). Every sample carries the same fields (the Hub's loader infers features from the first
samples); a view missing one is rejected with the field's name. After the shards: a ``wids``
index per split and a dataset card.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import Field

from nearid_data.engine.catalog import CatalogRow
from nearid_data.engine.stage import Kept, Outcome, Rejected, Stage, StageConfig, WorkUnit
from nearid_data.engine.storage import Location
from nearid_data.errors import Rejection
from nearid_data.export.card import write_card
from nearid_data.export.wids_index import write_wids_indexes
from nearid_data.sample import JSON_FIELD, KEY_FIELD, distractor_field

SPLIT_ORDER = ("train", "val", "test")
BASE_FIELDS = ("image.png", "mask.png", "inpaint_mask.png")


class ExportConfig(StageConfig):
    max_shard_samples: int = Field(1000, ge=1)
    max_shard_bytes: int = Field(2_000_000_000, ge=1)
    license: str = "cc-by-4.0"
    pretty_name: str | None = None


class ExportStage(Stage):
    name = "export"
    whole_samples = True
    Config = ExportConfig
    config: ExportConfig

    def fields(self) -> list[str]:
        """The fields of every exported sample: base fields, one per distractor generator, json."""
        distractors = self.ctx.pipeline.stages.get("distractors")
        gids: list[str] = []
        if distractors is not None:
            stage_config = self.ctx.pipeline.stage_config("distractors")
            gids = [distractor_field(s.id) for s in stage_config.generators]  # type: ignore[attr-defined]
        return [*BASE_FIELDS, *gids, JSON_FIELD]

    @property
    def needs(self) -> frozenset[str]:  # type: ignore[override]
        return frozenset(self.fields())

    def adds(self) -> frozenset[str]:
        return frozenset(self.fields())

    def plan(self) -> list[WorkUnit]:
        by_split: dict[str, list[CatalogRow]] = {}
        for row in self.upstream_catalog.rows:
            by_split.setdefault(row.split or "all", []).append(row)
        units = []
        for split in sorted(by_split, key=_split_rank):
            rows = sorted(by_split[split], key=lambda r: (r.identity, r.view, r.key))
            for index, shard in enumerate(self._shards(rows)):
                units.append(
                    WorkUnit(
                        f"data/{split}/{split}-{index:05d}",
                        {"split": split, "rows": [[r.unit, r.key] for r in shard]},
                    )
                )
        return units

    def _shards(self, rows: list[CatalogRow]) -> Iterator[list[CatalogRow]]:
        """Consecutive groups within the size limits, cut only between identities."""
        shard: list[CatalogRow] = []
        size = 0
        for identity_rows in _runs_by_identity(rows):
            extra = sum(r.bytes for r in identity_rows)
            too_many = len(shard) + len(identity_rows) > self.config.max_shard_samples
            if shard and (too_many or size + extra > self.config.max_shard_bytes):
                yield shard
                shard, size = [], 0
            shard.extend(identity_rows)
            size += extra
        if shard:
            yield shard

    def run(self, unit: WorkUnit) -> Iterator[Outcome]:
        fields = self.fields()
        for sample in self.upstream_catalog.stream(unit.payload["rows"]):
            key = sample[KEY_FIELD]
            missing = [f for f in fields if f not in sample]
            if missing:
                yield Rejected.of(sample, Rejection("missing_field", ", ".join(missing)))
                continue
            yield Kept({KEY_FIELD: key, **{f: sample[f] for f in fields}})

    def finalize(self, build_dir: Location) -> None:
        export_dir = self.ctx.stage_dir(self.name)
        write_wids_indexes(export_dir)
        write_card(export_dir, self.ctx.pipeline, self.config, self.fields())

    def describe(self) -> dict[str, Any]:
        return {"fields": self.fields()}


def _split_rank(split: str) -> tuple[int, str]:
    return (SPLIT_ORDER.index(split) if split in SPLIT_ORDER else len(SPLIT_ORDER), split)


def _runs_by_identity(rows: list[CatalogRow]) -> Iterator[list[CatalogRow]]:
    run: list[CatalogRow] = []
    for row in rows:
        if run and row.identity != run[0].identity:
            yield run
            run = []
        run.append(row)
    if run:
        yield run
