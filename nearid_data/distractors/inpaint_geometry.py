"""Where a diffusers generator paints and at what size: crop regions, working sizes, resizing.

``crop: full`` paints the whole image; ``crop: subject`` a square around the bounding box
of ``mask``, grown on each side by ``crop_padding`` times the box's longer side, shifted to lie in
the image (a rectangle when the image is narrower than the square). That region is resized to a
working size of about ``resolution``² pixels with the region's aspect ratio, both sides rounded to
multiples of 8x the VAE scale factor (64 for SD, SDXL and FLUX: the latent grid then stays
divisible through every down block), painted, and resized back. Outside the region the output is
the input, bit for bit; inside it is the raw painted image (the stage composites and runs QA).

Bucketed sizes: with ``bucketed=True`` the region's aspect ratio first snaps to the nearest of
``ASPECT_BUCKETS``, so all working sizes at one resolution come from a fixed set of nine
(``bucket_sizes``) and a compiled denoiser is traced for each at most once, whatever the crops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Region:
    """The pixel box ``[x0, x1) x [y0, y1)`` of a request image that the model paints."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    def cut(self, array: np.ndarray) -> np.ndarray:
        return array[self.y0 : self.y1, self.x0 : self.x1]


def paint_region(mask: np.ndarray, *, crop: str, padding: float) -> Region:
    """The region to paint; the whole image for ``full`` or an empty mask."""
    height, width = mask.shape
    ys, xs = np.nonzero(mask)
    if crop == "full" or ys.size == 0:
        return Region(0, 0, width, height)
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    side = math.ceil(max(x1 - x0, y1 - y0) * (1 + 2 * padding))
    crop_w, crop_h = min(side, width), min(side, height)
    left = _place(x0, x1, crop_w, width)
    top = _place(y0, y1, crop_h, height)
    return Region(left, top, left + crop_w, top + crop_h)


def _place(lo: int, hi: int, size: int, limit: int) -> int:
    """Start of a ``size`` window centred on ``[lo, hi)`` (containing it) within ``[0, limit)``."""
    return min(max((lo + hi - size) // 2, 0), limit - size)


# Width:height ratios bucketed working sizes snap to (nearest in log ratio); wider regions squeeze.
ASPECT_BUCKETS = (1 / 2, 9 / 16, 2 / 3, 3 / 4, 1.0, 4 / 3, 3 / 2, 16 / 9, 2.0)


def working_size(
    width: float, height: float, *, resolution: int, multiple: int, bucketed: bool = False
) -> tuple[int, int]:
    """(width, height) of about ``resolution``² pixels with the aspect of ``width x height``
    (with ``bucketed``: of the nearest ``ASPECT_BUCKETS`` ratio).

    Each side is a multiple of ``multiple`` and at most ``2 * resolution``, so an extreme aspect
    ratio cannot blow up the working size (it gets squeezed instead).
    """
    if bucketed:
        ratio = width / height
        width, height = min(ASPECT_BUCKETS, key=lambda bucket: abs(math.log(ratio / bucket))), 1.0
    scale = resolution / math.sqrt(width * height)

    def side(length: float) -> int:
        return min(max(multiple, round(length * scale / multiple) * multiple), 2 * resolution)

    return side(width), side(height)


def bucket_sizes(*, resolution: int, multiple: int) -> list[tuple[int, int]]:
    """Every working size ``bucketed=True`` can give at ``resolution``."""
    return [
        working_size(ratio, 1.0, resolution=resolution, multiple=multiple)
        for ratio in ASPECT_BUCKETS
    ]


def _resize(array: np.ndarray, width: int, height: int, *, grow: int, shrink: int) -> np.ndarray:
    if array.shape[1] == width and array.shape[0] == height:
        return array
    shrinking = width * height < array.shape[0] * array.shape[1]
    return cv2.resize(array, (width, height), interpolation=shrink if shrinking else grow)


def resize_image(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Float RGB in [0, 1]: area averaging to shrink, bicubic to grow."""
    resized = _resize(image, width, height, grow=cv2.INTER_CUBIC, shrink=cv2.INTER_AREA)
    return np.clip(resized, 0.0, 1.0)


def resize_mask(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bool mask resized so that every pixel touching the mask is in it (it never loses any)."""
    weights = _resize(
        mask.astype(np.float32), width, height, grow=cv2.INTER_LINEAR, shrink=cv2.INTER_AREA
    )
    return weights > 0.0


def paste_region(image: np.ndarray, region: Region, painted: np.ndarray) -> np.ndarray:
    """``image`` with ``region`` replaced by ``painted`` resized back to the region, as uint8."""
    patch = resize_image(painted, region.width, region.height)
    out = image.copy()
    out[region.y0 : region.y1, region.x0 : region.x1] = np.rint(patch * 255.0).astype(np.uint8)
    return out
