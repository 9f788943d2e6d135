"""Atomic file writes: temporary name, fsync, rename, fsync of the directory.

A reader (or a resumed run) sees either the old file or the whole new one, never a half-written
file, even after SIGKILL or power loss. Temporary names carry ``TMP_MARK``, the writer's host and
pid and a random part (``.<name>.tmp-<host>-<pid>-<random>``), so two writers never share one and a
later run sweeps only what writers that are gone left behind.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

TMP_MARK = ".tmp-"


def _host_token(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]", "_", name) or "host"


_HOST = _host_token(socket.gethostname())
_WRITER = re.compile(rf"{re.escape(TMP_MARK)}(?P<host>.+)-(?P<pid>\d+)-[0-9a-f]+$")


def temp_path_for(path: Path) -> Path:
    return path.with_name(f".{path.name}{TMP_MARK}{_HOST}-{os.getpid()}-{secrets.token_hex(4)}")


def writer_gone(temp: Path) -> bool:
    """Whether the process that named ``temp`` has ended. A temporary of another host, or of an
    unknown naming, counts as alive: this host cannot tell, so it is left alone."""
    match = _WRITER.search(temp.name)
    return match is not None and process_gone(match["host"], int(match["pid"]))


def process_gone(host: str, pid: int) -> bool:
    """Whether process ``pid`` of ``host`` has ended; a process of another host counts as alive,
    since this host cannot tell."""
    if _host_token(host) != _HOST:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return False


@contextmanager
def atomic_writer(path: Path) -> Iterator[IO[bytes]]:
    """Open a temporary file for binary writing; on success it replaces ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(path)
    try:
        with open(tmp, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    with atomic_writer(path) as handle:
        handle.write(data)


def dump_json(obj: Any) -> bytes:
    """Canonical JSON: sorted keys, fixed separators, UTF-8, trailing newline; same object, same bytes."""
    return (json.dumps(obj, sort_keys=True, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def write_json_atomic(path: Path, obj: Any) -> None:
    write_bytes_atomic(path, dump_json(obj))


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sweep_temporaries(directory: Path) -> int:
    """Delete temporary files that killed writers left below ``directory``; returns how many."""
    if not directory.exists():
        return 0
    stale = [p for p in directory.rglob(f"*{TMP_MARK}*") if p.is_file() and writer_gone(p)]
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)
