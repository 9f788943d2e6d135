"""Fault injection: corrupt bytes, concurrent builds, worker failures, disk full, kills, empty
outputs and names that try to leave the build. Each test fails on an engine without the fix."""

from __future__ import annotations

import copy
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from nearid_data.build import build
from nearid_data.config import PipelineConfig, build_pipeline_stage
from nearid_data.engine.atomic import TMP_MARK, sweep_temporaries, temp_path_for
from nearid_data.engine.catalog import Catalog
from nearid_data.engine.executor import UnitFailed
from nearid_data.engine.lock import BuildLocked, build_lock
from nearid_data.engine.manifest import (
    SampleRow,
    ShardManifest,
    manifest_path,
    read_summary,
    summarize,
    tar_path,
    write_model,
)
from nearid_data.engine.stage import Stage, WorkUnit
from nearid_data.engine.tario import ShardError, ShardWriter
from nearid_data.errors import NearidError
from nearid_data.verify import verify
from tests.build_helpers import ROOT, cli, shard_bytes
from tests.conftest import TINY_DEMO, tiny_pipeline, write_pipeline


def _pipeline(n_identities: int = 8, **stages: Any) -> dict[str, Any]:
    raw = copy.deepcopy(TINY_DEMO)
    raw["source"]["n_identities"] = n_identities
    raw["stages"].update(stages)
    return raw


def _flip_byte(path: Path, offset: int = 700) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


# -- corruption is caught where it enters (points 10, 11) ---------------------------------------


def test_corrupt_upstream_shard_fails_naming_it_and_is_rebuilt(tmp_path: Path) -> None:
    pipeline = tiny_pipeline()
    build(pipeline, out=tmp_path, stage="ingest")
    shard = tar_path(tmp_path / "ingest", "shard-00000")
    original = shard.read_bytes()
    _flip_byte(shard)
    with pytest.raises(UnitFailed, match=r"shard-00000\.tar: sha256 differs"):
        build(pipeline, out=tmp_path, stage="segment", only=True, force=True)
    assert not list((tmp_path / "segment").glob("*.tar"))  # nothing derived from it committed

    # Same size, so only a hash tells: building segment brings ingest up to date first, which
    # rebuilds the corrupt shard.
    ingest, _ = build(pipeline, out=tmp_path, stage="segment")
    assert ingest.units_run == 1
    assert shard.read_bytes() == original


def test_random_access_reads_check_the_shard_hash(tmp_path: Path) -> None:
    build(tiny_pipeline(), out=tmp_path, stage="ingest")
    catalog = Catalog(tmp_path / "ingest")
    row = catalog.rows[0]
    _flip_byte(tar_path(catalog.stage_dir, row.unit))
    with pytest.raises(ShardError, match="sha256 differs"):
        Catalog(tmp_path / "ingest").fetch(row)


def test_verify_reports_every_problem_with_its_file(tmp_path: Path) -> None:
    build(tiny_pipeline(), out=tmp_path, stage="ingest")
    build(tiny_pipeline(), out=tmp_path, stage="segment")
    (tmp_path / "segment" / "_summary.json").unlink()
    broken = tmp_path / "ingest" / "shard-00001.manifest.json"
    broken.write_text('{"stage": "ingest", "rows": 3}')
    report = verify(tmp_path)
    text = "\n".join(map(str, report.problems))
    assert "segment/_summary.json: missing" in text
    assert "shard-00001.manifest.json: malformed ShardManifest" in text
    assert "Traceback" not in text and report.stages == ["ingest", "segment"]


