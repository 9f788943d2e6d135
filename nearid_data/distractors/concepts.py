"""Choosing the near-identity concept: what the distractor shows instead of the reference subject.

NearID did not publish how it chose the "similar but different" instance; here the choice is
explicit, one of three strategies, and recorded in a ``Concept``:

- ``sibling``: another identity of the same category, described by its caption (and usable as a
  donor by cut-and-paste). Chosen uniformly by ``rng``, or the most similar by ``similarity`` with
  ties broken by ``rng``. Never the reference itself; a category with no other identity is a
  per-sample ``Rejection("no_sibling")``.
- ``perturb``: the reference caption with 1 to ``max_swaps`` attribute words (colour, material,
  pattern, shape) swapped for other words of the same attribute class, so the distractor keeps the
  subject's kind and most of its description. With no attribute word in the caption, one attribute
  is added instead ("..., a striped mug"). Word-level: in "a mug on a plain table" the swap may hit
  the table; captions that describe only the subject work best.
- ``list``: one of the given prompts; ``{category}`` in a prompt is replaced by the category.

All draws come from the caller's ``rng``: the same generator state gives the same concept.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from nearid_data.errors import NearidError, Rejection

# Attribute class -> words a caption may use. No word appears in two classes and none is a synonym
# of another in its class, so every swap changes the description.
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "colour": (
        "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black",
        "white", "grey", "beige", "turquoise", "navy", "golden", "silver",
    ),
    "material": (
        "wooden", "metal", "plastic", "glass", "ceramic", "leather", "fabric", "stone",
        "rubber", "paper", "cardboard", "porcelain", "steel", "copper", "brass", "wicker",
    ),
    "pattern": (
        "striped", "checkered", "plaid", "polka-dot", "floral", "plain", "spotted",
        "zigzag", "camouflage", "paisley", "speckled", "marbled",
    ),
    "shape": (
        "round", "square", "rectangular", "oval", "triangular", "cylindrical", "hexagonal",
        "tall", "short", "flat", "slim", "wide", "curved",
    ),
}  # fmt: skip

_CLASS_OF = {word: name for name, words in ATTRIBUTES.items() for word in words}
_WORD = re.compile(r"[A-Za-z]+(?:-[A-Za-z]+)*")

Strategy = Literal["sibling", "perturb", "list"]


@dataclass(frozen=True)
class IdentityInfo:
    identity: str
    category: str
    caption: str


@dataclass(frozen=True)
class Concept:
    """The chosen concept. ``swaps``: (old, new) attribute words; old is "" for an added one."""

    strategy: str
    prompt: str
    donor_identity: str | None
    swaps: tuple[tuple[str, str], ...]


def choose_concept(
    strategy: Strategy,
    reference: IdentityInfo,
    siblings: Sequence[IdentityInfo],
    rng: np.random.Generator,
    *,
    prompts: Sequence[str] = (),
    max_swaps: int = 2,
    similarity: Callable[[IdentityInfo, IdentityInfo], float] | None = None,
) -> Concept:
    """The near-identity concept for ``reference`` (see the module docstring for the strategies)."""
    if strategy == "sibling":
        return _sibling(reference, siblings, rng, similarity)
    if strategy == "perturb":
        return _perturb(reference, rng, max_swaps)
    if strategy == "list":
        if not prompts:
            raise NearidError("concept strategy 'list' needs a non-empty list of prompts")
        prompt = prompts[int(rng.integers(len(prompts)))]
        return Concept("list", prompt.replace("{category}", reference.category), None, ())
    raise NearidError(f"unknown concept strategy {strategy!r}; known: sibling, perturb, list")


def _sibling(
    reference: IdentityInfo,
    siblings: Sequence[IdentityInfo],
    rng: np.random.Generator,
    similarity: Callable[[IdentityInfo, IdentityInfo], float] | None,
) -> Concept:
    # One entry per identity, in identity order, so the draw does not depend on input order.
    unique = {
        s.identity: s
        for s in siblings
        if s.category == reference.category and s.identity != reference.identity
    }
    candidates = [unique[name] for name in sorted(unique)]
    if not candidates:
        raise Rejection(
            "no_sibling",
            f"category {reference.category!r} has no identity other than {reference.identity!r}",
        )
    if similarity is not None:
        scores = [similarity(reference, c) for c in candidates]
        best = max(scores)
        candidates = [c for c, score in zip(candidates, scores, strict=True) if score == best]
    chosen = candidates[int(rng.integers(len(candidates)))]
    return Concept("sibling", chosen.caption, chosen.identity, ())


def _perturb(reference: IdentityInfo, rng: np.random.Generator, max_swaps: int) -> Concept:
    if max_swaps < 1:
        raise NearidError(f"max_swaps must be at least 1, got {max_swaps}")
    caption = reference.caption
    found = [m for m in _WORD.finditer(caption) if m.group().lower() in _CLASS_OF]
    if not found:
        return _add_attribute(reference, rng)
    count = int(rng.integers(1, min(max_swaps, len(found)) + 1))
    picked = sorted(rng.choice(len(found), size=count, replace=False).tolist())
    present = {m.group().lower() for m in found}
    swaps: list[tuple[str, str]] = []
    pieces: list[str] = []
    end = 0
    for index in picked:
        match = found[index]
        old = match.group()
        # Exclude words already in the caption: "red and blue" must not become "blue and blue".
        options = [w for w in ATTRIBUTES[_CLASS_OF[old.lower()]] if w not in present]
        new = options[int(rng.integers(len(options)))]
        present.add(new)
        new = new.capitalize() if old[:1].isupper() else new
        swaps.append((old, new))
        pieces += [caption[end : match.start()], new]
        end = match.end()
    return Concept("perturb", "".join([*pieces, caption[end:]]), None, tuple(swaps))


def _add_attribute(reference: IdentityInfo, rng: np.random.Generator) -> Concept:
    classes = sorted(ATTRIBUTES)
    words = ATTRIBUTES[classes[int(rng.integers(len(classes)))]]
    word = words[int(rng.integers(len(words)))]
    article = "an" if word[0] in "aeiou" else "a"
    phrase = f"{article} {word} {reference.category}"
    caption = reference.caption.strip().rstrip(".")
    prompt = f"{caption}, {phrase}" if caption else phrase
    return Concept("perturb", prompt, None, (("", word),))
