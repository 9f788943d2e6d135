"""The catalog of a committed stage: its kept rows, and samples fetched by key.

Stages that need a global view (donor identities, split assignment, regrouping by split) read the
upstream catalog instead of holding samples in memory: rows are small, pixels are read on demand.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property

from nearid_data.engine.manifest import (
    StageSummary,
    manifest_path,
    read_manifest,
    read_summary,
    tar_path,
)
from nearid_data.engine.storage import Location
from nearid_data.engine.tario import ShardIndex, UniqueKeys
from nearid_data.errors import NearidError
from nearid_data.sample import Sample


@dataclass(frozen=True)
class CatalogRow:
    key: str
    identity: str
    category: str
    view: int
    caption: str
    unit: str
    split: str | None
    bytes: int


class Catalog:
    def __init__(self, stage_dir: Location) -> None:
        summary = read_summary(stage_dir)
        if summary is None:
            raise NearidError(
                f"stage {stage_dir.name!r} has not completed in {stage_dir.parent} "
                f"(no {stage_dir.name}/_summary.json); build it first with --stage {stage_dir.name}"
            )
        self.stage_dir = stage_dir
        self.summary: StageSummary = summary
        self._shards = ShardIndex()

    @cached_property
    def rows(self) -> list[CatalogRow]:
        rows: list[CatalogRow] = []
        keys = UniqueKeys()
        for entry in self.summary.shards:
            path = manifest_path(self.stage_dir, entry.unit)
            manifest = read_manifest(path)
            for row in manifest.rows:
                if row.status == "kept":
                    keys.add(row.key, path)
            rows.extend(
                CatalogRow(
                    r.key, r.identity, r.category, r.view, r.caption, entry.unit, r.split, r.bytes
                )
                for r in manifest.rows
                if r.status == "kept"
            )
        return rows

    @cached_property
    def by_identity(self) -> dict[str, list[CatalogRow]]:
        grouped: dict[str, list[CatalogRow]] = defaultdict(list)
        for row in self.rows:
            grouped[row.identity].append(row)
        return dict(grouped)

    @cached_property
    def identities_by_category(self) -> dict[str, list[str]]:
        grouped: dict[str, list[str]] = defaultdict(list)
        for identity, rows in sorted(self.by_identity.items()):
            grouped[rows[0].category].append(identity)
        return dict(grouped)

    @cached_property
    def _sha256(self) -> dict[str, str]:
        return {entry.unit: entry.sha256 for entry in self.summary.shards}

    def fetch(self, row: CatalogRow) -> Sample:
        """The sample of ``row``; its shard is checked against the recorded sha256 on first use."""
        path = tar_path(self.stage_dir, row.unit)
        return self._shards.get(path, row.key, sha256=self._sha256[row.unit])
