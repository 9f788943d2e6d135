"""Build a pipeline: run its stages in order (or one), each through the runner."""

from __future__ import annotations

import logging
from pathlib import Path

from nearid_data.config import PipelineConfig
from nearid_data.engine.local import LocalExecutor
from nearid_data.engine.lock import build_lock
from nearid_data.engine.manifest import StageSummary
from nearid_data.engine.runner import run_stage
from nearid_data.errors import NearidError

log = logging.getLogger("nearid_data")


def build(
    pipeline: PipelineConfig,
    *,
    out: Path,
    stage: str = "all",
    workers: int = 1,
    device: str = "cpu",
    force: bool = False,
) -> list[StageSummary]:
    """Run ``stage`` (a stage of the pipeline) or ``all`` of them; ``verify`` runs none (the CLI
    verifies after ``all`` and ``verify``). Holds the build directory's lock throughout."""
    names = {"all": list(pipeline.stages), "verify": []}.get(stage, [stage])
    unknown = [n for n in names if n not in pipeline.stages]
    if unknown:
        known = ", ".join(["all", *pipeline.stages, "verify"])
        raise NearidError(f"unknown stage {unknown[0]!r}; this pipeline has: {known}")
    summaries: list[StageSummary] = []
    if not names:
        return summaries
    with build_lock(out):
        executor = LocalExecutor(workers=workers, device=device)
        try:
            for name in names:
                instance = pipeline.build_stage(name, out, pipeline.upstream_of(name), device)
                raw = pipeline.model_dump(mode="json")
                summary = run_stage(instance, raw, executor, force=force)
                log.info(summary_line(summary))
                summaries.append(summary)
        finally:
            executor.close()
    return summaries


def summary_line(summary: StageSummary) -> str:
    reasons = ", ".join(f"{r}: {n}" for r, n in summary.rejected_by_reason.items())
    rejected = f" ({reasons})" if reasons else ""
    skipped = f", {summary.units_skipped} already built" if summary.units_skipped else ""
    return (
        f"{summary.stage:<12} {summary.n_in} in, {summary.n_kept} kept, {summary.n_rejected} rejected"
        f"{rejected}; {len(summary.shards)} shards, {summary.bytes / 1e6:.1f} MB, "
        f"{summary.wall_s:.1f} s{skipped}"
    )
