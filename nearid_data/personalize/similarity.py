"""The similarity filter of synthetic positives and the distribution of its scores.

PODS keeps a generated positive when its DreamSim similarity to the mask-cropped reference images
is at least 0.6. Here the embedder is any of ``vision/embedders`` (the same configuration
``eval`` takes); a positive's score is its mean cosine similarity to the identity's reference
crops (each reference cut to its subject mask's box). A threshold calibrated for one embedder
means little for another: set ``min_similarity`` for the embedder you use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nearid_data.vision.embedders.base import Embedder
from nearid_data.vision.masks import bbox

HISTOGRAM_BINS = 20


def subject_crop(image: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """``image`` cut to the box of ``mask`` (the whole image without a mask or for an empty one)."""
    box = bbox(mask) if mask is not None else None
    if box is None:
        return image
    x0, y0, x1, y1 = box
    return image[y0:y1, x0:x1]


def similarity_scores(
    embedder: Embedder, references: Sequence[np.ndarray], candidates: Sequence[np.ndarray]
) -> list[float]:
    """Per candidate, its mean cosine similarity to ``references`` (crops), in one embedding pass."""
    if not candidates:
        return []
    vectors = embedder.embed([*references, *candidates])
    reference_vectors, candidate_vectors = vectors[: len(references)], vectors[len(references) :]
    return [float(v) for v in (candidate_vectors @ reference_vectors.T).mean(axis=1)]


def distribution(scores: Sequence[float]) -> dict[str, Any]:
    """Count, mean, quantiles and a histogram over [-1, 1] of cosine ``scores``."""
    if not scores:
        return {"count": 0}
    values = np.asarray(scores, dtype=np.float64)
    quantiles = np.quantile(values, [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0])
    counts, edges = np.histogram(values, bins=HISTOGRAM_BINS, range=(-1.0, 1.0))
    return {
        "count": int(values.size),
        "mean": round(float(values.mean()), 6),
        "quantiles": {
            name: round(float(q), 6)
            for name, q in zip(
                ("min", "p10", "p25", "p50", "p75", "p90", "max"), quantiles, strict=True
            )
        },
        "histogram": {"edges": [round(float(e), 3) for e in edges], "counts": counts.tolist()},
    }
