"""What an upload of an export directory sends: the exact files, checked against the manifests.

Only files the manifests account for are planned (a stray or half-written file in the folder is
never uploaded), and every shard must be on disk with the size and sha256 its manifest recorded.
An unlisted data file (anything under ``data/``, any tar or wids index) is an error, since the
user probably meant to publish it, unless ``allow_extra`` leaves it out with a warning; writers'
temporary files and other files (notes) are left out silently. Shard sizes
are checked against the Hub's guidance (1-5 GB per file): above the limit is an error, since the
Hub's viewer and resumable uploads work per file; below it only a warning, as a small dataset
simply has small shards.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass

from nearid_data.engine import storage
from nearid_data.engine.atomic import TMP_MARK
from nearid_data.engine.manifest import (
    MANIFEST_SUFFIX,
    SUMMARY_NAME,
    StageSummary,
    manifest_path,
    read_summary,
)
from nearid_data.engine.storage import Location
from nearid_data.engine.tario import file_sha256
from nearid_data.errors import NearidError

CARD_NAME = "README.md"
GB = 1_000_000_000
HUB_MIN_SHARD_GB = 1.0


class PublishError(NearidError):
    """The export cannot be published as it is; the message names every file at fault."""


@dataclass(frozen=True)
class PlannedFile:
    path: str  # relative to the export directory, POSIX separators
    bytes: int
    kind: str  # card, summary, index, manifest or shard


@dataclass(frozen=True)
class UploadPlan:
    export_dir: Location
    files: tuple[PlannedFile, ...]
    warnings: tuple[str, ...] = ()

    @property
    def paths(self) -> list[str]:
        return [f.path for f in self.files]

    @property
    def total_bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    @property
    def allow_patterns(self) -> list[str]:
        """One pattern per planned file, escaped so that each matches only that file."""
        return [glob.escape(path) for path in self.paths]

    def describe(self) -> str:
        lines = [f"{f.bytes:>14,d}  {f.path}" for f in self.files]
        lines.append(f"{self.total_bytes:>14,d}  total, {len(self.files)} files")
        return "\n".join(lines)


def plan_upload(
    export_dir: Location, *, max_shard_gb: float = 5.0, allow_extra: bool = False
) -> UploadPlan:
    """The files to upload from a finished export, or a ``PublishError`` naming what is wrong."""
    summary = _export_summary(export_dir)
    problems: list[str] = []
    files = [_existing(export_dir, CARD_NAME, "card", problems)]
    files.append(_existing(export_dir, SUMMARY_NAME, "summary", problems))
    splits = dict.fromkeys(entry.unit.split("/")[1] for entry in summary.shards)
    files += [_existing(export_dir, f"{split}.wids.json", "index", problems) for split in splits]
    for entry in summary.shards:
        manifest = storage.relative(manifest_path(export_dir, entry.unit), export_dir)
        files.append(_existing(export_dir, manifest, "manifest", problems))
        if entry.n_kept == 0:
            # An empty tar is accounted for by its manifest but not uploaded: the Hub's loader
            # infers features from a split's first tar and fails on an empty one.
            continue
        shard = _existing(export_dir, entry.tar or "", "shard", problems)
        if shard.bytes not in (-1, entry.bytes):
            problems.append(
                f"{shard.path}: {shard.bytes:,d} bytes on disk, the manifest records "
                f"{entry.bytes:,d} (rebuild the export, or run `python -m nearid_data verify`)"
            )
        elif shard.bytes != -1 and file_sha256(export_dir / shard.path) != entry.sha256:
            problems.append(
                f"{shard.path}: sha256 differs from the manifest (corrupt shard; rebuild the "
                "export, or run `python -m nearid_data verify`)"
            )
        files.append(shard)
    accounted = {f.path for f in files} | {e.tar for e in summary.shards if e.tar}
    problems += _stale_manifests(export_dir, accounted)
    extra = _unlisted_data_files(export_dir, accounted)
    warnings = _small_shard_warnings(files, summary)
    if allow_extra:
        warnings += [f"{path}: not in the manifests, left out (--allow-extra)" for path in extra]
    else:
        problems += [
            f"{path}: data file not in the manifests (remove it, rebuild the export, or pass "
            "--allow-extra to publish without it)"
            for path in extra
        ]
    problems += _oversized(files, max_shard_gb)
    if problems:
        raise PublishError(f"cannot publish {export_dir}:\n  " + "\n  ".join(problems))
    return UploadPlan(export_dir, tuple(files), tuple(warnings))


def _export_summary(export_dir: Location) -> StageSummary:
    if not export_dir.is_dir():
        raise NearidError(f"{export_dir}: no such directory")
    summary = read_summary(export_dir)
    if summary is None or summary.stage != "export":
        raise PublishError(
            f"{export_dir}: not a finished WebDataset export (no export {SUMMARY_NAME}); "
            "run `python -m nearid_data build` to the end and publish build/<name>/export"
        )
    return summary


def _existing(export_dir: Location, relative: str, kind: str, problems: list[str]) -> PlannedFile:
    size = storage.size(export_dir / relative)
    if size is None:
        problems.append(f"{relative}: missing ({kind})")
        return PlannedFile(relative, -1, kind)
    return PlannedFile(relative, size, kind)


def _stale_manifests(export_dir: Location, planned: set[str]) -> list[str]:
    """Manifests on disk that the summary does not list: left by another build of this folder."""
    on_disk = {
        storage.relative(p, export_dir)
        for p in storage.list_files(export_dir / "data", f"*{MANIFEST_SUFFIX}")
    }
    return [
        f"{path}: not in {SUMMARY_NAME} (left from another build? rebuild the export with --force)"
        for path in sorted(on_disk - planned)
    ]


def _unlisted_data_files(export_dir: Location, accounted: set[str]) -> list[str]:
    """Files that look like data (under ``data/``, tars, wids indexes) the manifests do not list."""
    unlisted = []
    for path in storage.list_files(export_dir):
        relative = storage.relative(path, export_dir)
        if relative in accounted or TMP_MARK in path.name:
            continue
        if path.name.endswith(MANIFEST_SUFFIX):  # reported by _stale_manifests
            continue
        if relative.startswith("data/") or path.name.endswith((".tar", ".wids.json")):
            unlisted.append(relative)
    return unlisted


def _oversized(files: list[PlannedFile], max_shard_gb: float) -> list[str]:
    limit = int(max_shard_gb * GB)
    over = [f for f in files if f.kind == "shard" and f.bytes > limit]
    if not over:
        return []
    # The export cuts shards by the bytes of their samples; tar headers add a little on top.
    fix = (
        f"fix: rebuild the export with smaller shards, e.g. `python -m nearid_data build "
        f"--pipeline <yaml> --set export.max_shard_bytes={int(limit * 0.9)}`"
    )
    return [
        f"{f.path}: {f.bytes / GB:.2f} GB, over --max-shard-gb {max_shard_gb:g}" for f in over
    ] + [fix]


def _small_shard_warnings(files: list[PlannedFile], summary: StageSummary) -> list[str]:
    """Splits cut into several shards well under the Hub's 1 GB lower guidance."""
    by_split: dict[str, list[int]] = {}
    for f in files:
        if f.kind == "shard":
            by_split.setdefault(f.path.split("/")[1], []).append(f.bytes)
    warnings = []
    for split, sizes in by_split.items():
        if len(sizes) > 1 and max(sizes) < HUB_MIN_SHARD_GB * GB:
            warnings.append(
                f"split {split}: {len(sizes)} shards of at most {max(sizes) / GB:.3g} GB; the Hub "
                f"suggests 1-5 GB per file: fewer, larger shards with --set "
                f"export.max_shard_samples=N (now {summary.config.get('max_shard_samples')})"
            )
    return warnings
