"""Identity-disjoint, category-stratified split assignment, deterministic for a seed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from nearid_data.errors import NearidError
from nearid_data.seeding import rng_for


def largest_remainder(total: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Integer counts summing to ``total`` in proportion to ``weights`` (ties: mapping order)."""
    weight_sum = sum(weights.values())
    exact = {name: total * w / weight_sum for name, w in weights.items()} if weight_sum else {}
    counts = {name: int(np.floor(v)) for name, v in exact.items()}
    order = sorted(exact, key=lambda n: (-(exact[n] - counts[n]), list(weights).index(n)))
    for name in order[: total - sum(counts.values())]:
        counts[name] += 1
    return counts


def assign_splits(
    identities_by_category: Mapping[str, Sequence[str]],
    *,
    seed: int,
    fractions: Mapping[str, float] | None = None,
    sizes: Mapping[str, int] | None = None,
    remainder: str = "train",
) -> dict[str, str]:
    """identity -> split. ``fractions`` split every category in proportion; ``sizes`` gives total
    identity counts per split, spread over categories in proportion to their size, and the rest
    goes to ``remainder``."""
    categories = sorted(identities_by_category)
    per_category: dict[str, dict[str, int]] = {}
    if sizes is not None:
        counts = {c: len(identities_by_category[c]) for c in categories}
        spread = {name: largest_remainder(size, counts) for name, size in sizes.items()}
        for category in categories:
            fixed = {name: spread[name][category] for name in sizes}
            rest = counts[category] - sum(fixed.values())
            if rest < 0:
                raise NearidError(
                    f"split sizes {dict(sizes)} need more identities than category "
                    f"{category!r} has ({counts[category]})"
                )
            per_category[category] = {remainder: rest, **fixed}
    else:
        assert fractions is not None
        for category in categories:
            per_category[category] = largest_remainder(len(identities_by_category[category]), fractions)
    assignment: dict[str, str] = {}
    for category in categories:
        members = sorted(identities_by_category[category])
        order = rng_for(seed, "splits", category).permutation(len(members))
        position = 0
        for split, count in per_category[category].items():
            for index in order[position : position + count]:
                assignment[members[index]] = split
            position += count
    return assignment
