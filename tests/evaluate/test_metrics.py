"""The metrics: hand-computed cases (ties, 2-view identities, no relevant item, empty sets), and
agreement to 1e-9 with the plain-Python reference on random data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nearid_data.evaluate import metrics as m
from tests.evaluate import reference as ref

# --- hand-computed ---------------------------------------------------------------------------


def test_cosine_matrix_normalises_rows_and_zero_rows_score_zero() -> None:
    a = np.array([[2.0, 0.0], [0.0, 0.0]])
    b = np.array([[3.0, 4.0], [0.0, -1.0]])
    assert np.allclose(m.cosine_matrix(a, b), [[0.6, 0.0], [0.0, 0.0]])
    assert m.cosine_matrix(np.zeros((0, 0)), b).shape == (0, 2)


def test_average_precision_by_hand() -> None:
    # Relevant at ranks 1 and 3: (1/1 + 2/3) / 2.
    assert m.average_precision(
        np.array([0.9, 0.8, 0.7, 0.6]), np.array([1, 0, 1, 0])
    ) == pytest.approx(5 / 6)
    assert m.average_precision(np.array([0.1, 0.2]), np.array([False, False])) == 0.0
    assert m.average_precision(np.zeros(0), np.zeros(0, bool)) == 0.0


def test_ties_rank_by_position() -> None:
    tied = np.array([0.5, 0.5, 0.5])
    assert m.average_precision(tied, np.array([0, 0, 1])) == pytest.approx(1 / 3)
    assert m.average_precision(tied, np.array([1, 0, 0])) == 1.0
    assert m.reciprocal_rank(tied, np.array([0, 1, 0])) == 0.5
    assert m.top_k_hit(tied, np.array([0, 1, 0]), k=1) == 0.0


def test_map_ties_follow_gallery_order() -> None:
    # The query is equally far from both gallery items; the earlier one ranks first.
    query, labels = np.array([[1.0, 0.0]]), np.array(["a"])
    gallery = np.array([[1.0, 1.0], [1.0, -1.0]])
    assert m.mean_average_precision(query, labels, gallery, np.array(["b", "a"])) == 0.5
    assert m.mean_average_precision(query, labels, gallery, np.array(["a", "b"])) == 1.0


def test_map_queries_without_relevant_items_count_as_zero() -> None:
    gallery = np.eye(3)
    queries = np.array([[1.0, 0.1, 0.0], [0.0, 0.0, 1.0]])
    aps = m.average_precisions(
        queries, np.array(["x", "nobody"]), gallery, np.array(["x", "y", "z"])
    )
    assert aps.tolist() == [1.0, 0.0]
    assert (
        m.mean_average_precision(
            queries, np.array(["x", "nobody"]), gallery, np.array(["x", "y", "z"])
        )
        == 0.5
    )


def test_empty_sets_give_zero_not_nan() -> None:
    none = np.zeros((0, 4))
    assert m.mean_average_precision(none, np.array([]), np.eye(4), np.arange(4)) == 0.0
    assert m.mean_average_precision(np.eye(4), np.arange(4), none, np.array([])) == 0.0
    empty = np.zeros((0, 5))
    assert m.mrr(empty, empty.astype(bool)) == 0.0
    assert m.top_k_accuracy(empty, empty.astype(bool)) == 0.0
    assert m.mean_ndcg(empty, empty.astype(bool)) == 0.0
    assert m.pr_auc(np.zeros(0), np.zeros(0, bool)) == 0.0
    assert m.ssr_pa([]) == m.SsrPa(0.0, 0.0, 0, 0, 0)


def test_ndcg_mrr_top_k_by_hand() -> None:
    scores = np.array([0.9, 0.8, 0.7])
    relevant = np.array([0, 1, 1])
    # DCG = 1/log2(3) + 1/log2(4); ideal = 1 + 1/log2(3).
    expected = (1 / math.log2(3) + 0.5) / (1 + 1 / math.log2(3))
    assert m.ndcg(scores, relevant) == pytest.approx(expected)
    assert m.ndcg(scores, np.zeros(3)) == 0.0
    rows = np.array([[0.9, 0.8, 0.7], [0.9, 0.8, 0.7], [0.9, 0.8, 0.7]])
    rel = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]], bool)
    assert m.mrr(rows, rel) == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert m.top_k_accuracy(rows, rel, k=1) == pytest.approx(1 / 3)
    assert m.top_k_accuracy(rows, rel, k=2) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        m.top_k_hit(scores, relevant, k=0)


def test_pr_auc_by_hand_and_ties_form_one_threshold() -> None:
    # Thresholds: 0.9 (P 1, R 1/2), 0.8 (P 1/2), 0.7 (P 2/3, R 1), 0.6: 1/2 * 1 + 1/2 * 2/3.
    assert m.pr_auc(np.array([0.9, 0.8, 0.7, 0.6]), np.array([1, 0, 1, 0])) == pytest.approx(5 / 6)
    # Tied scores: one threshold holding one positive and one negative, whatever their order.
    tied = np.array([0.5, 0.5, 0.2])
    assert m.pr_auc(tied, np.array([0, 1, 1])) == pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3)
    assert m.pr_auc(tied, np.array([1, 0, 1])) == pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3)
    # Retrieval AP breaks the same tie by position instead.
    assert m.average_precision(tied, np.array([1, 0, 1])) == pytest.approx((1 + 2 / 3) / 2)
    assert m.pr_auc(np.array([0.3, 0.1]), np.array([0, 0])) == 0.0
    assert m.pr_auc(np.array([0.3, 0.1]), np.array([1, 1])) == 1.0


def test_non_finite_scores_are_rejected() -> None:
    with pytest.raises(ValueError, match="finite"):
        m.average_precision(np.array([np.nan, 0.1]), np.array([1, 0]))


def test_nearid_margins_two_views_by_hand() -> None:
    views = np.array([[1.0, 0.0], [0.6, 0.8]])  # s(p0, p1) = 0.6
    distractors = np.array([[0.8, 0.6], [0.0, 1.0]])  # s(p0, n0) = 0.8, s(p1, n1) = 0.8
    assert m.nearid_margins(views, distractors) == pytest.approx([-0.2, -0.2])
    better = np.array([[0.0, 1.0], [1.0, 0.0]])  # s(p0, n0) = 0, s(p1, n1) = 0.6
    assert m.nearid_margins(views, better) == pytest.approx([0.6, 0.0])


def test_nearid_margins_skip_missing_views_and_distractors() -> None:
    rng = np.random.default_rng(0)
    views, distractors = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    assert m.nearid_margins(views, distractors).shape == (6,)
    no_view = views.copy()
    no_view[2] = np.nan
    assert m.nearid_margins(no_view, distractors).shape == (2,)  # (0, 1) and (1, 0)
    no_distractor = distractors.copy()
    no_distractor[1] = np.nan  # n_1 only appears in margins anchored at p_1
    kept = m.nearid_margins(views, no_distractor)
    full = m.nearid_margins(views, distractors)
    assert kept == pytest.approx(full[[0, 1, 4, 5]])  # pairs (0,1) (0,2) (2,0) (2,1)
    assert m.nearid_margins(views[:1], distractors[:1]).size == 0


def test_ssr_needs_every_margin_positive_and_zero_fails() -> None:
    result = m.ssr_pa([np.array([0.1, 0.2]), np.array([0.3, -0.1]), np.array([]), np.array([0.0])])
    assert result == m.SsrPa(ssr=1 / 3, pa=3 / 5, n_samples=3, n_margins=5, n_skipped=1)


def test_release_convention_counts_each_samples_mean_margin_as_one_more_trial() -> None:
    """NearID's evaluation/metrics.py: summarize_margin_family pools the per-term wins and the
    `_overall_win` (mean margin > 0) of add_disc_sim_vs_crossii_bidir_with_overall; SSRm is
    "every one of them won"."""
    samples = [
        np.array([0.1, 0.2]),  # 2 wins, mean 0.15 wins: 3 of 3
        np.array([0.3, -0.1]),  # 1 win, mean 0.1 wins: 2 of 3
        np.array([]),  # no margin: skipped by both
        np.array([0.0]),  # a zero margin and a zero mean both fail: 0 of 2
        np.array([-0.5, 0.1, 0.1]),  # 2 wins, mean -0.1 fails: 2 of 4
    ]
    paper = m.ssr_pa(samples)
    assert paper == m.SsrPa(ssr=1 / 4, pa=5 / 8, n_samples=4, n_margins=8, n_skipped=1)
    release = m.ssr_pa(samples, "release")
    assert release == m.SsrPa(ssr=1 / 4, pa=7 / 12, n_samples=4, n_margins=12, n_skipped=1)
    with pytest.raises(ValueError, match="convention"):
        m.ssr_pa(samples, "published")  # type: ignore[arg-type]


# --- against the reference on random data -----------------------------------------------------


def test_map_matches_reference_on_random_embeddings() -> None:
    rng = np.random.default_rng(7)
    for trial in range(5):
        gallery = rng.normal(size=(40, 16))
        queries = rng.normal(size=(12, 16))
        gallery_labels = rng.integers(0, 5, size=40)
        query_labels = rng.integers(0, 6, size=12)  # label 5: no relevant item
        expected = ref.mean_average_precision(
            queries.tolist(), query_labels.tolist(), gallery.tolist(), gallery_labels.tolist()
        )
        got = m.mean_average_precision(queries, query_labels, gallery, gallery_labels)
        assert abs(got - expected) < 1e-9, trial


def test_ranking_metrics_match_reference_with_ties() -> None:
    rng = np.random.default_rng(11)
    for _ in range(30):
        n = int(rng.integers(1, 30))
        scores = np.round(rng.random(n), 1)  # coarse: many ties
        relevant = rng.random(n) < 0.3
        s, r = scores.tolist(), relevant.tolist()
        assert abs(m.average_precision(scores, relevant) - ref.average_precision(s, r)) < 1e-9
        assert abs(m.ndcg(scores, relevant) - ref.ndcg(s, r)) < 1e-9
        assert abs(m.reciprocal_rank(scores, relevant) - ref.reciprocal_rank(s, r)) < 1e-9
        assert m.top_k_hit(scores, relevant, 3) == ref.top_k_hit(s, r, 3)
        assert abs(m.pr_auc(scores, relevant) - ref.pr_auc(s, r)) < 1e-9


def test_ssr_pa_match_reference_on_random_identities() -> None:
    rng = np.random.default_rng(3)
    ours, theirs = [], []
    for _ in range(200):
        n_views = int(rng.integers(1, 4))  # 1 view: no margin, skipped
        views, distractors = rng.normal(size=(n_views, 8)), rng.normal(size=(n_views, 8))
        views[:, 0] += 2.0  # views alike, so both outcomes occur
        if n_views == 3 and rng.random() < 0.3:
            distractors[1] = np.nan
        got = m.nearid_margins(views, distractors)
        expected = ref.nearid_margins(
            [v.tolist() for v in views],
            [None if np.isnan(d).any() else d.tolist() for d in distractors],
        )
        assert got.shape == (len(expected),)
        assert np.abs(got - np.array(expected)).max(initial=0.0) < 1e-9
        ours.append(got)
        theirs.append(expected)
    result, (ssr, pa) = m.ssr_pa(ours), ref.ssr_pa(theirs)
    assert 0 < result.ssr < 1 and 0 < result.pa < 1
    assert abs(result.ssr - ssr) < 1e-9 and abs(result.pa - pa) < 1e-9
