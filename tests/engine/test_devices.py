"""One owner for the device: the executor gives each worker its device, the stage is built in
the worker for it, its manifests record it, nothing else chooses one, and where a unit runs never
changes what it produces."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import fields
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from nearid_data.build import build
from nearid_data.config import PipelineConfig, build_pipeline_stage
from nearid_data.engine import local
from nearid_data.engine.executor import (
    Executor,
    ExecutorConfig,
    StageTask,
    execute_unit,
)
from nearid_data.engine.manifest import ShardManifest, read_manifest
from nearid_data.engine.stage import Stage, WorkUnit
from nearid_data.executors import EXECUTORS
from tests.build_helpers import shard_bytes
from tests.conftest import tiny_pipeline

STAGES = ("ingest", "segment", "distractors")


def noting_device(marks: str, pipeline: dict[str, Any], *args: Any) -> Stage:
    """The pipeline's stage, which notes for each unit the device it was built for."""
    stage = build_pipeline_stage(pipeline, *args)
    run = stage.run

    def noting_run(unit: WorkUnit) -> Any:
        (Path(marks) / f"{stage.name}.{unit.name.replace('/', '.')}").write_text(stage.ctx.device)
        return run(unit)

    stage.run = noting_run  # type: ignore[method-assign]
    return stage


def note_devices(monkeypatch: pytest.MonkeyPatch, marks: Path) -> None:
    """Build every stage in the workers with ``noting_device``."""
    marks.mkdir()
    monkeypatch.setattr(
        PipelineConfig,
        "stage_factory",
        lambda self: partial(noting_device, str(marks), self.model_dump(mode="json")),
    )


def units_ran_on(out: Path, marks: Path) -> dict[str, tuple[str, str]]:
    """stage.unit -> (the device its stage was built for in the worker, the device its manifest
    records), for every unit of ``STAGES``."""
    found = {}
    for name in STAGES:
        for path in (out / name).rglob("*.manifest.json"):
            manifest = read_manifest(path)
            unit = f"{name}.{manifest.unit.replace('/', '.')}"
            found[unit] = ((marks / unit).read_text(), manifest.device)
    assert {u.split(".")[0] for u in found} == set(STAGES)
    return found


@pytest.fixture(scope="module")
def cpu_build(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("cpu")
    build(tiny_pipeline(), out=out, stage=STAGES[-1])
    return shard_bytes(out)


@pytest.mark.parametrize("workers", [1, 2])
def test_each_unit_runs_on_the_device_its_local_worker_was_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cpu_build: dict[str, bytes], workers: int
) -> None:
    # Two GPUs as the executor sees them; the tiny pipeline's backends need none.
    monkeypatch.setattr(local, "_cuda_device_count", lambda: 2)
    marks, out = tmp_path / "marks", tmp_path / "out"
    note_devices(monkeypatch, marks)
    summaries = build(tiny_pipeline(), out=out, stage=STAGES[-1], workers=workers, device="cuda")
    ran_on = units_ran_on(out, marks)
    assert all(built == recorded for built, recorded in ran_on.values())
    by_stage = {n: {d for u, (_, d) in ran_on.items() if u.startswith(f"{n}.")} for n in STAGES}
    gpus = {"cuda:0"} if workers == 1 else {"cuda:0", "cuda:1"}
    assert by_stage["ingest"] == {"cpu"}  # takes no GPU, so is given none
    assert by_stage["segment"] <= gpus and by_stage["distractors"] <= gpus
    if workers == 1:
        assert by_stage["segment"] == {"cuda:0"}
    for summary in summaries:
        assert summary.device == "cuda"  # what the build asked for
        assert summary.devices == sorted(by_stage[summary.stage])  # what its units ran on
    assert shard_bytes(out) == cpu_build


class FakeExecutor(Executor):
    """Runs units in this process on a device no one else would name."""

    def map(self, task: StageTask, units: Sequence[WorkUnit]) -> Iterator[ShardManifest]:
        for unit in units:
            yield execute_unit(task, unit, device="fake:7")


def test_nothing_but_the_executor_chooses_a_device(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cpu_build: dict[str, bytes]
) -> None:
    assert "device" not in {f.name for f in fields(StageTask)}
    monkeypatch.setattr(EXECUTORS, "load", lambda name: FakeExecutor)
    marks, out = tmp_path / "marks", tmp_path / "out"
    note_devices(monkeypatch, marks)
    summaries = build(tiny_pipeline(), out=out, stage=STAGES[-1])
    assert set(units_ran_on(out, marks).values()) == {("fake:7", "fake:7")}
    assert {(s.device, *s.devices) for s in summaries} == {("cpu", "fake:7")}
    assert FakeExecutor(ExecutorConfig(), device="cuda").device == "cuda"
    assert shard_bytes(out) == cpu_build
