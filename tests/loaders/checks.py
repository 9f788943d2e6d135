"""What every NearID tuple must satisfy, checked against the exported samples themselves."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

from nearid_data.loaders.tuples import NearIDTuple


def pixels(data: bytes) -> np.ndarray:
    """Decode as a consumer would (PIL), not with the toolkit's decoder."""
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def mask(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data))) > 0


def check_tuple(t: NearIDTuple, truth: dict[str, dict[str, Any]]) -> None:
    anchor, positive, negative = truth[t.key], truth[t.positive_key], truth[t.negative_key]
    assert np.array_equal(t.anchor, pixels(anchor["image.png"]))
    assert np.array_equal(t.anchor_mask, mask(anchor["mask.png"]))
    assert t.info == anchor["json"] and t.identity == anchor["json"]["identity"]

    # positive: same identity, another view
    assert positive["json"]["identity"] == t.identity
    assert positive["json"]["view"] != anchor["json"]["view"]
    assert np.array_equal(t.positive, pixels(positive["image.png"]))

    # distractor: the anchor's background exactly, another identity's likeness
    assert np.array_equal(t.distractor, pixels(anchor[f"distractor_{t.generator}.png"]))
    outside = ~mask(anchor["inpaint_mask.png"])
    assert np.array_equal(t.inpaint_mask, ~outside)
    assert np.array_equal(t.distractor[outside], t.anchor[outside])
    assert not np.array_equal(t.distractor[~outside], t.anchor[~outside])
    donor = anchor["json"]["distractors"][t.generator]["donor_identity"]
    assert donor != t.identity and t.distractor_identity == donor

    # negative: another identity on another background
    assert negative["json"]["identity"] != t.identity == anchor["json"]["identity"]
    assert t.negative_identity == negative["json"]["identity"]
    assert np.array_equal(t.negative, pixels(negative["image.png"]))
    background = ~(t.anchor_mask | mask(negative["mask.png"]) | ~outside)
    difference = np.abs(t.negative[background].astype(int) - t.anchor[background]).mean()
    assert difference > 10, f"{t.key} and {t.negative_key} share a background"
