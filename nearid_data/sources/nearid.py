"""``nearid``: NearID's positives dataset (Cvejic et al., 2026), as ``save_to_disk`` wrote it.

``root`` is the saved ``Dataset`` folder (``data-*.arrow``, ``state.json``), or a ``DatasetDict``
folder of which ``hub_split`` (NearID ships one split, ``train``) is read. Columns used: ``id``,
``category``, ``n_images``, ``images1..3``, and when present ``masks1..3``, ``prompts1..3``,
``category_description``, ``objaverse_id``, ``quality``, ``split`` (NearID's partition:
``train``/``val``/``test``, which ``split:`` filters on). Needs ``pip install 'nearid-data[hub]'``.
A root given as a URL is read by ``datasets`` itself through fsspec: it copies the folder to its
temporary cache (removed when the process ends) and memory-maps the Arrow files there, once per
process that loads items.

One item per row and view ``j <= n_images``: identity ``str(id)`` (NearID's distractor datasets
share these ids row for row), view ``j - 1``, the row's category, mask ``masks{j}``. The caption
is the identity's ``category_description`` (the view's prompt when that is empty); the view's
``prompts{j}`` goes to ``source.prompt``, so an export in NearID's layout gives both back.

NearID's distractor datasets (``nimg1..3``) are not read: near-identity distractors are what this
toolkit's pipeline generates from the positives. ``source`` in the sample json: ``row`` (0-based
position, as in NearID's ``splits/*.json``), ``prompt``, ``objaverse_id``, ``quality``, ``split``,
``description`` (``category_description``). Both NearID's release (``NearID/``) and this
toolkit's export of it (``export-nearid/nearid/NearID/``) are ``DatasetDict`` folders.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Literal

from nearid_data.errors import NearidError
from nearid_data.optional import import_optional
from nearid_data.sources.base import SourceItem, SourceRecord
from nearid_data.sources.formats import DatasetConfig, DatasetSource, decode_record, require_columns
from nearid_data.sources.parquet import cell_bytes, image_cell_bytes

MAX_VIEWS = 3
ROW_COLUMNS = ("objaverse_id", "quality", "split")
DESCRIPTION = "category_description"


class NearIdConfig(DatasetConfig):
    split: Literal["train", "val", "test", "all"] = "all"
    hub_split: str = "train"
    """The split of a saved ``DatasetDict`` to read."""


class NearIdSource(DatasetSource):
    Config = NearIdConfig
    config: NearIdConfig
    label = "nearid"

    def list_items(self) -> list[SourceItem]:
        columns = self._dataset.column_names
        needed = ["id", "category", "n_images", "images1"]
        require_columns(
            self.root, columns, needed + (["split"] if self.config.split != "all" else [])
        )
        views = max(j for j in range(1, MAX_VIEWS + 1) if f"images{j}" in columns)
        prompts = [f"prompts{j}" for j in range(1, views + 1) if f"prompts{j}" in columns]
        kept = [c for c in (*ROW_COLUMNS, DESCRIPTION) if c in columns]
        rows = self._dataset.select_columns(needed[:3] + kept + prompts).with_format("arrow")[:]
        items: list[SourceItem] = []
        first_row: dict[str, int] = {}
        for index, row in enumerate(rows.to_pylist()):
            if self.config.split != "all" and row["split"] != self.config.split:
                continue
            identity, n_images = str(row["id"]), row["n_images"]
            if identity in first_row:
                raise NearidError(
                    f"{self.root}: id {identity} is in rows {first_row[identity]} and {index}"
                )
            first_row[identity] = index
            if not isinstance(n_images, int) or not 1 <= n_images <= views:
                raise NearidError(
                    f"{self.root}: row {index} has n_images={n_images!r}, not 1..{views}"
                )
            base = {"row": index, **{c: row[c] for c in kept if row[c] is not None}}
            if DESCRIPTION in base:  # the object's description, as the NearID export names it
                base["description"] = base.pop(DESCRIPTION)
            for j in range(1, n_images + 1):
                ref = {**base, "prompt": row.get(f"prompts{j}") or ""}
                items.append(SourceItem(identity, str(row["category"]), j - 1, ref))
        return items

    def load(self, item: SourceItem) -> SourceRecord:
        j = item.view + 1
        row = self._view_columns[j][item.ref["row"]]
        where = f"row {item.ref['row']} images{j}"
        return decode_record(
            image_cell_bytes(row[f"images{j}"], where),
            max_pixels=self.config.max_pixels,
            mask=cell_bytes(row.get(f"masks{j}"), where.replace("images", "masks")),
            caption=row.get("category_description") or item.ref["prompt"],
        )

    @cached_property
    def _dataset(self) -> Any:
        datasets = import_optional("datasets", needed_for="the nearid source", extra="hub")
        try:
            loaded = datasets.load_from_disk(str(self.root))
        except (FileNotFoundError, ValueError) as exc:
            raise NearidError(
                f"{self.root}: not a dataset saved with save_to_disk ({exc})"
            ) from None
        if isinstance(loaded, datasets.DatasetDict):
            if self.config.hub_split not in loaded:
                raise NearidError(
                    f"{self.root}: no split {self.config.hub_split!r} (has: {', '.join(loaded)})"
                )
            loaded = loaded[self.config.hub_split]
        return loaded

    @cached_property
    def _view_columns(self) -> dict[int, Any]:
        """View j -> the dataset's columns for it, with images left encoded."""
        datasets = import_optional("datasets", needed_for="the nearid source", extra="hub")
        present = self._dataset.column_names
        views = {}
        for j in range(1, MAX_VIEWS + 1):
            wanted = [f"images{j}", f"masks{j}", "category_description"]
            view = self._dataset.select_columns([c for c in wanted if c in present])
            for column, feature in view.features.items():
                if isinstance(feature, datasets.Image):
                    view = view.cast_column(column, datasets.Image(decode=False))
            views[j] = view
        return views
