"""``CutPasteGenerator``: a model-free distractor made by pasting a sibling identity's subject.

The donor's subject (cut by its exact mask) is scaled, aspect kept, and placed to cover the
reference subject's mask, so that none of the reference shows around it; only what the donor
leaves uncovered is filled, by OpenCV inpainting from the background around the editable region.
``placement`` is the pure geometry, exposed so the stage can record how much of the reference
subject the donor covers and how much of the donor the final composite clips away.
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
from nearid_data.errors import Rejection
from nearid_data.vision.masks import bbox

_INPAINT_FLAGS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}
# The placement search runs on masks downscaled to this long side: coverage is a share of areas,
# which a coarse grid measures well, and the search stays cheap on large photographs.
_SEARCH_SIDE = 96
# Scales tried, as multiples of the scale at which the donor's box just fits inside the
# subject's box, up to this multiple of the scale at which it just covers it.
_SCALE_STEPS = 9
_MAX_OVERSCALE = 1.3
# Offsets tried around the centroid-aligned position, as fractions of the placed donor's size.
_SHIFTS = (-0.15, -0.075, 0.0, 0.075, 0.15)


@dataclass(frozen=True)
class Placement:
    """Where the donor goes: its mask box ``donor_box`` (x0, y0, x1, y1) scaled by ``scale`` to
    ``size`` (w, h), top-left at ``offset`` (x, y) in reference pixels. ``covered_fraction`` of the
    reference subject's mask lies under the placed donor mask; ``clipped_fraction`` of the placed
    donor mask lies outside the editable region (or the image), which the final composite cuts
    away."""

    donor_box: tuple[int, int, int, int]
    scale: float
    offset: tuple[int, int]
    size: tuple[int, int]
    covered_fraction: float
    clipped_fraction: float


def placement(
    subject_mask: np.ndarray,
    donor_mask: np.ndarray,
    region: np.ndarray,
    *,
    scale_factor: float = 1.0,
    max_clipped: float = 0.2,
) -> Placement:
    """Scale (aspect kept) and place the donor's mask to cover the subject's mask.

    Among scales from "donor box fits inside the subject box" to a little past "donor box covers
    it", and offsets around the centroid-aligned position, the placement covering most of the
    subject with at most ``max_clipped`` of the donor clipped wins, the smallest scale on ties;
    when none stays within ``max_clipped``, the one with the best covered-minus-clipped share.
    ``scale_factor`` multiplies the chosen scale (jitter). Raises ValueError for an empty mask.
    """
    subject = np.asarray(subject_mask, dtype=bool)
    donor = np.asarray(donor_mask, dtype=bool)
    subject_box, donor_box = bbox(subject), bbox(donor)
    if subject_box is None or donor_box is None:
        raise ValueError("placement needs a non-empty subject mask and donor mask")
    crop = donor[donor_box[1] : donor_box[3], donor_box[0] : donor_box[2]]
    shrink = min(1.0, _SEARCH_SIDE / max(subject.shape))
    small_subject, small_region = (
        _shrunk(subject, shrink),
        _shrunk(np.asarray(region, bool), shrink),
    )
    best: tuple[tuple[bool, int, float], float, tuple[float, float]] | None = None
    for scale in _candidate_scales(subject_box, donor_box):
        size = _scaled_size(crop, scale * shrink)
        placed = _scaled_mask(crop, size)
        for offset in _candidate_offsets(small_subject, placed):
            covered, clipped = _coverage(small_subject, small_region, placed, offset)
            within = clipped <= max_clipped
            # Coverage within half a percent counts as equal, so the smaller donor wins.
            score = covered if within else covered - clipped
            rank = (within, round(score * 200), -scale)
            if best is None or rank > best[0]:
                best = (rank, scale, (offset[0] / shrink, offset[1] / shrink))
    assert best is not None
    _, scale, (x, y) = best
    size = _scaled_size(crop, scale)
    # Keep the chosen top-left's relation to the subject when jitter rescales about the centre.
    centre = (x + size[0] / 2, y + size[1] / 2)
    scale *= scale_factor
    size = _scaled_size(crop, scale)
    offset = (round(centre[0] - size[0] / 2), round(centre[1] - size[1] / 2))
    placed = _scaled_mask(crop, size)
    covered, clipped = _coverage(subject, np.asarray(region, bool), placed, offset)
    return Placement(donor_box, float(scale), offset, size, covered, clipped)


def _candidate_scales(
    subject_box: tuple[int, int, int, int], donor_box: tuple[int, int, int, int]
) -> list[float]:
    sx0, sy0, sx1, sy1 = subject_box
    dx0, dy0, dx1, dy1 = donor_box
    ratios = ((sx1 - sx0) / (dx1 - dx0), (sy1 - sy0) / (dy1 - dy0))
    low, high = min(ratios), max(ratios) * _MAX_OVERSCALE
    return [float(s) for s in np.geomspace(low, high, _SCALE_STEPS)]


def _candidate_offsets(subject: np.ndarray, placed: np.ndarray) -> list[tuple[int, int]]:
    """Top-left positions: centroids aligned, then shifted by fractions of the donor's size."""
    sy, sx = (float(v.mean()) for v in np.nonzero(subject))
    py, px = (float(v.mean()) for v in np.nonzero(placed)) if placed.any() else (0.0, 0.0)
    height, width = placed.shape
    return [
        (round(sx - px + dx * width), round(sy - py + dy * height))
        for dy in _SHIFTS
        for dx in _SHIFTS
    ]


