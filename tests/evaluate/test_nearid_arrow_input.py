"""``eval --protocol nearid`` on NearID's Arrow layout: the release's folders (built here by hand
as NearID's dataset cards and evaluation/sim_test.py describe them) and ``export-nearid``'s."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from nearid_data.build import build
from nearid_data.errors import NearidError
from nearid_data.evaluate.images import clean_mask
from nearid_data.imageio import encode_png
from tests.conftest import TINY_DEMO, tiny_pipeline
from tests.evaluate import reference as ref
from tests.evaluate.eval_helpers import colorhist_vector, run_eval


def _results(directory: Path, *flags: str) -> dict[str, Any]:
    out = directory.parent / f"result-{directory.name}-{'_'.join(flags) or 'plain'}.json"
    assert (
        run_eval(directory, "--protocol", "nearid", "--embedder", "colorhist", *flags, "--out", out)
        == 0
    )
    return json.loads(out.read_text())["results"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def both_exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("both")
    stages = {**TINY_DEMO["stages"], "export-nearid": {}}
    build(tiny_pipeline(stages=stages), out=out)
    return out


@pytest.mark.parametrize(
    "flags",
    [(), ("--masked",), ("--convention", "release"), ("--masked", "--convention", "release")],
)
def test_our_arrow_export_scores_as_our_webdataset_export(
    both_exports: Path, flags: tuple[str, ...]
) -> None:
    webdataset = _results(both_exports, *flags)
    arrow = _results(both_exports / "export-nearid", *flags)
    assert (webdataset["layout"], arrow["layout"]) == ("webdataset", "arrow")
    assert arrow["identities"] == webdataset["identities"] == 8
    for name in ("generators", "pooled"):
        assert arrow[name] == webdataset[name]  # the same vectors, the same arithmetic
    assert arrow["generators"]["cut_paste"]["n_samples"] == 8


def test_release_convention_adds_one_trial_per_identity(both_exports: Path) -> None:
    paper = _results(both_exports / "export-nearid")["pooled"]
    release = _results(both_exports / "export-nearid", "--convention", "release")["pooled"]
    assert release["n_margins"] == paper["n_margins"] + paper["n_samples"]
    assert release["ssr"] == paper["ssr"]


# --- the release's layout, by hand ------------------------------------------------------------


def _png(rgb: np.ndarray) -> dict[str, Any]:
    return {"bytes": encode_png(rgb), "path": None}


def _view(seed: int, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """An RGB view and a soft uint8 mask (a disc with greyscale edges, as released)."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:size, :size]
    distance = np.hypot(yy - size / 2, xx - size / 2)
    soft = np.clip((size / 3 - distance) * 64, 0, 255).astype(np.uint8)
    return rgb, soft


def _write_release(root: Path) -> list[dict[str, Any]]:
    """NearID/ and NearID-Flux/ as DatasetDict({"train"}), splits/test.json as {"indices"}.
    Row 1 has two views; row 2 has no nimg2. Returns the rows' pixels for recomputation."""
    import datasets

    rows, negatives, truth = [], [], []
    for row in range(4):
        n_images = 2 if row == 1 else 3
        cells: dict[str, Any] = {"id": 100 + row, "category": "mug", "n_images": n_images}
        neg: dict[str, Any] = {"id": 100 + row}
        pixels: dict[str, Any] = {}
        for j in (1, 2, 3):
            present = j <= n_images
            image, mask = _view(10 * row + j)
            distractor, _ = _view(1000 + 10 * row + j)
            has_negative = present and not (row == 2 and j == 2)
            cells[f"images{j}"] = _png(image) if present else None
            cells[f"masks{j}"] = _png(mask) if present else None
            neg[f"nimg{j}"] = _png(distractor) if has_negative else None
            pixels[j] = (image if present else None, distractor if has_negative else None, mask)
        rows.append(cells)
        negatives.append(neg)
        truth.append(pixels)
    image = datasets.Image()
    positive_features = datasets.Features(
        {
            "id": datasets.Value("int64"),
            "category": datasets.Value("string"),
            "n_images": datasets.Value("int64"),
            **{f"{c}{j}": image for c in ("images", "masks") for j in (1, 2, 3)},
        }
    )
    negative_features = datasets.Features(
        {"id": datasets.Value("int64"), **{f"nimg{j}": image for j in (1, 2, 3)}}
    )
    for folder, data, features in (
        ("NearID", rows, positive_features),
        ("NearID-Flux", negatives, negative_features),
    ):
        dataset = datasets.Dataset.from_list(data, features=features)
        datasets.DatasetDict({"train": dataset}).save_to_disk(str(root / folder))
    (root / "splits").mkdir()
    (root / "splits" / "test.json").write_text(json.dumps({"indices": [2, 0, 1]}))
    return truth


