"""A model-free baseline: joint HSV colour histograms of the whole image and of a grid of cells.

Dependency-free and fast, so a build can be scored offline, and a floor any learned embedder
should clear. Each block (the whole image, then each cell in row order) is a joint histogram over
hue x saturation x value, normalised to sum 1 and square-rooted: the cosine between two such
blocks is their Bhattacharyya coefficient, and every block has unit norm, so all weigh the same.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from pydantic import Field

from nearid_data.vision.embedders.base import Embedder, EmbedderConfig


class ColorHistEmbedder(Embedder):
    class Config(EmbedderConfig):
        bins: tuple[int, int, int] = Field((8, 4, 4), description="hue, saturation, value bins")
        grid: int = Field(2, ge=1, description="cells per side besides the whole image")
        size: int = Field(96, ge=8, description="images are resized to size x size first")

    config: Config

    def _embed_batch(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return np.stack([self._histograms(image) for image in images])

    def _histograms(self, rgb: np.ndarray) -> np.ndarray:
        side, grid = self.config.size, self.config.grid
        small = cv2.resize(rgb, (side, side), interpolation=cv2.INTER_AREA)
        hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV).astype(np.int64)  # OpenCV hue is 0..179
        hue, sat, val = self.config.bins
        index = (hsv[..., 0] * hue // 180 * sat + hsv[..., 1] * sat // 256) * val
        index += hsv[..., 2] * val // 256
        n_bins = hue * sat * val
        cells = [index] + [
            block
            for rows in np.array_split(index, grid, axis=0)
            for block in np.array_split(rows, grid, axis=1)
        ]
        blocks = [np.bincount(cell.ravel(), minlength=n_bins) / cell.size for cell in cells]
        return np.sqrt(np.concatenate(blocks))
