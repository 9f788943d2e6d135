"""Plain-Python reference implementations of the evaluation metrics, written from their
definitions (loops, no numpy), for checking ``nearid_data.evaluate.metrics`` independently."""

from __future__ import annotations

import math
from collections.abc import Sequence

Vector = Sequence[float]


def cosine(a: Vector, b: Vector) -> float:
    norm_a = math.sqrt(sum(x * x for x in a))
    norm_b = math.sqrt(sum(x * x for x in b))
    if norm_a == 0 or norm_b == 0:
        return 0.0
    return sum(x * y for x, y in zip(a, b, strict=True)) / (norm_a * norm_b)


def ranked(scores: Sequence[float], relevant: Sequence[bool]) -> list[bool]:
    """Relevance in rank order: highest score first, equal scores by position."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return [bool(relevant[i]) for i in order]


def average_precision(scores: Sequence[float], relevant: Sequence[bool]) -> float:
    rel = ranked(scores, relevant)
    n_relevant = sum(rel)
    if n_relevant == 0:
        return 0.0
    total, hits = 0.0, 0
    for k, is_relevant in enumerate(rel, start=1):
        if is_relevant:
            hits += 1
            total += hits / k  # P@k at a relevant rank
    return total / n_relevant


def mean_average_precision(
    queries: Sequence[Vector],
    query_labels: Sequence[object],
    gallery: Sequence[Vector],
    gallery_labels: Sequence[object],
) -> float:
    aps = []
    for query, label in zip(queries, query_labels, strict=True):
        # Rank by distance 1 - cosine ascending, ties by gallery position.
        distances = [1.0 - cosine(query, item) for item in gallery]
        aps.append(average_precision([-d for d in distances], [g == label for g in gallery_labels]))
    return sum(aps) / len(aps) if aps else 0.0


def ndcg(scores: Sequence[float], relevant: Sequence[bool]) -> float:
    rel = ranked(scores, relevant)
    dcg = sum(1 / math.log2(k + 1) for k, r in enumerate(rel, start=1) if r)
    ideal = sum(1 / math.log2(k + 1) for k in range(1, sum(rel) + 1))
    return dcg / ideal if ideal else 0.0


def reciprocal_rank(scores: Sequence[float], relevant: Sequence[bool]) -> float:
    for k, r in enumerate(ranked(scores, relevant), start=1):
        if r:
            return 1 / k
    return 0.0


def top_k_hit(scores: Sequence[float], relevant: Sequence[bool], k: int) -> float:
    return 1.0 if any(ranked(scores, relevant)[:k]) else 0.0


def pr_auc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Average precision over thresholds: each distinct score, highest first, predicts
    positive everything scoring at least it; AP = sum (R_t - R_prev) * P_t."""
    n_positive = sum(bool(y) for y in labels)
    if n_positive == 0:
        return 0.0
    total, previous_recall = 0.0, 0.0
    for threshold in sorted(set(scores), reverse=True):
        predicted = [y for s, y in zip(scores, labels, strict=True) if s >= threshold]
        true_positives = sum(bool(y) for y in predicted)
        recall = true_positives / n_positive
        total += (recall - previous_recall) * (true_positives / len(predicted))
        previous_recall = recall
    return total


def nearid_margins(
    views: Sequence[Vector | None], distractors: Sequence[Vector | None]
) -> list[float]:
    """s(p_i, p_j) - s(p_i, n_i) for i != j where p_i, p_j and n_i exist (None: missing)."""
    margins = []
    for i, p_i in enumerate(views):
        for j, p_j in enumerate(views):
            n_i = distractors[i]
            if i != j and p_i is not None and p_j is not None and n_i is not None:
                margins.append(cosine(p_i, p_j) - cosine(p_i, n_i))
    return margins


def ssr_pa(per_sample: Sequence[Sequence[float]]) -> tuple[float, float]:
    scored = [m for m in per_sample if m]
    if not scored:
        return 0.0, 0.0
    successes = sum(all(x > 0 for x in m) for m in scored)
    pooled = [x for m in scored for x in m]
    return successes / len(scored), sum(x > 0 for x in pooled) / len(pooled)
