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
_HASH_SUFFIX = re.compile(r"-[0-9a-f]{8}$")
MAX_SLUG_LENGTH = 64


def slug(text: str) -> str:
    """A key-safe form of ``text``, one-to-one: a safe name is kept as it is; any other name
    (unsafe characters, longer than ``MAX_SLUG_LENGTH``, or ending like a rewritten name in ``-``
    and 8 hex digits) becomes its cleaned form plus a hash of the original. Kept names never end
    in such a hash and rewritten ones always do, so "a b" and a folder literally named
    "a-b-c8687a08" cannot meet."""
    if (
        text
        and len(text) <= MAX_SLUG_LENGTH
        and not _UNSAFE.search(text)
        and not _HASH_SUFFIX.search(text)
    ):
        return text
    cleaned = _UNSAFE.sub("-", text).strip("-")[:MAX_SLUG_LENGTH].rstrip("-") or "x"
    return f"{cleaned}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:8]}"


def distractor_field(gid: str) -> str:
    """The sample field holding the distractor generator ``gid`` made."""
    return f"distractor_{gid}.png"


def make_key(identity: str, view: int) -> str:
    return f"{slug(identity)}_v{view:03d}"


def source_locator(ref: dict[str, Any]) -> str | None:
    """Where a source item lives, for a person to find it: its file path relative to the source
    root, a parquet file and row, or its index in the dataset."""
    if "path" in ref:
        return str(ref["path"])
    if "file" in ref and "row" in ref:
        return f"{ref['file']}#row={ref['row']}"
    for name in ("row", "index"):
        if name in ref:
            return f"{name} {ref[name]}"
    return None


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
