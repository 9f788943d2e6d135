"""NearID training tuples, shared by the streaming and the random-access loader.

A loader decides which exported samples go together, as a ``Pick`` of undecoded ``Record``s (so a
shuffle buffer holds bytes, not pixels); ``assemble`` decodes a pick into a ``NearIDTuple``:

- anchor: a reference view (``image.png``);
- positive: another view of the same identity;
- distractor: the anchor's ``distractor_<gid>.png``, another identity on the anchor's exact
  background (NearID's near-identity distractor);
- negative: a view of another identity, on its own background.

Every random choice for an anchor comes from ``pick_rng(seed, epoch, key)``, so it depends on the
anchor and the epoch only, never on worker count or on the order samples arrive in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from nearid_data.imageio import decode_mask_png, decode_png
from nearid_data.seeding import rng_for

RANDOM = "random"
DISTRACTOR_PREFIX = "distractor_"
IMAGE_FIELDS = ("anchor", "positive", "distractor", "negative")
MASK_FIELDS = ("anchor_mask", "positive_mask", "negative_mask", "inpaint_mask")


@dataclass(frozen=True)
class Record:
    """One exported sample, undecoded: its key, its parsed ``json`` and its fields' bytes."""

    key: str
    info: dict[str, Any]
    fields: dict[str, bytes]

    @property
    def identity(self) -> str:
        return str(self.info["identity"])

    @classmethod
    def from_sample(cls, sample: Mapping[str, Any]) -> Record:
        """From a webdataset sample (``image.png``: bytes) or a wids one (``.image.png``: a stream)."""
        fields = {
            name.lstrip("."): value if isinstance(value, bytes) else value.read()
            for name, value in sample.items()
            if not name.startswith("__")
        }
        return cls(str(sample["__key__"]), json.loads(fields.pop("json")), fields)

    def generators(self) -> list[str]:
        return sorted(
            name[len(DISTRACTOR_PREFIX) : -len(".png")]
            for name in self.fields
            if name.startswith(DISTRACTOR_PREFIX)
        )


@dataclass(frozen=True)
class Pick:
    anchor: Record
    positive: Record
    negative: Record
    generator: str


@dataclass
class NearIDTuple:
    """Images are (H, W, 3) uint8 RGB, masks (H, W) bool; ``info`` is the anchor's ``json``."""

    anchor: np.ndarray
    positive: np.ndarray
    distractor: np.ndarray
    negative: np.ndarray
    anchor_mask: np.ndarray  # the anchor's subject
    positive_mask: np.ndarray
    negative_mask: np.ndarray
    inpaint_mask: np.ndarray  # where the distractor may differ from the anchor
    generator: str
    key: str
    positive_key: str
    negative_key: str
    identity: str
    distractor_identity: str  # the donor whose likeness the distractor carries
    negative_identity: str
    info: dict[str, Any]


def pick_rng(seed: int, epoch: int, key: str) -> np.random.Generator:
    return rng_for("loaders", seed, epoch, key)


def choose_generator(anchor: Record, choice: str, rng: np.random.Generator) -> str:
    """``choice`` itself, or with ``"random"`` one of the anchor's generators drawn from ``rng``."""
    available = anchor.generators()
    if choice == RANDOM and available:
        return available[int(rng.integers(len(available)))]
    if choice not in available:
        raise ValueError(
            f"generator {choice!r}: sample {anchor.key} has distractors {available} "
            f"(or pass {RANDOM!r})"
        )
    return choice


def assemble(pick: Pick, image_size: int | None = None) -> NearIDTuple:
    """Decode a pick; with ``image_size`` every image and mask is resized to that square."""
    anchor, positive, negative = pick.anchor, pick.positive, pick.negative
    images = {
        "anchor": anchor.fields["image.png"],
        "positive": positive.fields["image.png"],
        "distractor": anchor.fields[f"{DISTRACTOR_PREFIX}{pick.generator}.png"],
        "negative": negative.fields["image.png"],
    }
    masks = {
        "anchor_mask": anchor.fields["mask.png"],
        "positive_mask": positive.fields["mask.png"],
        "negative_mask": negative.fields["mask.png"],
        "inpaint_mask": anchor.fields["inpaint_mask.png"],
    }
    return NearIDTuple(
        **{name: _resized(decode_png(data), image_size) for name, data in images.items()},
        **{name: _resized(decode_mask_png(data), image_size) for name, data in masks.items()},
        generator=pick.generator,
        key=anchor.key,
        positive_key=positive.key,
        negative_key=negative.key,
        identity=anchor.identity,
        distractor_identity=str(anchor.info["distractors"][pick.generator]["donor_identity"]),
        negative_identity=negative.identity,
        info=anchor.info,
    )


def _resized(pixels: np.ndarray, size: int | None) -> np.ndarray:
    if size is None or pixels.shape[:2] == (size, size):
        return pixels
    import cv2

    if pixels.dtype == bool:  # masks stay exact: nearest neighbour, no grey edge
        return (
            cv2.resize(pixels.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST) > 0
        )
    return cv2.resize(pixels, (size, size), interpolation=cv2.INTER_AREA)


def collate(batch: list[NearIDTuple]) -> dict[str, Any]:
    """A torch ``DataLoader`` ``collate_fn``: images as (B, 3, H, W) uint8 tensors, masks as
    (B, H, W) bool tensors, the rest as lists. Images of a batch must share one size
    (pass ``image_size`` to the loader when the export's images differ)."""
    import torch

    out: dict[str, Any] = {
        name: torch.from_numpy(np.stack([getattr(t, name) for t in batch])).permute(0, 3, 1, 2)
        for name in IMAGE_FIELDS
    }
    out.update(
        {
            name: torch.from_numpy(np.stack([getattr(t, name) for t in batch]))
            for name in MASK_FIELDS
        }
    )
    for field in fields(NearIDTuple):
        if field.name not in out:
            out[field.name] = [getattr(t, field.name) for t in batch]
    return out
