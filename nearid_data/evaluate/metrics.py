"""The evaluation metrics, in plain numpy: NearID's SSR/PA, retrieval AP/mAP, PR-AUC, NDCG, MRR, top-k.

Conventions shared by every function:

- Similarity is cosine on L2-normalised rows, computed in float64. A zero row has similarity 0
  with everything.
- Rankings sort by score, best first, and break ties by position (a stable sort): of two items
  with equal scores, the one earlier in the gallery ranks higher. Deterministic, and the same as
  ranking by distance ``1 - cosine`` ascending with the same tie rule.
- Nothing returns NaN. A query with no relevant item scores 0 (AP, NDCG, reciprocal rank, top-k),
  and a mean over no queries or samples is 0; results carry their counts so a caller can tell.
  NaN or infinite scores are errors.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) cosine similarities between the rows of ``a`` (N, D) and ``b`` (M, D), float64."""
    a, b = _unit_rows(a), _unit_rows(b)
    if a.size == 0 or b.size == 0:
        return np.zeros((len(a), len(b)))
    return a @ b.T  # type: ignore[no-any-return]


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True) if x.size else np.ones((len(x), 1))
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


# --- NearID: sample success rate and pairwise accuracy ---------------------------------------


def nearid_margins(views: np.ndarray, distractors: np.ndarray) -> np.ndarray:
    """NearID's directed margins ``s(p_i, p_j) - s(p_i, n_i)`` of one identity, float64.

    ``views`` (V, D) holds the embeddings of the positives p_i, ``distractors`` (V, D) those of
    n_i, the distractor painted into p_i's background. A row with a non-finite value is missing.
    One margin per ordered pair (i, j), i != j, where p_i, p_j and n_i exist, in order of i then
    j: up to 6 margins for 3 views, 2 for 2 views.
    """
    views, distractors = np.asarray(views, np.float64), np.asarray(distractors, np.float64)
    if views.shape != distractors.shape:
        raise ValueError(f"views {views.shape} and distractors {distractors.shape} differ")
    has_view = np.isfinite(views).all(axis=1)
    has_distractor = np.isfinite(distractors).all(axis=1)
    # Missing rows become zeros so the products stay finite; their entries are never read.
    p = _unit_rows(np.where(has_view[:, None], views, 0.0))
    n = _unit_rows(np.where(has_distractor[:, None], distractors, 0.0))
    positive, negative = p @ p.T, (p * n).sum(axis=1)
    pairs = [
        (i, j)
        for i in range(len(views))
        for j in range(len(views))
        if i != j and has_view[i] and has_view[j] and has_distractor[i]
    ]
    return np.array([positive[i, j] - negative[i] for i, j in pairs], dtype=np.float64)


@dataclass(frozen=True)
class SsrPa:
    """NearID's scores over a set of samples (identities)."""

    ssr: float
    """Sample success rate: share of samples whose margins are all > 0 (the paper's SSR, their
    code's ``SSRm``)."""
    pa: float
    """Pairwise accuracy: share of all margins, pooled over samples, that are > 0."""
    n_samples: int
    """Samples with at least one margin: the SSR denominator."""
    n_margins: int
    """The PA denominator (with the release convention: the trials, margins plus samples)."""
    n_skipped: int
    """Samples without any margin (one view, or no distractor): left out of both."""


Convention = Literal["paper", "release"]
CONVENTIONS: tuple[Convention, ...] = ("paper", "release")


def ssr_pa(per_sample_margins: Iterable[np.ndarray], convention: Convention = "paper") -> SsrPa:
    """SSR and PA from each sample's margins (``nearid_margins``). A margin of exactly 0 fails.

    ``paper``: the definitions above. ``release``: what NearID's released code computes for its
    tables (``evaluation/metrics.py``, ``summarize_margin_family`` on the
    ``add_disc_sim_vs_crossii_bidir_with_overall`` columns): a sample's overall margin (the mean
    of its margins) is one more trial, won when > 0, so PA is
    ``sum(wins + [mean > 0]) / sum(n + 1)``; SSR (their ``SSRm``) is "every trial won", the same
    as the paper's since all margins > 0 makes the mean > 0.
    """
    margins = [np.asarray(m, dtype=np.float64).ravel() for m in per_sample_margins]
    scored = [m for m in margins if m.size]
    if convention == "release":
        scored = [np.append(m, m.mean()) for m in scored]
    elif convention != "paper":
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    successes = sum(bool((m > 0).all()) for m in scored)
    pooled = np.concatenate(scored) if scored else np.zeros(0)
    return SsrPa(
        ssr=successes / len(scored) if scored else 0.0,
        pa=float((pooled > 0).mean()) if pooled.size else 0.0,
        n_samples=len(scored),
        n_margins=int(pooled.size),
        n_skipped=len(margins) - len(scored),
    )


# --- Retrieval over one ranking --------------------------------------------------------------


