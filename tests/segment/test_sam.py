"""SamSegmenter on a tiny random-weight SAM, checked against segment_anything's own SamPredictor."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest

from nearid_data.errors import NearidError
from nearid_data.segment.base import Box
from tests.tiny_models import build_tiny_sam, import_segment_anything, save_tiny_sam_checkpoint

pytest.importorskip("torch")


@pytest.fixture(autouse=True, scope="module")
def segment_anything():
    return import_segment_anything()


@pytest.fixture
def checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, segment_anything) -> Path:
    """A tiny SAM saved as vit_b's .pth; the registry's vit_b builds the tiny architecture.

    The backend still calls ``sam_model_registry["vit_b"](checkpoint=...)``; only what that entry
    builds is smaller (a real vit_b runs seconds per image on two CPU cores).
    """
    monkeypatch.setitem(segment_anything.sam_model_registry, "vit_b", build_tiny_sam)
    return save_tiny_sam_checkpoint(tmp_path / "sam_vit_b_tiny.pth")


def segmenter(checkpoint: Path, **settings: object):
    from nearid_data.segment.sam import SamSegmenter

    return SamSegmenter(SamSegmenter.Config(kind="vit_b", checkpoint=str(checkpoint), **settings))


def images() -> list[np.ndarray]:
    """Non-square images of different sizes, so resizing, padding and cropping all matter."""
    rng = np.random.default_rng(0)
    shapes = [(90, 160), (200, 120), (64, 64)]
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in shapes]


BOXES = [
    Box((20.0, 10.0, 120.0, 80.0), 0.9),
    None,
    Box((5.0, 30.0, 40.0, 60.0), 0.5),
]


def test_masks_equal_sam_predictors_best_rated(checkpoint: Path) -> None:
    from segment_anything import SamPredictor

    sam = segmenter(checkpoint, batch_size=3)
    predictions = sam.segment(images(), BOXES)

    predictor = SamPredictor(sam.sam)
    for image, box, prediction in zip(images(), BOXES, predictions, strict=True):
        h, w = image.shape[:2]
        xyxy = np.array(box.xyxy if box else (0, 0, w, h), dtype=np.float32)
        predictor.set_image(image)
        masks, scores, _ = predictor.predict(box=xyxy, multimask_output=True)
        best = int(np.argmax(scores))
        assert prediction.mask.shape == (h, w) and prediction.mask.dtype == bool
        assert 0 < prediction.mask.mean() < 1  # a real mask, not an empty or full one
        np.testing.assert_array_equal(prediction.mask, masks[best])
        assert prediction.score == pytest.approx(float(scores[best]), abs=1e-5)


def test_batched_equals_one_at_a_time(checkpoint: Path) -> None:
    batched = segmenter(checkpoint, batch_size=3).segment(images(), BOXES)
    single = [
        segmenter(checkpoint, batch_size=1).segment([image], [box])[0]
        for image, box in zip(images(), BOXES, strict=True)
    ]
    for a, b in zip(batched, single, strict=True):
        assert (a.mask != b.mask).mean() < 1e-3
        assert a.score == pytest.approx(b.score, abs=1e-4)


def test_multimask_keeps_the_mask_with_the_highest_predicted_iou(
    checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    sam = segmenter(checkpoint)
    decoder = sam.sam.mask_decoder
    real_forward = decoder.forward
    seen = {}

    def rated_forward(**kwargs):
        low_res, _ = real_forward(**kwargs)
        seen["low_res"] = low_res
        return low_res, torch.tensor([[0.2, 0.1, 0.7]])  # the third mask is rated best

    monkeypatch.setattr(decoder, "forward", rated_forward)
    image = images()[0]
    prediction = sam.segment([image], [BOXES[0]])[0]

    size = image.shape[:2]
    input_size = sam.resize.get_preprocess_shape(*size, sam.resize.target_length)
    logits = sam.sam.postprocess_masks(seen["low_res"], input_size, size)[0]
    assert prediction.score == pytest.approx(0.7)
    np.testing.assert_array_equal(prediction.mask, (logits[2] > 0).numpy())
    assert not np.array_equal(prediction.mask, (logits[0] > 0).numpy())


def test_single_mask_output(checkpoint: Path) -> None:
    from segment_anything import SamPredictor

    sam = segmenter(checkpoint, multimask=False)
    image = images()[0]
    prediction = sam.segment([image], [BOXES[0]])[0]
    predictor = SamPredictor(sam.sam)
    predictor.set_image(image)
    masks, scores, _ = predictor.predict(box=np.array(BOXES[0].xyxy), multimask_output=False)
    np.testing.assert_array_equal(prediction.mask, masks[0])
    assert prediction.score == pytest.approx(float(scores[0]), abs=1e-5)


def test_no_box_prompts_with_the_whole_image(checkpoint: Path) -> None:
    sam = segmenter(checkpoint)
    image = images()[1]
    h, w = image.shape[:2]
    no_box, whole = sam.segment([image, image], [None, Box((0.0, 0.0, w, h), 1.0)])
    np.testing.assert_array_equal(no_box.mask, whole.mask)
    assert no_box.score == whole.score


def test_missing_checkpoint_names_it_and_the_download(tmp_path: Path) -> None:
    from nearid_data.segment.sam import SamSegmenter

    missing = tmp_path / "sam_vit_b_01ec64.pth"
    with pytest.raises(NearidError) as error:
        SamSegmenter(SamSegmenter.Config(kind="vit_b", checkpoint=str(missing)))
    message = str(error.value)
    assert str(missing) in message
    assert "curl" in message
    assert "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth" in message


def test_default_checkpoint_is_the_official_file_under_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nearid_data.segment.sam import SamSegmenter

    monkeypatch.chdir(tmp_path)
    with pytest.raises(NearidError, match=r"models/sam_vit_h_4b8939\.pth"):
        SamSegmenter(SamSegmenter.Config())


def test_sdpa_attention_gives_the_same_masks(checkpoint: Path) -> None:
    eager = segmenter(checkpoint).segment(images(), BOXES)
    fused = segmenter(checkpoint, sdpa=True).segment(images(), BOXES)
    for a, b in zip(eager, fused, strict=True):
        assert (a.mask != b.mask).mean() < 1e-3
        assert a.score == pytest.approx(b.score, abs=1e-4)


def test_bfloat16_image_encoder_runs_on_cpu_and_agrees_with_float32(checkpoint: Path) -> None:
    import torch

    half = segmenter(checkpoint, dtype="bfloat16")
    assert next(half.sam.image_encoder.parameters()).dtype == torch.bfloat16
    assert next(half.sam.mask_decoder.parameters()).dtype == torch.float32
    full = segmenter(checkpoint).segment(images(), BOXES)
    for a, b in zip(half.segment(images(), BOXES), full, strict=True):
        assert a.mask.shape == b.mask.shape
        assert (a.mask != b.mask).mean() < 0.05


def test_nan_mask_logits_are_rejected_not_turned_into_masks(checkpoint: Path) -> None:
    from nearid_data.errors import Rejection

    sam = segmenter(checkpoint)

    def poison(_module, _inputs, outputs):
        low_res, iou = outputs
        return low_res.clone().fill_(float("nan")), iou

    sam.sam.mask_decoder.register_forward_hook(poison)
    with pytest.raises(Rejection) as error:
        sam.segment(images()[:1], BOXES[:1])
    assert error.value.reason == "non_finite_output"


def test_a_torchvision_built_for_another_torch_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import torch

    from nearid_data.segment import sam

    def mismatched(module: str, *, extra: str):
        if module == "segment_anything":
            raise RuntimeError("operator torchvision::nms does not exist")
        return importlib.import_module(module)

    monkeypatch.setattr(sam, "import_optional", mismatched)
    with pytest.raises(NearidError, match=r"torchvision .* does not fit torch") as error:
        segmenter(tmp_path / "unused.pth")
    assert torch.__version__ in str(error.value) and "nearid-data[sam]" in str(error.value)
