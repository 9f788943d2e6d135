"""``wildlife``: WildlifeReID-10k and other ``wildlife-datasets`` exports (``metadata.csv``).

    root/
      metadata.csv        image_id (older exports: id), identity, path (relative to root),
                          optional: species, dataset, split, date, orientation, cluster_id
      <path>              the images

The identity is the individual animal: ``<dataset>/<identity>`` when there is a ``dataset``
column (individual names repeat across the 30-odd datasets WildlifeReID-10k merges), else the
``identity`` value; its views are numbered in file order. The category is the species (or
``animal``). ``species`` and ``dataset`` keep only the listed values; a value that never occurs is
an error rather than an empty result. Rows whose identity is empty or ``unknown`` (the
wildlife-datasets name for an unidentified animal) are not an identity and are left out unless
``keep_unknown``. ``source`` in the sample json: ``path``, ``image_id``, ``identity`` (the file's
value), whichever of ``cluster_id`` (near-duplicate frames), ``date``, ``orientation``, ``split``
the file has, and ``metadata`` (the whole row as ``[column, value]`` pairs in file order, for
Finer-Personalization Rank's Re-ID CSVs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nearid_data.engine.storage import Location
from nearid_data.errors import NearidError
from nearid_data.sources.base import SourceItem, SourceRecord
from nearid_data.sources.formats import (
    DatasetConfig,
    DatasetSource,
    decode_record,
    number_views,
    read_csv,
    require_columns,
)

UNKNOWN_IDENTITY = "unknown"
EXTRA_COLUMNS = ("cluster_id", "date", "orientation", "split")


class WildlifeConfig(DatasetConfig):
    metadata: str = "metadata.csv"
    """Path of the metadata file, relative to the root."""
    species: list[str] | None = None
    dataset: list[str] | None = None
    keep_unknown: bool = False


class WildlifeSource(DatasetSource):
    Config = WildlifeConfig
    config: WildlifeConfig
    label = "wildlife"

    def list_items(self) -> list[SourceItem]:
        path = self.annotation(self.config.metadata)
        header, rows = read_csv(path)
        id_column = "id" if "id" in header and "image_id" not in header else "image_id"
        require_columns(path, header, ["identity", "path", id_column])
        filters = {
            column: wanted
            for column, wanted in (
                ("species", self.config.species),
                ("dataset", self.config.dataset),
            )
            if wanted is not None
        }
        for column, wanted in filters.items():
            _check_values(path, header, rows, column, wanted)
        rows = [row for row in rows if all(row[c] in wanted for c, wanted in filters.items())]
        extras = [column for column in EXTRA_COLUMNS if column in header]
        entries = []
        for row in rows:
            identity = row["identity"].strip()
            if not self.config.keep_unknown and identity in ("", UNKNOWN_IDENTITY):
                continue
            if "dataset" in header:
                identity = f"{row['dataset']}/{identity}"
            ref: dict[str, Any] = {
                "path": row["path"],
                "image_id": row[id_column],
                "identity": row["identity"],
            }
            # the whole row, as pairs (sample json sorts keys): FPR's Re-ID CSVs keep every column
            ref["metadata"] = [[column, value] for column, value in row.items()]
            ref.update({column: row[column] for column in extras if row[column] != ""})
            entries.append((identity, row.get("species") or "animal", ref))
        return number_views(entries)

    def load(self, item: SourceItem) -> SourceRecord:
        return decode_record(self.read_file(item.ref["path"]), max_pixels=self.config.max_pixels)


def _check_values(
    path: Location,
    header: list[str],
    rows: list[dict[str, str]],
    column: str,
    wanted: Sequence[str],
) -> None:
    """A filter value that never occurs is a typo, not a request for nothing."""
    require_columns(path, header, [column])
    present = {row[column] for row in rows}
    unknown = sorted(set(wanted) - present)
    if unknown:
        shown = ", ".join(sorted(present)[:20]) + (", ..." if len(present) > 20 else "")
        raise NearidError(
            f"wildlife {column}: {', '.join(unknown)} not in {path} (it has: {shown})"
        )
