"""Who is a subject, and which of a subject's images are references, gallery or left out.

Pure functions over image records (key, view, cluster, perceptual hash, embedding): the stage
fetches pixels and hands these in, so the rules are testable without a build. Every random
choice draws from ``rng_for(seed, "galleries", group, identity)``.

Differences from the paper's loaders, on purpose: identities below ``min_images`` are rejected
(its Re-ID loader also puts them in ``extra``), leftover images of subjects are ``unused`` (it
puts them in ``extra`` too), and two guards it lacks: a near-frame cluster never spans
references and gallery, and no gallery image is a perceptual near-duplicate of a reference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
from pydantic import Field

from nearid_data.errors import NearidError
from nearid_data.galleries.embed import representatives
from nearid_data.galleries.phash import hamming, near_duplicate_pairs
from nearid_data.seeding import rng_for
from nearid_data.strict import StrictModel

REFERENCE, GALLERY, EXTRA = "reference", "gallery", "extra"
TOO_FEW_IMAGES, NEAR_DUPLICATE, UNUSED = "too_few_images", "near_duplicate", "unused"
CLUSTER_GUARD = {"cluster_guard": True}
"""QA of an image the cluster guard (not the paper's) left out, so its effect is counted."""
RESERVED_FOR_GALLERY = 5
"""The Re-ID rule: min(n - 5, references) references, leaving at least 5 images to the gallery."""


class GalleryRules(StrictModel):
    """The assignment settings (the stage's config adds where groups and clusters come from)."""

    references_per_subject: int = Field(10, ge=1)
    gallery_per_subject: int = Field(10, ge=1)
    min_images: int = Field(9, ge=1)
    subjects_per_group: int | None = Field(None, ge=1)
    """Keep the identities with the most images (ties: by name); None keeps every eligible one."""
    reference_rule: Literal["fixed", "n_minus_5"] = "fixed"
    selection: Literal["random", "first", "kmeans"] = "random"
    """Order in which the gallery, then the references, are filled: shuffled, source order
    (Stanford Cars: first 10 to the gallery, next 10 references), or k-means representatives."""
    extra_pool: bool = True
    distractor_subjects: int = Field(0, ge=0)
    """Eligible non-subjects per group whose images join the gallery with no references."""
    near_duplicate_hamming: int | None = Field(6, ge=0, le=64)
    """dHash distance at or below which a gallery image counts as a copy of a reference."""


@dataclass(frozen=True)
class Image:
    key: str
    view: int
    cluster: str | None = None  # near-duplicate frames share one; None: a cluster of its own
    dhash: int | None = None  # None: not checked
    features: np.ndarray | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Decision:
    role: str | None  # REFERENCE, GALLERY, EXTRA; None: rejected for ``reason``
    reason: str = ""
    detail: str = ""
    qa: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GroupPlan:
    subjects: list[str]
    distractors: list[str]
    extra: list[str]
    too_few: list[str]


def group_identities(
    identities_by_category: Mapping[str, Sequence[str]], groups: Mapping[str, Sequence[str]] | None
) -> dict[str, list[str]]:
    """group -> identities: ``groups`` as configured, or one group per category."""
    if groups is None:
        return {category: sorted(ids) for category, ids in identities_by_category.items()}
    known = {i for ids in identities_by_category.values() for i in ids}
    missing = sorted({i for ids in groups.values() for i in ids} - known)
    if missing:
        raise NearidError(
            f"stages.galleries.groups names {len(missing)} identities with no image upstream: "
            f"{missing[:10]}"
        )
    return {group: sorted(set(ids)) for group, ids in groups.items()}


def subject_sizes(n: int, rules: GalleryRules) -> tuple[int, int]:
    """(references, gallery images) for a subject with ``n`` images."""
    if rules.reference_rule == "n_minus_5":
        references = max(0, min(n - RESERVED_FOR_GALLERY, rules.references_per_subject))
        return references, min(n - references, rules.gallery_per_subject)
    gallery = min(n, rules.gallery_per_subject)
    return min(n - gallery, rules.references_per_subject), gallery


def plan_group(group: str, counts: Mapping[str, int], rules: GalleryRules, seed: int) -> GroupPlan:
    """Split a group's identities by their image counts (no pixels needed)."""
    eligible = sorted(
        (i for i in counts if counts[i] >= rules.min_images), key=lambda i: (-counts[i], i)
    )
    cut = len(eligible) if rules.subjects_per_group is None else rules.subjects_per_group
    others = sorted(eligible[cut:])
    if rules.distractor_subjects > len(others):
        raise NearidError(
            f"group {group!r}: distractor_subjects={rules.distractor_subjects} but only "
            f"{len(others)} eligible identities are not subjects"
        )
    drawn = rng_for(seed, "galleries", group, "distractor_subjects").permutation(len(others))
    distractors = sorted(others[i] for i in drawn[: rules.distractor_subjects])
    return GroupPlan(
        subjects=sorted(eligible[:cut]),
        distractors=distractors,
        extra=[i for i in others if i not in distractors],
        too_few=sorted(i for i in counts if counts[i] < rules.min_images),
    )


def assign_group(
    group: str,
    plan: GroupPlan,
    images: Mapping[str, Sequence[Image]],
    rules: GalleryRules,
    seed: int,
) -> dict[str, Decision]:
    """key -> decision for every image of the group's identities."""
    decisions: dict[str, Decision] = {}
    for identity in plan.too_few:
        detail = f"{identity}: {len(images[identity])} < {rules.min_images} images"
        decisions.update(
            {im.key: Decision(None, TOO_FEW_IMAGES, detail) for im in images[identity]}
        )
    for identity in plan.subjects:
        n_ref, n_gal = subject_sizes(len(images[identity]), rules)
        rng = rng_for(seed, "galleries", group, identity)
        order = ordered(images[identity], rules.selection, rng, n_gal)
        decisions.update(assign_subject(order, n_ref, n_gal, rules.near_duplicate_hamming))
    for identity in plan.distractors:
        # A distractor is a subject without references: gallery images no query should match.
        rng = rng_for(seed, "galleries", group, identity)
        order = ordered(images[identity], rules.selection, rng, rules.gallery_per_subject)
        roles = assign_subject(order, 0, rules.gallery_per_subject, None)
        decisions.update({k: replace(d, qa={**d.qa, "distractor": True}) for k, d in roles.items()})
    for identity in plan.extra:
        leftover = Decision(None, UNUSED, f"{identity} is not a subject and extra_pool is off")
        decision = Decision(EXTRA) if rules.extra_pool else leftover
        decisions.update({im.key: decision for im in images[identity]})
    return decisions


def ordered(
    images: Sequence[Image], selection: str, rng: np.random.Generator, n_first: int
) -> list[Image]:
    """A subject's images in the order roles are filled (gallery first, then references):
    source order, shuffled, or one representative per k-means cluster of ``n_first`` first and
    the rest shuffled."""
    by_view = sorted(images, key=lambda im: (im.view, im.key))
    if selection == "first":
        return by_view
    shuffled = [int(i) for i in rng.permutation(len(by_view))]
    if selection == "random":
        return [by_view[i] for i in shuffled]
    features = [im.features for im in by_view]
    if any(f is None for f in features):
        raise ValueError("selection 'kmeans' needs features on every image")
    picks = representatives(np.stack(features), n_first, rng)  # type: ignore[arg-type]
    return [by_view[i] for i in [*picks, *(i for i in shuffled if i not in picks)]]


def assign_subject(
    order: Sequence[Image], n_ref: int, n_gal: int, max_distance: int | None
) -> dict[str, Decision]:
    """Roles for one subject's images in fill order.

    The gallery takes whole clusters first, then the references take the next clusters, so no
    cluster spans both (a cluster cut at a size limit leaves its rest unused); the gallery always
    leaves one cluster to the references, and a subject with a single cluster cannot be split.
    A gallery image within ``max_distance`` of a reference is rejected and the next candidate
    takes its place.
    """
    clusters = _clusters(order)
    if n_ref and len(clusters) < 2:
        detail = f"all {len(order)} images are one cluster: no reference independent of the gallery"
        return {im.key: Decision(None, TOO_FEW_IMAGES, detail, CLUSTER_GUARD) for im in order}
    _, gallery_span = _take(clusters[: len(clusters) - (1 if n_ref else 0)], n_gal)
    references, _ = _take(clusters[gallery_span:], n_ref)
    ref_keys = {im.key for im in references}
    ref_clusters = {im.cluster for im in references if im.cluster is not None}
    ref_hashes = {im.key: im.dhash for im in references if im.dhash is not None}
    candidates = [im for run in clusters for im in run if im.key not in ref_keys]
    copies: dict[str, tuple[str, int]] = {}
    if max_distance is not None:
        hashes = {im.key: im.dhash for im in candidates if im.dhash is not None}
        for gallery_key, ref_key, distance in near_duplicate_pairs(
            ref_hashes, hashes, max_distance
        ):
            copies.setdefault(gallery_key, (ref_key, distance))  # closest first
    decisions = {im.key: Decision(REFERENCE) for im in references}
    n_gallery = 0
    for im in candidates:
        if im.cluster is not None and im.cluster in ref_clusters:
            decisions[im.key] = Decision(
                None, UNUSED, f"cluster {im.cluster} is among the references", CLUSTER_GUARD
            )
        elif n_gallery >= n_gal:
            detail = f"beyond {n_ref} references and {n_gal} gallery images"
            decisions[im.key] = Decision(None, UNUSED, detail)
        elif im.key in copies:
            ref_key, distance = copies[im.key]
            detail = f"gallery {im.key} ~ reference {ref_key}: dhash distance {distance} <= {max_distance}"
            qa = {"reference": ref_key, "hamming": distance}
            decisions[im.key] = Decision(None, NEAR_DUPLICATE, detail, qa)
        else:
            decisions[im.key] = Decision(GALLERY, qa=_nearest_reference(im, ref_hashes))
            n_gallery += 1
    return decisions


def _clusters(order: Sequence[Image]) -> list[list[Image]]:
    """Images grouped by cluster, each group where its first member stands in ``order``."""
    runs: dict[tuple[bool, str], list[Image]] = {}
    for im in order:
        runs.setdefault(
            (True, im.cluster) if im.cluster is not None else (False, im.key), []
        ).append(im)
    return list(runs.values())


def _take(clusters: Sequence[list[Image]], n: int) -> tuple[list[Image], int]:
    """The first ``n`` images of ``clusters`` in order, and how many clusters they touch."""
    taken: list[Image] = []
    touched = 0
    for run in clusters:
        if len(taken) >= n:
            break
        taken.extend(run[: n - len(taken)])
        touched += 1
    return taken, touched


def _nearest_reference(image: Image, ref_hashes: Mapping[str, int]) -> dict[str, Any]:
    """QA for a kept gallery image: its dHash distance to the closest reference."""
    if image.dhash is None or not ref_hashes:
        return {}
    return {"nearest_reference_hamming": min(hamming(image.dhash, h) for h in ref_hashes.values())}
