"""The GrabCut segmenter on a synthetic subject: a coloured ellipse on a textured background."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from nearid_data.segment.base import Box
from nearid_data.segment.classical import ClassicalSegmenter, edge_agreement
from nearid_data.vision.masks import bbox, iou


def scene(size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A red ellipse (noisy) on a dark noisy greenish-grey background, and its exact mask."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    ellipse = ((xx - 0.52 * size) / (0.22 * size)) ** 2 + ((yy - 0.5 * size) / (0.3 * size)) ** 2
    mask = ellipse <= 1
    image = rng.integers(0, 90, (size, size, 3)).astype(np.int16)
    image[..., 1] += 40
    image[mask] = np.array([220, 60, 40]) + rng.integers(-25, 25, (int(mask.sum()), 3))
    return np.clip(image, 0, 255).astype(np.uint8), mask


def box_of(mask: np.ndarray) -> Box:
    x0, y0, x1, y1 = bbox(mask)  # type: ignore[misc]
    return Box((float(x0), float(y0), float(x1), float(y1)), score=1.0)


@pytest.fixture(scope="module")
def segmenter() -> ClassicalSegmenter:
    return ClassicalSegmenter(ClassicalSegmenter.Config())


def test_finds_the_ellipse_given_its_box(segmenter: ClassicalSegmenter) -> None:
    image, truth = scene(256)
    (prediction,) = segmenter.segment([image], [box_of(truth)])
    assert prediction.mask.dtype == bool and prediction.mask.shape == truth.shape
    assert prediction.score == 1.0
    assert iou(prediction.mask, truth) > 0.85


def test_finds_the_ellipse_with_the_centre_prior(segmenter: ClassicalSegmenter) -> None:
    image, truth = scene(256, seed=1)
    (prediction,) = segmenter.segment([image], [None])
    assert iou(prediction.mask, truth) > 0.85


def test_large_images_are_downscaled_and_the_mask_comes_back_full_size(
    segmenter: ClassicalSegmenter,
) -> None:
    image, truth = scene(1024, seed=2)
    start = time.perf_counter()
    (prediction,) = segmenter.segment([image], [box_of(truth)])
    elapsed = time.perf_counter() - start
    assert prediction.mask.shape == truth.shape
    assert iou(prediction.mask, truth) > 0.85
    assert elapsed < 5.0  # GrabCut at full size takes several times longer


def test_results_are_reproducible(segmenter: ClassicalSegmenter) -> None:
    image, truth = scene(200, seed=3)
    first = segmenter.segment([image, image], [box_of(truth), None])
    cv2.setRNGSeed(12345)  # whatever else moved OpenCV's RNG in between must not matter
    again = ClassicalSegmenter(ClassicalSegmenter.Config()).segment(
        [image, image], [box_of(truth), None]
    )
    for a, b in zip(first, again, strict=True):
        assert np.array_equal(a.mask, b.mask)


def test_a_degenerate_box_gives_an_empty_mask(segmenter: ClassicalSegmenter) -> None:
    image, _ = scene(64)
    config = ClassicalSegmenter.Config(margin=0)
    (prediction,) = ClassicalSegmenter(config).segment([image], [Box((10, 10, 10, 40), 1.0)])
    assert not prediction.mask.any()


def test_a_whole_image_box_falls_back_to_the_centre_prior(segmenter: ClassicalSegmenter) -> None:
    image, truth = scene(160, seed=4)
    (prediction,) = segmenter.segment([image], [Box((0, 0, 160, 160), 1.0)])
    assert iou(prediction.mask, truth) > 0.85


def test_images_and_boxes_must_pair_up(segmenter: ClassicalSegmenter) -> None:
    image, _ = scene(32)
    with pytest.raises(ValueError):
        segmenter.segment([image], [])


def test_mask_score_is_the_outlines_edge_agreement(segmenter: ClassicalSegmenter) -> None:
    image, truth = scene(256)
    (prediction,) = segmenter.segment([image], [box_of(truth)])
    assert prediction.score == edge_agreement(image, prediction.mask) > 0.8
    shifted = np.roll(truth, (0, 24), axis=(0, 1))  # an outline through flat background
    # The noisy background has strong gradients too, so a wrong outline still scores ~0.5.
    assert edge_agreement(image, truth) > edge_agreement(image, shifted) + 0.3
    assert edge_agreement(image, np.zeros_like(truth)) == 0.0
