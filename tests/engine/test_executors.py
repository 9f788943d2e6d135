"""Executors without Ray: the picklable stage factory, resources per stage, the executor section
of a pipeline, the local executor's one worker per GPU and the stages' shared artifact."""

from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import replace
from pathlib import Path

import pytest

from nearid_data.build import build
from nearid_data.config import PipelineConfig
from nearid_data.engine import local
from nearid_data.engine.executor import StageTask, worker_stage
from nearid_data.engine.local import LocalExecutor
from nearid_data.engine.manifest import read_manifest, read_summary
from nearid_data.engine.runner import stage_fingerprint
from nearid_data.engine.shared import SHARED_NAME, write_shared
from nearid_data.engine.stage import Resources
from nearid_data.errors import NearidError
from nearid_data.galleries.stage import GalleriesStage
from tests.build_helpers import cli, shard_bytes
from tests.conftest import TINY_DEMO, tiny_pipeline, write_pipeline


def _task(
    pipeline: PipelineConfig, name: str, out: Path, device: str = "cpu", fingerprint: str = ""
) -> StageTask:
    stage = pipeline.build_stage(name, out, pipeline.upstream_of(name), device)
    return StageTask(
        stage=name,
        factory=pipeline.stage_factory(),
        build_dir=str(out),
        upstream=stage.ctx.upstream,
        fingerprint=fingerprint or stage_fingerprint(stage),
        resources=stage.resources(),
    )


def test_a_worker_rebuilds_the_stage_from_a_pickled_task(tmp_path: Path) -> None:
    pipeline = tiny_pipeline()
    build(pipeline, out=tmp_path, stage="ingest")
    task = pickle.loads(pickle.dumps(_task(pipeline, "segment", tmp_path)))
    stage = worker_stage(task, "cpu")
    assert stage.name == "segment" and stage.ctx.upstream == "ingest"
    assert stage.config == pipeline.stage_config("segment")
    assert stage_fingerprint(stage) == task.fingerprint
    assert worker_stage(task, "cpu") is stage  # built and set up once per worker


def test_manifests_record_the_device_each_unit_ran_on(tmp_path: Path) -> None:
    (summary,) = build(tiny_pipeline(), out=tmp_path, stage="ingest")
    assert summary.device == "cpu" and summary.devices == ["cpu"]
    manifests = [read_manifest(p) for p in (tmp_path / "ingest").glob("*.manifest.json")]
    assert manifests and {m.device for m in manifests} == {"cpu"}
    (rerun,) = build(tiny_pipeline(), out=tmp_path, stage="ingest")
    assert rerun.units_run == 0 and rerun.devices == []  # nothing ran this time


def test_stages_declare_resources_and_the_pipeline_overrides_them(tmp_path: Path) -> None:
    pipeline = tiny_pipeline()
    cuda = {n: pipeline.build_stage(n, tmp_path, pipeline.upstream_of(n), "cuda") for n in
            ("ingest", "segment", "distractors", "export")}  # fmt: skip
    assert cuda["ingest"].resources() == cuda["export"].resources() == Resources()
    assert cuda["segment"].resources().num_gpus == cuda["distractors"].resources().num_gpus == 1
    on_cpu = pipeline.build_stage("distractors", tmp_path, "segment", "cpu")
    assert on_cpu.resources().num_gpus == 0

    stages = {**TINY_DEMO["stages"]}
    stages["distractors"] = {**stages["distractors"], "resources": {"num_gpus": 0.5}}
    stages["export"] = {**stages["export"], "resources": {"num_cpus": 4, "memory": 2**30}}
    overridden = tiny_pipeline(stages=stages)
    distractors = overridden.build_stage("distractors", tmp_path, "segment", "cuda")
    assert distractors.resources() == Resources(num_cpus=1, num_gpus=0.5)
    export = overridden.build_stage("export", tmp_path, "splits", "cpu")
    assert export.resources() == Resources(num_cpus=4, num_gpus=0, memory=2**30)


def test_resources_do_not_change_what_a_stage_produces(tmp_path: Path) -> None:
    build(tiny_pipeline(), out=tmp_path, stage="ingest")
    stages = {**TINY_DEMO["stages"], "segment": {"dilate_px": 5, "resources": {"num_cpus": 2}}}
    plain = tiny_pipeline().build_stage("segment", tmp_path, "ingest")
    placed = tiny_pipeline(stages=stages).build_stage("segment", tmp_path, "ingest")
    assert stage_fingerprint(plain) == stage_fingerprint(placed)


def test_bad_resources_name_the_key() -> None:
    stages = {**TINY_DEMO["stages"], "segment": {"resources": {"num_gpu": 1}}}
    with pytest.raises(NearidError, match=r"stages\.segment\.resources\.num_gpu"):
        tiny_pipeline(stages=stages)


