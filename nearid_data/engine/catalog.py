"""The catalog of a committed stage: its kept rows, samples fetched by key, and whole units streamed.

Stages that need a global view (donor identities, split assignment, regrouping by split) read the
upstream catalog instead of holding samples in memory: rows are small, pixels are read on demand.

A stage's shard holds only the fields it added or changed; its manifest row names, for every
field it passed on unchanged, the earlier stage whose shard holds it (``SampleRow.inherited``).
Every read here joins those fields back by key, so readers always see whole samples.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from itertools import islice
from typing import TypeVar

from nearid_data.engine.manifest import (
    FieldPatch,
    SampleRow,
    StageSummary,
    manifest_path,
    read_manifest,
    read_summary,
    tar_path,
)
from nearid_data.engine.patches import apply_patch, patch_member
from nearid_data.engine.storage import Location
from nearid_data.engine.tario import (
    ShardError,
    ShardIndex,
    UniqueKeys,
)
from nearid_data.errors import NearidError, Rejection
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
    patches: dict[str, FieldPatch] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)


def catalog_row(row: SampleRow, unit: str) -> CatalogRow:
    return CatalogRow(
        row.key, row.identity, row.category, row.view, row.caption, unit, row.split, row.bytes,
        row.inherited, row.fields, row.patches, row.sizes,
    )  # fmt: skip


Wanted = Collection[str] | None
"""Field names a reader asks for; None: all of the sample's fields."""


class FieldJoin:
    """Makes samples whole: joins inherited fields from the stages of the build at ``build_dir``
    that hold them, and rebuilds fields stored as patches (``engine.patches``)."""

    def __init__(self, build_dir: Location) -> None:
        self.build_dir = build_dir
        self._holders: dict[str, Catalog] = {}

    def holder(self, stage: str) -> Catalog:
        if stage not in self._holders:
            self._holders[stage] = Catalog(self.build_dir / stage)
        return self._holders[stage]

    def complete_many(self, reads: Sequence[tuple[Sample, CatalogRow, Wanted]]) -> list[Sample]:
        """Each sample (as its own shard holds it: ``stored_members``) with its fields among
        ``wanted``: inherited ones fetched from their holders, one ranged read per holder shard
        for the whole batch, and patched ones rebuilt. A holder must hold the key with the bytes
        the reading stage recorded; anything else is a stale or broken lineage."""
        asks: dict[str, list[tuple[int, list[str]]]] = defaultdict(list)
        for index, (_, row, wanted) in enumerate(reads):
            by_stage: dict[str, list[str]] = defaultdict(list)
            for name in sorted(_needed(row, wanted)):
                if name in row.inherited:
                    by_stage[row.inherited[name]].append(name)
            for stage, names in by_stage.items():
                asks[stage].append((index, names))
        for stage, wants in sorted(asks.items()):
            holder = self.holder(stage)
            requests = [(self._held(holder, reads[i][1], names), names) for i, names in wants]
            for (index, names), fields in zip(wants, holder.fetch_many(requests), strict=True):
                reads[index][0].update({name: fields[name] for name in names})
        return [_rebuilt(sample, row, wanted) for sample, row, wanted in reads]

    @staticmethod
    def _held(holder: Catalog, row: CatalogRow, names: list[str]) -> CatalogRow:
        held = holder.row(row.key, row.unit)
        stale = [n for n in names if held is None or held.fields.get(n) != row.fields[n]]
        if held is None or stale or any(n in held.inherited for n in names):
            raise ShardError(
                f"sample {row.key!r} of unit {row.unit!r} inherits {names} from stage "
                f"{holder.stage_dir.name!r}, which does not hold them as recorded (rebuilt "
                "since?); rebuild the stages after it"
            )
        return held


def _needed(row: CatalogRow, wanted: Wanted) -> set[str]:
    """The fields to assemble for ``wanted``: those the sample has, and the bases of patched ones."""
    names = set(row.fields) if wanted is None else set(wanted) & set(row.fields)
    return names | {row.patches[name].base for name in names & row.patches.keys()}


