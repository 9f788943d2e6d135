"""The runner: plan a stage's units, skip the committed ones, run the rest, summarise.

A unit is committed when its manifest exists with the unit's fingerprint (stage config, seed,
upstream content and the unit's payload) and its tar has the recorded size and sha256 (a hash, so
a same-size corrupt shard is rebuilt). Anything else is rebuilt. The stage summary, the stage's own
completion marker, is removed before work starts and written last, so a downstream stage never
reads a half-rebuilt upstream. A summary carries warnings (nothing kept, an empty split).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from importlib import metadata

from tqdm import tqdm

from nearid_data.engine import storage
from nearid_data.engine.executor import Executor, StageFactory, StageTask
from nearid_data.engine.manifest import (
    MANIFEST_SUFFIX,
    SUMMARY_NAME,
    MalformedRecord,
    ShardManifest,
    StageSummary,
    manifest_path,
    read_manifest,
    summarize,
    tar_path,
    write_model,
)
from nearid_data.engine.shared import SHARED_NAME, reusable_shared, write_shared
from nearid_data.engine.stage import Stage, WorkUnit
from nearid_data.engine.storage import Location
from nearid_data.engine.tario import file_sha256
from nearid_data.errors import NearidError
from nearid_data.seeding import derive_seed

log = logging.getLogger("nearid_data")

FORMAT_VERSION = 1
_VERSIONED = (
    "nearid-data",
    "numpy",
    "opencv-python-headless",
    "pillow",
    "pydantic",
    "torch",
    "transformers",
    "diffusers",
    "segment-anything",
    "groundingdino-py",
)


def stage_fingerprint(stage: Stage) -> str:
    upstream = None
    if stage.ctx.upstream is not None:
        upstream = stage.upstream_catalog.summary.fingerprint_of_content()
    return f"{derive_seed(FORMAT_VERSION, stage.name, stage.fingerprint_inputs(), upstream):016x}"


def package_versions() -> dict[str, str]:
    versions = {}
    for name in _VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def run_stage(
    stage: Stage, factory: StageFactory, executor: Executor, *, force: bool = False
) -> StageSummary:
    """Run ``stage``'s uncommitted units on ``executor``; its workers rebuild the stage with
    ``factory``, which must build the same stage as ``stage``, for the device the executor gives
    each of them. ``stage`` itself is built for the device the build asked for
    (``executor.device``): it plans, declares the resources a worker needs and finalizes."""
    started = time.perf_counter()
    stage_dir = stage.ctx.stage_dir(stage.name)
    if force:
        storage.delete_tree(stage_dir)
    storage.make_dirs(stage_dir)
    storage.delete(stage_dir / SUMMARY_NAME)
    storage.sweep_temporaries(stage_dir)

    task = StageTask(
        stage=stage.name,
        factory=factory,
        build_dir=str(stage.ctx.build_dir),
        upstream=stage.ctx.upstream,
        fingerprint=stage_fingerprint(stage),
        resources=stage.resources(),
    )
    units = stage.plan()
    done = {u.name: m for u in units if (m := _committed(stage_dir, task, u)) is not None}
    todo = [u for u in units if u.name not in done]
    shared = (
        _shared_artifact(stage, stage_dir, task.fingerprint)
        if todo
        else reusable_shared(stage_dir, task.fingerprint)
    )
    task = replace(task, shared_sha256=shared)
    for unit in todo:
        storage.delete(manifest_path(stage_dir, unit.name))
    try:
        with tqdm(total=len(todo), desc=stage.name, unit="shard", disable=None, leave=False) as bar:
            for manifest in executor.map(task, todo):
                done[manifest.unit] = manifest
                bar.update(1)
    except BaseException:
        # A worker killed mid-unit leaves its temporary shard; the executor has ended every
        # other writer by now, so the failed stage leaves only committed units behind.
        storage.sweep_temporaries(stage_dir)
        raise
    _remove_stale(stage_dir, {u.name for u in units})
    stage.finalize(stage.ctx.build_dir)

    upstream_summary = stage.upstream_catalog.summary if stage.ctx.upstream else None
    manifests = [done[u.name] for u in units]
    summary = summarize(
        manifests,
        stage=stage.name,
        fingerprint=task.fingerprint,
        upstream=stage.ctx.upstream,
        upstream_fingerprint=upstream_summary.fingerprint if upstream_summary else None,
        config=stage.config.model_dump(mode="json"),
        seed=stage.ctx.pipeline.seed,
        models=stage.describe(),
        device=executor.device,
        devices=sorted({done[u.name].device for u in todo}),
        versions=package_versions(),
        wall_s=round(time.perf_counter() - started, 3),
        units_run=len(todo),
        units_skipped=len(units) - len(todo),
        shared=task.shared_sha256,
    )
    summary = summary.model_copy(update={"warnings": stage_warnings(stage, summary, manifests)})
    for warning in summary.warnings:
        log.warning("warning: %s", warning)
    write_model(stage_dir / SUMMARY_NAME, summary)
    return summary


def stage_warnings(
    stage: Stage, summary: StageSummary, manifests: list[ShardManifest]
) -> list[str]:
    """What looks wrong in a finished stage without failing it: nothing kept, an empty split.
    A first stage (the source) with no input at all is an error: nothing downstream can run."""
    if summary.n_in == 0 and stage.ctx.upstream is None:
        raise NearidError(
            f"stage {stage.name!r}: the source yielded no inputs; check its root, dataset or "
            "filters in the pipeline's 'source' section"
        )
    warnings = []
    if summary.n_in == 0:
        warnings.append(
            f"stage {stage.name!r} received no inputs ({stage.ctx.upstream!r} kept none)"
        )
    elif summary.n_kept == 0:
        warnings.append(f"stage {stage.name!r} kept none of its {summary.n_in} inputs")
    declared = stage.declared_splits()
    if declared and summary.n_kept:
        filled = {row.split for m in manifests for row in m.rows if row.status == "kept"}
        warnings += [
            f"split {name!r} of stage {stage.name!r} is empty" for name in sorted(declared - filled)
        ]
    return warnings


def _shared_artifact(stage: Stage, stage_dir: Location, fingerprint: str) -> str | None:
    """The sha256 of the stage's shared artifact: the stored one if it was computed for this
    fingerprint (a resumed build), else computed now; None for a stage that shares nothing."""
    stored = reusable_shared(stage_dir, fingerprint)
    if stored is not None:
        return stored
    shared = stage.prepare_shared()
    if shared is None:
        storage.delete(stage_dir / SHARED_NAME)
        return None
    return write_shared(stage_dir, fingerprint, shared)


def _committed(stage_dir: Location, task: StageTask, unit: WorkUnit) -> ShardManifest | None:
    path = manifest_path(stage_dir, unit.name)
    try:
        manifest = read_manifest(path)
    except (MalformedRecord, FileNotFoundError):
        return None
    tar = tar_path(stage_dir, unit.name)
    if manifest.fingerprint != task.unit_fingerprint(unit):
        return None
    if storage.size(tar) != manifest.bytes or file_sha256(tar) != manifest.sha256:
        log.info("rebuilding %s: it differs from its manifest", tar)
        return None
    return manifest


def _remove_stale(stage_dir: Location, planned: set[str]) -> None:
    """Delete shards of units no longer planned (for example after n_identities shrank)."""
    stale = []
    found = storage.list_files(stage_dir, "*.tar") + storage.list_files(
        stage_dir, f"*{MANIFEST_SUFFIX}"
    )
    for path in found:
        unit = storage.relative(path, stage_dir).removesuffix(MANIFEST_SUFFIX).removesuffix(".tar")
        if unit not in planned:
            stale.append(unit)
            storage.delete(path)
    if stale:
        log.info(
            "removed %d stale shards from %s (units no longer planned)", len(set(stale)), stage_dir
        )