def test_the_local_executor_gives_each_worker_its_device(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local, "_cuda_device_count", lambda: 2)
    stages = {**TINY_DEMO["stages"], "distractors": {**TINY_DEMO["stages"]["distractors"],
              "resources": {"num_gpus": 0.5}}}  # fmt: skip
    pipeline = tiny_pipeline(stages=stages)

    def devices(name: str, device: str, workers: int = 4) -> list[str]:
        task = _task(pipeline, name, tmp_path, device, fingerprint="unbuilt")
        return LocalExecutor(workers=workers, device=device).worker_devices(task)

    assert devices("segment", "cuda") == ["cuda:0", "cuda:1"]  # one worker per GPU
    assert devices("segment", "cuda", workers=1) == ["cuda:0"]
    assert devices("distractors", "cuda") == ["cuda:0", "cuda:0", "cuda:1", "cuda:1"]
    assert devices("distractors", "cuda", workers=8) == devices("distractors", "cuda")
    assert devices("segment", "cuda:1") == ["cuda:1"]
    assert devices("ingest", "cuda") == ["cpu"] * 4  # takes no GPU, so gets none
    assert devices("segment", "cpu") == ["cpu"] * 4


def test_the_executor_section_is_validated() -> None:
    with pytest.raises(NearidError, match=r"unknown executor 'rey'.*did you mean 'ray'"):
        tiny_pipeline(executor={"name": "rey"})
    with pytest.raises(NearidError, match=r"executor\.retries"):
        tiny_pipeline(executor={"name": "ray", "retries": -1})
    with pytest.raises(NearidError, match=r"executor\.address"):
        tiny_pipeline(executor={"name": "local", "address": "auto"})
    assert tiny_pipeline(executor={"name": "ray", "address": "auto"}).executor_config()


def test_ray_address_needs_the_ray_executor(tmp_path: Path) -> None:
    pipeline = write_pipeline(tmp_path / "p.yaml")
    args = ("build", "--pipeline", str(pipeline), "--out", str(tmp_path / "out"))
    result = cli(*args, "--ray-address", "auto", check=False)
    assert result.returncode != 0 and "add --executor ray" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


# -- the shared artifact ------------------------------------------------------------------------

GALLERIES = {"references_per_subject": 4, "gallery_per_subject": 5, "subjects_per_group": 1}


def _galleries_pipeline() -> PipelineConfig:
    source = {"name": "demo", "n_identities": 8, "views": 12, "image_size": 64}
    stages = {"ingest": {"shard_size": 16}, "galleries": GALLERIES}
    return PipelineConfig.from_dict({"name": "g", "seed": 3, "source": source, "stages": stages})


def test_galleries_plans_once_and_its_workers_read_the_artifact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decided: list[int] = []
    original = GalleriesStage._decide
    monkeypatch.setattr(GalleriesStage, "_decide", lambda s: decided.append(1) or original(s))
    build(_galleries_pipeline(), out=tmp_path)
    stage_dir = tmp_path / "galleries"
    summary = read_summary(stage_dir)
    assert summary is not None and len(summary.shards) > 1 and decided == [1]
    artifact = stage_dir / SHARED_NAME
    assert summary.shared == hashlib.sha256(artifact.read_bytes()).hexdigest()
    before = shard_bytes(tmp_path)

    # Resumed: the stored plan is reused, not computed again, and gives the same shards.
    for manifest in sorted(stage_dir.glob("*.manifest.json"))[1:]:
        manifest.unlink()
    assert build(_galleries_pipeline(), out=tmp_path, stage="galleries")[-1].units_run > 0
    assert decided == [1] and shard_bytes(tmp_path) == before

    # An artifact whose data no longer has its recorded sha256 is computed again.
    stored = json.loads(artifact.read_text())
    stored["shared"] = {key: value for key, value in list(stored["shared"].items())[1:]}
    artifact.write_text(json.dumps(stored))
    next(stage_dir.glob("*.manifest.json")).unlink()
    build(_galleries_pipeline(), out=tmp_path, stage="galleries")
    assert decided == [1, 1] and shard_bytes(tmp_path) == before


def test_a_worker_refuses_an_artifact_other_than_the_recorded_one(tmp_path: Path) -> None:
    pipeline = _galleries_pipeline()
    build(pipeline, out=tmp_path, stage="ingest")
    stage_dir = tmp_path / "galleries"
    stage_dir.mkdir()
    stage = pipeline.build_stage("galleries", tmp_path, "ingest")
    fingerprint = stage_fingerprint(stage)
    recorded = write_shared(stage_dir, fingerprint, stage.prepare_shared())
    write_shared(stage_dir, fingerprint, {})  # replaced after the runner recorded it
    task = replace(_task(pipeline, "galleries", tmp_path), shared_sha256=recorded)
    with pytest.raises(NearidError, match="changed since the stage started"):
        worker_stage(task, "cpu")
