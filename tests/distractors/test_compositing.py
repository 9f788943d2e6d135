"""The fidelity guarantee (composite) and the QA figures (measure)."""

from __future__ import annotations

import numpy as np
import pytest

from nearid_data.distractors.compositing import DistractorQA, composite, inward_alpha, measure
from nearid_data.vision.masks import erode


def random_images(seed: int, shape: tuple[int, int] = (64, 80)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (
        rng.integers(0, 256, (*shape, 3), dtype=np.uint8),
        rng.integers(0, 256, (*shape, 3), dtype=np.uint8),
    )


def blob(shape: tuple[int, int] = (64, 80)) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return ((xx - 40) / 25) ** 2 + ((yy - 30) / 18) ** 2 <= 1


@pytest.mark.parametrize("feather_px", [0, 1, 4, 12])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_outside_is_bit_identical_to_the_reference(seed: int, feather_px: int) -> None:
    reference, generated = random_images(seed)
    region = blob()
    result = composite(reference, generated, region, feather_px=feather_px)
    assert result.dtype == np.uint8 and result.shape == reference.shape
    assert np.array_equal(result[~region], reference[~region])


@pytest.mark.parametrize("feather_px", [0, 3])
def test_deep_inside_is_the_generated_image(feather_px: int) -> None:
    reference, generated = random_images(7)
    region = blob()
    result = composite(reference, generated, region, feather_px=feather_px)
    deep = erode(region, feather_px + 1)
    assert deep.any()
    assert np.array_equal(result[deep], generated[deep])


def test_feather_blends_the_band_inside_the_boundary() -> None:
    reference = np.zeros((40, 40, 3), np.uint8)
    generated = np.full((40, 40, 3), 200, np.uint8)
    region = np.zeros((40, 40), bool)
    region[:, 20:] = True
    row = composite(reference, generated, region, feather_px=3)[10, :, 0]
    assert list(row[:20]) == [0] * 20
    assert 0 < row[20] < row[21] < row[22] < 200 and (row[23:] == 200).all()


def test_inward_alpha_ignores_the_image_edge() -> None:
    region = np.ones((10, 10), bool)
    region[:, :2] = False
    alpha = inward_alpha(region, 2)
    assert alpha[:, :2].max() == 0.0
    assert (alpha[:, 5:] == 1.0).all()  # rows along the top and bottom edge are not feathered


def test_composite_rejects_mismatched_inputs() -> None:
    reference, generated = random_images(0)
    with pytest.raises(ValueError):
        composite(reference, generated[:10], blob())
    with pytest.raises(ValueError):
        composite(reference, generated, blob()[:10])
    with pytest.raises(ValueError):
        composite(reference, generated.astype(np.float32), blob())


def test_identical_images_change_nothing() -> None:
    reference, _ = random_images(3)
    qa = measure(reference, reference.copy(), blob())
    assert qa == DistractorQA(True, 0.0, 0.0, 0.0)


def test_a_modified_outside_is_caught() -> None:
    reference, generated = random_images(4)
    distractor = composite(reference, generated, blob())
    assert measure(reference, distractor, blob()).outside_equal
    distractor[0, 0, 1] ^= 1
    assert not measure(reference, distractor, blob()).outside_equal


def test_inside_figures_on_a_hand_made_edit() -> None:
    reference = np.full((20, 20, 3), 100, np.uint8)
    region = np.zeros((20, 20), bool)
    region[5:15, 5:15] = True  # 100 pixels
    distractor = reference.copy()
    distractor[5:10, 5:15, 0] = 130  # 50 pixels: one channel by 30 (> 16)
    distractor[10:15, 5:15] = 110  # 50 pixels: every channel by 10 (<= 16)
    qa = measure(reference, distractor, region)
    assert qa.outside_equal
    assert qa.inside_changed_fraction == pytest.approx(0.5)
    assert qa.inside_mean_abs_diff == pytest.approx((50 * 30 + 50 * 3 * 10) / 300)


def test_a_hard_seam_scores_higher_than_a_feathered_one() -> None:
    yy, xx = np.mgrid[:64, :64]
    reference = np.repeat((xx + yy).astype(np.uint8)[..., None], 3, axis=2)
    generated = np.clip(reference.astype(int) + 80, 0, 255).astype(np.uint8)
    region = ((xx - 32) ** 2 + (yy - 32) ** 2) <= 20**2
    hard = measure(reference, composite(reference, generated, region), region)
    soft = measure(reference, composite(reference, generated, region, feather_px=6), region)
    assert hard.seam_gradient > 2 * soft.seam_gradient
    assert measure(reference, generated, region).seam_gradient < 1e-3  # no seam: same gradients


def test_an_empty_region_has_zero_inside_figures() -> None:
    reference, generated = random_images(5)
    empty = np.zeros(reference.shape[:2], bool)
    qa = measure(reference, generated, empty)
    assert not qa.outside_equal
    assert (qa.inside_mean_abs_diff, qa.inside_changed_fraction, qa.seam_gradient) == (0, 0, 0)
