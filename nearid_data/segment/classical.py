"""``ClassicalSegmenter``: a model-free segmenter built on OpenCV's GrabCut.

With a box, GrabCut starts from the (slightly enlarged) box: outside is background, inside is
probably foreground. Without one, it starts from a centre prior: a thin image border is background,
the central rectangle probably foreground, the rest probably background. Results are deterministic:
GrabCut's k-means initialisation draws from OpenCV's RNG, which is reseeded before every call.

The mask's score is its edge agreement: the share of its outline that lies on a strong image edge
(within a pixel). A mask that follows the subject's contour scores near 1; one that cuts through
flat background or through the subject scores low, so the score ranks GrabCut's failures.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from pydantic import Field

from nearid_data.backend import BackendConfig
from nearid_data.segment.base import Box, MaskPrediction, Segmenter
from nearid_data.vision.masks import clean

# Fraction of the short side kept as certain background around the centre prior, so GrabCut has a
# background model to start from even when there is no box.
_PRIOR_BORDER_FRACTION = 0.03
# An outline pixel is "on an edge" when the gradient magnitude within a pixel of it is in the
# image's strongest quarter.
_STRONG_EDGE_QUANTILE = 0.75


class ClassicalSegmenter(Segmenter):
    class Config(BackendConfig):
        iterations: int = Field(default=3, ge=1)
        # Without a box: side of the probable-foreground rectangle, as a fraction of the image's.
        centre_prior_fraction: float = Field(default=0.6, gt=0.0, lt=1.0)
        # Pixels added around a box: GrabCut treats outside the box as certain background, and
        # detector boxes are often tight.
        margin: int = Field(default=4, ge=0)
        # GrabCut runs on a copy downscaled to this long side; the mask is upscaled back.
        max_side: int = Field(default=512, ge=32)

    config: Config

    def segment(
        self, images: Sequence[np.ndarray], boxes: Sequence[Box | None]
    ) -> list[MaskPrediction]:
        if len(images) != len(boxes):
            raise ValueError(f"{len(images)} images but {len(boxes)} boxes")
        return [self._segment_one(image, box) for image, box in zip(images, boxes, strict=True)]

    def _segment_one(self, image: np.ndarray, box: Box | None) -> MaskPrediction:
        height, width = image.shape[:2]
        scale = min(1.0, self.config.max_side / max(height, width))
        small = image
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        small = np.ascontiguousarray(small, dtype=np.uint8)
        mask = self._grabcut(small, box, scale)
        score = edge_agreement(small, mask)
        if mask.shape != (height, width):
            mask = cv2.resize(
                mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST
            ).astype(bool)
        return MaskPrediction(mask=clean(mask), score=score)

    def _grabcut(self, image: np.ndarray, box: Box | None, scale: float) -> np.ndarray:
        height, width = image.shape[:2]
        rect = None if box is None else self._rect(box, scale, width, height)
        if rect is not None and rect[2] * rect[3] == 0:
            return np.zeros((height, width), bool)
        # A box covering the whole image leaves GrabCut no background to learn from and says
        # nothing about where the subject is: use the centre prior instead.
        if rect is not None and rect == (0, 0, width, height):
            rect = None
        background = np.zeros((1, 65), np.float64)
        foreground = np.zeros((1, 65), np.float64)
        cv2.setRNGSeed(0)
        if rect is not None:
            mask = np.zeros((height, width), np.uint8)
            cv2.grabCut(
                image, mask, rect, background, foreground, self.config.iterations,
                cv2.GC_INIT_WITH_RECT,
            )  # fmt: skip
        else:
            mask = self._centre_prior(height, width)
            cv2.grabCut(
                image, mask, (0, 0, 0, 0), background, foreground, self.config.iterations,
                cv2.GC_INIT_WITH_MASK,
            )  # fmt: skip
        return (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)

    def _rect(self, box: Box, scale: float, width: int, height: int) -> tuple[int, int, int, int]:
        """The box grown by the margin, in downscaled pixels, clipped to the image: x, y, w, h."""
        x0, y0, x1, y1 = (value * scale for value in box.xyxy)
        margin = self.config.margin * scale
        left = min(width, max(0, int(np.floor(x0 - margin))))
        top = min(height, max(0, int(np.floor(y0 - margin))))
        right = min(width, max(left, int(np.ceil(x1 + margin))))
        bottom = min(height, max(top, int(np.ceil(y1 + margin))))
        return left, top, right - left, bottom - top

    def _centre_prior(self, height: int, width: int) -> np.ndarray:
        mask = np.full((height, width), cv2.GC_PR_BGD, np.uint8)
        border = max(1, round(_PRIOR_BORDER_FRACTION * min(height, width)))
        mask[:border], mask[-border:] = cv2.GC_BGD, cv2.GC_BGD
        mask[:, :border], mask[:, -border:] = cv2.GC_BGD, cv2.GC_BGD
        fraction = self.config.centre_prior_fraction
        top, left = round(height * (1 - fraction) / 2), round(width * (1 - fraction) / 2)
        mask[top : height - top, left : width - left] = cv2.GC_PR_FGD
        return mask


def edge_agreement(image: np.ndarray, mask: np.ndarray) -> float:
    """Share of the mask's outline within a pixel of a strong image edge (0.0 for an empty mask)."""
    outline = mask & ~cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    if not outline.any():
        return 0.0
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    gray = gray.astype(np.float32)
    magnitude = cv2.magnitude(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))
    strong = magnitude >= max(float(np.quantile(magnitude, _STRONG_EDGE_QUANTILE)), 1e-6)
    near_strong = cv2.dilate(strong.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    return round(float(np.count_nonzero(outline & near_strong) / np.count_nonzero(outline)), 6)
