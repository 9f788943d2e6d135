"""What the segment stage's model backends share beyond ``vision.inference``: their settings, and
turning raw model outputs into ``Box`` lists and ``MaskPrediction`` s.

``best_mask`` refuses a mask of every pixel (saturated logits) as a ``flat_output`` rejection. An
empty mask is left to the stage (``empty_mask``): a subject may simply not be there.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import Field

from nearid_data.errors import Rejection
from nearid_data.segment.base import Box, MaskPrediction
from nearid_data.vision.inference import ModelSettings


class GroundingSettings(ModelSettings):
    box_threshold: float = Field(0.35, ge=0.0, le=1.0, description="min box score to keep it")
    text_threshold: float = Field(0.25, ge=0.0, le=1.0, description="min token score in its label")


class SamSettings(ModelSettings):
    multimask: bool = Field(True, description="predict 3 masks and keep the best-rated one")


def to_boxes(
    scores: Sequence[float],
    xyxy: Sequence[Sequence[float]],
    labels: Sequence[str],
    size: tuple[int, int],
) -> list[Box]:
    """Detections in pixels as ``Box`` es clipped to the image (height, width), best first."""
    height, width = size
    boxes = [
        Box(
            xyxy=(
                min(max(float(x0), 0.0), width),
                min(max(float(y0), 0.0), height),
                min(max(float(x1), 0.0), width),
                min(max(float(y1), 0.0), height),
            ),
            score=float(score),
            label=label.strip(),
        )
        for score, (x0, y0, x1, y1), label in zip(scores, xyxy, labels, strict=True)
    ]
    return sorted(boxes, key=lambda box: -box.score)


def prompt_box(box: Box | None, size: tuple[int, int]) -> list[float]:
    """SAM's box prompt in pixels (x0, y0, x1, y1): the detection, or the whole image without one."""
    if box is None:
        height, width = size
        return [0.0, 0.0, float(width), float(height)]
    return [float(v) for v in box.xyxy]


def best_mask(masks: np.ndarray, scores: np.ndarray) -> MaskPrediction:
    """Of SAM's candidate masks (K, H, W) the one with the highest predicted IoU (K scores)."""
    if not np.isfinite(scores).all():
        raise Rejection("non_finite_output", f"mask ratings {scores.tolist()} are not finite")
    best = int(np.argmax(scores))
    mask = np.asarray(masks[best], dtype=bool)
    if mask.all():
        raise Rejection("flat_output", "the mask covers every pixel of the image")
    return MaskPrediction(mask=mask, score=float(scores[best]))
