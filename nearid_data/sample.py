"""The sample: one record, shaped as WebDataset has it, in memory, between stages and in shards.

A sample is a dict with ``__key__`` (no dots: WebDataset splits member names at the first dot)
and named fields. Field names end with their encoding: ``image.png``, ``mask.png`` hold PNG bytes;
``json`` holds a dict in memory and canonical JSON bytes on disk. Identity, category and view
live in ``json``.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

Sample = dict[str, Any]

KEY_FIELD = "__key__"
JSON_FIELD = "json"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def slug(text: str) -> str:
    """A key-safe form of ``text``; adds a short hash when characters had to be replaced, so that
    distinct names never collide ("bjørn mug" and "bj-rn mug" give different slugs)."""
    cleaned = _UNSAFE.sub("-", text).strip("-") or "x"
    if cleaned == text:
        return text
    return f"{cleaned}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:8]}"


def make_key(identity: str, view: int) -> str:
    return f"{slug(identity)}_v{view:03d}"


def check_key(key: str) -> None:
    if not key or "." in key or "/" in key or _UNSAFE.search(key):
        raise ValueError(f"invalid sample key {key!r}: use letters, digits, '-' and '_' only")


def meta(sample: Sample) -> dict[str, Any]:
    """The sample's metadata dict (its ``json`` field)."""
    return sample[JSON_FIELD]  # type: ignore[no-any-return]


def with_fields(sample: Sample, fields: dict[str, Any], **meta_updates: Any) -> Sample:
    """A new sample with ``fields`` added or replaced and the metadata updated (inputs unchanged)."""
    new_meta = {**meta(sample), **meta_updates}
    return {**sample, **fields, JSON_FIELD: new_meta}