def _expected(truth: list[dict[str, Any]], rows: list[int], masked: bool) -> list[list[float]]:
    """Each row's margins from colour histograms of the (masked: foreground > 0) pixels."""

    def vector(rgb: np.ndarray | None, mask: np.ndarray) -> list[float] | None:
        if rgb is None:
            return None
        return colorhist_vector(rgb * (mask > 0)[:, :, None] if masked else rgb)

    margins = []
    for row in rows:
        views = [vector(truth[row][j][0], truth[row][j][2]) for j in (1, 2, 3)]
        distractors = [vector(truth[row][j][1], truth[row][j][2]) for j in (1, 2, 3)]
        margins.append(ref.nearid_margins(views, distractors))
    return margins


@pytest.mark.parametrize("masked", [False, True])
def test_release_layout_by_hand(tmp_path: Path, masked: bool) -> None:
    truth = _write_release(tmp_path / "release")
    flags = ["--masked"] if masked else []
    every = _results(tmp_path / "release", *flags)
    margins = _expected(truth, [0, 1, 2, 3], masked)
    assert [len(m) for m in margins] == [6, 2, 4, 6]  # 2 views; no n_2 in row 2
    ssr, pa = ref.ssr_pa(margins)
    flux = every["generators"]["Flux"]
    assert every["identities"] == 4 and flux["n_margins"] == 18
    assert abs(flux["ssr"] - ssr) < 1e-9 and abs(flux["pa"] - pa) < 1e-9

    test = _results(tmp_path / "release", *flags, "--split", "test", "--convention", "release")
    margins = _expected(truth, [0, 1, 2], masked)
    wins = sum(sum(x > 0 for x in m) + (sum(m) / len(m) > 0) for m in margins)
    trials = sum(len(m) + 1 for m in margins)
    flux = test["generators"]["Flux"]
    assert test["identities"] == 3 and flux["n_margins"] == trials == 15
    assert abs(flux["pa"] - wins / trials) < 1e-9


def test_misaligned_sets_and_unknown_splits_are_clear_errors(tmp_path: Path) -> None:
    import datasets

    _write_release(tmp_path / "release")
    with pytest.raises(NearidError, match=r"has no val\.json in splits/ and no split column"):
        _results(tmp_path / "release", "--split", "val")
    flux = tmp_path / "release" / "NearID-Flux"
    shuffled = datasets.load_from_disk(str(flux))["train"].select([1, 0, 2, 3])
    datasets.DatasetDict({"train": shuffled}).save_to_disk(str(tmp_path / "release" / "NearID-X"))
    with pytest.raises(NearidError, match="row 0 has id 101 in NearID-X but 100 in NearID"):
        _results(tmp_path / "release")


def test_clean_mask_keeps_the_largest_blob_filled_without_faint_noise() -> None:
    """NearID's _clean_mask_pil: blur, > 10, close, open, largest outer contour filled."""
    gray = np.full((64, 64), 6, np.uint8)  # faint noise: below the threshold after the blur
    gray[10:40, 10:40] = 255
    gray[20:24, 20:24] = 0  # a hole: filled
    gray[55:58, 55:58] = 255  # a speck: a smaller contour, dropped
    cleaned = clean_mask(gray)
    n_labels = cv2.connectedComponents(cleaned.astype(np.uint8))[0]
    assert n_labels == 2  # background and one blob
    assert cleaned[10:40, 10:40].all() and not cleaned[50:, 50:].any()
    assert not cleaned[:7].any() and not cleaned[:, :7].any()  # within 2 px of the square + blur
    assert cleaned[8, 20] and not cleaned[7, 20]  # the blur's > 10 reaches 2 px out
