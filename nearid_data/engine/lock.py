"""The build lease: one build at a time per build directory, local or on object storage.

A build holds a lease on ``<build>/.lock`` for its whole duration: a small JSON object naming its
owner (pid, host, a random id) and when it expires. A second build fails with a message naming
the holder. Two implementations, one contract:

- Local disk: an exclusive ``fcntl.flock`` on the file. The kernel drops it when the holder exits,
  killed or not, so a stale lock never blocks a resume and the expiry is informative only.
  ``flock`` is reliable on local disks; on network file systems it may not exclude writers of
  other hosts (see docs/RELIABILITY.md).
- Object storage: the lease object is created with a conditional put (``If-None-Match: *`` on
  S3), so of two builds starting together exactly one creates it. A background thread renews the
  expiry every third of the lease time; a build killed without releasing leaves a lease that
  expires, after which another build takes it over (at once when the holder ran on this host and
  its process has ended). A holder that finds its lease taken (it
  stalled past the expiry) fails when it leaves the build instead of reporting success.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from nearid_data.engine import storage
from nearid_data.engine.atomic import process_gone
from nearid_data.engine.storage import Location, ObjectPath
from nearid_data.errors import NearidError

log = logging.getLogger("nearid_data")

LOCK_NAME = ".lock"
LEASE_SECONDS = 60.0


class BuildLocked(NearidError):
    """Another build holds the build directory (or took over this build's expired lease)."""


@dataclass(frozen=True)
class Lease:
    pid: int
    host: str
    id: str
    started: float
    expires: float

    @classmethod
    def new(cls, ttl: float) -> Lease:
        now = time.time()
        return cls(os.getpid(), socket.gethostname(), secrets.token_hex(8), now, now + ttl)

    def renewed(self, ttl: float) -> Lease:
        return Lease(self.pid, self.host, self.id, self.started, time.time() + ttl)

    def encode(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def decode(cls, data: bytes) -> Lease | None:
        try:
            return cls(**json.loads(data))
        except (ValueError, TypeError):
            return None

    def stale(self) -> bool:
        """Expired, or held by a process of this host that has ended (killed without release)."""
        return self.expires <= time.time() or process_gone(self.host, self.pid)

    def describe(self) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.started))
        return f"pid {self.pid} on host {self.host}, since {started}"


@contextmanager
def build_lock(build_dir: Location, *, ttl: float = LEASE_SECONDS) -> Iterator[None]:
    if isinstance(build_dir, ObjectPath):
        with _object_lease(build_dir, ttl):
            yield
    else:
        with _local_lock(build_dir, ttl):
            yield


def _locked_message(build_dir: Location, holder: str) -> str:
    return (
        f"{build_dir} is being built by another process ({holder}); "
        "wait for it to finish or build into another --out"
    )


@contextmanager
def _local_lock(build_dir: Path, ttl: float) -> Iterator[None]:
    created = not build_dir.exists()
    build_dir.mkdir(parents=True, exist_ok=True)
    path = build_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BuildLocked(_locked_message(build_dir, _holder(path))) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, Lease.new(ttl).encode(), 0)
        try:
            yield
        finally:
            # A build that created its directory and committed nothing leaves no folder behind.
            if created and [p.name for p in build_dir.iterdir()] == [LOCK_NAME]:
                path.unlink()
                build_dir.rmdir()
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _holder(path: Location) -> str:
    try:
        lease = Lease.decode(storage.read_bytes(path))
    except OSError:
        lease = None
    return lease.describe() if lease is not None else "holder unknown"


@contextmanager
def _object_lease(build_dir: ObjectPath, ttl: float) -> Iterator[None]:
    path = build_dir / LOCK_NAME
    lease = _acquire(path, ttl)
    renewer = _Renewer(path, lease, ttl)
    renewer.start()
    try:
        yield
    finally:
        renewer.stop()
        if _current(path) == renewer.lease:
            storage.delete(path)
    if renewer.lost:
        raise BuildLocked(
            f"{build_dir}: this build's lease expired and another build took it over; "
            "its committed shards are intact, but check the other build before trusting this one"
        )


def _current(path: ObjectPath) -> Lease | None:
    try:
        return Lease.decode(storage.read_bytes(path))
    except FileNotFoundError:
        return None


def _acquire(path: ObjectPath, ttl: float) -> Lease:
    lease = Lease.new(ttl)
    if storage.create_exclusive(path, lease.encode()):
        return lease
    held = _current(path)
    if held is not None and not held.stale():
        raise BuildLocked(_locked_message(path.parent, held.describe()))
    # Stale (or unreadable): take it over. Re-read just before deleting so that a lease another
    # taker created meanwhile is not deleted; the exclusive create then picks one winner.
    if _current(path) == held:
        log.warning(
            "taking over the stale build lease of %s",
            held.describe() if held else "an unknown holder",
        )
        storage.delete(path)
    if storage.create_exclusive(path, lease.encode()):
        return lease
    holder = _current(path)
    raise BuildLocked(_locked_message(path.parent, holder.describe() if holder else "unknown"))


class _Renewer(threading.Thread):
    """Pushes the lease's expiry forward while the build runs; notices a takeover."""

    def __init__(self, path: ObjectPath, lease: Lease, ttl: float) -> None:
        super().__init__(name="build-lease", daemon=True)
        self.path, self.lease, self.ttl = path, lease, ttl
        self.lost = False
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.ttl / 3):
            current = _current(self.path)
            if current is None or current.id != self.lease.id:
                self.lost = True
                log.error("the build lease on %s was taken over by another build", self.path)
                return
            self.lease = self.lease.renewed(self.ttl)
            storage.write_bytes(self.path, self.lease.encode())

    def stop(self) -> None:
        self._stop_event.set()
        self.join()