def _coverage(
    subject: np.ndarray, region: np.ndarray, placed: np.ndarray, offset: tuple[int, int]
) -> tuple[float, float]:
    """(share of the subject under the placed donor, share of the donor outside the region)."""
    subject_view, placed_view = _overlap(subject, placed, offset)
    region_view, _ = _overlap(region, placed, offset)
    total = np.count_nonzero(placed)
    covered = np.count_nonzero(subject_view & placed_view) / max(1, int(np.count_nonzero(subject)))
    # A thin donor can vanish when shrunk: nothing of it survives, so all of it counts as clipped.
    clipped = 1.0 - np.count_nonzero(region_view & placed_view) / total if total else 1.0
    return float(covered), float(clipped)


def _shrunk(mask: np.ndarray, factor: float) -> np.ndarray:
    if factor >= 1.0:
        return mask
    size = (max(1, round(mask.shape[1] * factor)), max(1, round(mask.shape[0] * factor)))
    return _scaled_mask(mask, size)


def _scaled_size(crop: np.ndarray, scale: float) -> tuple[int, int]:
    return max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))


class CutPasteGenerator(Generator):
    needs_donor: ClassVar[bool] = True

    class Config(BackendConfig):
        # OpenCV inpainting method that fills the region the reference subject leaves behind.
        fill: Literal["telea", "ns"] = "telea"
        inpaint_radius: int = Field(default=5, ge=1)
        # The placed scale is multiplied by a factor drawn uniformly from [1 - j, 1 + j].
        scale_jitter: float = Field(default=0.0, ge=0.0, lt=1.0)
        # The placement search prefers placements that clip at most this share of the donor.
        max_clipped: float = Field(default=0.2, ge=0.0, le=1.0)
        # A distractor is rejected (subject_uncovered) when more than this share of the reference
        # subject is left uncovered by the donor: the fill there would show a ghost of it.
        max_uncovered: float = Field(default=0.15, ge=0.0, le=1.0)

    config: Config

    def __init__(self, config: Config, *, device: str = "cpu") -> None:
        super().__init__(config, device=device)
        # The placements of the last batch, which the stage asks for again (request_figures).
        self._placed: dict[tuple[str, int], Placement] = {}

    def generate(self, requests: Sequence[InpaintRequest]) -> list[np.ndarray]:
        self._placed = {}
        return [self._generate_one(request) for request in requests]

    def placement_for(self, request: InpaintRequest) -> Placement:
        """The placement ``generate`` uses for this request (same jitter draw)."""
        known = self._placed.get((request.key, request.seed))
        if known is not None:
            return known
        donor = _donor(request)
        factor = 1.0
        if self.config.scale_jitter > 0:
            jitter = self.config.scale_jitter
            factor = float(np.random.default_rng(request.seed).uniform(1 - jitter, 1 + jitter))
        return placement(
            request.subject_mask,
            donor.mask,
            request.mask,
            scale_factor=factor,
            max_clipped=self.config.max_clipped,
        )

    def request_figures(self, request: InpaintRequest) -> dict[str, float]:
        where = self.placement_for(request)
        return {
            "donor_clipped": round(where.clipped_fraction, 6),
            "subject_covered": round(where.covered_fraction, 6),
            "donor_scale": round(where.scale, 6),
        }

    def check(self, figures: dict[str, float]) -> None:
        uncovered = 1.0 - figures["subject_covered"]
        if uncovered > self.config.max_uncovered:
            raise Rejection(
                "subject_uncovered",
                f"{uncovered:.3f} of the reference subject is not covered by the donor "
                f"> {self.config.max_uncovered}",
            )

    def _generate_one(self, request: InpaintRequest) -> np.ndarray:
        donor = _donor(request)
        where = self.placement_for(request)
        self._placed[(request.key, request.seed)] = where
        region = np.asarray(request.mask, dtype=bool).astype(np.uint8) * 255
        filled = cv2.inpaint(
            np.ascontiguousarray(request.image, dtype=np.uint8),
            region,
            self.config.inpaint_radius,
            _INPAINT_FLAGS[self.config.fill],
        )
        # The fill shows only where the donor does not cover the region (the paste goes over it);
        # it is drawn from the background around the region, never from the reference subject
        # inside it.
        return paste(filled, donor, donor_box=where.donor_box, size=where.size, offset=where.offset)


def paste(
    image: np.ndarray,
    donor: Donor,
    *,
    donor_box: tuple[int, int, int, int],
    size: tuple[int, int],
    offset: tuple[int, int],
) -> np.ndarray:
    """``image`` with the donor's subject (its mask cut to ``donor_box``) resized to ``size``
    (w, h) and placed with its top-left at ``offset`` (x, y); the part outside ``image`` is cut."""
    x0, y0, x1, y1 = donor_box
    crop = np.ascontiguousarray(donor.image[y0:y1, x0:x1])
    crop_mask = np.asarray(donor.mask, dtype=bool)[y0:y1, x0:x1]
    canvas, pasted = image.copy(), np.zeros(image.shape[:2], bool)
    canvas_view, pixels_view = _overlap(canvas, _resize(crop, size), offset)
    canvas_view[...] = pixels_view
    pasted_view, mask_view = _overlap(pasted, _scaled_mask(crop_mask, size), offset)
    pasted_view[...] = mask_view
    # A 1-pixel inward feather antialiases the cut edge without pulling in donor background.
    return composite(image, canvas, pasted, feather_px=1)


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
