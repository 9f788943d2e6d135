"""Cut-and-paste positives: a reference view's real subject, cut by its mask, pasted at a seeded
scale and position onto a background, with the paste the distractors' cut-and-paste uses."""

from __future__ import annotations

from typing import Any

import numpy as np

from nearid_data.distractors.base import Donor
from nearid_data.distractors.cut_paste import paste
from nearid_data.imageio import decode_mask_png, decode_png
from nearid_data.sample import KEY_FIELD, Sample, meta
from nearid_data.vision.masks import bbox


def paste_reference(
    background: np.ndarray,
    reference: Sample,
    scale_range: tuple[float, float],
    rng: np.random.Generator,
) -> tuple[np.ndarray, dict[str, Any]]:
    """``background`` with ``reference``'s subject pasted in a box drawn from ``rng``; the record
    says which reference, where (``box`` x0, y0, x1, y1) and at what ``scale``."""
    image, mask = decode_png(reference["image.png"]), decode_mask_png(reference["mask.png"])
    donor_box = bbox(mask) or (0, 0, mask.shape[1], mask.shape[0])
    box, scale = paste_box(donor_box, background.shape[:2], scale_range, rng)
    x0, y0, x1, y1 = box
    pasted = paste(
        background,
        Donor(meta(reference)["identity"], reference[KEY_FIELD], image, mask),
        donor_box=donor_box,
        size=(x1 - x0, y1 - y0),
        offset=(x0, y0),
    )
    return pasted, {
        "reference_key": reference[KEY_FIELD],
        "box": list(box),
        "scale": round(scale, 6),
    }


def paste_box(
    subject_box: tuple[int, int, int, int],
    shape: tuple[int, ...],
    scale_range: tuple[float, float],
    rng: np.random.Generator,
) -> tuple[tuple[int, int, int, int], float]:
    """A box with the subject's aspect, its longer side ``scale`` x the background's shorter side,
    at a uniformly drawn position inside the background."""
    x0, y0, x1, y1 = subject_box
    height, width = shape[0], shape[1]
    scale = float(rng.uniform(*scale_range))
    longer = scale * min(height, width)
    factor = longer / max(x1 - x0, y1 - y0)
    box_w = max(1, min(width, round((x1 - x0) * factor)))
    box_h = max(1, min(height, round((y1 - y0) * factor)))
    left = int(rng.integers(0, width - box_w + 1))
    top = int(rng.integers(0, height - box_h + 1))
    return (left, top, left + box_w, top + box_h), scale
