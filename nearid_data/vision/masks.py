"""Subject-mask operations and figures: pure functions on bool (H, W) masks.

Operations return a new bool mask (``feather`` returns a float32 alpha); figures return plain
Python numbers so they can go straight into a manifest record.
"""

from __future__ import annotations

import cv2
import numpy as np


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """The mask with every background region that does not reach the image border filled in."""
    mask = np.asarray(mask, dtype=bool)
    # Pad by one background pixel so the flood fill from one corner reaches every border pixel.
    background = np.pad(~mask, 1, constant_values=True).astype(np.uint8)
    flood = np.zeros((background.shape[0] + 2, background.shape[1] + 2), np.uint8)
    # 4-connectivity for the background is the dual of 8-connectivity for the subject.
    cv2.floodFill(background, flood, (0, 0), 2, flags=4)
    outside = background[1:-1, 1:-1] == 2
    return ~outside


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of the mask (an empty mask stays empty)."""
    mask = np.asarray(mask, dtype=bool)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        mask.astype(np.uint8), connectivity=8
    )
    if count <= 1:
        return np.zeros_like(mask)
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return labels == biggest


def _disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def dilate(mask: np.ndarray, pixels: int) -> np.ndarray:
    """The mask grown by an elliptical (disc) kernel of radius ``pixels``; 0 returns a copy."""
    mask = np.asarray(mask, dtype=bool)
    if pixels < 0:
        raise ValueError(f"pixels must be >= 0, got {pixels}")
    if pixels == 0:
        return mask.copy()
    return cv2.dilate(mask.astype(np.uint8), _disc(pixels)).astype(bool)


def erode(mask: np.ndarray, pixels: int) -> np.ndarray:
    """The mask shrunk by a disc of radius ``pixels``; 0 returns a copy.

    Beyond the image edge counts as mask, so a mask that reaches the edge does not shrink there.
    """
    mask = np.asarray(mask, dtype=bool)
    if pixels < 0:
        raise ValueError(f"pixels must be >= 0, got {pixels}")
    if pixels == 0:
        return mask.copy()
    return cv2.erode(mask.astype(np.uint8), _disc(pixels)).astype(bool)


def feather(mask: np.ndarray, pixels: int) -> np.ndarray:
    """A soft alpha (float32 in [0, 1]): 1 on the mask, falling linearly to 0 within ``pixels``
    outside it. It is zero wherever ``dilate(mask, pixels)`` is False."""
    mask = np.asarray(mask, dtype=bool)
    if pixels <= 0 or not mask.any():
        return mask.astype(np.float32)
    # Distance of each pixel to the nearest mask pixel (mask pixels are 0).
    distance = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    alpha = np.clip(1.0 - distance / (pixels + 1), 0.0, 1.0).astype(np.float32)
    # The discrete disc kernel is not exactly the Euclidean ball: clip to it so the guarantee holds.
    alpha[~dilate(mask, pixels)] = 0.0
    alpha[mask] = 1.0
    return alpha


def clean(mask: np.ndarray) -> np.ndarray:
    """The largest component of the mask with its holes filled: one solid subject."""
    return largest_component(fill_holes(mask))


def bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of the mask's True pixels, with x1/y1 exclusive; None for an empty mask."""
    mask = np.asarray(mask, dtype=bool)
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def area_fraction(mask: np.ndarray) -> float:
    """Fraction of the image's pixels that are in the mask (0.0 for a zero-size image)."""
    mask = np.asarray(mask, dtype=bool)
    return float(mask.mean()) if mask.size else 0.0


def touches_border(mask: np.ndarray, margin: int = 0) -> bool:
    """Whether any mask pixel lies within ``margin`` pixels of the image edge (0: on the edge)."""
    mask = np.asarray(mask, dtype=bool)
    band = margin + 1
    return bool(
        mask[:band].any() or mask[-band:].any() or mask[:, :band].any() or mask[:, -band:].any()
    )


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two masks. Two empty masks agree perfectly: 1.0."""
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"mask shapes differ: {a.shape} vs {b.shape}")
    union = np.count_nonzero(a | b)
    if union == 0:
        return 1.0
    return np.count_nonzero(a & b) / union
