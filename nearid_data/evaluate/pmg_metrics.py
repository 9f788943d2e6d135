"""The personalized generation benchmark's pixel metrics and what every metric shares.

LPIPS and SSIM compare two images at one size: both are resized to ``size`` x ``size`` (area
interpolation when shrinking, bilinear when growing) first, so a generated image and a dataset
image of different shapes compare at all. SSIM is scikit-image's ``structural_similarity`` over
the RGB channels (``data_range`` 255, its default 7x7 window); LPIPS is the ``lpips`` package's
network, given images scaled to [-1, 1]. "vs history" is the mean over the window's history items.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from nearid_data.optional import import_optional


def resized(rgb: np.ndarray, size: int) -> np.ndarray:
    height, width = rgb.shape[:2]
    if (height, width) == (size, size):
        return rgb
    shrink = size * size < height * width
    return cv2.resize(
        rgb, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    )


def ssim(a: np.ndarray, b: np.ndarray, size: int) -> float:
    metrics = import_optional("skimage.metrics", extra="pmg")
    similarity = metrics.structural_similarity(
        resized(a, size), resized(b, size), channel_axis=2, data_range=255
    )
    return float(similarity)


def lpips_distances(
    net: Any, image: np.ndarray, others: Sequence[np.ndarray], size: int
) -> list[float]:
    """LPIPS between ``image`` and each of ``others`` in one forward pass; ``net`` is an
    ``lpips.LPIPS`` module (on CPU or a device: inputs follow its parameters)."""
    import torch

    device = next(net.parameters()).device

    def tensor(rgb: np.ndarray) -> Any:
        scaled = resized(rgb, size).astype(np.float32) / 127.5 - 1.0
        return torch.from_numpy(scaled).permute(2, 0, 1)

    left = torch.stack([tensor(image)] * len(others)).to(device)
    right = torch.stack([tensor(o) for o in others]).to(device)
    with torch.inference_mode():
        distances = net(left, right)
    return [float(d) for d in distances.reshape(-1).cpu()]


def mean(values: Sequence[float]) -> float:
    return float(np.mean(values))


def summary(values: Sequence[float | None]) -> dict[str, Any]:
    """Mean and (population) standard deviation over the windows where the metric has a value,
    as the benchmark reports them, and how many windows that is."""
    present = [v for v in values if v is not None and math.isfinite(v)]
    if not present:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": float(np.mean(present)), "std": float(np.std(present)), "n": len(present)}
