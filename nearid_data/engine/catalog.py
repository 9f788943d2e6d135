"""The catalog of a committed stage: its kept rows, samples fetched by key, and whole units streamed.

Stages that need a global view (donor identities, split assignment, regrouping by split) read the
upstream catalog instead of holding samples in memory: rows are small, pixels are read on demand.

A stage's shard holds only the fields it added or changed; its manifest row names, for every
field it passed on unchanged, the earlier stage whose shard holds it (``SampleRow.inherited``).
Every read here joins those fields back by key, so readers always see whole samples.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property

from nearid_data.engine import storage
from nearid_data.engine.manifest import (
    SampleRow,
    StageSummary,
    manifest_path,
    read_manifest,
    read_summary,
    tar_path,
)
from nearid_data.engine.storage import Location
from nearid_data.engine.tario import (
    ShardError,
    ShardIndex,
    UniqueKeys,
    check_sha256,
    decode_fields,
    index_shard,
)
from nearid_data.errors import NearidError
from nearid_data.sample import JSON_FIELD, KEY_FIELD, Sample


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
    inherited: dict[str, str] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)


def catalog_row(row: SampleRow, unit: str) -> CatalogRow:
    return CatalogRow(
        row.key, row.identity, row.category, row.view, row.caption, unit, row.split, row.bytes,
        row.inherited, row.fields,
    )  # fmt: skip


class FieldJoin:
    """Joins inherited fields onto samples read from a stage of the build at ``build_dir``."""

    def __init__(self, build_dir: Location) -> None:
        self.build_dir = build_dir
        self._holders: dict[str, Catalog] = {}

    def holder(self, stage: str) -> Catalog:
        if stage not in self._holders:
            self._holders[stage] = Catalog(self.build_dir / stage)
        return self._holders[stage]

    def complete(
        self, sample: Sample, row: CatalogRow, wanted: Collection[str] | None = None
    ) -> Sample:
        """``sample`` (as its own shard holds it) with the inherited fields among ``wanted`` (None:
        all) read from the stages that hold them. A holder must hold the key with the same
        bytes the reading stage recorded; anything else is a stale or broken lineage."""
        by_stage: dict[str, list[str]] = defaultdict(list)
        for name, stage in row.inherited.items():
            if wanted is None or name in wanted:
                by_stage[stage].append(name)
        for stage, names in sorted(by_stage.items()):
            holder = self.holder(stage)
            held = holder.by_key.get(row.key)
            stale = [n for n in names if held is None or held.fields.get(n) != row.fields[n]]
            if held is None or stale or any(n in held.inherited for n in names):
                raise ShardError(
                    f"sample {row.key!r} of unit {row.unit!r} inherits {sorted(names)} from stage "
                    f"{stage!r}, which does not hold them as recorded (rebuilt since?); rebuild "
                    "the stages after it"
                )
            sample.update(holder.read(held, names))
        return {KEY_FIELD: row.key, **{n: sample[n] for n in sorted(sample) if n != KEY_FIELD}}


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
        self.join = FieldJoin(stage_dir.parent)

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
            rows.extend(catalog_row(r, entry.unit) for r in manifest.rows if r.status == "kept")
        return rows

    @cached_property
    def by_key(self) -> dict[str, CatalogRow]:
        return {row.key: row for row in self.rows}

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
        """The whole sample of ``row``; each shard read is checked against its recorded sha256 on
        first use."""
        return self.join.complete(self.read(row), row) if row.inherited else self.read(row)

    def joined(self, sample: Sample) -> Sample:
        """``sample``, as read from this stage's shard, with its inherited fields joined."""
        row = self.by_key.get(sample[KEY_FIELD])
        if row is None:
            raise ShardError(
                f"{self.stage_dir}: sample {sample[KEY_FIELD]!r} is not a kept row of its manifests"
            )
        return self.join.complete(sample, row) if row.inherited else sample

    def read(self, row: CatalogRow, fields: Collection[str] | None = None) -> Sample:
        """The sample of ``row`` as this stage's shard holds it (``fields`` of it; None: all)."""
        path = tar_path(self.stage_dir, row.unit)
        return self._shards.get(path, row.key, sha256=self._sha256[row.unit], fields=fields)


def committed_samples(
    stage_dir: Location, units: Iterable[str], fields: Collection[str]
) -> Iterator[Sample]:
    """The samples of the committed ``units`` in order, with ``json`` and those of ``fields`` they
    have (inherited ones joined); other members are skipped, not read (an export reads each image
    set in its own pass). Each shard is checked against its manifest's sha256, and a key may
    appear once in all units."""
    wanted = (*fields, JSON_FIELD)
    keys = UniqueKeys()
    join = FieldJoin(stage_dir.parent)
    for unit in units:
        path = tar_path(stage_dir, unit)
        manifest = read_manifest(manifest_path(stage_dir, unit))
        check_sha256(path, manifest.sha256)
        rows = {r.key: r for r in manifest.rows if r.status == "kept"}
        for key, members in index_shard(path).items():
            keys.add(key, path)
            names = [name for name in wanted if name in members]
            data = storage.read_range(path, [members[name] for name in names])
            sample = decode_fields(key, dict(zip(names, data, strict=True)), path)
            row = rows.get(key)
            if row is not None and row.inherited:
                sample = join.complete(sample, catalog_row(row, unit), wanted)
            yield sample
