"""Verify a build: re-read every shard, re-hash it, and check it against its manifests.

Finds missing, truncated and altered shards, samples whose fields do not match their recorded
hashes, counts that disagree, and, in an export, samples whose fields differ from the rest.
"""

from __future__ import annotations

import hashlib
import tarfile
from dataclasses import dataclass
from pathlib import Path

from nearid_data.engine.manifest import (
    SUMMARY_NAME,
    StageSummary,
    manifest_path,
    read_manifest,
    read_summary,
)
from nearid_data.engine.tario import iter_raw
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


def stage_dirs(directory: Path) -> list[Path]:
    """``directory`` itself when it is a stage, else its stage subdirectories."""
    if (directory / SUMMARY_NAME).exists():
        return [directory]
    found = {p.parent.name: p.parent for p in directory.glob(f"*/{SUMMARY_NAME}")}
    if not found:
        raise NearidError(f"{directory} holds no built stage (no {SUMMARY_NAME} found)")
    upstream = {name: summary.upstream for name in found if (summary := read_summary(found[name]))}
    return sorted(found.values(), key=lambda d: (_depth(d.name, upstream), d.name))


def _depth(stage: str, upstream: dict[str, str | None]) -> int:
    """How many stages precede ``stage`` in its build (pipeline order)."""
    depth, seen = 0, {stage}
    while (stage := upstream.get(stage) or "") and stage not in seen:
        seen.add(stage)
        depth += 1
    return depth


def verify(directory: Path) -> VerifyReport:
    problems: list[Problem] = []
    shards = samples = 0
    dirs = stage_dirs(directory)
    for stage_dir in dirs:
        summary = read_summary(stage_dir)
        assert summary is not None
        uniform = summary.stage == "export"
        field_sets: set[tuple[str, ...]] = set()
        for entry in summary.shards:
            shards += 1
            samples += _verify_shard(
                stage_dir, summary, entry.unit, problems, field_sets if uniform else None
            )
        if len(field_sets) > 1:
            problems.append(
                Problem(stage_dir.name, f"samples have differing field sets: {sorted(field_sets)}")
            )
    return VerifyReport([d.name for d in dirs], shards, samples, problems)


def _verify_shard(
    stage_dir: Path,
    summary: StageSummary,
    unit: str,
    problems: list[Problem],
    field_sets: set[tuple[str, ...]] | None,
) -> int:
    where = f"{stage_dir.name}/{unit}.tar"
    mpath = manifest_path(stage_dir, unit)
    if not mpath.exists():
        problems.append(Problem(where, "its manifest is missing"))
        return 0
    manifest = read_manifest(mpath)
    entry = next(s for s in summary.shards if s.unit == unit)
    tar = stage_dir / (manifest.tar or "")
    if not tar.exists():
        problems.append(Problem(where, "shard is missing"))
        return 0
    data = tar.read_bytes()
    if len(data) != manifest.bytes:
        problems.append(
            Problem(where, f"size {len(data)} != {manifest.bytes} recorded (truncated?)")
        )
    if hashlib.sha256(data).hexdigest() != manifest.sha256 or manifest.sha256 != entry.sha256:
        problems.append(Problem(where, "sha256 differs from the manifest"))
    expected = {row.key: row.fields for row in manifest.rows if row.status == "kept"}
    seen = 0
    try:
        for key, fields in iter_raw(tar):
            seen += 1
            hashes = {name: hashlib.sha256(value).hexdigest() for name, value in fields.items()}
            if expected.get(key) != hashes:
                problems.append(Problem(where, f"sample {key!r} does not match its manifest row"))
            if field_sets is not None:
                field_sets.add(tuple(sorted(fields)))
            if "." in key:
                problems.append(Problem(where, f"key {key!r} contains a dot"))
    except (tarfile.TarError, OSError, EOFError) as exc:
        problems.append(Problem(where, f"unreadable tar: {exc}"))
    if seen != manifest.n_kept or manifest.n_kept != entry.n_kept:
        problems.append(Problem(where, f"{seen} samples read, manifest says {manifest.n_kept}"))
    if manifest.n_kept + manifest.n_rejected != manifest.n_in:
        problems.append(Problem(where, "kept + rejected != inputs in the manifest"))
    return seen