def test_verify_streams_shards_in_bounded_memory(tmp_path: Path) -> None:
    stage = tmp_path / "big"
    member = 4 * 2**20
    with ShardWriter(stage / "s.tar") as writer:
        for i in range(12):
            writer.write({"__key__": f"k{i}", "image.png": bytes([i]) * member, "json": {}})

    rows = [
        SampleRow(key=k, identity="i", category="c", view=0, status="kept", fields=f)
        for k, f in writer.result.field_sha256.items()
    ]
    manifest = ShardManifest(
        stage="big", unit="s", fingerprint="f", tar="s.tar", bytes=writer.result.bytes,
        sha256=writer.result.sha256, n_in=12, n_kept=12, n_rejected=0, wall_s=0, rows=rows,
    )  # fmt: skip
    write_model(manifest_path(stage, "s"), manifest)
    summary = summarize(
        [manifest], stage="big", fingerprint="f", upstream=None, upstream_fingerprint=None,
        config={}, seed=0, versions={}, wall_s=0, units_run=1, units_skipped=0,
    )  # fmt: skip
    write_model(stage / "_summary.json", summary)
    tracemalloc.start()
    report = verify(stage)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert report.problems == [] and report.samples == 12
    assert peak < 6 * member  # a few copies of one member; the shard (12 members) never whole


# -- isolation (points 6, 14) --------------------------------------------------------------------


@pytest.mark.parametrize("unit", ["../x", "a/../../x", "/abs", "..", "a//b"])
def test_a_unit_name_never_leaves_its_stage_folder(tmp_path: Path, unit: str) -> None:
    with pytest.raises(NearidError, match="unit name"):
        tar_path(tmp_path / "stage", unit)


def test_a_split_name_with_dots_writes_nothing_outside_the_build(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "build"
    raw = _pipeline(splits={"fractions": {"../../../x": 0.5, "train": 0.5}})
    with pytest.raises((NearidError, UnitFailed)):
        build(PipelineConfig.from_dict(raw), out=out)
    outside = [p for p in tmp_path.rglob("*") if p.is_file() and out not in p.parents]
    assert outside == []


def test_a_second_build_of_the_same_directory_is_refused_naming_the_holder(
    tmp_path: Path,
) -> None:
    with build_lock(tmp_path), pytest.raises(BuildLocked) as error:
        build(tiny_pipeline(), out=tmp_path, stage="ingest")
    assert f"pid {os.getpid()}" in str(error.value)
    assert socket.gethostname() in str(error.value)
    assert not (tmp_path / "ingest").exists()
    build(tiny_pipeline(), out=tmp_path, stage="ingest")  # released with its holder


def test_concurrent_cli_builds_one_refused_other_intact(tmp_path: Path) -> None:
    pipeline = write_pipeline(tmp_path / "p.yaml")
    out = tmp_path / "b"
    command = [sys.executable, "-m", "nearid_data", "build", "--pipeline", str(pipeline)]
    first = subprocess.Popen([*command, "--out", str(out)], cwd=ROOT, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (out / "ingest").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    second = cli("build", "--pipeline", str(pipeline), "--out", str(out), check=False)
    assert first.wait() == 0
    assert second.returncode == 2
    assert f"pid {first.pid}" in second.stderr
    assert verify(out).problems == []


def test_sweep_removes_only_temporaries_of_writers_that_are_gone(tmp_path: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    mine = temp_path_for(tmp_path / "a.tar")
    dead = Path(str(mine).replace(f"-{os.getpid()}-", f"-{gone.stdout.strip()}-"))
    foreign = tmp_path / ".a.tar.tmp-otherhost-1-abcd"
    for path in (mine, dead, foreign):
        path.write_bytes(b"partial")
    assert sweep_temporaries(tmp_path) == 1
    assert mine.exists() and foreign.exists() and not dead.exists()
    assert temp_path_for(tmp_path / "a.tar") != mine  # a random part, not only the pid


# -- workers (points 15, 16) --------------------------------------------------------------------


def test_a_unit_failure_survives_pickling_with_its_message() -> None:
    failure = UnitFailed("segment", "shard-00000", "ValueError: bad pixels", "shard-00000")
    restored = pickle.loads(pickle.dumps(failure))
    assert str(restored) == str(failure)
    assert (restored.stage, restored.unit, restored.input) == (
        "segment",
        "shard-00000",
        "shard-00000",
    )


@pytest.mark.slow
def test_worker_failures_read_like_in_process_ones(tmp_path: Path) -> None:
    pipeline = tiny_pipeline()
    build(pipeline, out=tmp_path, stage="ingest")
    for shard in (tmp_path / "ingest").glob("*.tar"):
        _flip_byte(shard)
    messages = []
    for workers in (1, 2):
        with pytest.raises(UnitFailed) as error:
            build(pipeline, out=tmp_path, stage="segment", only=True, workers=workers, force=True)
        messages.append(str(error.value))
    assert "terminated abruptly" not in messages[1]
    assert messages[1].startswith("stage 'segment', unit 'shard-")
    assert "sha256 differs" in messages[0] and "sha256 differs" in messages[1]


@pytest.fixture
def small_disk(tmp_path: Path) -> Any:
    """A tmpfs of a given size (needs root); skipped where it cannot be mounted."""
    mount = tmp_path / "disk"
    mount.mkdir()

    def resize(size: str) -> Path:
        options = f"size={size}" if not os.path.ismount(mount) else f"remount,size={size}"
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)],
                                capture_output=True, check=False)  # fmt: skip
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
        return mount

    yield resize
    if os.path.ismount(mount):
        subprocess.run(["umount", str(mount)], check=False)


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_disk_full_fails_clearly_and_resumes(tmp_path: Path, small_disk: Any, workers: int) -> None:
    pipeline = write_pipeline(tmp_path / "p.yaml")
    reference = tmp_path / "reference"
    cli("build", "--pipeline", str(pipeline), "--out", str(reference))
    out = small_disk("1200k") / "build"
    args = ("build", "--pipeline", str(pipeline), "--out", str(out), "--workers", str(workers))
    full = cli(*args, check=False)
    assert full.returncode == 1, full.stderr
    assert "No space left on device" in full.stderr
    assert "terminated abruptly" not in full.stderr and "Traceback" not in full.stderr
    assert not list(out.rglob("*.tmp-*"))
    small_disk("64m")
    cli(*args)
    assert shard_bytes(out) == shard_bytes(reference)


