"""Identity-disjoint, category-stratified split assignment, deterministic for a seed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from nearid_data.errors import NearidError
from nearid_data.seeding import rng_for


def largest_remainder(
    total: int, weights: Mapping[str, float], tie_order: Sequence[str] | None = None
) -> dict[str, int]:
    """Integer counts summing to ``total`` in proportion to ``weights``; equal remainders are
    served in ``tie_order`` (default: mapping order)."""
    order_of = {name: i for i, name in enumerate(tie_order or list(weights))}
    weight_sum = sum(weights.values())
    exact = {name: total * w / weight_sum if weight_sum else 0.0 for name, w in weights.items()}
    counts = {name: int(np.floor(v + 1e-9)) for name, v in exact.items()}
    ranked = sorted(exact, key=lambda n: (-round(exact[n] - counts[n], 9), order_of[n]))
    for name in ranked[: total - sum(counts.values())]:
        counts[name] += 1
    return counts


def assign_splits(
    identities_by_category: Mapping[str, Sequence[str]],
    *,
    seed: int,
    fractions: Mapping[str, float] | None = None,
    sizes: Mapping[str, int] | None = None,
    remainder: str = "train",
    cap: bool = False,
) -> dict[str, str]:
    """identity -> split.

    ``sizes`` gives the number of identities of each split; ``fractions`` are turned into sizes
    of the whole dataset (the largest fraction's split takes the remainder), so small splits get
    their share even when every category is small. Each split's size is spread over categories in
    proportion to their size (stratified); ties go to categories in a seeded order per split, so
    small splits do not all land in the same category. ``remainder`` takes what is left.

    ``sizes`` that add up to more identities than there are is an error, or with ``cap`` they are
    scaled down in proportion to add up to the identities available (``remainder`` gets none).
    """
    categories = sorted(identities_by_category)
    counts = {c: len(identities_by_category[c]) for c in categories}
    available = sum(counts.values())
    if fractions is not None:
        remainder = max(fractions, key=lambda name: fractions[name])
        global_sizes = largest_remainder(available, fractions)
        sizes = {name: n for name, n in global_sizes.items() if name != remainder}
    assert sizes is not None
    if sum(sizes.values()) > available:
        if not cap:
            raise NearidError(
                f"split sizes {dict(sizes)} need {sum(sizes.values())} identities, but only "
                f"{available} are available; lower the sizes, or set sizes_mode: cap to scale "
                f"them down"
            )
        sizes = largest_remainder(available, {name: float(n) for name, n in sizes.items()})
    spread = {}
    for name, size in sizes.items():
        tie_order = [
            categories[i] for i in rng_for(seed, "splits", name).permutation(len(categories))
        ]
        spread[name] = largest_remainder(size, counts, tie_order)
    assignment: dict[str, str] = {}
    for category in categories:
        fixed = {name: spread[name][category] for name in sizes}
        rest = counts[category] - sum(fixed.values())
        if rest < 0:
            raise NearidError(
                f"split sizes {dict(sizes)} need more identities than category {category!r} has "
                f"({counts[category]})"
            )
        members = sorted(identities_by_category[category])
        order = rng_for(seed, "splits", category).permutation(len(members))
        position = 0
        for split, count in {remainder: rest, **fixed}.items():
            for index in order[position : position + count]:
                assignment[members[index]] = split
            position += count
    return assignment
