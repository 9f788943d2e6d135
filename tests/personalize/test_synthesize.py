"""synthesize, the similarity filter, export-synthetic and the triplet loader, on one tiny build."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from nearid_data.config import PipelineConfig
from nearid_data.engine.tario import read_samples
from nearid_data.errors import NearidError
from nearid_data.imageio import decode_png
from nearid_data.loaders.triplets import TripletStream
from nearid_data.personalize.similarity import distribution, similarity_scores
from nearid_data.personalize.text2image import TextToImage
from nearid_data.vision.embedders.colorhist import ColorHistEmbedder
from tests.personalize.helpers import SYNTHESIZE, build, pipeline, rows
from tests.tiny_models import offline_hub


@pytest.fixture(scope="module")
def built(tiny_sd: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synthetic") / "build"
    with pytest.MonkeyPatch.context() as patch:
        offline_hub(patch, tmp_path_factory.mktemp("hf"))
        build(pipeline(tiny_sd, synthesize=True), out=out)
    return out


def _samples(stage_dir: Path) -> list[dict]:
    return [s for tar in sorted(stage_dir.rglob("*.tar")) for s in read_samples(tar)]


def test_every_identity_gets_its_four_sets_with_their_records(built: Path) -> None:
    samples = _samples(built / "synthesize")
    kinds = Counter((s["json"]["identity"], s["json"]["kind"]) for s in samples)
    identities = {identity for identity, _ in kinds}
    assert len(identities) == 2
    for identity in identities:
        assert kinds[identity, "real"] == 3
        for kind in ("synthetic_positive", "synthetic_negative", "cut_paste"):
            assert kinds[identity, kind] == 2
    for sample in samples:
        info = sample["json"]
        if info["kind"] in ("synthetic_positive", "synthetic_negative"):
            generation = info["generation"]
            assert generation["guidance"] == 5.0 and generation["steps"] == 2
            assert generation["model"]["model"].endswith("sd")
            assert isinstance(generation["seed"], int) and generation["prompt"]
            with_adapter = info["kind"] == "synthetic_positive"
            assert (generation["adapter"] is not None) == with_adapter
            if with_adapter:
                assert "sks" in generation["prompt"] and -1 <= info["similarity"] <= 1
                assert (built / generation["adapter"]["path"]).is_dir()
            else:
                assert "sks" not in generation["prompt"]


def test_cut_paste_record_reproduces_the_background_outside_the_box(
    built: Path, tiny_sd: Path
) -> None:
    cuts = [s for s in _samples(built / "synthesize") if s["json"]["kind"] == "cut_paste"]
    model = TextToImage(str(tiny_sd))
    for sample in cuts[:2]:
        record = sample["json"]["cut_paste"]
        background = record["background"]
        (regenerated,) = model.generate(
            [background["prompt"]],
            [background["seed"]],
            steps=background["steps"],
            guidance=background["guidance"],
            resolution=background["resolution"],
        )
        image = decode_png(sample["image.png"])
        x0, y0, x1, y1 = record["box"]
        outside = np.ones(image.shape[:2], bool)
        outside[y0:y1, x0:x1] = False
        assert np.array_equal(image[outside], regenerated[outside])
        assert not np.array_equal(image[~outside], regenerated[~outside])  # the subject is there


def test_export_shards_folders_and_triplets(built: Path) -> None:
    export = built / "export-synthetic"
    exported = _samples(export / "data")
    assert {tuple(sorted(k for k in s if k != "__key__")) for s in exported} == {
        ("image.png", "json")
    }
    assert len(exported) == len(_samples(built / "synthesize"))
    index = json.loads((export / "train.wids.json").read_text())
    assert sum(shard["nsamples"] for shard in index["shardlist"]) == len(exported)

    pods = export / "pods"
    metadata = json.loads((pods / "metadata.json").read_text())
    assert len(metadata) == len(exported)
    assert all((pods / path).is_file() for path in metadata)
    assert len(list(pods.glob("negatives/*.png"))) == 4
    for kind in ("real", "synthetic_positive", "cut_paste"):
        assert len(list(pods.glob(f"{kind}/*/*.png"))) == sum(
            s["json"]["kind"] == kind for s in exported
        )

    shards = sorted((export / "data/train").glob("*.tar"))
    stream = TripletStream(shards, seed=1)
    triplets = list(stream)
    assert len(triplets) == 6 and not stream.skipped  # every real view is an anchor once
    by_key = {s["__key__"]: s["json"] for s in exported}
    for triplet in triplets:
        anchor, positive, negative = (by_key[k] for k in triplet.keys)
        assert anchor["kind"] == "real"
        assert positive["kind"] in ("synthetic_positive", "cut_paste")
        assert negative["kind"] == "synthetic_negative"
        assert anchor["identity"] == positive["identity"] == negative["identity"]
        assert triplet.anchor.dtype == np.uint8 and triplet.anchor.ndim == 3
    assert [t.keys for t in TripletStream(shards, seed=1)] == [t.keys for t in triplets]


def test_positives_below_the_threshold_are_rejected_with_their_scores(
    built: Path, tiny_sd: Path, tmp_path: Path
) -> None:
    raw = pipeline(tiny_sd, synthesize=True).model_dump(mode="json")
    raw["stages"]["synthesize"] = {**SYNTHESIZE, "min_similarity": 1.0}
    del raw["stages"]["export-synthetic"]
    out = tmp_path / "strict"
    build(PipelineConfig.from_dict(raw), out=out)
    rejected = [r for r in rows(out / "synthesize") if r.status == "rejected"]
    assert len(rejected) == 4 and {r.reason for r in rejected} == {"below_similarity"}
    assert all(r.qa["similarity"] < 1.0 for r in rejected)
    report = json.loads((out / "synthesize/similarity.json").read_text())
    assert report["rejected"]["count"] == 4 and report["kept"]["count"] == 0
    assert sum(report["rejected"]["histogram"]["counts"]) == 4


def test_similarity_scores_rank_the_same_subject_first() -> None:
    rng = np.random.default_rng(0)
    red = np.zeros((32, 32, 3), np.uint8)
    red[..., 0] = 200
    blue = np.zeros((32, 32, 3), np.uint8)
    blue[..., 2] = 200
    noisy_red = np.clip(red + rng.integers(0, 20, red.shape), 0, 255).astype(np.uint8)
    embedder = ColorHistEmbedder(ColorHistEmbedder.Config())
    same, other = similarity_scores(embedder, [red, noisy_red], [red, blue])
    assert same > 0.5 > other
    summary = distribution([same, other])
    assert summary["count"] == 2 and summary["quantiles"]["max"] == round(same, 6)
    assert distribution([]) == {"count": 0}


def test_synthesize_must_follow_personalize(tiny_sd: Path) -> None:
    raw = pipeline(tiny_sd, synthesize=True).model_dump(mode="json")
    raw["stages"] = {k: v for k, v in raw["stages"].items() if k != "personalize"}
    with pytest.raises(NearidError, match="right after 'personalize'"):
        PipelineConfig.from_dict(raw)


def test_contrastive_lora_example_trains_on_the_export(built: Path, tmp_path: Path) -> None:
    from transformers import Dinov2Config, Dinov2Model

    backbone = tmp_path / "dinov2"
    Dinov2Model(
        Dinov2Config(
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=37,
            image_size=32,
            patch_size=8,
        )
    ).save_pretrained(backbone)
    root = Path(__file__).resolve().parents[2]
    command = [
        sys.executable,
        "examples/train_contrastive_lora.py",
        *("--export", str(built / "export-synthetic"), "--backbone", str(backbone)),
        *(
            "--steps",
            "2",
            "--batch-size",
            "4",
            "--image-size",
            "32",
            "--out",
            str(tmp_path / "lora"),
        ),
    ]
    env = {**os.environ, "PYTHONPATH": str(root)}
    result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-1].startswith("final loss ") and math.isfinite(float(lines[-1].split()[-1]))
    assert sum(line.startswith("step ") for line in lines) == 2
    assert (tmp_path / "lora/adapter_model.safetensors").is_file()


def test_the_build_report_shows_the_similarity_distribution(built: Path) -> None:
    from nearid_data.report.collect import collect
    from nearid_data.report.command import charts

    report = collect(built)
    kept = report.positive_similarity["kept"]
    scored = [
        s["json"]["similarity"] for s in _samples(built / "synthesize") if "similarity" in s["json"]
    ]
    assert sorted(kept) == sorted(round(v, 6) for v in scored) and len(kept) == 4
    titles = [title for title, png in charts(report) if png.startswith(b"\x89PNG")]
    assert "synthetic positives: similarity to the references" in titles


def test_synthesize_rerun_gives_the_same_bytes(built: Path, tmp_path: Path, tiny_sd: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(built, copy)
    before = {
        p.relative_to(copy): p.read_bytes() for p in sorted((copy / "synthesize").rglob("*.tar"))
    }
    build(pipeline(tiny_sd, synthesize=True), out=copy, stage="synthesize", force=True)
    after = {
        p.relative_to(copy): p.read_bytes() for p in sorted((copy / "synthesize").rglob("*.tar"))
    }
    assert before and after == before
