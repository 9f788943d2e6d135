"""Verify a build: re-read every shard, re-hash it, and check it against its manifests.

Finds missing, truncated and altered shards, samples whose fields do not match their recorded
hashes, counts that disagree, duplicate keys, malformed manifests and summaries, stage folders
whose summary is missing, samples whose inherited fields the stage named as holding them does not
hold (a broken join), and, in an export, samples whose fields differ from the rest. Every
problem is reported with its file; nothing stops the check early. Shards are streamed through the
same reading rules as every other reader, one sample at a time, so memory stays bounded by the
largest sample, not the largest shard.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

from nearid_data.engine.catalog import JOIN_BATCH, Catalog, batched
from nearid_data.engine.manifest import (
    MANIFEST_SUFFIX,
    SUMMARY_NAME,
    SampleRow,
    ShardEntry,
    StageSummary,
    manifest_path,
    read_manifest,
    read_summary,
    tar_path,
)
from nearid_data.engine.storage import Location, ObjectPath, children, relative, size
from nearid_data.engine.tario import ShardError, UniqueKeys, iter_raw
from nearid_data.errors import NearidError


@dataclass(frozen=True)
class Problem:
    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


@dataclass(frozen=True)
class VerifyReport:
    stages: list[str]
    shards: int
    samples: int
    problems: list[Problem]


@overload
def stage_dirs(directory: Path) -> list[Path]: ...
@overload
def stage_dirs(directory: ObjectPath) -> list[ObjectPath]: ...
def stage_dirs(directory: Location) -> list[Any]:
    """``directory`` itself when it is a stage, else its stage subdirectories: those with a summary
    and those holding shards or manifests (whose missing summary is then a problem)."""
    if (directory / SUMMARY_NAME).exists():
        return [directory]
    if not directory.is_dir():
        raise NearidError(f"{directory}: no such directory")
    found = {p.name: p for p in children(directory) if p.is_dir() and _is_stage(p)}
    if not found:
        if _is_stage(directory):  # a stage folder whose summary is gone
            return [directory]
        raise NearidError(f"{directory} holds no built stage (no {SUMMARY_NAME} found)")
    upstream: dict[str, str | None] = {}
    for name, stage_dir in found.items():
        try:
            summary = read_summary(stage_dir)
        except NearidError:
            continue
        upstream[name] = summary.upstream if summary else None
    return sorted(found.values(), key=lambda d: (_depth(d.name, upstream), d.name))


def _is_stage(directory: Location) -> bool:
    if (directory / SUMMARY_NAME).exists():
        return True
    return any(directory.rglob("*.tar")) or any(directory.rglob(f"*{MANIFEST_SUFFIX}"))


def _depth(stage: str, upstream: dict[str, str | None]) -> int:
    """How many stages precede ``stage`` in its build (pipeline order)."""
    depth, seen = 0, {stage}
    while (stage := upstream.get(stage) or "") and stage not in seen:
        seen.add(stage)
        depth += 1
    return depth


def verify(directory: Location) -> VerifyReport:
    problems: list[Problem] = []
    shards = samples = 0
    dirs = stage_dirs(directory)
    holders: dict[str, dict[str, SampleRow] | None] = {}
    for stage_dir in dirs:
        where = f"{stage_dir.name}/{SUMMARY_NAME}"
        try:
            summary = read_summary(stage_dir)
        except NearidError as exc:
            problems.append(Problem(where, str(exc)))
            continue
        if summary is None:
            problems.append(
                Problem(where, "missing, but the folder holds shards (incomplete or tampered)")
            )
            continue
        field_sets: set[tuple[str, ...]] = set()
        keys = UniqueKeys()
        kept: list[tuple[str, SampleRow]] = []
        found = len(problems)
        for entry in summary.shards:
            shards += 1
            checker = _ShardCheck(stage_dir, summary, entry, problems, keys, kept)
            samples += checker.run(field_sets if summary.stage == "export" else None)
        _check_joins(stage_dir, kept, holders, problems)
        if len(problems) == found:  # a broken shard or join already says why a rebuild fails
            _check_patches(stage_dir, kept, problems)
        if len(field_sets) > 1:
            problems.append(
                Problem(stage_dir.name, f"samples have differing field sets: {sorted(field_sets)}")
            )
        if sum(entry.n_kept for entry in summary.shards) != summary.n_kept:
            problems.append(Problem(where, "n_kept differs from the sum over its shards"))
    return VerifyReport([d.name for d in dirs], shards, samples, problems)


def _check_joins(
    stage_dir: Location,
    kept: list[tuple[str, SampleRow]],
    holders: dict[str, dict[str, SampleRow] | None],
    problems: list[Problem],
) -> None:
    """Every inherited field is held, with the recorded sha256, by the stage its row names."""
    for unit, row in kept:
        for name, stage in sorted(row.inherited.items()):
            if stage not in holders:
                holders[stage] = _kept_rows(stage_dir.parent / stage)
            held_rows = holders[stage]
            where = f"{stage_dir.name}/{unit}{MANIFEST_SUFFIX}"
            if held_rows is None:
                problems.append(Problem(where, f"inherits fields from stage {stage!r}, not built"))
                continue
            held = held_rows.get(row.key)
            if held is None:
                problems.append(
                    Problem(where, f"sample {row.key!r} inherits {name!r} from stage {stage!r}, "
                            "which has no such kept sample")
                )  # fmt: skip
            elif name in held.inherited or held.fields.get(name) != row.fields.get(name):
                problems.append(
                    Problem(where, f"sample {row.key!r} inherits {name!r} from stage {stage!r}, "
                            "which holds other bytes for it")
                )  # fmt: skip


def _check_patches(
    stage_dir: Location, kept: list[tuple[str, SampleRow]], problems: list[Problem]
) -> None:
    """Every field stored as a patch rebuilds to the bytes its row records (a decode and an
    encode per patched field: the only check here that is more than a read and a hash)."""
    patched = [(unit, row.key) for unit, row in kept if row.patches]
    names = {name for _, row in kept for name in row.patches}
    if not patched:
        return
    catalog = Catalog(stage_dir)
    for batch in batched(patched, JOIN_BATCH):
        try:
            for _ in catalog.stream(batch, names):
                pass
        except (NearidError, OSError) as exc:  # the message names the sample and its unit
            problems.append(Problem(stage_dir.name, str(exc)))


def _kept_rows(stage_dir: Location) -> dict[str, SampleRow] | None:
    """Kept rows by key of a built stage; None when it has no readable summary or manifests
    (those problems are reported where that stage itself is checked)."""
    try:
        summary = read_summary(stage_dir)
        if summary is None:
            return None
        return {
            row.key: row
            for entry in summary.shards
            for row in read_manifest(manifest_path(stage_dir, entry.unit)).rows
            if row.status == "kept"
        }
    except (NearidError, OSError):
        return None


@dataclass
class _ShardCheck:
    stage_dir: Location
    summary: StageSummary
    entry: ShardEntry
    problems: list[Problem]
    keys: UniqueKeys
    kept: list[tuple[str, SampleRow]]

    def fail(self, what: str) -> None:
        self.problems.append(Problem(f"{self.stage_dir.name}/{self.entry.unit}.tar", what))

    def check_row(self, row: SampleRow) -> None:
        """A row's own records agree: patches over fields it has; sizes (where recorded, as
        they are since sizes exist) for exactly its fields, adding up to its bytes."""
        for name, patch in sorted(row.patches.items()):
            if name not in row.fields or patch.base not in row.fields:
                self.fail(f"sample {row.key!r}: patch of {name!r} over {patch.base!r}, which the "
                          "sample does not have")  # fmt: skip
        if row.sizes and (
            row.sizes.keys() != row.fields.keys() or sum(row.sizes.values()) != row.bytes
        ):
            self.fail(f"sample {row.key!r}: its field sizes do not match its fields and bytes")

    def run(self, field_sets: set[tuple[str, ...]] | None) -> int:
        try:
            mpath = manifest_path(self.stage_dir, self.entry.unit)
            tar = tar_path(self.stage_dir, self.entry.unit)
        except NearidError as exc:
            self.fail(str(exc))
            return 0
        if not mpath.exists():
            self.fail("its manifest is missing")
            return 0
        try:
            manifest = read_manifest(mpath)
        except NearidError as exc:
            self.fail(str(exc))
            return 0
        if manifest.tar != relative(tar, self.stage_dir):
            self.fail(f"manifest names tar {manifest.tar!r}, not this unit's")
        if manifest.sha256 != self.entry.sha256 or manifest.n_kept != self.entry.n_kept:
            self.fail(f"manifest disagrees with {SUMMARY_NAME}")
        if manifest.n_kept + manifest.n_rejected != manifest.n_in:
            self.fail("kept + rejected != inputs in the manifest")
        tar_bytes = size(tar)
        if tar_bytes is None:
            self.fail("shard is missing")
            return 0
        if tar_bytes != manifest.bytes:
            self.fail(f"size {tar_bytes} != {manifest.bytes} recorded (truncated?)")
        expected = {row.key: row.stored() for row in manifest.rows if row.status == "kept"}
        for row in manifest.rows:
            self.check_row(row)
        self.kept += [(self.entry.unit, row) for row in manifest.rows if row.status == "kept"]
        seen = 0
        try:
            for key, fields in iter_raw(tar, sha256=manifest.sha256):
                seen += 1
                try:
                    self.keys.add(key, tar)
                except ShardError as exc:
                    self.fail(str(exc))
                hashes = {name: hashlib.sha256(value).hexdigest() for name, value in fields.items()}
                if expected.get(key) != hashes:
                    self.fail(f"sample {key!r} does not match its manifest row")
                if field_sets is not None:
                    field_sets.add(tuple(sorted(fields)))
        except (ShardError, OSError) as exc:
            self.fail(str(exc).removeprefix(f"{tar}: "))
        if seen != manifest.n_kept:
            self.fail(f"{seen} samples read, manifest says {manifest.n_kept}")
        return seen
