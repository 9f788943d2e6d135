"""A failure caused by one input is that input's rejection; a failure of the backend stops the
stage. Checked with the classical segmenter on a 1x1 image and with a model-like batch backend."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest

from nearid_data.build import build
from nearid_data.config import PipelineConfig
from nearid_data.engine.executor import UnitFailed
from nearid_data.engine.manifest import SampleRow, manifest_path, read_manifest, read_summary
from nearid_data.errors import NearidError, Rejection, input_failure
from nearid_data.segment import registry
from nearid_data.segment.base import Box, MaskPrediction, Segmenter
from tests.badimages import valid_image


class PickySegmenter(Segmenter):
    """Segments a whole batch at once, like a model; a batch with a uniform (flat) image raises,
    as a model does on an input it cannot handle. ``name: picky-broken`` fails on every batch
    the way a backend does when its device is gone."""

    broken = False

    def segment(
        self, images: Sequence[np.ndarray], boxes: Sequence[Box | None]
    ) -> list[MaskPrediction]:
        if self.broken:
            raise MemoryError("device out of memory")
        if any(image.std() == 0 for image in images):
            raise ValueError("cannot normalise a flat image")
        if any(image.shape[0] == 41 for image in images):  # stands for an fp16 overflow
            raise Rejection("non_finite_output", "NaN in the mask logits")
        predictions = []
        for image in images:
            mask = np.zeros(image.shape[:2], bool)
            mask[8:-8, 8:-8] = True
            predictions.append(MaskPrediction(mask, 0.9))
        return predictions


class BrokenSegmenter(PickySegmenter):
    broken = True


@pytest.fixture
def picky(monkeypatch: pytest.MonkeyPatch) -> None:
    entries = dict(registry.SEGMENTERS._entries)
    entries["picky"] = f"{__name__}:PickySegmenter"
    entries["picky-broken"] = f"{__name__}:BrokenSegmenter"
    monkeypatch.setattr(registry.SEGMENTERS, "_entries", entries)


def _photos(root: Path, odd: dict[str, np.ndarray]) -> Path:
    folder = root / "mug"
    folder.mkdir(parents=True)
    for view in range(3):
        cv2.imwrite(str(folder / f"good {view}.png"), valid_image(view)[..., ::-1])
    for name, pixels in odd.items():
        cv2.imwrite(str(folder / name), pixels)
    return root


def _segment_rows(root: Path, out: Path, segmenter: str) -> list[SampleRow]:
    pipeline = {
        "name": "seg",
        "source": {"name": "imagefolder", "root": str(root)},
        "stages": {
            "ingest": {"min_side": 1},
            "segment": {"segmenter": {"name": segmenter}, "batch_size": 8, "min_area": 0},
        },
    }
    build(PipelineConfig.from_dict(pipeline), out=out)
    summary = read_summary(out / "segment")
    assert summary is not None
    return [
        row
        for entry in summary.shards
        for row in read_manifest(manifest_path(out / "segment", entry.unit)).rows
    ]


def test_an_image_grabcut_cannot_take_is_rejected_and_the_build_goes_on(tmp_path: Path) -> None:
    root = _photos(tmp_path / "photos", {"tiny.png": np.full((1, 1, 3), 90, np.uint8)})
    rows = _segment_rows(root, tmp_path / "build", "classical")
    by_path = {row.locator: row for row in rows}
    tiny = by_path["mug/tiny.png"]
    assert tiny.status == "rejected" and tiny.reason == "segment_failed"
    assert tiny.detail and "error" in tiny.detail
    assert all(by_path[f"mug/good {v}.png"].reason != "segment_failed" for v in range(3))


def test_a_failing_batch_is_narrowed_to_the_input_that_fails(tmp_path: Path, picky: None) -> None:
    root = _photos(tmp_path / "photos", {"flat.png": np.full((40, 48, 3), 128, np.uint8)})
    rows = _segment_rows(root, tmp_path / "build", "picky")
    status = {row.locator: (row.status, row.reason) for row in rows}
    assert status == {
        "mug/flat.png": ("rejected", "segment_failed"),
        **{f"mug/good {v}.png": ("kept", None) for v in range(3)},
    }


def test_a_rejection_raised_by_a_model_backend_keeps_its_reason(
    tmp_path: Path, picky: None
) -> None:
    root = _photos(tmp_path / "photos", {"overflow.png": valid_image(7, (41, 48))[..., ::-1]})
    rows = _segment_rows(root, tmp_path / "build", "picky")
    status = {row.locator: (row.status, row.reason) for row in rows}
    assert status == {
        "mug/overflow.png": ("rejected", "non_finite_output"),
        **{f"mug/good {v}.png": ("kept", None) for v in range(3)},
    }


def test_a_failure_of_the_backend_itself_stops_the_stage(tmp_path: Path, picky: None) -> None:
    root = _photos(tmp_path / "photos", {})
    with pytest.raises((UnitFailed, NearidError, MemoryError), match="out of memory"):
        _segment_rows(root, tmp_path / "build", "picky-broken")
    assert read_summary(tmp_path / "build" / "segment") is None


@pytest.mark.parametrize(
    ("error", "backend"),
    [
        (ValueError("cannot reshape array of size 0"), False),
        (cv2.error("(-215:Assertion failed) in function 'initGMMs'"), False),
        (RuntimeError("input has a 0-sized dimension"), False),
        (RuntimeError("CUDA error: an illegal memory access was encountered"), True),
        (MemoryError(), True),
        (NearidError("model not found"), True),
        (AttributeError("'NoneType' object has no attribute 'forward'"), True),
    ],
)
def test_what_counts_as_a_failure_of_the_backend(error: Exception, backend: bool) -> None:
    if backend:
        with pytest.raises(type(error)):
            input_failure(error, "segment_failed")
    else:
        rejection = input_failure(error, "segment_failed")
        assert rejection.reason == "segment_failed" and type(error).__name__ in rejection.detail
