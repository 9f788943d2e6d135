"""Source manifests: the files a raw dataset must hold, with their sizes and SHA-256 digests.

A dataset source's config may name one (``manifest: manifests/sources/cub.json``); its
``items()`` then checks every listed file before listing anything, so a partial download or a
different release fails up front with the files named, instead of as scattered rejections or a
silently different dataset. The format (JSON)::

    {"files": [{"path": "images.txt", "bytes": 2117, "sha256": "<64 hex digits>"}, ...]}

``path`` is relative to the source root, with ``/`` separators. Only listed files are checked,
so a manifest may cover just the annotation files: checking reads every listed byte, which for a
dataset of many gigabytes takes minutes on every ``items()`` call. Write one from a copy you
trust (``paths`` restricts it to, say, the annotation files)::

    from pathlib import Path
    from nearid_data.sources.checksums import write_manifest
    write_manifest(Path("data/CUB_200_2011"), Path("manifests/sources/cub.json"))

The root and the manifest may be fsspec URLs (read and written through ``engine/storage.py``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import PurePosixPath

from nearid_data.engine import storage
from nearid_data.engine.storage import Location
from nearid_data.errors import NearidError

_SHA256 = re.compile(r"[0-9a-f]{64}")
SHOWN_PROBLEMS = 10


def check_files(root: Location, manifest: Location) -> list[str]:
    """Problems with the files under ``root`` that ``manifest`` lists (empty: all present and equal)."""
    problems = []
    for entry in _read_entries(manifest):
        path = root / entry["path"]
        if not path.is_file():
            problems.append(f"missing: {entry['path']}")
        elif (size := storage.size(path)) != entry["bytes"]:
            problems.append(f"size: {entry['path']} has {size} bytes, expected {entry['bytes']}")
        elif storage.file_sha256(path) != entry["sha256"]:
            problems.append(f"sha256: {entry['path']} differs from the manifest")
    return problems


def require_files(root: Location, manifest: Location) -> None:
    """Raise ``NearidError`` naming the first problems when ``check_files`` finds any."""
    problems = check_files(root, manifest)
    if problems:
        shown = "\n  ".join(problems[:SHOWN_PROBLEMS])
        more = (
            f"\n  ... and {len(problems) - SHOWN_PROBLEMS} more"
            if len(problems) > SHOWN_PROBLEMS
            else ""
        )
        raise NearidError(
            f"{root} does not match the source manifest {manifest} "
            f"({len(problems)} problem(s)):\n  {shown}{more}"
        )


def write_manifest(root: Location, out: Location, paths: Iterable[str] | None = None) -> int:
    """Write a manifest of ``paths`` (default: every non-hidden file under ``root``); return the
    number of files listed. Either may be a local folder or an fsspec URL."""
    if paths is None:
        relative = (storage.relative(p, root) for p in storage.list_files(root))
        paths = (p for p in relative if not any(part.startswith(".") for part in p.split("/")))
    files = []
    for rel in sorted(paths):
        size = storage.size(root / rel)
        if size is None:
            raise NearidError(f"cannot list {rel!r} in a manifest: no such file under {root}")
        files.append({"path": rel, "bytes": size, "sha256": storage.file_sha256(root / rel)})
    storage.make_dirs(out.parent)
    storage.write_bytes(out, (json.dumps({"files": files}, indent=1) + "\n").encode("utf-8"))
    return len(files)


def _read_entries(manifest: Location) -> list[dict]:
    try:
        data = json.loads(storage.read_bytes(manifest).decode("utf-8"))
    except OSError as exc:
        reason = exc.strerror or exc
        raise NearidError(f"cannot read source manifest {manifest}: {reason}") from None
    except json.JSONDecodeError as exc:
        raise NearidError(f"{manifest}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, list):
        raise NearidError(f"{manifest}: expected an object with a 'files' list")
    for number, entry in enumerate(files):
        if not _valid_entry(entry):
            raise NearidError(
                f"{manifest}: files[{number}] needs a relative 'path', integer 'bytes' and a "
                f"lowercase hex 'sha256' (got {entry!r})"
            )
    return files


def _valid_entry(entry: object) -> bool:
    if not isinstance(entry, dict):
        return False
    path, size, digest = entry.get("path"), entry.get("bytes"), entry.get("sha256")
    return (
        isinstance(path, str)
        and bool(path)
        # A manifest only describes files inside the root.
        and not PurePosixPath(path).is_absolute()
        and ".." not in PurePosixPath(path).parts
        and isinstance(size, int)
        and not isinstance(size, bool)
        and isinstance(digest, str)
        and _SHA256.fullmatch(digest) is not None
    )