def stored_members(row: CatalogRow, wanted: Wanted) -> set[str]:
    """The members of the row's own shard to read for ``wanted``."""
    names = _needed(row, wanted) - row.inherited.keys()
    return {patch_member(n) if n in row.patches else n for n in names}


def _rebuilt(sample: Sample, row: CatalogRow, wanted: Wanted) -> Sample:
    """``sample`` with its patched fields rebuilt (checked against their recorded sha256), and
    only the wanted fields, key first."""
    for name, patch in row.patches.items():
        region = sample.pop(patch_member(name), None)
        if wanted is not None and name not in wanted:
            continue
        where = f"sample {row.key!r} of unit {row.unit!r}: field {name!r}"
        if region is None:
            raise ShardError(f"{where} is stored as a patch its shard does not hold")
        try:
            data = apply_patch(sample[patch.base], region, patch.box)
        except (Rejection, ValueError) as exc:
            raise ShardError(
                f"{where}: its patch does not paste into {patch.base!r} ({exc})"
            ) from None
        if hashlib.sha256(data).hexdigest() != row.fields[name]:
            raise ShardError(
                f"{where} rebuilt from its patch differs from the bytes recorded: the patch or its "
                "box was altered, or the PNG encoder here (OpenCV, zlib) differs from the one that "
                "wrote the build (see the stage summary's versions)"
            )
        sample[name] = data
    keep = set(sample) if wanted is None else set(wanted)
    return {
        KEY_FIELD: row.key,
        **{n: sample[n] for n in sorted(sample) if n in keep and n != KEY_FIELD},
    }


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
        self._units: OrderedDict[str, dict[str, CatalogRow]] = OrderedDict()
        self._units_lock = threading.Lock()
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

    def row(self, key: str, unit: str | None = None) -> CatalogRow | None:
        """The kept row of ``key``, looked up in the manifest of ``unit`` alone when it holds the
        key, so a worker that reads a few units loads only their manifests; else in all of them
        (``by_key``). Stages that map shard to shard keep unit names, so a row's own unit is the
        right guess for the stages it inherits from."""
        if unit is not None and "rows" not in self.__dict__ and unit in self._sha256:
            found = self._unit_rows(unit).get(key)
            if found is not None:
                return found
        return self.by_key.get(key)

    def _unit_rows(self, unit: str) -> dict[str, CatalogRow]:
        # A stage's upstream stream (on the prefetch thread) and the executor's commit (on the
        # worker's main thread) look rows up in the same catalog.
        with self._units_lock:
            rows = self._units.get(unit)
            if rows is None:
                manifest = read_manifest(manifest_path(self.stage_dir, unit))
                rows = {r.key: catalog_row(r, unit) for r in manifest.rows if r.status == "kept"}
                self._units[unit] = rows
                if len(self._units) > UNIT_ROWS_CACHED:
                    self._units.popitem(last=False)
            self._units.move_to_end(unit)
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

    def fetch(self, row: CatalogRow, wanted: Wanted = None) -> Sample:
        """The whole sample of ``row`` (its ``wanted`` fields; None: all); each shard read is
        checked against its recorded sha256 on first use."""
        return self.fetch_many([(row, wanted)])[0]

    def fetch_many(self, requests: Sequence[tuple[CatalogRow, Wanted]]) -> list[Sample]:
        """The samples of ``requests`` (row, wanted fields), in order: one ranged read per shard
        for the stored members, then the join."""
        by_unit: dict[str, list[int]] = defaultdict(list)
        for index, (row, _) in enumerate(requests):
            by_unit[row.unit].append(index)
        stored: list[Sample] = [{} for _ in requests]
        for unit, indexes in sorted(by_unit.items()):
            wants = [(requests[i][0].key, stored_members(*requests[i])) for i in indexes]
            path = tar_path(self.stage_dir, unit)
            read = self._shards.get_many(path, wants, sha256=self._sha256[unit])
            for index, sample in zip(indexes, read, strict=True):
                stored[index] = sample
        return self.join.complete_many(
            [(sample, row, wanted) for sample, (row, wanted) in zip(stored, requests, strict=True)]
        )

    def stream(self, refs: Iterable[tuple[str, str]], wanted: Wanted = None) -> Iterator[Sample]:
        """The whole samples of ``refs`` ((unit, key) of kept rows of this stage, as plans
        record them), in order, fetched a batch at a time so that neighbouring reads share a
        request."""
        for batch in batched(refs, JOIN_BATCH):
            yield from self.fetch_many([(self.kept_row(key, unit), wanted) for unit, key in batch])

    def kept_row(self, key: str, unit: str | None = None) -> CatalogRow:
        """``row``, or an error naming the key when the stage holds no such kept sample."""
        row = self.row(key, unit)
        if row is None:
            raise ShardError(f"{self.stage_dir}: no kept sample {key!r} (rebuilt since?)")
        return row

    def joined_many(
        self, samples: Sequence[Sample], wanted: Wanted = None, unit: str | None = None
    ) -> list[Sample]:
        """``samples``, as read whole from this stage's shards, made whole by the join, with the
        ``wanted`` fields (None: all). A row without recorded field sizes (written by an older
        version) gives all fields: a stage passes on unread only what it can account for.
        ``unit``: the unit the samples were read from."""
        rows = []
        for sample in samples:
            row = self.row(sample[KEY_FIELD], unit)
            if row is None:
                raise ShardError(
                    f"{self.stage_dir}: sample {sample[KEY_FIELD]!r} is not a kept row of its "
                    "manifests"
                )
            rows.append(row)
        return self.join.complete_many(
            [
                (sample, row, wanted if row.sizes.keys() >= row.fields.keys() else None)
                for sample, row in zip(samples, rows, strict=True)
            ]
        )

    def read(self, row: CatalogRow, fields: Wanted = None) -> Sample:
        """The sample of ``row`` as this stage's shard holds it (``fields`` of it; None: all)."""
        path = tar_path(self.stage_dir, row.unit)
        return self._shards.get(path, row.key, sha256=self._sha256[row.unit], fields=fields)


