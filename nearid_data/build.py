"""Build a pipeline: run its stages in order (or one), each through the runner."""

from __future__ import annotations

import logging
import shutil

from nearid_data.config import PipelineConfig
from nearid_data.engine.executor import Executor
from nearid_data.engine.lock import build_lock
from nearid_data.engine.manifest import StageSummary, read_summary
from nearid_data.engine.runner import run_stage
from nearid_data.engine.storage import Location
from nearid_data.errors import NearidError
from nearid_data.executors import EXECUTORS
from nearid_data.suggest import did_you_mean

log = logging.getLogger("nearid_data")


def build(
    pipeline: PipelineConfig,
    *,
    out: Location,
    stage: str = "all",
    only: bool = False,
    workers: int = 1,
    device: str = "cpu",
    force: bool = False,
) -> list[StageSummary]:
    """Run ``stage`` (a stage of the pipeline) or ``all`` of them; ``verify`` runs none (the CLI
    verifies after ``all`` and ``verify``). Holds the build directory's lock throughout. Units
    run on the pipeline's executor with ``workers`` workers; ``device`` is handed to the
    executor alone, which decides the device each worker gets.

    Like make, a named stage first brings its upstream stages up to date (each skips what is
    already committed); ``only`` runs the named stage alone on the upstream as it is. ``force``
    rebuilds the named stage (all of them for ``all``), never its upstream.
    """
    order = list(pipeline.stages)
    if stage not in ("all", "verify", *order):
        known = ", ".join(["all", *order, "verify"])
        raise NearidError(
            f"unknown stage {stage!r}{did_you_mean(stage, order)}; this pipeline has: {known}"
        )
    if stage in ("all", "verify"):
        names = order if stage == "all" else []
    else:
        names = [stage] if only else order[: order.index(stage) + 1]
    summaries: list[StageSummary] = []
    if not names:
        return summaries
    pipeline.check_out(out)
    with build_lock(out):
        executor_cls = EXECUTORS.load(pipeline.executor.get("name", "local"))
        executor = executor_cls(pipeline.executor_config(), workers=workers, device=device)
        try:
            for name in names:
                rebuild = force and (stage == "all" or name == stage)
                summary = _run_one(pipeline, name, out, executor, force=rebuild)
                summaries.append(summary)
        finally:
            executor.close()
    return summaries


def _run_one(
    pipeline: PipelineConfig,
    name: str,
    out: Location,
    executor: Executor,
    *,
    force: bool,
) -> StageSummary:
    stage_dir = out / name
    created = [d for d in (stage_dir, *stage_dir.parents) if not d.exists()]
    before = None if force else read_summary(stage_dir)
    try:
        # Built for the requested device, which decides the resources a worker declares; each
        # worker builds its own for the device the executor gives it.
        instance = pipeline.build_stage(name, out, pipeline.upstream_of(name), executor.device)
        summary = run_stage(instance, pipeline.stage_factory(), executor, force=force)
    except BaseException:
        # A stage that failed before committing anything leaves no empty folder behind; committed
        # shards stay, so a rerun resumes from them.
        # The cleanup never replaces the error that stopped the stage.
        for directory in created:
            if directory.is_dir() and not any(p.is_file() for p in directory.rglob("*")):
                shutil.rmtree(directory, ignore_errors=True)
        raise
    log.info(summary_line(summary))
    if before is not None and before.fingerprint != summary.fingerprint:
        log.info(
            "%-12s replaced the existing %s (%d samples in %d shards, built with other settings "
            "or another upstream): kept %d of its shards",
            name, stage_dir, before.n_kept, len(before.shards), summary.units_skipped,
        )  # fmt: skip
    return summary


def summary_line(summary: StageSummary) -> str:
    reasons = ", ".join(f"{r}: {n}" for r, n in summary.rejected_by_reason.items())
    rejected = f" ({reasons})" if reasons else ""
    skipped = f", {summary.units_skipped} already built" if summary.units_skipped else ""
    return (
        f"{summary.stage:<12} {summary.n_in} in, {summary.n_kept} kept, {summary.n_rejected} rejected"
        f"{rejected}; {len(summary.shards)} shards, {summary.bytes / 1e6:.1f} MB, "
        f"{summary.wall_s:.1f} s{skipped}"
    )
