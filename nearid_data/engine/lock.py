"""The build lock: one build at a time per build directory.

A build holds an exclusive ``fcntl.flock`` on ``<build>/.lock`` for its whole duration; the file
says who holds it (pid, host, start time) so a second build fails with a message naming the holder.
The kernel drops the lock when the holder exits, killed or not, so a stale lock never blocks a
resume. ``flock`` is reliable on local disks; on network file systems it may not exclude writers
of other hosts (see docs/RELIABILITY.md).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nearid_data.errors import NearidError

LOCK_NAME = ".lock"


class BuildLocked(NearidError):
    """Another build holds the build directory."""


@contextmanager
def build_lock(build_dir: Path) -> Iterator[None]:
    created = not build_dir.exists()
    build_dir.mkdir(parents=True, exist_ok=True)
    path = build_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BuildLocked(
                f"{build_dir} is being built by another process ({_holder(path)}); "
                "wait for it to finish or build into another --out"
            ) from None
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        try:
            yield
        finally:
            # A build that created its directory and committed nothing leaves no folder behind.
            if created and [p.name for p in build_dir.iterdir()] == [LOCK_NAME]:
                path.unlink()
                build_dir.rmdir()
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text())
        started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(info["started"]))
        return f"pid {info['pid']} on host {info['host']}, since {started}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"
