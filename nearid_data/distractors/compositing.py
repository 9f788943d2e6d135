"""The distractors' fidelity guarantee and its QA figures.

``composite`` puts a generator's output back onto the reference so that every pixel outside the
editable region is bit-identical to the reference, whatever the generator did there. Feathering
blends only inward, so the guarantee holds with a soft seam too. ``measure`` computes the figures
the stage records and thresholds on. ``unusable_output`` judges a model's raw float output before
it is clipped and cast to bytes, where a NaN would turn into black and pass as a change.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from nearid_data.errors import Rejection
from nearid_data.vision.masks import erode

# A region pixel counts as changed when some channel moved by more than this (0-255 scale): above
# JPEG-level noise, below any visible edit.
CHANGED_THRESHOLD = 16
# Width in pixels of the band just inside the region boundary where the seam figure is taken; the
# 3x3 gradient of a pixel in this band straddles the boundary.
SEAM_BAND_PX = 2
# A painted region is flat when no channel's standard deviation over it reaches this (0-1 scale,
# about 1.5 levels of 255), and black when its mean is below BLACK_MEAN (about 3 levels): what a
# collapsed sample or an fp16 overflow decodes to, never a subject.
FLAT_STD = 1.5 / 255
BLACK_MEAN = 3.0 / 255


def inward_alpha(region: np.ndarray, pixels: int) -> np.ndarray:
    """A float32 alpha that is 0 outside ``region`` and rises linearly over ``pixels`` inside it.

    A region pixel at Euclidean distance d from the nearest outside pixel gets min(1, d / (pixels
    + 1)); with ``pixels`` <= 0 the alpha is the region itself. The image edge is not a boundary.
    """
    region = np.asarray(region, dtype=bool)
    if pixels <= 0 or region.all():
        return region.astype(np.float32)
    distance = cv2.distanceTransform(region.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return np.minimum(distance / (pixels + 1), 1.0).astype(np.float32)


def composite(
    reference: np.ndarray, generated: np.ndarray, region: np.ndarray, *, feather_px: int = 0
) -> np.ndarray:
    """``generated`` inside ``region``, ``reference`` exactly everywhere else (RGB uint8).

    With ``feather_px`` > 0 the seam is blended over that many pixels inside the region; pixels
    deeper than that are ``generated`` exactly.
    """
    _check(reference, generated, region)
    region = np.asarray(region, dtype=bool)
    if feather_px <= 0:
        return np.where(region[..., None], generated, reference)
    alpha = inward_alpha(region, feather_px)[..., None]
    blend = alpha * generated.astype(np.float32) + (1.0 - alpha) * reference.astype(np.float32)
    blend = np.clip(np.rint(blend), 0, 255).astype(np.uint8)
    # Select rather than trust the arithmetic: outside the region stays the reference's own bytes.
    return np.where(region[..., None], blend, reference)


@dataclass(frozen=True)
class DistractorQA:
    """How a distractor differs from its reference.

    ``outside_equal``: every pixel outside the region is bit-identical to the reference.
    ``inside_mean_abs_diff``: mean absolute difference over region pixels and channels (0-255).
    ``inside_changed_fraction``: fraction of region pixels whose largest channel difference exceeds
    ``CHANGED_THRESHOLD``; near 0 means the generator did not really change the subject.
    ``seam_gradient``: mean absolute difference between the distractor's and the reference's
    gradient magnitude (grey levels per pixel, Sobel) over a ``SEAM_BAND_PX``-wide band just inside
    the region boundary. The band sits in the reference's background, where a good edit matches the
    reference; a visible seam adds gradient there, so low means smooth. 0 for an empty band.
    """

    outside_equal: bool
    inside_mean_abs_diff: float
    inside_changed_fraction: float
    seam_gradient: float


def measure(reference: np.ndarray, distractor: np.ndarray, region: np.ndarray) -> DistractorQA:
    """The QA figures of ``distractor`` against ``reference`` for the editable ``region``."""
    _check(reference, distractor, region)
    region = np.asarray(region, dtype=bool)
    diff = np.abs(distractor.astype(np.int16) - reference.astype(np.int16))
    inside = diff[region]
    outside_equal = not diff[~region].any()
    if inside.size == 0:
        return DistractorQA(outside_equal, 0.0, 0.0, 0.0)
    band = region & ~erode(region, SEAM_BAND_PX)
    seam = np.abs(_gradient_magnitude(distractor) - _gradient_magnitude(reference))[band]
    return DistractorQA(
        outside_equal=outside_equal,
        inside_mean_abs_diff=float(inside.mean()),
        inside_changed_fraction=float((inside.max(axis=1) > CHANGED_THRESHOLD).mean()),
        seam_gradient=float(seam.mean()) if seam.size else 0.0,
    )


def unusable_output(painted: np.ndarray, region: np.ndarray) -> Rejection | None:
    """Why a model's raw output (float RGB (H, W, 3), nominally in [0, 1]) is unusable inside
    ``region`` (bool (H, W)): ``non_finite_output`` for NaN or infinity anywhere, ``flat_output``
    for a near-constant or near-black region. None when it is usable."""
    if not np.isfinite(painted).all():
        bad = int((~np.isfinite(painted)).any(axis=-1).sum())
        return Rejection(
            "non_finite_output", f"{bad} pixels of the model output are NaN or infinite"
        )
    inside = np.asarray(painted, dtype=np.float64)[np.asarray(region, dtype=bool)]
    if inside.size == 0:
        return None
    spread, mean = float(inside.std(axis=0).max()), float(inside.mean())
    if spread < FLAT_STD or mean < BLACK_MEAN:
        return Rejection(
            "flat_output",
            f"painted region is flat or black: std {spread * 255:.2f}, mean {mean * 255:.2f} (of 255)",
        )
    return None


def _gradient_magnitude(image: np.ndarray) -> np.ndarray:
    grey = image.astype(np.float32).mean(axis=2)
    # A ramp of one grey level per pixel gives a 3x3 Sobel response of 8.
    dx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    dy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    return np.hypot(dx, dy)


def _check(reference: np.ndarray, other: np.ndarray, region: np.ndarray) -> None:
    if reference.shape != other.shape or reference.ndim != 3 or reference.shape[2] != 3:
        raise ValueError(f"images must both be (H, W, 3): {reference.shape} vs {other.shape}")
    if reference.dtype != np.uint8 or other.dtype != np.uint8:
        raise ValueError(f"images must be uint8: {reference.dtype} vs {other.dtype}")
    if np.shape(region) != reference.shape[:2]:
        raise ValueError(f"region {np.shape(region)} does not match image {reference.shape[:2]}")
