"""GroundingDinoPyDetector on a tiny random-weight model from groundingdino-py's own builder.

groundingdino-py needs transformers < 5: this runs in its own venv (.ci/groundingdino.sh) and is
skipped where the package is missing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nearid_data.errors import NearidError
from nearid_data.segment.base import Box
from nearid_data.segment.groundingdino_py import MEAN, STD, GroundingDinoPyDetector
from tests.tiny_models import save_tiny_groundingdino_py

pytest.importorskip("groundingdino")

SIZES = {"resize": 64, "max_size": 96}
PROMPTS = ["a dog.", "a red car.", "photo of a cat."]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return save_tiny_groundingdino_py(tmp_path_factory.mktemp("groundingdino"))


def detector(files: dict[str, str], **settings: object) -> GroundingDinoPyDetector:
    return GroundingDinoPyDetector(GroundingDinoPyDetector.Config(**{**files, **SIZES, **settings}))


@pytest.fixture(scope="module")
def everything(tiny: dict[str, str]):
    return detector(tiny, box_threshold=0.0, text_threshold=0.0)


def random_images(shapes=((48, 80), (100, 60), (96, 160))) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in shapes]


def summary(boxes: list[Box], top: int = 30) -> np.ndarray:
    return np.array([[b.score, *b.xyxy] for b in boxes[:top]])


def test_one_image_matches_the_packages_predict_recipe(everything) -> None:
    """The package's ``predict``: transform, model(image[None]), max token prob, cxcywh * size."""
    import groundingdino.datasets.transforms as T
    import torch
    from PIL import Image

    transform = T.Compose([T.RandomResize([64], max_size=96), T.ToTensor(), T.Normalize(MEAN, STD)])
    for image, prompt in zip(random_images(), PROMPTS, strict=True):
        tensor, _ = transform(Image.fromarray(image), None)
        with torch.no_grad():
            outputs = everything.model(tensor[None], captions=[prompt])
        probs = outputs["pred_logits"].sigmoid()[0].max(dim=1).values
        cx, cy, w, h = outputs["pred_boxes"][0].unbind(-1)
        height, width = image.shape[:2]
        order = probs.argsort(descending=True)
        expected = torch.stack(
            [
                probs,
                (cx - w / 2) * width,
                (cy - h / 2) * height,
                (cx + w / 2) * width,
                (cy + h / 2) * height,
            ],
            dim=-1,
        )[order].numpy()
        expected[:, 1:] = expected[:, 1:].clip(0, [width, height, width, height])
        found = everything.detect([image], [prompt])[0]
        np.testing.assert_allclose(summary(found), expected, atol=1e-4)


def test_boxes_are_in_original_pixels(everything) -> None:
    shapes = [(40, 60), (100, 150)]
    flat = [np.full((h, w, 3), 120, np.uint8) for h, w in shapes]
    small, large = everything.detect(flat, ["a dog."] * 2)
    assert len(small) == len(large) > 0
    np.testing.assert_allclose(summary(large)[:, 0], summary(small)[:, 0], atol=1e-4)
    np.testing.assert_allclose(summary(large)[:, 1:], 2.5 * summary(small)[:, 1:], atol=0.05)


def test_batched_equals_one_at_a_time(everything) -> None:
    images = random_images(((40, 60), (80, 120), (64, 96)))  # one input size: no padding
    for image, prompt, boxes in zip(
        images, PROMPTS, everything.detect(images, PROMPTS), strict=True
    ):
        alone = everything.detect([image], [prompt])[0]
        assert [box.label for box in alone] == [box.label for box in boxes]
        np.testing.assert_allclose(summary(boxes), summary(alone), atol=1e-3)


def test_thresholds(tiny: dict[str, str], everything) -> None:
    found = everything.detect(random_images(), PROMPTS)
    scores = np.array([box.score for boxes in found for box in boxes])
    assert scores.min() < 0.5 < scores.max()
    threshold = float(np.median(scores))
    kept = detector(tiny, box_threshold=threshold, text_threshold=1.0).detect(
        random_images(), PROMPTS
    )
    for before, after in zip(found, kept, strict=True):
        assert [b.xyxy for b in after] == [b.xyxy for b in before if b.score > threshold]
        assert all(box.label == "" for box in after)
    assert all("red car" in box.label for box in found[1])


def test_missing_checkpoint_names_it_and_the_download(tiny: dict[str, str], tmp_path: Path) -> None:
    missing = tmp_path / "groundingdino_swint_ogc.pth"
    with pytest.raises(NearidError) as error:
        detector(tiny, checkpoint=str(missing))
    assert str(missing) in str(error.value)
    assert "curl" in str(error.value)
    assert "releases/download/v0.1.0-alpha/groundingdino_swint_ogc.pth" in str(error.value)


def test_missing_text_encoder_names_it_and_the_download(tiny: dict[str, str]) -> None:
    with pytest.raises(NearidError, match="hf download bert-base-uncased"):
        detector(tiny, text_encoder="bert-base-uncased")


def test_a_checkpoint_of_another_model_is_refused(tiny: dict[str, str], tmp_path: Path) -> None:
    import torch

    state = torch.load(tiny["checkpoint"], weights_only=True)["model"]
    del state["bbox_embed.0.layers.0.weight"]
    partial = tmp_path / "partial.pth"
    torch.save({"model": state}, partial)
    with pytest.raises(NearidError, match="does not fit"):
        detector(tiny, checkpoint=str(partial))
