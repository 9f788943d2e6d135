"""``eval --protocol pmg``: per-window scores on hand-computable cases, the benchmark's table,
generated images missing, undecodable or matching no window, skipped metrics with the command
that fetches their model, and the command line end to end on a windows build."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from nearid_data.build import build
from nearid_data.cli import main
from nearid_data.config import PipelineConfig
from nearid_data.errors import NearidError
from nearid_data.evaluate.pmg_models import AestheticHead, ClipScorer, Verifier
from nearid_data.evaluate.pmg_protocol import (
    PmgModels,
    PmgSettings,
    ScoredWindow,
    evaluate_windows,
    generated_images,
    read_windows,
    score_window,
    table,
)
from nearid_data.imageio import encode_png
from tests.badimages import valid_image
from tests.evaluate.test_pmg_metrics import save_tiny_verifier, tiny_clip
from tests.history_layouts import write_pog

SETTINGS = PmgSettings(image_size=32)


def random_lpips() -> object | None:
    try:
        import lpips
    except ImportError:
        return None
    import torch

    torch.manual_seed(0)
    return lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False).eval()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> PmgModels:
    directory = tmp_path_factory.mktemp("pmg-models")
    clip = ClipScorer(str(tiny_clip(directory / "clip")), device="cpu", batch_size=4)
    hpsv2 = ClipScorer(str(tiny_clip(directory / "hps", seed=1)), device="cpu", batch_size=4)
    verifier = Verifier(str(save_tiny_verifier(directory / "verifier", ["w1"])), device="cpu")
    found = random_lpips()
    skipped = {} if found else {m: "no lpips" for m in ("lpips_target", "lpips_history")}
    return PmgModels(lpips=found, clip=clip, hpsv2=hpsv2, verifier=verifier, skipped=skipped)


def record(**extra: object) -> dict:
    return {
        "user_id": "w1",
        "target_item_id": "t",
        "target_item_info": {"item_id": "t", "caption": "a red car", "image_path": "t.jpg"},
        "num_interactions": 3,
        **extra,
    }


def test_scores_of_an_image_equal_to_its_history(models: PmgModels, tmp_path: Path) -> None:
    import torch

    image, target = valid_image(1, (40, 48)), valid_image(2, (40, 48))
    window = ScoredWindow("w1_w00000", record(worker_id="w1", worker_style=""), target, [image] * 3)
    # An aesthetic head whose weight is the image's own unit CLIP vector scores it 1.
    unit = models.clip.images([image])[0]  # type: ignore[union-attr]
    head = tmp_path / "head.pth"
    torch.save({"weight": torch.tensor(unit[None]), "bias": torch.zeros(1)}, head)
    models.aesthetic = AestheticHead(str(head))
    scores = score_window(window, image, "", models, SETTINGS)
    assert scores["ssim_history"] == pytest.approx(1.0)
    assert scores["ssim_target"] < 0.9
    assert scores["cpis_history"] == pytest.approx(1.0, abs=1e-5)
    assert scores["aesthetic"] == pytest.approx(1.0, abs=1e-5)
    assert scores["cps"] is None and scores["hpsv2"] is None  # no style text, no prompt
    assert scores["verifier"] == models.verifier.score(image, "w1")  # type: ignore[union-attr]
    if models.lpips is not None:
        assert scores["lpips_history"] == pytest.approx(0.0, abs=1e-6)
        assert scores["lpips_target"] > 0
    styled = ScoredWindow("k", record(user_style="a red car"), target, [image] * 3)
    scores = score_window(styled, image, "a photo of a dog", models, SETTINGS)
    hps = models.hpsv2
    assert hps is not None
    expected = float(hps.images([image])[0] @ hps.texts(["a photo of a dog"])[0])
    assert scores["hpsv2"] == pytest.approx(expected, abs=1e-6)
    assert -1 <= scores["cps"] <= 1  # type: ignore[operator]


def windows_build(tmp_path: Path) -> Path:
    source, _ = write_pog(tmp_path / "pog", users=4, per_user=5)
    pipeline = {
        "name": "pmg-pog",
        "source": source,
        "stages": {"ingest": {}, "windows": {"split_by": "time", "val_windows": 0}},
    }
    build(PipelineConfig.from_dict(pipeline), out=tmp_path / "build")
    return tmp_path / "build"


def generated_folder(tmp_path: Path, windows: list[ScoredWindow]) -> Path:
    """Targets as the generated images of the first two windows, garbage for the third, nothing
    for the fourth, and an image matching no window."""
    folder = tmp_path / "generated"
    folder.mkdir()
    for window in windows[:2]:
        (folder / f"{window.key}.png").write_bytes(encode_png(window.target))
    (folder / f"{windows[2].key}.png").write_bytes(b"not an image")
    (folder / "ghost.png").write_bytes(encode_png(windows[0].target))
    (folder / "prompts.json").write_text(json.dumps({windows[0].key: "a red car"}))
    return folder


def test_evaluate_windows_counts_every_window_and_image(models: PmgModels, tmp_path: Path) -> None:
    models.aesthetic = None
    models.skipped["aesthetic"] = "no head"
    dataset, windows = read_windows(windows_build(tmp_path), "test")
    assert dataset == "POG" and len(windows) == 4
    folder = generated_folder(tmp_path, windows)
    results = evaluate_windows(
        dataset, windows, generated_images(folder), {}, models, SETTINGS, "copy-target"
    )
    assert results["n_windows"] == 4 and results["n_scored"] == 2
    assert results["missing_generated"] == [windows[3].key]
    assert [u["window"] for u in results["undecodable_generated"]] == [windows[2].key]
    assert results["unmatched_generated"] == ["ghost"]
    metrics = results["metrics"]
    assert metrics["ssim_target"] == {"mean": pytest.approx(1.0), "std": pytest.approx(0.0), "n": 2}
    assert "verifier" not in metrics  # FLICKR only
    assert metrics["aesthetic"] == {"skipped": "no head"}
    if models.lpips is not None:
        assert metrics["lpips_target"]["mean"] == pytest.approx(0.0, abs=1e-6)
    rows = results["windows"]
    assert [r["window"] for r in rows] == [w.key for w in windows[:2]]
    assert metrics["cps"]["mean"] == pytest.approx(np.mean([r["cps"] for r in rows]))
    text = table(results)
    assert text.splitlines()[2].startswith(
        "| Method | LPIPS↓ (Target) | LPIPS↓ (History) | SSIM↑ (Target) | SSIM↑ (History) | CPS↑ |"
    )
    assert "| copy-target |" in text and "| 1.0000±0.0000 |" in text and "| skipped |" in text
    assert "2 of 4 test windows scored" in text


def test_generated_images_from_tars(tmp_path: Path) -> None:
    tar_path = tmp_path / "gen-00000.tar"
    with tarfile.open(tar_path, "w") as tar:
        for name, data in (("a.jpg", b"A"), ("a.json", b"{}"), ("b.json", b"{}"), ("b.png", b"B")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert generated_images(tar_path) == {"a": b"A", "b": b"B"}
    assert generated_images(tmp_path) == {"a": b"A", "b": b"B"}
    with pytest.raises(NearidError, match=r"not a folder or a \.tar file"):
        generated_images(tmp_path / "absent")
    (tmp_path / "gen-00001.tar").write_bytes(b"garbage" * 100)
    with pytest.raises(NearidError, match=r"gen-00001\.tar: unreadable tar"):
        generated_images(tmp_path)


def test_command_line_skips_missing_models_and_runs_the_rest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = windows_build(tmp_path)
    _, windows = read_windows(directory, "test")
    folder = generated_folder(tmp_path, windows)
    out = tmp_path / "result.json"
    missing = tmp_path / "models"
    args = [
        "eval",
        str(directory),
        "--protocol",
        "pmg",
        "--generated",
        str(folder),
        "--out",
        str(out),
    ]
    settings = [
        f"clip={missing / 'clip'}",
        f"hpsv2={missing / 'hps'}",
        f"aesthetic_head={missing / 'head.pth'}",
        "image_size=32",
        "method=mine",
    ]
    assert main([*args, *(x for s in settings for x in ("--set", s))]) == 0
    document = json.loads(out.read_text())
    metrics = document["results"]["metrics"]
    for name in ("cps", "cpis_history", "aesthetic", "hpsv2"):
        print(name, metrics[name]["skipped"])
        assert str(missing) in metrics[name]["skipped"]
    assert (
        "hf download" in metrics["hpsv2"]["skipped"]
        and str(missing / "hps") in metrics["hpsv2"]["skipped"]
    )
    assert "skipped" in metrics["lpips_target"]  # no lpips package, or no backbone weights
    assert metrics["ssim_target"]["mean"] == pytest.approx(1.0)
    assert document["results"]["method"] == "mine"
    assert out.with_suffix(".md").read_text().startswith("#### POG Dataset")
    assert main([*args, "--embedder", "colorhist"]) == 2
    assert "--embedder does not apply to --protocol pmg" in caplog.text
    assert main([*args, "--split", "val"]) == 2
    assert "no windows in split 'val' (splits: test, train)" in caplog.text
