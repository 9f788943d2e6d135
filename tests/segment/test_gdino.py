"""GdinoDetector on a tiny random-weight transformers GroundingDINO saved to a temp dir."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nearid_data.errors import NearidError
from nearid_data.segment.base import Box
from tests.tiny_models import save_tiny_gdino

pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_gdino(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_gdino(tmp_path_factory.mktemp("gdino"))


def detector(model: Path | str, **settings: object):
    from nearid_data.segment.gdino import GdinoDetector

    return GdinoDetector(GdinoDetector.Config(model=str(model), **settings))


@pytest.fixture(scope="module")
def everything(tiny_gdino: Path):
    """A detector that keeps every query and labels with every prompt word."""
    return detector(tiny_gdino, box_threshold=0.0, text_threshold=0.0)


def random_images(shapes: tuple[tuple[int, int], ...] = ((48, 80), (100, 60), (96, 160))):
    """Non-square images, by default of different sizes: a batch of them is padded."""
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in shapes]


PROMPTS = ["a dog.", "a red car.", "photo of a cat."]


def summary(boxes: list[Box], top: int = 5) -> np.ndarray:
    return np.array([[b.score, *b.xyxy] for b in boxes[:top]])


def test_boxes_are_in_original_pixels(everything) -> None:
    # A flat image looks the same to the model at any size, once resized to its input size.
    # Each pair has one aspect ratio and sizes 1x and 2.5x, so the boxes must scale by 2.5.
    shapes = [(40, 60), (100, 150), (60, 40), (150, 100)]
    flat = [np.full((h, w, 3), 120, np.uint8) for h, w in shapes]
    small_wide, large_wide, small_tall, large_tall = everything.detect(flat, ["a dog."] * 4)
    pairs = [(small_wide, large_wide, shapes[1]), (small_tall, large_tall, shapes[3])]
    for small, large, (h, w) in pairs:
        assert len(small) == len(large) > 0
        np.testing.assert_allclose(summary(large)[:, 0], summary(small)[:, 0], atol=1e-4)
        np.testing.assert_allclose(summary(large)[:, 1:], 2.5 * summary(small)[:, 1:], atol=0.05)
        for box in large:
            x0, y0, x1, y1 = box.xyxy
            assert 0 <= x0 <= x1 <= w and 0 <= y0 <= y1 <= h


def test_batched_equals_one_at_a_time(everything) -> None:
    # One aspect ratio, three sizes: all resize to the same input, so the batch needs no padding.
    # (Mixed sizes are padded, and padding shifts results a little, as in GroundingDINO's own
    # batched inference: its backbone and text-image fusion see the padded pixels.)
    images = random_images(((40, 60), (80, 120), (64, 96)))
    batched = everything.detect(images, PROMPTS)
    for image, prompt, boxes in zip(images, PROMPTS, batched, strict=True):
        alone = everything.detect([image], [prompt])[0]
        assert [box.label for box in alone] == [box.label for box in boxes]
        np.testing.assert_allclose(summary(boxes, 30), summary(alone, 30), atol=1e-3)


def test_box_threshold_keeps_exactly_the_boxes_above_it(tiny_gdino: Path, everything) -> None:
    found = everything.detect(random_images(), PROMPTS)
    scores = np.array([box.score for boxes in found for box in boxes])
    assert scores.min() < 0.5 < scores.max()  # the tiny model's scores do spread
    threshold = float(np.median(scores))
    some = detector(tiny_gdino, box_threshold=threshold, text_threshold=0.0)
    kept = some.detect(random_images(), PROMPTS)
    for before, after in zip(found, kept, strict=True):
        assert after == [box for box in before if box.score > threshold]


def test_boxes_come_best_first(everything) -> None:
    for boxes in everything.detect(random_images(), PROMPTS):
        scores = [box.score for box in boxes]
        assert scores == sorted(scores, reverse=True)


def test_text_threshold_decides_which_prompt_words_label_a_box(
    tiny_gdino: Path, everything
) -> None:
    image, prompt = random_images()[:1], ["a red car."]
    loose = everything.detect(image, prompt)[0]
    strict = detector(tiny_gdino, box_threshold=0.0, text_threshold=1.0).detect(image, prompt)[0]
    assert all("red car" in box.label for box in loose)
    assert all(box.label == "" for box in strict)


def test_prompts_are_normalized_to_groundingdino_captions(everything) -> None:
    image = random_images()[:1]
    assert everything.detect(image, ["  A Red   Car "]) == everything.detect(image, ["a red car."])


def test_images_and_prompts_must_pair_up(everything) -> None:
    with pytest.raises(ValueError, match="3 images but 2 prompts"):
        everything.detect(random_images(), PROMPTS[:2])


def test_float32_on_cpu_by_default(everything) -> None:
    import torch

    assert everything.dtype == torch.float32
    assert next(everything.model.parameters()).dtype == torch.float32


def test_missing_model_names_it_and_the_download() -> None:
    with pytest.raises(NearidError) as error:
        detector("IDEA-Research/grounding-dino-base")
    message = str(error.value)
    assert "IDEA-Research/grounding-dino-base" in message
    assert "hf download IDEA-Research/grounding-dino-base" in message


def test_bfloat16_runs_on_cpu_and_finds_the_float32_boxes(tiny_gdino: Path, everything) -> None:
    half = detector(tiny_gdino, box_threshold=0.0, text_threshold=0.0, dtype="bfloat16")
    import torch

    assert next(half.model.parameters()).dtype == torch.bfloat16
    images = random_images(((48, 80),))
    full, low = everything.detect(images, PROMPTS[:1])[0], half.detect(images, PROMPTS[:1])[0]
    assert len(low) == len(full) > 0
    # bfloat16 keeps 8 bits of mantissa: the score distribution agrees to a few hundredths
    low_scores, full_scores = np.array([b.score for b in low]), np.array([b.score for b in full])
    assert np.abs(low_scores - full_scores).mean() < 0.02
    assert np.abs(low_scores - full_scores).max() < 0.1


def test_nan_outputs_are_rejected_not_turned_into_boxes(tiny_gdino: Path) -> None:
    from nearid_data.errors import Rejection

    broken = detector(tiny_gdino)

    def poison(_module, _inputs, outputs):
        outputs.pred_boxes[0, 0, 0] = float("nan")
        return outputs

    broken.model.register_forward_hook(poison)
    with pytest.raises(Rejection) as error:
        broken.detect(random_images(((48, 80),)), PROMPTS[:1])
    assert error.value.reason == "non_finite_output" and "pred_boxes" in error.value.detail
