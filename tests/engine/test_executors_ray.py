"""The Ray executor on a local Ray instance (``ray.init(num_cpus=2, num_gpus=2)``, one per
module): the same shard bytes as the local executor with any number of actors, the device each
actor is given, resume across executors, retries after a killed actor or a failing unit, and a
resume after the driver itself is killed."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from nearid_data.build import build
from nearid_data.config import PipelineConfig, build_pipeline_stage
from nearid_data.engine.executor import StageTask, UnitFailed
from nearid_data.engine.manifest import manifest_path, read_summary
from nearid_data.engine.ray_executor import RayExecutor, RayExecutorConfig
from nearid_data.engine.runner import stage_fingerprint
from nearid_data.engine.stage import Stage, WorkUnit
from nearid_data.errors import NearidError
from tests.build_helpers import ROOT, shard_bytes
from tests.conftest import tiny_pipeline, write_pipeline
from tests.engine.test_devices import STAGES, note_devices, units_ran_on

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module", autouse=True)
def ray_instance() -> Iterator[None]:
    # Workers import the stage factories of this module, so they need the repository on the path.
    # The two GPUs are Ray's to hand out only: the tiny pipeline's backends use none.
    ray.init(
        num_cpus=2,
        num_gpus=2,
        log_to_driver=False,
        include_dashboard=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}},
    )
    yield
    ray.shutdown()


def _on(executor: dict[str, Any], **overrides: Any) -> PipelineConfig:
    raw = tiny_pipeline(**overrides).model_dump(mode="json")
    return PipelineConfig.from_dict({**raw, "executor": executor})


@pytest.fixture(scope="module")
def local_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("local")
    build(tiny_pipeline(), out=out)
    return out


@pytest.mark.parametrize("actors", [1, 2])
def test_ray_builds_the_same_bytes_as_local(local_build: Path, tmp_path: Path, actors: int) -> None:
    summaries = build(_on({"name": "ray"}), out=tmp_path, workers=actors)
    assert all(s.units_run == len(s.shards) for s in summaries)
    here = f"cpu on {ray.util.get_node_ip_address()}"
    assert all(s.devices == [here] for s in summaries)  # what the units ran on
    assert shard_bytes(tmp_path) == shard_bytes(local_build)


def test_stages_that_need_the_same_resources_share_actors(
    local_build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every stage of the tiny pipeline takes one CPU: two actors start once, not once per
    stage; a stage given other resources gets actors of its own."""
    started: list[tuple[str, float]] = []
    new_actor = RayExecutor._new_actor

    def counting(self: RayExecutor, task: StageTask) -> Any:
        started.append((task.stage, task.resources.num_cpus))
        return new_actor(self, task)

    monkeypatch.setattr(RayExecutor, "_new_actor", counting)
    summaries = build(_on({"name": "ray"}), out=tmp_path / "same", workers=2)
    assert len(summaries) > 2 and started == [(summaries[0].stage, 1)] * 2
    assert shard_bytes(tmp_path / "same") == shard_bytes(local_build)

    started.clear()
    raw = _on({"name": "ray"}).model_dump(mode="json")
    raw["stages"]["splits"]["resources"] = {"num_cpus": 0.5}
    build(PipelineConfig.from_dict(raw), out=tmp_path / "other", workers=2)
    first = summaries[0].stage
    assert started == [(first, 1)] * 2 + [("splits", 0.5)] * 2 + [("export", 1)] * 2


