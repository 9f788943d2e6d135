"""``draw: fpr``: the roles Finer-Personalization Rank's loaders draw, image for image.

The paper's ``data_load_scripts/`` (OSU-MLB/Finer-Personalization-Rank) sample with pandas, so
this module calls the same pandas operations on the same rows in the same order, and gets the
same images at the same seed. One loader per source:

- ``cub`` (``load_cub_data.py``, ``load_class``): per FPR group, the gallery is
  ``groupby('name').sample(n=gallery, random_state=seed)``; those removed, the references are the
  same call with ``n=references``. ``name`` is the class name without its number
  (``Baird_Sparrow``); rows are in image-id order. Everything else is unused.
- ``stanford-cars`` (``load_cars_data.py``, ``load_class``): per class, in source order, the first
  ``gallery`` images are the gallery and the next ``references`` the references.
- ``wildlife`` (``load_data_reid.py``, ``main``): identities with at least ``min_images`` images
  keep ``min(n - 5, references)`` references (``x.sample(..., random_state=seed)`` per identity);
  per species the ``subjects`` identities with the most references (``value_counts().head``) are
  subjects, the others' references go back; subjects get ``min(n, gallery)`` gallery images of
  what is left (same sampling). Every image not drawn (other identities, identities under
  ``min_images``, subjects' leftovers) is ``extra``.

The draws return each drawn image's role and its position among its identity's images of that
role: the loaders number files ``<position>.png`` in that order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nearid_data.errors import NearidError
from nearid_data.galleries.assign import EXTRA, GALLERY, REFERENCE, RESERVED_FOR_GALLERY
from nearid_data.optional import import_optional

LOADERS = {
    "cub": "load_cub_data.py",
    "stanford-cars": "load_cars_data.py",
    "wildlife": "load_data_reid.py",
}
_CLASS_NUMBER = re.compile(r"^\d+\.")


@dataclass(frozen=True)
class Drawn:
    role: str
    position: int
    """Among the identity's images of this role, in the loader's order."""


@dataclass(frozen=True)
class Sizes:
    references: int
    gallery: int
    min_images: int
    subjects: int | None


def fpr_name(source: str, identity: str, source_json: Mapping[str, Any]) -> str:
    """The ``name`` the source's FPR loader writes for an identity: CUB's class name without its
    number, Stanford Cars' 0-based class id (the HF mirror's label), the Re-ID ``identity``."""
    if source == "cub":
        return _CLASS_NUMBER.sub("", identity, count=1)
    if source == "stanford-cars":
        if "label" in source_json:
            return str(source_json["label"])
        return str(int(source_json["class_id"]) - 1)
    if source == "wildlife":
        return str(source_json.get("identity") or identity)
    raise NearidError(
        f"galleries draw: fpr has no loader for source {source!r}; known: {', '.join(LOADERS)}"
    )


def draw(
    source: str, views: Mapping[str, Sequence[str]], sizes: Sizes, seed: int, group: str
) -> dict[str, Drawn]:
    """key -> role and position for one group; ``views`` maps identity -> its keys in source
    order. Keys not returned are unused."""
    if source == "cub":
        _require_sizes(views, sizes.gallery + sizes.references, group, source)
        return _cub(views, sizes, seed)
    if source == "stanford-cars":
        _require_sizes(views, sizes.gallery + sizes.references, group, source)
        return _first(views, sizes)
    if source == "wildlife":
        return _reid(views, sizes, seed, group)
    raise NearidError(
        f"galleries draw: fpr has no loader for source {source!r}; known: {', '.join(LOADERS)}"
    )


def _require_sizes(
    views: Mapping[str, Sequence[str]], needed: int, group: str, source: str
) -> None:
    short = {identity: len(keys) for identity, keys in sorted(views.items()) if len(keys) < needed}
    if short:
        listed = ", ".join(f"{identity} ({n})" for identity, n in short.items())
        raise NearidError(
            f"galleries: group {group!r} has classes with fewer than the {needed} images "
            f"{LOADERS[source]} draws (gallery + references): {listed}"
        )


def _frame(views: Mapping[str, Sequence[str]], names: Mapping[str, str] | None = None) -> Any:
    pandas = import_optional("pandas", needed_for="galleries draw: fpr", extra="sources")
    rows = [(key, (names or {}).get(i, i), i) for i, keys in views.items() for key in keys]
    return pandas.DataFrame(rows, columns=["key", "name", "identity"])


def _numbered(frame: Any, role: str) -> dict[str, Drawn]:
    drawn: dict[str, Drawn] = {}
    counts: dict[str, int] = {}
    for key, identity in zip(frame["key"], frame["identity"], strict=True):
        drawn[key] = Drawn(role, counts.get(identity, 0))
        counts[identity] = counts.get(identity, 0) + 1
    return drawn


def _cub(views: Mapping[str, Sequence[str]], sizes: Sizes, seed: int) -> dict[str, Drawn]:
    names = {identity: fpr_name("cub", identity, {}) for identity in views}
    frame = _frame(views, names)
    gallery = frame.groupby("name", group_keys=False).sample(n=sizes.gallery, random_state=seed)
    rest = frame[~frame["key"].isin(gallery["key"])]
    train = rest.groupby("name", group_keys=False).sample(n=sizes.references, random_state=seed)
    return {**_numbered(gallery, GALLERY), **_numbered(train, REFERENCE)}


def _first(views: Mapping[str, Sequence[str]], sizes: Sizes) -> dict[str, Drawn]:
    drawn: dict[str, Drawn] = {}
    for keys in views.values():
        for position, key in enumerate(keys[: sizes.gallery]):
            drawn[key] = Drawn(GALLERY, position)
        for position, key in enumerate(keys[sizes.gallery : sizes.gallery + sizes.references]):
            drawn[key] = Drawn(REFERENCE, position)
    return drawn


def _per_identity_sample(frame: Any, n_of: Any, seed: int) -> Any:
    """``groupby('name').apply(lambda x: x.sample(n=n_of(x), random_state=seed))``: a fresh
    generator per identity, identities in sorted order (without ``apply``, whose handling of the
    grouping column changed across pandas versions)."""
    pandas = import_optional("pandas", needed_for="galleries draw: fpr", extra="sources")
    parts = [x.sample(n=n_of(x), random_state=seed) for _, x in frame.groupby("name")]
    return pandas.concat(parts) if parts else frame.iloc[:0]


def _reid(
    views: Mapping[str, Sequence[str]], sizes: Sizes, seed: int, group: str
) -> dict[str, Drawn]:
    frame = _frame(views)
    eligible = frame.groupby("name").filter(lambda x: len(x) >= sizes.min_images)
    if eligible.empty:
        counts = ", ".join(f"{i} ({len(k)})" for i, k in sorted(views.items()))
        raise NearidError(
            f"galleries: group {group!r} has no identity with at least {sizes.min_images} images: "
            f"{counts}"
        )
    train = _per_identity_sample(
        eligible, lambda x: min(len(x) - RESERVED_FOR_GALLERY, sizes.references), seed
    )
    ranked = train["name"].value_counts()
    subjects = (
        ranked.index.tolist()
        if sizes.subjects is None
        else ranked.head(sizes.subjects).index.tolist()
    )
    train = train[train["name"].isin(subjects)]
    rest = frame[~frame["key"].isin(train["key"])]
    gallery = _per_identity_sample(
        rest[rest["name"].isin(subjects)], lambda x: min(len(x), sizes.gallery), seed
    )
    extra = rest[~rest["key"].isin(gallery["key"])]
    return {**_numbered(train, REFERENCE), **_numbered(gallery, GALLERY), **_numbered(extra, EXTRA)}
