"""What the report shows, read from a build's manifests into a small model.

Counts, rejections, split sizes and QA figures come from the manifests alone; samples whose
pixels the report draws are kept as references (shard + key) and read later by ``thumbs``.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nearid_data.engine.manifest import (
    SampleRow,
    ShardManifest,
    StageSummary,
    manifest_path,
    read_manifest,
    read_summary,
)
from nearid_data.engine.storage import Location
from nearid_data.verify import stage_dirs

DISTRACTOR_PREFIX = "distractor_"
MAX_EXAMPLES = 3
QA_FIGURES = ("inside_changed_fraction", "inside_mean_abs_diff", "seam_gradient")


@dataclass(frozen=True)
class SampleRef:
    """A committed sample: its shard and key. ``sha256`` digests the sha256 of every field of the
    sample (its shard may hold only some: the catalog of ``stage_dir`` joins the rest) and keys
    its cached thumbnails."""

    tar: Location
    sha256: str
    key: str
    stage_dir: Location


@dataclass(frozen=True)
class StageCounts:
    name: str
    n_in: int
    n_kept: int
    n_rejected: int
    shards: int
    bytes: int
    wall_s: float


@dataclass(frozen=True)
class Example:
    """A rejected input, with its pixels in the upstream stage's shard when they exist there."""

    key: str
    detail: str
    ref: SampleRef | None


@dataclass(frozen=True)
class RejectionGroup:
    stage: str
    reason: str
    count: int
    examples: list[Example]


@dataclass(frozen=True)
class SplitSize:
    identities: int
    samples: int
    bytes: int


@dataclass(frozen=True)
class SheetRow:
    """One view on a contact sheet."""

    identity: str
    category: str
    split: str | None
    view: int
    ref: SampleRef
    qa: dict[str, dict[str, Any]]  # generator id -> its QA figures


@dataclass
class BuildReport:
    title: str
    stages: list[StageCounts] = field(default_factory=list)
    rejections: list[RejectionGroup] = field(default_factory=list)
    splits: dict[str, SplitSize] = field(default_factory=dict)
    generators: list[str] = field(default_factory=list)
    sheets: dict[str, list[SheetRow]] = field(default_factory=dict)  # category -> rows
    qa: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # generator -> figure
    mask_areas: list[float] = field(default_factory=list)
    # synthesize: the similarity of each scored synthetic positive, by status (kept, rejected)
    positive_similarity: dict[str, list[float]] = field(default_factory=dict)


def _content(row: SampleRow) -> str:
    digest = hashlib.sha256()
    for name, field_sha256 in sorted(row.fields.items()):
        digest.update(f"{name}={field_sha256};".encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class _Stage:
    directory: Location
    summary: StageSummary
    manifests: list[ShardManifest]

    def rows(self) -> list[SampleRow]:
        return [row for manifest in self.manifests for row in manifest.rows]

    def kept(self) -> list[tuple[SampleRow, SampleRef]]:
        return [
            (
                row,
                SampleRef(self.directory / manifest.tar, _content(row), row.key, self.directory),
            )
            for manifest in self.manifests
            if manifest.tar
            for row in manifest.rows
            if row.status == "kept"
        ]


def collect(directory: Location, per_category: int = 4) -> BuildReport:
    """The report of a build directory (or of one stage's directory), local or at a URL."""
    stages = [_read_stage(d) for d in stage_dirs(directory)]
    named = directory.resolve() if isinstance(directory, Path) else directory
    report = BuildReport(title=named.name)
    by_name = {stage.summary.stage: stage for stage in stages}
    view_qa: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)  # key -> generator -> qa
    for stage in stages:
        summary = stage.summary
        report.stages.append(
            StageCounts(
                summary.stage, summary.n_in, summary.n_kept, summary.n_rejected,
                len(summary.shards), summary.bytes, summary.wall_s,
            )
        )  # fmt: skip
        report.rejections.extend(_rejections(stage, by_name))
        for row in stage.rows():
            if summary.stage == "synthesize" and isinstance(row.qa.get("similarity"), float):
                report.positive_similarity.setdefault(row.status, []).append(row.qa["similarity"])
            if row.status != "kept":
                continue
            for name, figures in row.qa.items():
                if isinstance(figures, dict):  # generator id -> that generator's QA figures
                    view_qa[row.key][name] = figures
            if summary.stage == "segment" and isinstance(row.qa.get("area"), (int, float)):
                report.mask_areas.append(float(row.qa["area"]))
    _add_splits(report, stages)
    _add_sheets(report, stages, view_qa, per_category)
    report.qa = {
        gid: {
            figure: [float(qa[gid][figure]) for qa in view_qa.values() if figure in qa.get(gid, {})]
            for figure in QA_FIGURES
        }
        for gid in report.generators
    }
    return report


