"""Executors run work units somewhere; every executor runs the same ``execute_unit``.

``execute_unit`` rebuilds the stage from a picklable ``StageTask`` (once per worker process, so
models load once), runs one unit and commits it: tar first (atomic), then its manifest, the
completion marker. An executor only decides where that function runs: in this process, in a
local process pool, or (one more file) on a cluster.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from nearid_data.engine.manifest import (
    SampleRow,
    ShardManifest,
    manifest_path,
    tar_path,
    write_model,
)
from nearid_data.engine.prefetch import prefetch
from nearid_data.engine.stage import Kept, Stage, WorkUnit
from nearid_data.engine.storage import location, relative
from nearid_data.engine.tario import ShardError, ShardWriter
from nearid_data.sample import KEY_FIELD, meta, source_locator
from nearid_data.seeding import derive_seed


@dataclass(frozen=True)
class StageTask:
    """Everything a worker needs to rebuild a stage: plain data, picklable."""

    stage: str
    pipeline: dict[str, Any]
    build_dir: str
    upstream: str | None
    device: str
    fingerprint: str

    def unit_fingerprint(self, unit: WorkUnit) -> str:
        return f"{derive_seed(self.fingerprint, sorted(unit.payload.items())):016x}"


class UnitFailed(Exception):
    """A unit failed: stage, unit, its input and the cause as text. Plain strings, so it pickles
    and a worker process's failure reads exactly like one in this process."""

    def __init__(self, stage: str, unit: str, cause: str, input: str | None = None) -> None:
        of_input = f", input {input!r}" if input is not None else ""
        super().__init__(f"stage {stage!r}, unit {unit!r}{of_input}: {cause}")
        self.stage, self.unit, self.cause, self.input = stage, unit, cause, input

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.stage, self.unit, self.cause, self.input))


_WORKER_STAGES: dict[tuple[str, str, str], Stage] = {}


def worker_stage(task: StageTask) -> Stage:
    """The stage for ``task`` in this process, built and set up once."""
    # The build directory is part of the key: the same config built elsewhere reads other inputs.
    cache_key = (task.fingerprint, task.build_dir, task.device)
    stage = _WORKER_STAGES.get(cache_key)
    if stage is None:
        from nearid_data.config import PipelineConfig

        pipeline = PipelineConfig.from_dict(task.pipeline)
        stage = pipeline.build_stage(
            task.stage, location(task.build_dir), task.upstream, task.device
        )
        stage.setup()
        _WORKER_STAGES.clear()  # one stage's models at a time per worker
        _WORKER_STAGES[cache_key] = stage
    return stage


def execute_unit(task: StageTask, unit: WorkUnit) -> ShardManifest:
    try:
        return _execute(task, unit)
    except Exception as exc:
        source = unit.payload.get("input")
        source = source if isinstance(source, str) else None
        raise UnitFailed(task.stage, unit.name, _cause(task, unit, exc), source) from exc


def _cause(task: StageTask, unit: WorkUnit, exc: Exception) -> str:
    """What made the unit fail: a corrupt input shard if there is one, else the exception."""
    try:
        worker_stage(task).check_input(unit)
    except ShardError as corrupt:
        return f"{corrupt} (it made the stage fail with {type(exc).__name__}: {exc})"
    except Exception:  # the stage cannot even be rebuilt: the original error says why
        pass
    return f"{type(exc).__name__}: {exc}"


def _execute(task: StageTask, unit: WorkUnit) -> ShardManifest:
    stage = worker_stage(task)
    stage_dir = location(task.build_dir) / task.stage
    started = time.perf_counter()
    rows: list[SampleRow] = []
    tar = tar_path(stage_dir, unit.name)
    with ShardWriter(tar) as writer:
        # The stage runs a little ahead on its own thread, so writing and hashing overlap its work.
        for outcome in prefetch(stage.run(unit), depth=64):
            if isinstance(outcome, Kept):
                hashes = writer.write(outcome.sample)
                info = meta(outcome.sample)
                key = outcome.sample[KEY_FIELD]
                rows.append(
                    SampleRow(
                        key=key,
                        identity=info["identity"],
                        category=info["category"],
                        view=info["view"],
                        caption=info.get("caption", ""),
                        status="kept",
                        locator=source_locator(info.get("source", {})),
                        split=info.get("split"),
                        qa=outcome.qa,
                        fields=hashes,
                        bytes=writer.result.sample_bytes[key],
                    )
                )
            else:
                rows.append(SampleRow(status="rejected", **_rejected_fields(outcome)))
    manifest = ShardManifest(
        stage=task.stage,
        unit=unit.name,
        fingerprint=task.unit_fingerprint(unit),
        tar=relative(tar, stage_dir),
        bytes=writer.result.bytes,
        sha256=writer.result.sha256,
        n_in=len(rows),
        n_kept=sum(row.status == "kept" for row in rows),
        n_rejected=sum(row.status == "rejected" for row in rows),
        wall_s=round(time.perf_counter() - started, 4),
        rows=rows,
    )
    write_model(manifest_path(stage_dir, unit.name), manifest)
    return manifest


def _rejected_fields(outcome: Any) -> dict[str, Any]:
    return {
        "key": outcome.key,
        "identity": outcome.identity,
        "category": outcome.category,
        "view": outcome.view,
        "reason": outcome.reason,
        "detail": outcome.detail or None,
        "locator": outcome.locator,
        "qa": outcome.qa,
    }


class Executor(ABC):
    """Runs ``execute_unit(task, unit)`` for each unit; yields manifests in any order."""

    @abstractmethod
    def map(self, task: StageTask, units: Sequence[WorkUnit]) -> Iterator[ShardManifest]: ...

    def close(self) -> None:
        """Release workers; an executor without any has nothing to do."""
        return None
