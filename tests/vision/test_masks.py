"""Mask operations and figures on hand-made masks."""

from __future__ import annotations

import numpy as np
import pytest

from nearid_data.vision import masks


def disc(shape: tuple[int, int], centre: tuple[int, int], radius: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= radius**2


def ring(shape: tuple[int, int] = (64, 64)) -> np.ndarray:
    return disc(shape, (32, 32), 20) & ~disc(shape, (32, 32), 10)


def test_fill_holes_fills_a_ring_hole() -> None:
    filled = masks.fill_holes(ring())
    assert np.array_equal(filled, disc((64, 64), (32, 32), 20))


def test_fill_holes_leaves_an_open_c_shape_open() -> None:
    c_shape = ring()
    c_shape[28:37, 32:] = False  # cut the ring open to the right: the inside reaches the border
    filled = masks.fill_holes(c_shape)
    assert np.array_equal(filled, c_shape)


def test_fill_holes_keeps_background_touching_the_border() -> None:
    mask = np.zeros((20, 20), bool)
    mask[:, 5] = True  # a wall: the strip to its left touches the border, so it is not a hole
    assert np.array_equal(masks.fill_holes(mask), mask)


def test_largest_component_keeps_the_bigger_blob() -> None:
    big, small = disc((64, 64), (20, 20), 12), disc((64, 64), (50, 50), 5)
    assert np.array_equal(masks.largest_component(big | small), big)


def test_largest_component_uses_8_connectivity() -> None:
    diagonal = np.eye(6, dtype=bool)
    assert np.array_equal(masks.largest_component(diagonal), diagonal)


def test_largest_component_of_empty_is_empty() -> None:
    empty = np.zeros((8, 8), bool)
    assert not masks.largest_component(empty).any()


def test_clean_fills_and_keeps_one_blob() -> None:
    noisy = ring() | disc((64, 64), (60, 60), 2)
    assert np.array_equal(masks.clean(noisy), disc((64, 64), (32, 32), 20))


def test_dilate_grows_a_point_to_a_disc_and_zero_is_a_copy() -> None:
    point = np.zeros((41, 41), bool)
    point[20, 20] = True
    grown = masks.dilate(point, 5)
    assert grown[20, 15] and grown[20, 25] and grown[15, 20] and grown[25, 20]
    assert not grown[20, 14] and not grown[14, 20]
    assert abs(grown.sum() - np.pi * 25) < 0.25 * np.pi * 25
    copy = masks.dilate(point, 0)
    assert np.array_equal(copy, point) and copy is not point


def test_dilate_area_grows_with_radius() -> None:
    mask = disc((100, 100), (50, 50), 15)
    areas = [masks.dilate(mask, r).sum() for r in (0, 2, 5, 10)]
    assert areas == sorted(areas) and len(set(areas)) == 4
    # A disc of radius 15 dilated by 10 is close to a disc of radius 25.
    assert abs(areas[-1] - np.pi * 25**2) < 0.05 * np.pi * 25**2


def test_erode_shrinks_but_not_from_the_image_edge() -> None:
    full = np.ones((10, 10), bool)
    assert masks.erode(full, 3).all()
    assert masks.erode(disc((40, 40), (20, 20), 10), 3).sum() < disc((40, 40), (20, 20), 10).sum()


def test_negative_radius_is_an_error() -> None:
    with pytest.raises(ValueError):
        masks.dilate(ring(), -1)


@pytest.mark.parametrize("pixels", [1, 3, 8])
def test_feather_is_one_on_the_mask_and_zero_beyond_the_dilation(pixels: int) -> None:
    mask = ring((80, 80))
    alpha = masks.feather(mask, pixels)
    assert alpha.dtype == np.float32 and alpha.shape == mask.shape
    assert (alpha[mask] == 1.0).all()
    assert (alpha[~masks.dilate(mask, pixels)] == 0.0).all()
    assert alpha.min() >= 0.0 and alpha.max() <= 1.0
    soft = (alpha > 0) & (alpha < 1)
    assert soft.any() and not (soft & mask).any()


def test_feather_falls_off_with_distance() -> None:
    mask = np.zeros((1, 20), bool)
    mask[0, :5] = True
    alpha = masks.feather(mask, 4)[0]
    assert list(alpha[:5]) == [1.0] * 5
    assert (np.diff(alpha[4:10]) < 0).all()
    assert (alpha[9:] == 0).all()


def test_feather_zero_is_the_mask() -> None:
    assert np.array_equal(masks.feather(ring(), 0), ring().astype(np.float32))


def test_bbox_is_exclusive_and_none_when_empty() -> None:
    mask = np.zeros((10, 12), bool)
    mask[2:5, 3:9] = True
    assert masks.bbox(mask) == (3, 2, 9, 5)
    assert masks.bbox(np.zeros((4, 4), bool)) is None


def test_area_fraction() -> None:
    mask = np.zeros((10, 10), bool)
    mask[:5, :2] = True
    assert masks.area_fraction(mask) == pytest.approx(0.1)


def test_touches_border_with_margin() -> None:
    mask = np.zeros((20, 20), bool)
    mask[3:10, 5:10] = True
    assert not masks.touches_border(mask)
    assert not masks.touches_border(mask, margin=2)
    assert masks.touches_border(mask, margin=3)
    mask[19, 10] = True
    assert masks.touches_border(mask)


def test_iou() -> None:
    a = np.zeros((10, 10), bool)
    b = np.zeros((10, 10), bool)
    assert masks.iou(a, b) == 1.0
    a[:, :5] = True
    assert masks.iou(a, b) == 0.0
    b[:, 2:7] = True
    assert masks.iou(a, b) == pytest.approx(3 / 7)
    with pytest.raises(ValueError):
        masks.iou(a, np.zeros((5, 5), bool))