def _read_stage(stage_dir: Location) -> _Stage:
    summary = read_summary(stage_dir)
    assert summary is not None, f"stage_dirs yields only stages with a summary: {stage_dir}"
    manifests = [read_manifest(manifest_path(stage_dir, e.unit)) for e in summary.shards]
    return _Stage(stage_dir, summary, manifests)


def _upstream(stage: _Stage, by_name: dict[str, _Stage]) -> _Stage | None:
    """The stage ``stage`` read from; looked for beside it when only one stage was asked for."""
    name = stage.summary.upstream
    if not name:
        return None
    if name in by_name:
        return by_name[name]
    beside = stage.directory.parent / name
    return _read_stage(beside) if read_summary(beside) else None


def _rejections(stage: _Stage, by_name: dict[str, _Stage]) -> list[RejectionGroup]:
    rejected: dict[str, list[SampleRow]] = defaultdict(list)
    for row in stage.rows():
        if row.status == "rejected":
            rejected[row.reason or ""].append(row)
    if not rejected:
        return []
    # A rejected input is not in its stage's shard, but still in the upstream stage's one.
    upstream = _upstream(stage, by_name)
    upstream_refs = {ref.key: ref for _, ref in upstream.kept()} if upstream else {}
    groups = []
    for reason, rows in sorted(rejected.items()):
        examples = [
            Example(row.key, row.detail or "", upstream_refs.get(row.key))
            for row in sorted(rows, key=lambda r: r.key)[:MAX_EXAMPLES]
        ]
        groups.append(RejectionGroup(stage.summary.stage, reason, len(rows), examples))
    return groups


def _add_splits(report: BuildReport, stages: list[_Stage]) -> None:
    """Split sizes as the last stage that assigned splits holds them (the export, usually)."""
    for stage in reversed(stages):
        kept = [row for row, _ in stage.kept() if row.split]
        if not kept:
            continue
        identities: dict[str, set[str]] = defaultdict(set)
        samples: dict[str, int] = defaultdict(int)
        sizes: dict[str, int] = defaultdict(int)
        for row in kept:
            assert row.split is not None
            identities[row.split].add(row.identity)
            samples[row.split] += 1
            sizes[row.split] += row.bytes
        report.splits = {
            split: SplitSize(len(identities[split]), samples[split], sizes[split])
            for split in sorted(samples)
        }
        return


def _add_sheets(
    report: BuildReport,
    stages: list[_Stage],
    view_qa: dict[str, dict[str, dict[str, Any]]],
    per_category: int,
) -> None:
    """Contact sheets from the last stage whose samples carry distractors."""
    for stage in reversed(stages):
        kept = stage.kept()
        generators = {
            name.removeprefix(DISTRACTOR_PREFIX).removesuffix(".png")
            for row, _ in kept
            for name in row.fields
            if name.startswith(DISTRACTOR_PREFIX)
        }
        if not generators:
            continue
        report.generators = sorted(generators)
        first_view: dict[str, tuple[SampleRow, SampleRef]] = {}
        for row, ref in kept:
            if row.identity not in first_view or row.view < first_view[row.identity][0].view:
                first_view[row.identity] = (row, ref)
        by_category: dict[str, list[str]] = defaultdict(list)
        for identity, (row, _) in first_view.items():
            by_category[row.category].append(identity)
        for category, identities in sorted(by_category.items()):
            report.sheets[category] = [
                SheetRow(row.identity, category, row.split, row.view, ref, view_qa.get(row.key, {}))
                for identity in _pick(identities, per_category)
                for row, ref in [first_view[identity]]
            ]
        return


def _pick(identities: list[str], n: int) -> list[str]:
    """``n`` identities, the same on every run; hash order spreads the pick over the category
    (names often carry a running number, and the first few would all be the oldest)."""
    chosen = sorted(identities, key=lambda i: hashlib.sha256(i.encode("utf-8")).hexdigest())[:n]
    return sorted(chosen)
