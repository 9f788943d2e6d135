"""``CutPasteGenerator``: a model-free distractor made by pasting a sibling identity's subject.

The reference subject is removed by OpenCV inpainting of the editable region, then the donor's
subject (cut by its exact mask) is scaled to fit the reference subject's box, centred on it, and
pasted with a 1-pixel soft edge. ``placement`` is the pure geometry, exposed so the stage can
record how much of the pasted donor the final composite will clip away.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

import cv2
import numpy as np
from pydantic import Field

from nearid_data.backend import BackendConfig
from nearid_data.distractors.base import Donor, Generator, InpaintRequest
from nearid_data.distractors.compositing import composite
from nearid_data.segment.masks import bbox

_INPAINT_FLAGS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}


@dataclass(frozen=True)
class Placement:
    """Where the donor goes: its mask box ``donor_box`` (x0, y0, x1, y1) scaled by ``scale`` to
    ``size`` (w, h), top-left at ``offset`` (x, y) in reference pixels. ``clipped_fraction`` of the
    placed donor mask lies outside the editable region (or the image), which the final composite
    cuts away."""

    donor_box: tuple[int, int, int, int]
    scale: float
    offset: tuple[int, int]
    size: tuple[int, int]
    clipped_fraction: float


def placement(
    subject_mask: np.ndarray,
    donor_mask: np.ndarray,
    region: np.ndarray,
    *,
    scale_factor: float = 1.0,
) -> Placement:
    """Fit the donor's mask box inside the subject's mask box (aspect kept), centred on it.

    ``scale_factor`` multiplies the fitted scale (jitter). Raises ValueError for an empty mask.
    """
    subject_box, donor_box = bbox(subject_mask), bbox(donor_mask)
    if subject_box is None or donor_box is None:
        raise ValueError("placement needs a non-empty subject mask and donor mask")
    sx0, sy0, sx1, sy1 = subject_box
    dx0, dy0, dx1, dy1 = donor_box
    scale = min((sx1 - sx0) / (dx1 - dx0), (sy1 - sy0) / (dy1 - dy0)) * scale_factor
    size = (max(1, round((dx1 - dx0) * scale)), max(1, round((dy1 - dy0) * scale)))
    offset = (round((sx0 + sx1 - size[0]) / 2), round((sy0 + sy1 - size[1]) / 2))
    placed = _scaled_mask(np.asarray(donor_mask, dtype=bool)[dy0:dy1, dx0:dx1], size)
    region_view, placed_view = _overlap(np.asarray(region, dtype=bool), placed, offset)
    inside, total = np.count_nonzero(region_view & placed_view), np.count_nonzero(placed)
    # A thin donor can vanish when shrunk: nothing of it survives, so all of it counts as clipped.
    clipped = 1.0 - inside / total if total else 1.0
    return Placement(donor_box, float(scale), offset, size, float(clipped))


class CutPasteGenerator(Generator):
    needs_donor: ClassVar[bool] = True

    class Config(BackendConfig):
        # OpenCV inpainting method that fills the region the reference subject leaves behind.
        fill: Literal["telea", "ns"] = "telea"
        inpaint_radius: int = Field(default=5, ge=1)
        # The fitted scale is multiplied by a factor drawn uniformly from [1 - j, 1 + j].
        scale_jitter: float = Field(default=0.0, ge=0.0, lt=1.0)

    config: Config

    def generate(self, requests: Sequence[InpaintRequest]) -> list[np.ndarray]:
        return [self._generate_one(request) for request in requests]

    def placement_for(self, request: InpaintRequest) -> Placement:
        """The placement ``generate`` uses for this request (same jitter draw)."""
        donor = _donor(request)
        factor = 1.0
        if self.config.scale_jitter > 0:
            jitter = self.config.scale_jitter
            factor = float(np.random.default_rng(request.seed).uniform(1 - jitter, 1 + jitter))
        return placement(request.subject_mask, donor.mask, request.mask, scale_factor=factor)

    def request_figures(self, request: InpaintRequest) -> dict[str, float]:
        return {"donor_clipped": round(self.placement_for(request).clipped_fraction, 6)}

    def _generate_one(self, request: InpaintRequest) -> np.ndarray:
        donor = _donor(request)
        where = self.placement_for(request)
        region = np.asarray(request.mask, dtype=bool).astype(np.uint8) * 255
        filled = cv2.inpaint(
            np.ascontiguousarray(request.image, dtype=np.uint8),
            region,
            self.config.inpaint_radius,
            _INPAINT_FLAGS[self.config.fill],
        )
        x0, y0, x1, y1 = where.donor_box
        crop = np.ascontiguousarray(donor.image[y0:y1, x0:x1])
        crop_mask = np.asarray(donor.mask, dtype=bool)[y0:y1, x0:x1]
        pixels = _resize(crop, where.size)
        canvas, pasted = filled.copy(), np.zeros(filled.shape[:2], bool)
        canvas_view, pixels_view = _overlap(canvas, pixels, where.offset)
        canvas_view[...] = pixels_view
        pasted_view, mask_view = _overlap(pasted, _scaled_mask(crop_mask, where.size), where.offset)
        pasted_view[...] = mask_view
        # A 1-pixel inward feather antialiases the cut edge without pulling in donor background.
        return composite(filled, canvas, pasted, feather_px=1)


def _donor(request: InpaintRequest) -> Donor:
    if request.donor is None:
        raise ValueError(f"cut_paste needs a donor; request {request.key!r} has none")
    return request.donor


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    shrinking = size[0] < image.shape[1]
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def _scaled_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    # Resampling the mask like the pixels (then thresholding) keeps the two aligned and avoids the
    # staircase edges of nearest-neighbour upscaling.
    return _resize(mask.astype(np.float32), size) >= 0.5


def _overlap(
    target: np.ndarray, patch: np.ndarray, offset: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Views of ``target`` and ``patch`` where the patch, top-left at ``offset``, covers target."""
    x, y = offset
    height, width = target.shape[:2]
    tx0, ty0 = max(0, x), max(0, y)
    tx1, ty1 = max(tx0, min(width, x + patch.shape[1])), max(ty0, min(height, y + patch.shape[0]))
    return target[ty0:ty1, tx0:tx1], patch[ty0 - y : ty1 - y, tx0 - x : tx1 - x]
