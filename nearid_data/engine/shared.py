"""A stage's shared artifact: work every worker would repeat, done once and read by all.

A stage that plans over its whole upstream (galleries' roles, PODS splits) or embeds every
identity (distractors' nearest siblings) computes that in ``Stage.prepare_shared`` on the
coordinating process. The runner stores the result as ``_shared.json`` in the stage directory,
written atomically, with the stage fingerprint it was computed for and the sha256 of the data;
workers read it back, checked against the file's sha256, and hand it to ``Stage.use_shared``
before ``setup``. A rerun with the same fingerprint (a resumed build) reuses the file, if its
data still has its sha256, instead of computing it again.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from nearid_data.engine import storage
from nearid_data.engine.atomic import dump_json
from nearid_data.engine.storage import Location
from nearid_data.errors import NearidError

SHARED_NAME = "_shared.json"


def reusable_shared(stage_dir: Location, fingerprint: str) -> str | None:
    """The sha256 of the artifact already stored for ``fingerprint``, else None."""
    path = stage_dir / SHARED_NAME
    try:
        data = storage.read_bytes(path)
        stored = json.loads(data)
    except (FileNotFoundError, ValueError):
        return None
    if not isinstance(stored, dict) or stored.get("fingerprint") != fingerprint:
        return None
    if stored.get("sha256") != _data_sha256(stored.get("shared")):
        return None
    return hashlib.sha256(data).hexdigest()


def write_shared(stage_dir: Location, fingerprint: str, shared: Any) -> str:
    """Store ``shared`` (JSON-able) for the stage built with ``fingerprint``; its sha256."""
    data = dump_json({"fingerprint": fingerprint, "sha256": _data_sha256(shared), "shared": shared})
    storage.write_bytes(stage_dir / SHARED_NAME, data)
    return hashlib.sha256(data).hexdigest()


def read_shared(stage_dir: Location, sha256: str) -> Any:
    """The stored artifact, refused unless it is the one the runner recorded."""
    path = stage_dir / SHARED_NAME
    try:
        data = storage.read_bytes(path)
    except FileNotFoundError:
        raise NearidError(f"{path} is missing: the stage's shared artifact was removed") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise NearidError(f"{path} changed since the stage started (sha256 differs); rerun it")
    return json.loads(data)["shared"]


def _data_sha256(shared: Any) -> str:
    return hashlib.sha256(dump_json(shared)).hexdigest()