def _ranking(scores: np.ndarray, relevant: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``scores`` and ``relevant`` (bool) in rank order: score descending, ties by position."""
    scores, relevant = np.asarray(scores, dtype=np.float64), np.asarray(relevant, dtype=bool)
    if scores.shape != relevant.shape or scores.ndim != 1:
        raise ValueError(f"scores {scores.shape} and relevant {relevant.shape} must be equal 1-D")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite")
    order = np.argsort(-scores, kind="stable")
    return scores[order], relevant[order]


def _ranked_relevance(scores: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    return _ranking(scores, relevant)[1]


def average_precision(scores: np.ndarray, relevant: np.ndarray) -> float:
    """Retrieval AP of one query over the whole ranking: ``sum_k P@k * rel_k / N_rel``, 0 if
    ``N_rel`` is 0 (Finer-Personalization Rank's definition)."""
    rel = _ranked_relevance(scores, relevant)
    if not rel.any():
        return 0.0
    precision_at_k = np.cumsum(rel) / np.arange(1, rel.size + 1)
    return float(precision_at_k[rel].sum() / rel.sum())


def ndcg(scores: np.ndarray, relevant: np.ndarray) -> float:
    """NDCG of one query, binary relevance, full ranking: DCG = ``sum_k rel_k / log2(k + 1)``
    divided by the DCG of the ideal ranking (all relevant first); 0 without relevant items."""
    rel = _ranked_relevance(scores, relevant)
    n_relevant = int(rel.sum())
    if n_relevant == 0:
        return 0.0
    discounts = 1.0 / np.log2(np.arange(2, rel.size + 2))
    return float(discounts[rel].sum() / discounts[:n_relevant].sum())


def reciprocal_rank(scores: np.ndarray, relevant: np.ndarray) -> float:
    """1 / (rank of the first relevant item), ranks from 1; 0 without relevant items."""
    rel = _ranked_relevance(scores, relevant)
    return 1.0 / (int(np.argmax(rel)) + 1) if rel.any() else 0.0


def top_k_hit(scores: np.ndarray, relevant: np.ndarray, k: int) -> float:
    """1.0 if a relevant item is among the first ``k`` of the ranking, else 0.0."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    return float(_ranked_relevance(scores, relevant)[:k].any())


# --- Means over queries (rows of a query x gallery score matrix) -----------------------------


def _mean_over_rows(metric: object, scores: np.ndarray, relevant: np.ndarray, **kw: int) -> float:
    scores, relevant = np.atleast_2d(scores), np.atleast_2d(relevant)
    if scores.shape != relevant.shape:
        raise ValueError(f"scores {scores.shape} and relevant {relevant.shape} differ")
    values = [metric(s, r, **kw) for s, r in zip(scores, relevant, strict=True)]  # type: ignore[operator]
    return float(np.mean(values)) if values else 0.0


def mean_ndcg(scores: np.ndarray, relevant: np.ndarray) -> float:
    """Mean ``ndcg`` over the rows (queries) of (Q, G) ``scores`` and ``relevant``; 0 for Q = 0."""
    return _mean_over_rows(ndcg, scores, relevant)


def mrr(scores: np.ndarray, relevant: np.ndarray) -> float:
    """Mean reciprocal rank over the rows (queries) of (Q, G) arrays; 0 for Q = 0."""
    return _mean_over_rows(reciprocal_rank, scores, relevant)


def top_k_accuracy(scores: np.ndarray, relevant: np.ndarray, k: int = 10) -> float:
    """Share of rows (queries) with a relevant item in their first ``k``; 0 for Q = 0."""
    return _mean_over_rows(top_k_hit, scores, relevant, k=k)


def average_precisions(
    query_emb: np.ndarray,
    query_labels: np.ndarray,
    gallery_emb: np.ndarray,
    gallery_labels: np.ndarray,
) -> np.ndarray:
    """AP of each query against the whole gallery; relevant = same label; distance 1 - cosine."""
    query_labels, gallery_labels = np.asarray(query_labels), np.asarray(gallery_labels)
    distance = 1.0 - cosine_matrix(query_emb, gallery_emb)
    relevant = query_labels[:, None] == gallery_labels[None, :]
    # Negated distance as the score: ranking by it is ranking by distance ascending, ties alike.
    return np.array([average_precision(-d, r) for d, r in zip(distance, relevant, strict=True)])


def mean_average_precision(
    query_emb: np.ndarray,
    query_labels: np.ndarray,
    gallery_emb: np.ndarray,
    gallery_labels: np.ndarray,
) -> float:
    """mAP: mean of ``average_precisions`` over queries; 0 without queries."""
    aps = average_precisions(query_emb, query_labels, gallery_emb, gallery_labels)
    return float(aps.mean()) if aps.size else 0.0


# --- Classification --------------------------------------------------------------------------


def pr_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the precision-recall curve as average precision, scikit-learn's definition
    (``average_precision_score``): ``sum_n (R_n - R_{n-1}) P_n`` over the distinct score
    thresholds, highest first, with ``R_0 = 0``. Equal scores form one threshold, so unlike
    ``average_precision`` the order of tied items does not matter. 0 without positives."""
    ordered, rel = _ranking(scores, labels)
    if not rel.any():
        return 0.0
    # The last item of each run of equal scores closes a threshold.
    closes = np.r_[np.nonzero(np.diff(ordered))[0], ordered.size - 1]
    true_positives = np.cumsum(rel)[closes]
    precision = true_positives / (closes + 1)
    recall = true_positives / true_positives[-1]
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))
