"""The catalog of a committed stage: its kept rows, samples fetched by key, and whole units streamed.

Stages that need a global view (donor identities, split assignment, regrouping by split) read the
upstream catalog instead of holding samples in memory: rows are small, pixels are read on demand.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property

from nearid_data.engine import storage
from nearid_data.engine.manifest import (
    StageSummary,
    manifest_path,
    read_manifest,
    read_summary,
    tar_path,
)
from nearid_data.engine.storage import Location
from nearid_data.engine.tario import (
    ShardIndex,
    UniqueKeys,
    check_sha256,
    decode_fields,
    index_shard,
)
from nearid_data.errors import NearidError
from nearid_data.sample import JSON_FIELD, Sample


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


def committed_samples(
    stage_dir: Location, units: Iterable[str], fields: Collection[str]
) -> Iterator[Sample]:
    """The samples of the committed ``units`` in order, with ``json`` and those of ``fields`` they
    have; other members are skipped, not read (an export reads each image set in its own pass).
    Each shard is checked against its manifest's sha256, and a key may appear once in all units."""
    wanted = (*fields, JSON_FIELD)
    keys = UniqueKeys()
    for unit in units:
        path = tar_path(stage_dir, unit)
        check_sha256(path, read_manifest(manifest_path(stage_dir, unit)).sha256)
        for key, members in index_shard(path).items():
            keys.add(key, path)
            names = [name for name in wanted if name in members]
            data = storage.read_range(path, [members[name] for name in names])
            yield decode_fields(key, dict(zip(names, data, strict=True)), path)
