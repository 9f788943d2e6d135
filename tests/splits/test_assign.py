from collections import Counter

import pytest

from nearid_data.errors import NearidError
from nearid_data.splits.assign import assign_splits, largest_remainder


def _identities(per_category: dict[str, int]) -> dict[str, list[str]]:
    return {c: [f"{c}-{i:03d}" for i in range(n)] for c, n in per_category.items()}


def test_largest_remainder_sums_and_is_proportional() -> None:
    assert largest_remainder(10, {"a": 0.5, "b": 0.3, "c": 0.2}) == {"a": 5, "b": 3, "c": 2}
    assert sum(largest_remainder(7, {"a": 1, "b": 1, "c": 1}).values()) == 7
    assert largest_remainder(1, {"a": 1, "b": 1}, tie_order=["b", "a"]) == {"a": 0, "b": 1}


def test_fractions_are_stratified_and_every_identity_assigned_once() -> None:
    identities = _identities({"mug": 40, "shoe": 20})
    assignment = assign_splits(
        identities, seed=3, fractions={"train": 0.8, "val": 0.1, "test": 0.1}
    )
    assert set(assignment) == {i for group in identities.values() for i in group}
    per = Counter((i.split("-")[0], s) for i, s in assignment.items())
    assert per[("mug", "train")] == 32 and per[("shoe", "train")] == 16
    assert per[("mug", "val")] + per[("shoe", "val")] == 6


def test_small_categories_still_fill_small_splits() -> None:
    assignment = assign_splits(
        _identities({c: 2 for c in "abcd"}),
        seed=0,
        fractions={"train": 0.5, "val": 0.25, "test": 0.25},
    )
    assert Counter(assignment.values()) == {"train": 4, "val": 2, "test": 2}


def test_deterministic_for_a_seed_and_different_across_seeds() -> None:
    identities = _identities({"mug": 30})
    a = assign_splits(identities, seed=1, sizes={"val": 5, "test": 5})
    assert a == assign_splits(identities, seed=1, sizes={"val": 5, "test": 5})
    assert a != assign_splits(identities, seed=2, sizes={"val": 5, "test": 5})
    assert Counter(a.values()) == {"train": 20, "val": 5, "test": 5}


def test_sizes_larger_than_the_data_are_an_error_that_says_how_many_there_are() -> None:
    identities = _identities({"mug": 3, "cup": 4})
    with pytest.raises(NearidError, match="need 600 identities, but only 7 are available"):
        assign_splits(identities, seed=0, sizes={"val": 100, "test": 500})


def test_capped_sizes_scale_down_in_proportion() -> None:
    identities = _identities({"mug": 3, "cup": 4})
    a = assign_splits(identities, seed=0, sizes={"val": 100, "test": 500}, cap=True)
    assert Counter(a.values()) == {"val": 1, "test": 6}
