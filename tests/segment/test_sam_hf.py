"""SamHfSegmenter on tiny random-weight transformers SAM (and SAM 2) models saved to a temp dir."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nearid_data.errors import NearidError
from nearid_data.segment.base import Box
from tests.tiny_models import (
    TINY_SAM_IMAGE_SIZE,
    save_tiny_gdino,
    save_tiny_sam_hf,
)

pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_sam(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_sam_hf(tmp_path_factory.mktemp("sam-hf"))


def segmenter(model: Path, **settings: object):
    from nearid_data.segment.sam_hf import SamHfSegmenter

    return SamHfSegmenter(SamHfSegmenter.Config(model=str(model), **settings))


def images() -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    shapes = [(90, 160), (200, 120), (64, 64)]
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in shapes]


BOXES = [Box((20.0, 10.0, 120.0, 80.0), 0.9), None, Box((5.0, 30.0, 40.0, 60.0), 0.5)]


def reference(model: Path, image: np.ndarray, box: list[float]) -> tuple[np.ndarray, float]:
    """transformers' documented one-image recipe: processor, model, post_process_masks, best IoU."""
    import torch
    from transformers import SamModel, SamProcessor

    processor = SamProcessor.from_pretrained(model)
    sam = SamModel.from_pretrained(model).eval()
    inputs = processor(images=image, input_boxes=[[box]], return_tensors="pt")
    with torch.no_grad():
        outputs = sam(pixel_values=inputs["pixel_values"], input_boxes=inputs["input_boxes"])
    masks = processor.post_process_masks(
        outputs.pred_masks, inputs["original_sizes"], inputs["reshaped_input_sizes"]
    )[0][0]
    scores = outputs.iou_scores[0, 0]
    best = int(scores.argmax())
    return masks[best].numpy(), float(scores[best])


def test_batch_matches_the_one_image_recipe(tiny_sam: Path) -> None:
    predictions = segmenter(tiny_sam, batch_size=3).segment(images(), BOXES)
    for image, box, prediction in zip(images(), BOXES, predictions, strict=True):
        h, w = image.shape[:2]
        mask, score = reference(tiny_sam, image, list(box.xyxy) if box else [0, 0, w, h])
        assert prediction.mask.shape == (h, w) and prediction.mask.dtype == bool
        assert 0 < prediction.mask.mean() < 1
        assert (prediction.mask != mask).mean() < 1e-3
        assert prediction.score == pytest.approx(score, abs=1e-4)


def test_batched_equals_one_at_a_time(tiny_sam: Path) -> None:
    batched = segmenter(tiny_sam, batch_size=2).segment(images(), BOXES)
    single = segmenter(tiny_sam, batch_size=1)
    for image, box, a in zip(images(), BOXES, batched, strict=True):
        b = single.segment([image], [box])[0]
        assert (a.mask != b.mask).mean() < 1e-3
        assert a.score == pytest.approx(b.score, abs=1e-4)


def test_boxes_reach_the_model_in_its_resized_frame(
    tiny_sam: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sam = segmenter(tiny_sam)
    seen = {}
    real_forward = sam.model.forward

    def spy(**kwargs):
        seen["boxes"] = kwargs["input_boxes"].clone()
        return real_forward(**kwargs)

    monkeypatch.setattr(sam.model, "forward", spy)
    sam.segment(images(), BOXES)
    for image, box, got in zip(images(), BOXES, seen["boxes"], strict=True):
        h, w = image.shape[:2]
        scale = TINY_SAM_IMAGE_SIZE / max(h, w)
        expected = np.array(box.xyxy if box else (0, 0, w, h)) * scale
        np.testing.assert_allclose(got[0].numpy(), expected, atol=0.5)


def test_multimask_keeps_the_mask_with_the_highest_predicted_iou(
    tiny_sam: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    sam = segmenter(tiny_sam)
    seen = {}
    real_forward = sam.model.forward

    def rated(**kwargs):
        outputs = real_forward(**kwargs)
        seen["pred_masks"] = outputs.pred_masks
        outputs.iou_scores = torch.tensor([[[0.2, 0.7, 0.1]]])  # the second mask is rated best
        return outputs

    monkeypatch.setattr(sam.model, "forward", rated)
    image = images()[0]
    prediction = sam.segment([image], [BOXES[0]])[0]
    masks = sam.processor.post_process_masks(
        seen["pred_masks"],
        [image.shape[:2]],
        [[72, 128]],  # 90x160 resized to longest side 128
    )[0][0]
    assert prediction.score == pytest.approx(0.7)
    np.testing.assert_array_equal(prediction.mask, masks[1].numpy())
    assert not np.array_equal(prediction.mask, masks[0].numpy())


def test_single_mask_output(tiny_sam: Path) -> None:
    prediction = segmenter(tiny_sam, multimask=False).segment(images()[:1], BOXES[:1])[0]
    assert prediction.mask.shape == images()[0].shape[:2]


def test_missing_model_names_it_and_the_download(tmp_path: Path) -> None:
    from nearid_data.segment.sam_hf import SamHfSegmenter

    with pytest.raises(NearidError) as error:
        SamHfSegmenter(SamHfSegmenter.Config(model="facebook/sam-vit-base"))
    assert "facebook/sam-vit-base" in str(error.value)
    assert "hf download facebook/sam-vit-base" in str(error.value)


def test_a_model_of_another_family_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NearidError, match="'grounding-dino' model"):
        segmenter(save_tiny_gdino(tmp_path / "gdino"))


def test_sam2_models_load_their_own_classes(tmp_path: Path) -> None:
    pytest.importorskip("torchvision", reason="transformers' Sam2ImageProcessor needs torchvision")
    from tests.tiny_models import save_tiny_sam2_hf

    model = save_tiny_sam2_hf(tmp_path / "sam2")
    sam = segmenter(model, batch_size=3)
    assert type(sam.model).__name__ == "Sam2Model"
    predictions = sam.segment(images(), BOXES)
    single = segmenter(model, batch_size=1)
    for image, box, prediction in zip(images(), BOXES, predictions, strict=True):
        assert prediction.mask.shape == image.shape[:2]
        alone = single.segment([image], [box])[0]
        assert (prediction.mask != alone.mask).mean() < 1e-3


def test_nan_mask_logits_are_rejected_not_turned_into_masks(tiny_sam: Path) -> None:
    from nearid_data.errors import Rejection

    sam = segmenter(tiny_sam)

    def poison(_module, _inputs, outputs):
        outputs.pred_masks[..., 0, 0] = float("nan")
        return outputs

    sam.model.register_forward_hook(poison)
    with pytest.raises(Rejection) as error:
        sam.segment(images()[:1], BOXES[:1])
    assert error.value.reason == "non_finite_output" and "pred_masks" in error.value.detail
