"""Deterministic randomness: every random choice draws from a generator seeded by its context.

``derive_seed("run-seed", "distractors", key)`` gives the same integer on every machine and in
every process, so results never depend on scheduling or on how work was split into shards.
"""

from __future__ import annotations

import hashlib

import numpy as np


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from the string forms of ``parts`` (order matters)."""
    text = "\x1f".join(str(part) for part in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") >> 1


def rng_for(*parts: object) -> np.random.Generator:
    return np.random.default_rng(derive_seed(*parts))