@pytest.mark.slow
def test_kill_at_random_points_with_two_workers_then_resume(tmp_path: Path) -> None:
    pipeline = write_pipeline(tmp_path / "p.yaml")
    reference = tmp_path / "reference"
    cli("build", "--pipeline", str(pipeline), "--out", str(reference))
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "nearid_data", "build", "--pipeline", str(pipeline),
               "--out", str(out), "--workers", "2"]  # fmt: skip
    for delay in (1.5, 3.0, 4.5, 6.0):
        # A new session, so the kill takes the worker processes with the coordinator.
        process = subprocess.Popen(command, cwd=ROOT, start_new_session=True,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(delay)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    cli(*command[3:])
    assert shard_bytes(out) == shard_bytes(reference)
    assert not list(out.rglob("*.tmp-*"))


def _killed_on(
    marks: str, victim: str, coordinator: int, pipeline: dict[str, Any], *args: Any
) -> Stage:
    """The pipeline's stage, except that unit ``victim`` of segment kills its own worker process
    (as the OS does when memory runs out) midway through its first attempt."""
    stage = build_pipeline_stage(pipeline, *args)
    run = stage.run

    def killing_run(unit: WorkUnit) -> Iterator[Any]:
        mark = Path(marks) / "killed"
        victim_here = stage.name == "segment" and unit.name == victim
        for count, outcome in enumerate(run(unit)):
            if victim_here and count == 2 and not mark.exists() and os.getpid() != coordinator:
                mark.write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)
            yield outcome

    stage.run = killing_run  # type: ignore[method-assign]
    return stage