T = TypeVar("T")


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


UNIT_ROWS_CACHED = 64
"""Units whose rows a catalog keeps when looked up one unit at a time."""

JOIN_BATCH = 64
"""Samples joined together: their reads from one holder shard become one request."""


def committed_samples(
    stage_dir: Location, units: Iterable[str], fields: Collection[str]
) -> Iterator[Sample]:
    """The samples of the committed ``units`` in shard order, with ``json`` and those of
    ``fields`` they have (inherited ones joined, patched ones rebuilt); other members are skipped,
    not read (an export reads each image set in its own pass). Each shard is checked against its
    manifest's sha256, and a key may appear once in all units. Reads only manifests, so a stage
    may read back its own units before its summary exists."""
    wanted = {*fields, JSON_FIELD}
    keys = UniqueKeys()
    join = FieldJoin(stage_dir.parent)
    shards = ShardIndex(capacity=1)
    for unit in units:
        path = tar_path(stage_dir, unit)
        manifest = read_manifest(manifest_path(stage_dir, unit))
        rows = {r.key: catalog_row(r, unit) for r in manifest.rows if r.status == "kept"}
        order = shards.keys(path, sha256=manifest.sha256)
        for key in order:
            keys.add(key, path)
            if key not in rows:
                raise ShardError(f"{path}: sample {key!r} is not a kept row of its manifest")
        for batch in batched(order, JOIN_BATCH):
            wants = [(key, stored_members(rows[key], wanted)) for key in batch]
            stored = shards.get_many(path, wants, sha256=manifest.sha256)
            yield from join.complete_many(
                [(sample, rows[key], wanted) for sample, key in zip(stored, batch, strict=True)]
            )
