"""``eval --protocol nearid`` end to end on the tiny demo build with ``colorhist``, checked
against SSR/PA recomputed from the shards with the plain-Python reference."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from nearid_data.build import build
from nearid_data.engine.tario import read_samples
from nearid_data.errors import NearidError
from nearid_data.imageio import decode_mask_png, decode_png
from nearid_data.vision.embedders.colorhist import ColorHistEmbedder
from tests.conftest import tiny_pipeline
from tests.evaluate import reference as ref
from tests.evaluate.eval_helpers import colorhist_vector, run_eval
from tests.evaluate.tiny_embedders import save_tiny


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    build(tiny_pipeline(), out=out)
    return out


def _nearid_reference(export: Path, masked: bool) -> tuple[float, float]:
    """SSR and PA recomputed from the shards: views by identity, n_i from the same sample."""
    identities: dict[str, list[dict[str, Any]]] = {}
    for tar in sorted(export.glob("data/*/*.tar")):
        for sample in read_samples(tar):
            identities.setdefault(sample["json"]["identity"], []).append(sample)

    def vector(sample: dict[str, Any], field: str) -> list[float]:
        rgb = decode_png(sample[field])
        if masked:
            rgb = rgb * decode_mask_png(sample["mask.png"])[:, :, None]  # black background
        return colorhist_vector(rgb)

    per_sample = []
    for views in identities.values():
        views.sort(key=lambda s: s["json"]["view"])
        positives = [vector(s, "image.png") for s in views]
        distractors = [vector(s, "distractor_cut_paste.png") for s in views]
        per_sample.append(ref.nearid_margins(positives, distractors))
    return ref.ssr_pa(per_sample)


@pytest.mark.parametrize("masked", [False, True])
def test_nearid_on_the_demo_build(
    demo: Path, masked: bool, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    flags = ["--masked"] if masked else []
    started = time.monotonic()
    assert run_eval(demo, "--protocol", "nearid", "--embedder", "colorhist", *flags) == 0
    assert time.monotonic() - started < 10
    table = capsys.readouterr().out
    assert "| generator | identities | margins | SSR % | PA % |" in table
    assert "| cut_paste | 8 | 48 |" in table  # 8 identities of 3 views: 6 margins each
    name = f"eval-nearid-colorhist{'-masked' if masked else ''}.json"
    document = json.loads((demo / name).read_text())
    assert document["masked"] is masked and document["embedder"]["backend"] == "ColorHistEmbedder"
    results = document["results"]
    assert results["identities"] == 8 and results["splits"] == ["test", "train", "val"]
    scores = results["generators"]["cut_paste"]
    assert scores == results["pooled"]  # one generator: pooled is the same
    ssr, pa = _nearid_reference(demo / "export", masked)
    # Unmasked, the distractor's shared background wins every margin for colour histograms.
    assert (0 < scores["pa"] < 1) if masked else scores["pa"] == 0
    assert abs(scores["ssr"] - ssr) < 1e-9 and abs(scores["pa"] - pa) < 1e-9

    # A rerun reads every vector from the cache.
    def no_embedding(self: object, images: object) -> None:
        pytest.fail("embedded although cached")

    monkeypatch.setattr(ColorHistEmbedder, "_embed_batch", no_embedding)
    out = demo / "again.json"
    cache = ["--cache-dir", demo / ".embeddings", "--out", out]
    assert (
        run_eval(demo / "export", "--protocol", "nearid", "--embedder", "colorhist", *flags, *cache)
        == 0
    )
    assert json.loads(out.read_text())["results"] == results


def test_nearid_one_split(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "test.json"
    run_eval(
        demo, "--protocol", "nearid", "--embedder", "colorhist", "--split", "test", "--out", out
    )
    results = json.loads(out.read_text())["results"]
    assert results["splits"] == ["test"] and results["pooled"]["n_samples"] == 2
    with pytest.raises(NearidError, match="no shards"):
        run_eval(demo, "--protocol", "nearid", "--embedder", "colorhist", "--split", "nope")


def test_options_that_do_not_apply_are_refused(demo: Path, tmp_path: Path) -> None:
    with pytest.raises(NearidError, match="colorhist embedder takes no model"):
        run_eval(demo, "--protocol", "nearid", "--embedder", "colorhist", "--model", "x")
    with pytest.raises(NearidError, match="--queries applies"):
        run_eval(demo, "--protocol", "nearid", "--embedder", "colorhist", "--queries", tmp_path)
    with pytest.raises(NearidError, match="holds no WebDataset export"):
        run_eval(tmp_path, "--protocol", "nearid", "--embedder", "colorhist")


def test_a_tiny_model_through_the_command(demo: Path, tmp_path: Path) -> None:
    model = save_tiny("dinov2", tmp_path / "dinov2")
    out = tmp_path / "dino.json"
    args = ["--model", model, "--set", "pooling=mean", "--set", "batch_size=5", "--out", out]
    assert run_eval(demo, "--protocol", "nearid", "--embedder", "dinov2", "--masked", *args) == 0
    document = json.loads(out.read_text())
    embedder = document["embedder"]
    assert (embedder["pooling"], embedder["batch_size"], embedder["model"]) == (
        "mean",
        5,
        str(model),
    )
    assert len(embedder["weights_sha256"]) == 64 and embedder["resolved_dtype"] == "float32"
    assert document["results"]["pooled"]["n_margins"] == 48
    assert len(list((demo / ".embeddings" / embedder["fingerprint"]).glob("*.npz"))) == 4
