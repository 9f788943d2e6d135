"""The pure assignment rules on synthetic image records: sizes, subjects, guards, determinism."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from nearid_data.errors import NearidError
from nearid_data.galleries.assign import (
    EXTRA,
    GALLERY,
    NEAR_DUPLICATE,
    REFERENCE,
    TOO_FEW_IMAGES,
    UNUSED,
    Decision,
    GalleryRules,
    Image,
    assign_group,
    assign_subject,
    group_identities,
    ordered,
    plan_group,
    subject_sizes,
)
from nearid_data.galleries.stage import GalleriesConfig
from nearid_data.seeding import rng_for


def _images(identity: str, n: int, cluster_size: int | None = None) -> list[Image]:
    """Images with unrelated random hashes (pairwise ~32 bits apart), optionally in clusters."""
    rng = rng_for("hashes", identity)
    return [
        Image(
            f"{identity}_v{v:03d}",
            v,
            cluster=f"{identity}-c{v // cluster_size}" if cluster_size else None,
            dhash=int(rng.integers(0, 2**63)),
        )
        for v in range(n)
    ]


def _assign(
    images: dict[str, list[Image]], rules: GalleryRules, seed: int = 0
) -> dict[str, Decision]:
    plan = plan_group("g", {i: len(ims) for i, ims in images.items()}, rules, seed)
    return assign_group("g", plan, images, rules, seed)


def _roles(decisions: dict[str, Decision], identity: str) -> Counter[str | None]:
    return Counter(d.role for k, d in decisions.items() if k.startswith(f"{identity}_"))


def test_subject_sizes_fixed_and_n_minus_5() -> None:
    fixed = GalleryRules()
    assert subject_sizes(25, fixed) == (10, 10)
    assert subject_sizes(12, fixed) == (2, 10)
    reid = GalleryRules(reference_rule="n_minus_5", gallery_per_subject=15)
    assert subject_sizes(9, reid) == (4, 5)
    assert subject_sizes(12, reid) == (7, 5)
    assert subject_sizes(40, reid) == (10, 15)


def test_top_subjects_by_image_count_rest_extra_too_few_rejected() -> None:
    counts = {"a": 20, "b": 12, "c": 12, "d": 9, "e": 3}
    plan = plan_group("g", counts, GalleryRules(subjects_per_group=2, distractor_subjects=1), 0)
    assert plan.subjects == ["a", "b"]  # ties broken by name
    assert plan.too_few == ["e"]
    assert sorted([*plan.distractors, *plan.extra]) == ["c", "d"] and len(plan.distractors) == 1
    with pytest.raises(NearidError, match="distractor_subjects=3"):
        plan_group("g", counts, GalleryRules(subjects_per_group=2, distractor_subjects=3), 0)


def test_every_image_decided_roles_disjoint_and_deterministic() -> None:
    images = {i: _images(i, n) for i, n in {"a": 20, "b": 11, "c": 10, "d": 4}.items()}
    rules = GalleryRules(references_per_subject=4, gallery_per_subject=5, subjects_per_group=2)
    decisions = _assign(images, rules)
    assert set(decisions) == {im.key for ims in images.values() for im in ims}
    assert _roles(decisions, "a") == {REFERENCE: 4, GALLERY: 5, None: 11}
    assert _roles(decisions, "b") == {REFERENCE: 4, GALLERY: 5, None: 2}
    assert _roles(decisions, "c") == {EXTRA: 10}
    assert {d.reason for k, d in decisions.items() if k.startswith("d_")} == {TOO_FEW_IMAGES}
    assert {d.reason for d in decisions.values() if d.role is None} == {TOO_FEW_IMAGES, UNUSED}
    assert _assign(images, rules) == decisions
    assert _assign(images, rules, seed=1) != decisions
    no_extra = _assign(images, rules.model_copy(update={"extra_pool": False}))
    assert _roles(no_extra, "c") == {None: 10}


def test_first_selection_takes_the_gallery_then_the_references_in_source_order() -> None:
    decisions = assign_subject(ordered(_images("a", 25), "first", rng_for(0), 10), 10, 10, 6)
    roles = [decisions[f"a_v{v:03d}"].role for v in range(25)]
    assert roles == [GALLERY] * 10 + [REFERENCE] * 10 + [None] * 5


def test_a_cluster_never_spans_references_and_gallery() -> None:
    images = {"a": _images("a", 30, cluster_size=4), "b": _images("b", 9, cluster_size=3)}
    for seed in range(20):
        rules = GalleryRules(references_per_subject=5, gallery_per_subject=7, min_images=9)
        decisions = _assign(images, rules, seed)
        for identity, ims in images.items():
            roles_of: dict[str, set[str]] = {}
            for im in ims:
                roles_of.setdefault(im.cluster or "", set()).add(str(decisions[im.key].role))
            assert all(not {REFERENCE, GALLERY} <= roles for roles in roles_of.values()), seed
            assert _roles(decisions, identity)[REFERENCE] > 0
        details = [d.detail for d in decisions.values() if d.reason == UNUSED]
        assert any("among the references" in detail for detail in details)
    one_cluster = assign_subject(_images("c", 9, cluster_size=9), 4, 5, 6)
    assert {d.reason for d in one_cluster.values()} == {TOO_FEW_IMAGES}


def test_near_duplicate_gallery_image_is_dropped_and_replaced() -> None:
    images = _images("a", 12)
    # The first reference (view 4) is a copy of the first gallery image (view 0): 2 bits apart.
    images[4] = Image("a_v004", 4, dhash=images[0].dhash ^ 0b101)  # type: ignore[operator]
    decisions = assign_subject(ordered(images, "first", rng_for(0), 4), 4, 4, 6)
    dropped = decisions["a_v000"]
    assert dropped.reason == NEAR_DUPLICATE and dropped.qa == {"reference": "a_v004", "hamming": 2}
    assert "a_v000" in dropped.detail and "a_v004" in dropped.detail
    gallery = sorted(k for k, d in decisions.items() if d.role == GALLERY)
    assert gallery == ["a_v001", "a_v002", "a_v003", "a_v008"]  # refilled from what was left
    assert all(decisions[k].qa["nearest_reference_hamming"] > 6 for k in gallery)
    unguarded = assign_subject(ordered(images, "first", rng_for(0), 4), 4, 4, None)
    assert unguarded["a_v000"].role == GALLERY


def test_kmeans_picks_one_gallery_image_per_visual_cluster() -> None:
    rng = np.random.default_rng(0)
    blobs = np.repeat(np.eye(3) * 10, 6, axis=0) + rng.normal(0, 0.1, (18, 3))
    images = [Image(f"a_v{v:03d}", v, features=blobs[v]) for v in range(18)]
    for seed in range(5):
        first = ordered(images, "kmeans", rng_for(seed), 3)[:3]
        assert sorted(im.view // 6 for im in first) == [0, 1, 2]
    with pytest.raises(ValueError, match="features"):
        ordered(_images("a", 5), "kmeans", rng_for(0), 2)


def test_distractor_identities_join_the_gallery_without_references() -> None:
    images = {i: _images(i, 12) for i in "abc"}
    rules = GalleryRules(
        references_per_subject=3, gallery_per_subject=4, subjects_per_group=1, distractor_subjects=1
    )
    decisions = _assign(images, rules)
    plan = plan_group("g", {i: 12 for i in "abc"}, rules, 0)
    (distractor,) = plan.distractors
    assert _roles(decisions, distractor) == {GALLERY: 4, None: 8}
    assert all(d.qa.get("distractor") for k, d in decisions.items() if k.startswith(distractor))
    assert _roles(decisions, plan.extra[0]) == {EXTRA: 12}


def test_groups_must_name_known_identities_once() -> None:
    by_category = {"bird": ["wren", "tern"], "car": ["audi"]}
    assert group_identities(by_category, None) == {"bird": ["tern", "wren"], "car": ["audi"]}
    assert group_identities(by_category, {"mixed": ["wren", "audi"]}) == {"mixed": ["audi", "wren"]}
    with pytest.raises(NearidError, match="sparrow"):
        group_identities(by_category, {"birds": ["sparrow"]})
    with pytest.raises(ValueError, match="'wren' is in groups"):
        GalleriesConfig(groups={"a": ["wren"], "b": ["wren"]})
