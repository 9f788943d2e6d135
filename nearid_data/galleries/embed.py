"""A cheap deterministic image embedding and seeded k-means, for choosing diverse galleries.

The paper's ablation picks gallery images by k-means over an embedding instead of at random.
Here the embedding is a joint colour histogram plus a tiny grey thumbnail: no model, the same
on every machine. A learned embedder (DINOv2, CLIP) plugs in by handing ``representatives``
its own feature rows instead of :func:`embedding`'s.
"""

from __future__ import annotations

import cv2
import numpy as np

_LEVELS = 4  # per channel: 4 x 4 x 4 = 64 joint colour bins
_THUMB = 8  # 8 x 8 grey thumbnail: coarse layout
_MAX_ITERATIONS = 50


def embedding(rgb: np.ndarray) -> np.ndarray:
    """A unit-norm float64 vector: colour histogram and layout thumbnail, weighted equally."""
    small = cv2.resize(rgb, (32, 32), interpolation=cv2.INTER_AREA)
    bins = (small // (256 // _LEVELS)).astype(np.int64)
    index = (bins[..., 0] * _LEVELS + bins[..., 1]) * _LEVELS + bins[..., 2]
    histogram = np.bincount(index.ravel(), minlength=_LEVELS**3).astype(np.float64)
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    thumb = cv2.resize(gray, (_THUMB, _THUMB), interpolation=cv2.INTER_AREA).astype(np.float64)
    thumb = thumb.ravel() - thumb.mean()  # layout, not brightness: the histogram has that
    vector = np.concatenate([_unit(histogram), _unit(thumb)])
    return _unit(vector)


def representatives(features: np.ndarray, k: int, rng: np.random.Generator) -> list[int]:
    """Row indices of ``min(k, n)`` distinct images, the one nearest each k-means centre, in
    centre order (k-means++ initialisation drawn from ``rng``)."""
    k = min(k, len(features))
    if k <= 0:
        return []
    centres = _kmeans(features, k, rng)
    picks: list[int] = []
    for centre in centres:
        distances = ((features - centre) ** 2).sum(axis=1)
        nearest = next(int(i) for i in np.argsort(distances, kind="stable") if i not in picks)
        picks.append(nearest)
    return picks


def _kmeans(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    centres = x[[int(rng.integers(len(x)))]]
    while len(centres) < k:
        d2 = _squared_distances(x, centres).min(axis=1)
        # k-means++: a far point is likelier; all points on centres (duplicates): any point.
        p = d2 / d2.sum() if d2.sum() > 0 else None
        centres = np.vstack([centres, x[int(rng.choice(len(x), p=p))]])
    labels = np.full(len(x), -1)
    for _ in range(_MAX_ITERATIONS):
        new_labels = _squared_distances(x, centres).argmin(axis=1)
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
        for j in range(k):
            members = x[labels == j]
            if len(members):  # an emptied centre stays where it was
                centres[j] = members.mean(axis=0)
    return centres


def _squared_distances(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    return ((x[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)  # type: ignore[no-any-return]


def _unit(v: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(v)
    return v / norm if norm > 0 else v