def test_a_worker_killed_by_the_os_fails_its_unit_and_the_rerun_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference, out, marks = tmp_path / "reference", tmp_path / "out", tmp_path / "marks"
    build(tiny_pipeline(), out=reference, stage="segment")
    build(tiny_pipeline(), out=out, stage="ingest")
    marks.mkdir()
    monkeypatch.setattr(
        PipelineConfig,
        "stage_factory",
        lambda self: partial(
            _killed_on, str(marks), "shard-00001", os.getpid(), self.model_dump(mode="json")
        ),
    )
    with pytest.raises(UnitFailed) as error:
        build(tiny_pipeline(), out=out, stage="segment", workers=2)
    assert (marks / "killed").exists()
    assert str(error.value).startswith(
        "stage 'segment', unit 'shard-00001', input 'shard-00001': its worker process died "
        "(killed by SIGKILL: killed, or out of memory) while running it"
    )
    # Nothing half-written: no temporary, no shard or manifest of the killed unit, no summary;
    # what is there is committed whole.
    segment = out / "segment"
    assert not list(out.rglob(f"*{TMP_MARK}*")) and read_summary(segment) is None
    assert not tar_path(segment, "shard-00001").exists()
    assert not manifest_path(segment, "shard-00001").exists()
    committed = sorted(p.name for p in segment.glob("*.tar"))
    assert {
        p.name.removesuffix(".manifest.json") + ".tar" for p in segment.glob("*.manifest.json")
    } == set(committed)
    expected = shard_bytes(reference)
    assert all((segment / name).read_bytes() == expected[f"segment/{name}"] for name in committed)

    _, rerun = build(tiny_pipeline(), out=out, stage="segment", workers=2)  # no kill this time
    assert rerun.units_run == 3 - len(committed) and rerun.units_skipped == len(committed)
    assert shard_bytes(out) == expected


def test_a_worker_that_died_between_stages_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker killed while idle held no unit: the next stage starts a new one in its place
    rather than failing the unit it would have been handed."""
    import nearid_data.build as build_module
    from nearid_data.engine.local import LocalExecutor

    reference = tmp_path / "reference"
    build(tiny_pipeline(), out=reference, stage="segment")
    run_stage, killed = build_module.run_stage, []

    def killing_before_segment(stage: Stage, factory: Any, executor: Any, **kw: Any) -> Any:
        if stage.name == "segment":
            assert isinstance(executor, LocalExecutor) and len(executor._workers) == 2
            process = executor._workers[0].process
            os.kill(process.pid, signal.SIGKILL)
            process.join(timeout=10)
            killed.append(process.exitcode)
        return run_stage(stage, factory, executor, **kw)

    monkeypatch.setattr(build_module, "run_stage", killing_before_segment)
    build(tiny_pipeline(), out=tmp_path / "out", stage="segment", workers=2)
    assert killed == [-signal.SIGKILL]
    assert shard_bytes(tmp_path / "out") == shard_bytes(reference)


# -- nothing is a silent success (point 4) -------------------------------------------------------


def test_a_stage_keeping_nothing_warns_in_its_summary(tmp_path: Path) -> None:
    raw = _pipeline(4, splits={"fractions": {"train": 0.8, "val": 0.1, "test": 0.1}})
    summaries = {s.stage: s for s in build(PipelineConfig.from_dict(raw), out=tmp_path)}
    assert summaries["distractors"].warnings == ["stage 'distractors' kept none of its 12 inputs"]
    assert "received no inputs" in summaries["export"].warnings[0]
    summary = read_summary(tmp_path / "export")
    assert summary is not None and summary.warnings == summaries["export"].warnings


def test_an_empty_split_warns_and_strict_exits_3(tmp_path: Path) -> None:
    raw = _pipeline(6, splits={"fractions": {"train": 0.8, "val": 0.1, "test": 0.1}})
    pipeline = write_pipeline(tmp_path / "p.yaml", raw)
    args = ("build", "--pipeline", str(pipeline), "--out", str(tmp_path / "b"))
    result = cli(*args, "--strict", check=False)
    assert result.returncode == 3, result.stderr
    assert "warning: split 'test' of stage 'splits' is empty" in result.stderr
    assert cli(*args).returncode == 0  # without --strict a warning does not fail


def test_a_source_without_inputs_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "root" / "empty_identity").mkdir(parents=True)
    raw = _pipeline()
    raw["source"] = {"name": "imagefolder", "root": str(tmp_path / "root")}
    with pytest.raises(NearidError, match=r"no inputs|no identity"):
        build(PipelineConfig.from_dict(raw), out=tmp_path / "b")
