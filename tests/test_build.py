"""End-to-end builds of the tiny demo: outputs, determinism, resume, rejections, exit codes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nearid_data.build import build
from nearid_data.engine.manifest import read_summary
from nearid_data.engine.tario import read_samples
from tests.build_helpers import cli, shard_bytes
from tests.conftest import TINY_DEMO, tiny_pipeline, write_pipeline


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("build")
    build(tiny_pipeline(), out=out)
    return out


def _pixels(data: bytes) -> np.ndarray:
    """Decode as a consumer would (PIL), not with the toolkit's own decoder."""
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _export_samples(out: Path) -> list[dict]:
    return [s for tar in sorted((out / "export/data").rglob("*.tar")) for s in read_samples(tar)]


def test_every_input_is_accounted_for(built: Path) -> None:
    ingest = read_summary(built / "ingest")
    assert ingest is not None and ingest.n_in == 8 * 3
    previous = ingest
    for stage in ("segment", "distractors", "splits", "export"):
        summary = read_summary(built / stage)
        assert summary is not None
        assert summary.n_in == previous.n_kept, stage
        assert summary.n_kept + summary.n_rejected == summary.n_in
        assert sum(summary.rejected_by_reason.values()) == summary.n_rejected
        previous = summary


def test_distractors_equal_reference_outside_the_mask(built: Path) -> None:
    samples = _export_samples(built)
    assert samples
    for sample in samples:
        reference = _pixels(sample["image.png"])
        distractor = _pixels(sample["distractor_cut_paste.png"])
        outside = ~(np.asarray(Image.open(io.BytesIO(sample["inpaint_mask.png"]))) > 0)
        assert np.array_equal(reference[outside], distractor[outside])
        inside = ~outside
        assert np.abs(reference[inside].astype(int) - distractor[inside]).mean() > 5
        record = sample["json"]["distractors"]["cut_paste"]
        assert record["donor_identity"] != sample["json"]["identity"]
        assert record["qa"]["outside_equal"] is True


def test_splits_are_identity_disjoint_and_fields_uniform(built: Path) -> None:
    samples = _export_samples(built)
    split_of: dict[str, str] = {}
    for sample in samples:
        info = sample["json"]
        assert split_of.setdefault(info["identity"], info["split"]) == info["split"]
    assert set(split_of.values()) == {"train", "val", "test"}
    assert len({tuple(sorted(s)) for s in samples}) == 1


def test_verify_passes_and_inspect_reports(built: Path) -> None:
    assert "verify ok" in cli("verify", str(built)).stderr
    table = cli("inspect", str(built)).stdout
    assert "distractors" in table and "export" in table


def test_same_config_same_bytes(built: Path, tmp_path: Path) -> None:
    build(tiny_pipeline(), out=tmp_path, workers=2)
    assert shard_bytes(tmp_path) == shard_bytes(built)


def test_rerun_skips_committed_units_and_force_rebuilds(built: Path) -> None:
    before = shard_bytes(built)
    summaries = build(tiny_pipeline(), out=built)
    assert all(s.units_run == 0 for s in summaries)
    summaries = build(tiny_pipeline(), out=built, stage="segment", force=True)
    ingest, segment = summaries  # the named stage and, committed already, its upstream
    assert ingest.units_run == 0 and segment.units_run == len(segment.shards) > 0
    build(tiny_pipeline(), out=built)
    assert shard_bytes(built) == before


def test_changed_config_rebuilds_downstream_and_drops_stale_shards(tmp_path: Path) -> None:
    build(tiny_pipeline(), out=tmp_path)
    smaller = {**TINY_DEMO["source"], "n_identities": 4}
    build(tiny_pipeline(source=smaller), out=tmp_path)
    ingest = read_summary(tmp_path / "ingest")
    assert ingest is not None and ingest.n_in == 12
    assert len(list((tmp_path / "ingest").glob("*.tar"))) == len(ingest.shards) == 2
    assert "verify ok" in cli("verify", str(tmp_path)).stderr


def test_stage_builds_its_upstream_and_only_does_not(tmp_path: Path) -> None:
    pipeline, out = str(write_pipeline(tmp_path / "p.yaml")), tmp_path / "b"
    result = cli(
        "build", "--pipeline", pipeline, "--out", str(out), "--only", "segment", check=False
    )
    assert result.returncode == 2
    assert "--stage ingest" in result.stderr
    assert not out.exists()  # the failed stage left no empty folder behind
    cli("build", "--pipeline", pipeline, "--out", str(out), "--stage", "segment")
    assert sorted(p.name for p in out.iterdir()) == [".lock", "ingest", "segment"]
    assert read_summary(out / "segment") is not None


def test_verify_names_the_broken_shard(built: Path, tmp_path: Path) -> None:
    import shutil

    def broken(name: str) -> tuple[Path, Path]:
        copy = tmp_path / name
        shutil.copytree(built, copy)
        return copy, sorted((copy / "export/data/train").glob("*.tar"))[0]

    copy, tar = broken("flip")
    data = bytearray(tar.read_bytes())
    data[700] ^= 0xFF
    tar.write_bytes(bytes(data))
    copy2, tar2 = broken("trunc")
    tar2.write_bytes(tar2.read_bytes()[:1500])
    copy3, tar3 = broken("missing")
    tar3.unlink()
    for directory, shard, words in (
        (copy, tar, "sha256"),
        (copy2, tar2, "size"),
        (copy3, tar3, "missing"),
    ):
        result = cli("verify", str(directory), check=False)
        assert result.returncode == 1
        assert shard.name in result.stderr and words in result.stderr


def test_export_loads_in_webdataset_wids_and_datasets(built: Path) -> None:
    import datasets
    import webdataset as wds
    import wids

    export = built / "export"
    counts = {}
    for split in ("train", "val", "test"):
        index = json.loads((export / f"{split}.wids.json").read_text())
        counts[split] = sum(s["nsamples"] for s in index["shardlist"])
        shards = sorted(str(p) for p in (export / "data" / split).glob("*.tar"))
        streamed = list(wds.WebDataset(shards, shardshuffle=False).decode("rgb"))
        assert len(streamed) == counts[split]
        assert streamed[0]["image.png"].shape == (96, 96, 3)
        dataset = wids.ShardListDataset(str(export / f"{split}.wids.json"))
        assert len(dataset) == counts[split]
        assert dataset[len(dataset) - 1]["__key__"] == streamed[-1]["__key__"]
    summary = read_summary(export)
    assert summary is not None and sum(counts.values()) == summary.n_kept
    train = datasets.load_dataset(
        "webdataset",
        data_files={"train": str(export / "data/train/*.tar")},
        split="train",
        cache_dir=str(built / "hf_cache"),
    )
    assert len(train) == counts["train"]
    assert train[0]["json"]["split"] == "train"
