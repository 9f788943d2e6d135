"""Choosing the near-identity concept: sibling, perturb, list."""

from __future__ import annotations

import numpy as np
import pytest

from nearid_data.distractors.concepts import ATTRIBUTES, IdentityInfo, choose_concept
from nearid_data.errors import NearidError, Rejection

REFERENCE = IdentityInfo("mug-1", "mug", "a red ceramic mug with a round handle")
SIBLINGS = [
    REFERENCE,
    IdentityInfo("mug-2", "mug", "a blue glass mug"),
    IdentityInfo("mug-3", "mug", "a striped metal mug"),
    IdentityInfo("shoe-1", "shoe", "a white leather shoe"),
]


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_sibling_is_another_identity_of_the_same_category() -> None:
    chosen = {
        choose_concept("sibling", REFERENCE, SIBLINGS, rng(s)).donor_identity for s in range(40)
    }
    assert chosen == {"mug-2", "mug-3"}
    concept = choose_concept("sibling", REFERENCE, SIBLINGS, rng(1))
    captions = {s.identity: s.caption for s in SIBLINGS}
    assert concept.strategy == "sibling" and concept.prompt == captions[concept.donor_identity]
    assert concept.swaps == ()


def test_sibling_does_not_depend_on_input_order_or_duplicates() -> None:
    shuffled = [SIBLINGS[2], SIBLINGS[3], SIBLINGS[1], SIBLINGS[0], SIBLINGS[2]]
    for seed in range(10):
        assert choose_concept("sibling", REFERENCE, shuffled, rng(seed)) == choose_concept(
            "sibling", REFERENCE, SIBLINGS, rng(seed)
        )


def test_no_sibling_is_a_rejection() -> None:
    with pytest.raises(Rejection) as caught:
        choose_concept("sibling", SIBLINGS[3], SIBLINGS, rng())
    assert caught.value.reason == "no_sibling"


def test_most_similar_sibling_wins_and_ties_are_broken_by_rng() -> None:
    scores = {"mug-2": 0.2, "mug-3": 0.9}
    by_score = {
        choose_concept(
            "sibling", REFERENCE, SIBLINGS, rng(s), similarity=lambda a, b: scores[b.identity]
        ).donor_identity
        for s in range(20)
    }
    assert by_score == {"mug-3"}
    tied = {
        choose_concept(
            "sibling", REFERENCE, SIBLINGS, rng(s), similarity=lambda a, b: 1.0
        ).donor_identity
        for s in range(40)
    }
    assert tied == {"mug-2", "mug-3"}


def class_of(word: str) -> str:
    return next(name for name, words in ATTRIBUTES.items() if word.lower() in words)


@pytest.mark.parametrize("seed", range(25))
def test_perturb_swaps_words_within_one_attribute_class(seed: int) -> None:
    concept = choose_concept("perturb", REFERENCE, SIBLINGS, rng(seed), max_swaps=2)
    assert concept.strategy == "perturb" and concept.donor_identity is None
    assert 1 <= len(concept.swaps) <= 2
    words = REFERENCE.caption.split()
    result = concept.prompt.split()
    assert len(result) == len(words)
    changed = [(a, b) for a, b in zip(words, result, strict=True) if a != b]
    assert changed == list(concept.swaps)
    for old, new in concept.swaps:
        assert old != new and class_of(old) == class_of(new)
        assert new not in REFERENCE.caption.split()


def test_perturb_reaches_every_swappable_word_and_keeps_case() -> None:
    swapped = {
        old
        for s in range(60)
        for old, _ in choose_concept("perturb", REFERENCE, SIBLINGS, rng(s), max_swaps=3).swaps
    }
    assert swapped == {"red", "ceramic", "round"}
    capital = choose_concept("perturb", IdentityInfo("x", "mug", "Red mug."), [], rng())
    ((old, new),) = capital.swaps
    assert old == "Red" and new[0].isupper() and capital.prompt == f"{new} mug."


def test_perturb_without_attribute_words_adds_one() -> None:
    plain = IdentityInfo("x", "mug", "a mug on a table.")
    concept = choose_concept("perturb", plain, [], rng(3))
    ((old, new),) = concept.swaps
    assert old == "" and new in {w for words in ATTRIBUTES.values() for w in words}
    assert concept.prompt.startswith("a mug on a table, a") and concept.prompt.endswith(
        f"{new} mug"
    )


def test_perturb_needs_at_least_one_swap() -> None:
    with pytest.raises(NearidError, match="max_swaps"):
        choose_concept("perturb", REFERENCE, [], rng(), max_swaps=0)


def test_list_draws_a_prompt_and_fills_in_the_category() -> None:
    prompts = ["a {category} in a different style", "another {category}"]
    drawn = {
        choose_concept("list", REFERENCE, [], rng(s), prompts=prompts).prompt for s in range(20)
    }
    assert drawn == {"a mug in a different style", "another mug"}
    with pytest.raises(NearidError, match="non-empty"):
        choose_concept("list", REFERENCE, [], rng())


@pytest.mark.parametrize("strategy", ["sibling", "perturb", "list"])
def test_same_rng_state_same_concept(strategy: str) -> None:
    def draw(seed: int) -> object:
        return choose_concept(strategy, REFERENCE, SIBLINGS, rng(seed), prompts=["a", "b", "c"])  # type: ignore[arg-type]

    assert [draw(s) for s in range(8)] == [draw(s) for s in range(8)]
    assert len({repr(draw(s)) for s in range(8)}) > 1


def test_unknown_strategy_is_an_error() -> None:
    with pytest.raises(NearidError, match="unknown concept strategy"):
        choose_concept("random", REFERENCE, SIBLINGS, rng())  # type: ignore[arg-type]
