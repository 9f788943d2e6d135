"""Contracts of the segment stage's backends: a detector finds boxes, a segmenter cuts masks.

Images are RGB ``uint8`` arrays of shape (H, W, 3). Both calls take a batch so GPU backends can
batch; the stage groups samples and calls them once per batch.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nearid_data.backend import Backend


@dataclass(frozen=True)
class Box:
    """A detection in pixel coordinates of the image it came from."""

    xyxy: tuple[float, float, float, float]
    score: float
    label: str = ""

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.xyxy
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)


@dataclass(frozen=True)
class MaskPrediction:
    """A subject mask (bool, H x W) and the segmenter's confidence in it, in [0, 1] (SAM: its
    predicted IoU; classical: the share of the mask's outline on strong image edges)."""

    mask: np.ndarray
    score: float


class Detector(Backend):
    @abstractmethod
    def detect(self, images: Sequence[np.ndarray], prompts: Sequence[str]) -> list[list[Box]]:
        """Boxes above the configured thresholds for each (image, prompt), best first."""


class Segmenter(Backend):
    @abstractmethod
    def segment(
        self, images: Sequence[np.ndarray], boxes: Sequence[Box | None]
    ) -> list[MaskPrediction]:
        """One mask per image, prompted by its box (``None``: no box, use the segmenter's own prior)."""