def test_each_actor_is_given_its_device(
    local_build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marks, out = tmp_path / "marks", tmp_path / "out"
    note_devices(monkeypatch, marks)
    summaries = build(_on({"name": "ray"}), out=out, stage=STAGES[-1], workers=2, device="cuda")
    here = ray.util.get_node_ip_address()
    for unit, (built, recorded) in units_ran_on(out, marks).items():
        if unit.startswith("ingest."):  # takes no GPU: its actor holds none and is given cpu
            assert (built, recorded) == ("cpu", f"cpu on {here}")
        else:  # holds one GPU, which it sees as cuda; the manifest names which
            assert built == "cuda" and recorded in {f"cuda:0 on {here}", f"cuda:1 on {here}"}
    assert all(s.device == "cuda" for s in summaries)
    wanted = {k: v for k, v in shard_bytes(local_build).items() if k.split("/")[0] in STAGES}
    assert shard_bytes(out) == wanted


def test_a_build_started_on_one_executor_resumes_on_the_other(
    local_build: Path, tmp_path: Path
) -> None:
    # Started locally, stopped after part of segment (its last manifests never written) ...
    build(tiny_pipeline(), out=tmp_path, stage="segment")
    lost = sorted((tmp_path / "segment").glob("*.manifest.json"))[1:]
    for manifest in lost:
        manifest.unlink()
    (tmp_path / "segment" / "_summary.json").unlink()
    # ... resumed on Ray, which runs only what is missing, then locally again: nothing to do.
    summaries = {s.stage: s for s in build(_on({"name": "ray"}), out=tmp_path, workers=2)}
    assert summaries["ingest"].units_run == 0
    assert summaries["segment"].units_run == len(lost) > 0
    assert all(s.units_run == 0 for s in build(tiny_pipeline(), out=tmp_path))
    assert shard_bytes(tmp_path) == shard_bytes(local_build)


def _stall_first_attempt(marks: str, *args: Any) -> Stage:
    """The pipeline's stage, except that a unit's first attempt reports its actor and stalls."""
    stage = build_pipeline_stage(*args)
    run = stage.run

    def stalling_run(unit: WorkUnit) -> Any:
        mark = Path(marks) / unit.name
        if not mark.exists():
            mark.write_text(ray.get_runtime_context().get_actor_id())
            time.sleep(120)
        return run(unit)

    stage.run = stalling_run  # type: ignore[method-assign]
    return stage


def test_a_unit_whose_actor_is_killed_runs_again_on_another(
    local_build: Path, tmp_path: Path
) -> None:
    pipeline = tiny_pipeline()
    out, marks = tmp_path / "out", tmp_path / "marks"
    marks.mkdir()
    stage = pipeline.build_stage("ingest", out, None)
    units = stage.plan()
    task = StageTask(
        stage="ingest",
        factory=partial(_stall_first_attempt, str(marks), pipeline.model_dump(mode="json")),
        build_dir=str(out),
        upstream=None,
        fingerprint=stage_fingerprint(stage),
    )
    executor = RayExecutor(RayExecutorConfig(retries=1), workers=1)
    killed: list[str] = []

    def kill_the_stalled_actor() -> None:
        first = marks / units[0].name
        while not first.exists() or not first.read_text():
            time.sleep(0.05)
        (actor,) = executor._actors
        assert actor._actor_id.hex() == first.read_text()
        killed.append(first.read_text())
        ray.kill(actor)

    (out / "ingest").mkdir(parents=True)
    killer = threading.Thread(target=kill_the_stalled_actor)
    killer.start()
    for unit in units[1:]:
        (marks / unit.name).write_text("")  # only the first unit stalls
    started = time.perf_counter()
    # One actor: the first unit stalls, its actor is killed, and it runs again on a new actor.
    manifests = list(executor.map(task, units))
    killer.join()
    assert killed and time.perf_counter() - started < 60
    assert sorted(m.unit for m in manifests) == sorted(u.name for u in units)
    local = shard_bytes(local_build)
    for unit in units:
        assert manifest_path(out / "ingest", unit.name).exists()
        tar = f"ingest/{unit.name}.tar"
        assert (out / tar).read_bytes() == local[tar]


def test_a_unit_failing_every_time_stops_the_build_naming_it(tmp_path: Path) -> None:
    build(tiny_pipeline(), out=tmp_path, stage="ingest")
    shard = sorted((tmp_path / "ingest").glob("*.tar"))[0]
    data = bytearray(shard.read_bytes())
    data[700] ^= 0x01
    shard.write_bytes(bytes(data))
    pipeline = _on({"name": "ray", "retries": 1})
    with pytest.raises(UnitFailed) as error:
        build(pipeline, out=tmp_path, stage="segment", only=True, workers=2)
    message = str(error.value)
    assert message.startswith(f"stage 'segment', unit '{shard.stem}', input '{shard.stem}'")
    assert "sha256 differs" in message and "failed all 2 attempts" in message
    assert read_summary(tmp_path / "segment") is None
    assert os.path.exists(tmp_path / "ingest" / "_summary.json")


def test_actors_never_outnumber_what_the_cluster_holds(tmp_path: Path) -> None:
    task = StageTask("ingest", tiny_pipeline().stage_factory(), str(tmp_path), None, "f")
    assert RayExecutor(workers=8)._fits(task) == 2  # the module's instance has 2 CPUs, 1 each
    stages = {"ingest": {"shard_size": 8, "resources": {"num_cpus": 3}}}
    with pytest.raises(
        NearidError,
        match=r"one actor needs \{'CPU': 3\.0\} but the Ray cluster has \{'CPU': 2\.0\}",
    ):
        build(_on({"name": "ray"}, stages=stages), out=tmp_path, workers=2)
    with pytest.raises(NearidError, match="use --device cuda"):
        RayExecutor(device="cuda:1")


def _hold(marks: str, victim: str, pipeline: dict[str, Any], *args: Any) -> Stage:
    """The pipeline's stage, except that segment's unit ``victim`` holds its actor without
    writing anything until the test is done with it (a file ``release``), then ends the actor."""
    stage = build_pipeline_stage(pipeline, *args)
    run = stage.run

    def holding_run(unit: WorkUnit) -> Any:
        if stage.name == "segment" and unit.name == victim:
            (Path(marks) / "held").write_text("")
            deadline = time.monotonic() + 60
            while not (Path(marks) / "release").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            os._exit(1)  # cut off: the unit never commits
        return run(unit)

    stage.run = holding_run  # type: ignore[method-assign]
    return stage


# A CLI build whose workers build the stages with ``_hold``.
_DRIVER = """
import sys
from functools import partial
from nearid_data.cli import main
from nearid_data.config import PipelineConfig
from tests.engine.test_executors_ray import _hold

PipelineConfig.stage_factory = lambda self: partial(
    _hold, sys.argv[1], "shard-00000", self.model_dump(mode="json")
)
sys.exit(main(sys.argv[2:]))
"""


def test_a_driver_killed_mid_stage_resumes_on_ray_and_locally(
    local_build: Path, tmp_path: Path
) -> None:
    pipeline, out, marks = write_pipeline(tmp_path / "p.yaml"), tmp_path / "out", tmp_path / "marks"
    marks.mkdir()
    args = ["build", "--pipeline", str(pipeline), "--out", str(out), "--stage", "segment"]
    # The driver starts a Ray instance of its own (not the module's), whose workers import this
    # module; a session of its own, so whatever it started can be ended with it.
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PYTHONPATH"] = str(ROOT)
    driver = subprocess.Popen(
        [sys.executable, "-c", _DRIVER, str(marks), *args, "--executor", "ray", "--workers", "2"],
        cwd=ROOT, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    segment = out / "segment"
    try:
        # Killed once the held unit runs and the stage's other units are committed.
        deadline = time.monotonic() + 60
        while not ((marks / "held").exists() and len(list(segment.glob("*.manifest.json"))) == 2):
            assert driver.poll() is None and time.monotonic() < deadline, (
                "the build never got there"
            )
            time.sleep(0.05)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
    finally:
        (marks / "release").write_text("")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)
    assert read_summary(segment) is None and not manifest_path(segment, "shard-00000").exists()
    shutil.copytree(out, tmp_path / "copy")
    wanted = {k: v for k, v in shard_bytes(local_build).items() if k.split("/")[0] in STAGES[:2]}

    # Resumed on Ray (a fresh instance), then the copy locally: each runs the held unit alone.
    subprocess.run([sys.executable, "-m", "nearid_data", *args, "--executor", "ray"],
                   cwd=ROOT, env=env, check=True, capture_output=True)  # fmt: skip
    on_ray = read_summary(segment)
    assert on_ray is not None and (on_ray.units_run, on_ray.units_skipped) == (1, 2)
    assert shard_bytes(out) == wanted
    _, locally = build(tiny_pipeline(), out=tmp_path / "copy", stage="segment")
    assert (locally.units_run, locally.units_skipped) == (1, 2)
    assert shard_bytes(tmp_path / "copy") == wanted
