"""The storage seam: every read, write, listing and delete of build outputs and source files.

A location is a local ``pathlib.Path`` or an ``ObjectPath`` (a URL such as ``s3://bucket/prefix``
read and written through fsspec). Local paths keep the direct file-system calls (the fast path);
object paths go through the fsspec file system of their protocol, imported on first use.

Commit protocol on both: a shard's tar is written whole, then its manifest, the completion marker.
On a local disk each file appears under its name by rename (``engine/atomic.py``). Object stores
have no rename, but a single object appears only when its upload completes (a multipart upload is
invisible until it is committed), so a tar is written under its final name and a tar without its
manifest counts as absent; the manifest is one small object put last.
"""

from __future__ import annotations

import bisect
import hashlib
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, overload

from nearid_data.engine import atomic
from nearid_data.errors import NearidError
from nearid_data.optional import import_optional

STORAGE_EXTRA = "storage"
_URL = re.compile(r"^(?P<protocol>[A-Za-z][A-Za-z0-9+.-]+)://(?P<path>.*)$")
CHUNK = 1 << 20
"""Bytes per read when a file is streamed (hashing, copying)."""


def filesystem(protocol: str) -> Any:
    """The fsspec file system for ``protocol`` (fsspec caches instances; options come from
    fsspec's configuration, e.g. ``FSSPEC_S3_ENDPOINT_URL``, or the protocol's environment such
    as ``AWS_ENDPOINT_URL`` and ``AWS_PROFILE``)."""
    fsspec = import_optional("fsspec", extra=STORAGE_EXTRA)
    try:
        # No listings cache: other processes commit shards while this one lists and checks sizes.
        return fsspec.filesystem(protocol, use_listings_cache=False)
    except ImportError as exc:  # the protocol's package (s3fs, gcsfs...) is missing
        raise NearidError(
            f"{protocol}:// locations need an fsspec file system package ({exc}); "
            f"install them with: pip install 'nearid-data[{STORAGE_EXTRA}]'"
        ) from exc


@dataclass(frozen=True)
class ObjectPath:
    """A location in an fsspec file system: a protocol and a ``/``-separated path, with the
    pure-path operations of ``pathlib`` (``/``, ``name``, ``parent``...) and the reads that code
    shared with local paths calls (``exists``, ``is_dir``, ``read_bytes``...). Writes and deletes
    go through this module's functions, which know the commit protocol."""

    protocol: str
    path: str

    @classmethod
    def from_url(cls, url: str) -> ObjectPath:
        match = _URL.match(url)
        if match is None:
            raise ValueError(f"{url!r} is not a URL")
        # Normalised as a POSIX path: no doubled or trailing slashes in keys.
        return cls(match["protocol"], str(PurePosixPath("/" + match["path"]))[1:])

    @property
    def fs(self) -> Any:
        return filesystem(self.protocol)

    def __str__(self) -> str:
        return f"{self.protocol}://{self.path}"

    def __truediv__(self, other: str | PurePosixPath) -> ObjectPath:
        return ObjectPath(self.protocol, str(PurePosixPath(self.path) / other))

    @property
    def _pure(self) -> PurePosixPath:
        return PurePosixPath(self.path)

    @property
    def name(self) -> str:
        return self._pure.name

    @property
    def parent(self) -> ObjectPath:
        return ObjectPath(self.protocol, str(self._pure.parent))

    @property
    def parents(self) -> list[ObjectPath]:
        return [ObjectPath(self.protocol, str(p)) for p in self._pure.parents if str(p) != "."]

    def relative_to(self, other: ObjectPath) -> PurePosixPath:
        return self._pure.relative_to(other._pure)

    def exists(self) -> bool:
        return bool(self.fs.exists(self.path))

    def is_file(self) -> bool:
        return bool(self.fs.isfile(self.path))

    def is_dir(self) -> bool:
        return bool(self.fs.isdir(self.path))

    def iterdir(self) -> Iterator[ObjectPath]:
        if not self.is_dir():
            return iter(())
        return iter(
            sorted(ObjectPath(self.protocol, p) for p in self.fs.ls(self.path, detail=False))
        )

    def rglob(self, pattern: str) -> Iterator[ObjectPath]:
        return iter(list_files(self, pattern))

    def glob(self, pattern: str) -> Iterator[ObjectPath]:
        return iter(
            ObjectPath(self.protocol, p) for p in sorted(self.fs.glob(f"{self.path}/{pattern}"))
        )

    def read_bytes(self) -> bytes:
        return bytes(self.fs.cat_file(self.path))

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def __lt__(self, other: ObjectPath) -> bool:
        return str(self) < str(other)


Location = Path | ObjectPath


def is_url(where: str | os.PathLike[str]) -> bool:
    return isinstance(where, str) and _URL.match(where) is not None


def location(where: str | os.PathLike[str] | ObjectPath) -> Location:
    """A location from a command-line or config value: a URL becomes an ``ObjectPath``, anything
    else a local ``Path`` (a ``file://`` URL too, so local files keep the fast path)."""
    if isinstance(where, ObjectPath | Path):
        return where
    text = os.fspath(where)
    if text.startswith("file://"):
        return Path(text.removeprefix("file://"))
    return ObjectPath.from_url(text) if is_url(text) else Path(text)


def size(where: Location) -> int | None:
    """Size in bytes of the file at ``where``, or None when there is none."""
    if isinstance(where, Path):
        try:
            return where.stat().st_size
        except FileNotFoundError:
            return None
    try:
        return int(where.fs.size(where.path))
    except FileNotFoundError:
        return None


def version(where: Location) -> tuple[int, str]:
    """(size, a token that changes when the file is rewritten): a cache key for its content."""
    if isinstance(where, Path):
        stat = where.stat()
        return stat.st_size, str(stat.st_mtime_ns)
    info = where.fs.info(where.path)
    token = info.get("ETag") or info.get("LastModified") or info.get("mtime") or ""
    return int(info["size"]), str(token)


def open_read(where: Location) -> IO[bytes]:
    """A seekable binary reader; on object stores seeks become ranged reads."""
    if isinstance(where, Path):
        return open(where, "rb")
    return where.fs.open(where.path, "rb")  # type: ignore[no-any-return]


def read_bytes(where: Location) -> bytes:
    return where.read_bytes()


def read_range(where: Location, ranges: list[tuple[int, int]]) -> list[bytes]:
    """The bytes at each (offset, size) of one file, in order. Locally one open and a seek each;
    remotely, ranges less than ``_MERGE_GAP`` apart are fetched as one request (the members of a
    batch of samples in a shard are neighbours), and the requests run concurrently."""
    if isinstance(where, Path):
        out = []
        with open(where, "rb") as handle:
            for offset, length in ranges:
                handle.seek(offset)
                out.append(handle.read(length))
        return out
    spans = merged_spans(ranges)
    blobs = where.fs.cat_ranges(
        [where.path] * len(spans),
        [start for start, _ in spans],
        [end for _, end in spans],
        on_error="raise",
    )
    starts = [start for start, _ in spans]
    out = []
    for offset, length in ranges:
        at = bisect.bisect_right(starts, offset) - 1  # the span that starts at or before offset
        skip = offset - starts[at]
        out.append(bytes(blobs[at][skip : skip + length]))
    return out


_MERGE_GAP = 1 << 18
"""Reading 256 KiB that nobody asked for costs less than another round trip to an object store."""


def merged_spans(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(start, end) spans covering every (offset, size) of ``ranges``, neighbours merged."""
    spans: list[list[int]] = []
    for offset, length in sorted(ranges):
        if spans and offset - spans[-1][1] <= _MERGE_GAP:
            spans[-1][1] = max(spans[-1][1], offset + length)
        else:
            spans.append([offset, offset + length])
    return [(start, end) for start, end in spans]


def file_sha256(where: Location) -> str:
    digest = hashlib.sha256()
    with open_read(where) as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def atomic_writer(where: Location) -> Iterator[IO[bytes]]:
    """Write ``where`` whole or not at all: locally by rename, on object stores as one upload that
    becomes visible only when committed (an exception discards it)."""
    if isinstance(where, Path):
        with atomic.atomic_writer(where) as handle:
            yield handle
        return
    handle = where.fs.open(where.path, "wb")
    try:
        yield handle
    except BaseException:
        # An upload never committed leaves nothing under the name (s3fs aborts the multipart).
        # close() would upload what is buffered (and fails on a discarded s3fs file, hiding the
        # error being raised), so a buffered file is discarded and only marked closed.
        discard = getattr(handle, "discard", None)
        if discard is None:
            handle.close()
        else:
            discard()
            handle.closed = True
        raise
    handle.close()


def write_bytes(where: Location, data: bytes) -> None:
    with atomic_writer(where) as handle:
        handle.write(data)


def write_json(where: Location, obj: Any) -> None:
    """``obj`` as canonical JSON (``atomic.dump_json``), written whole."""
    write_bytes(where, atomic.dump_json(obj))


def create_exclusive(where: Location, data: bytes) -> bool:
    """Create ``where`` holding ``data`` unless it exists; True when this call created it.

    Local: ``O_EXCL``. Object stores: a conditional put (``If-None-Match: *``) where the file
    system supports it (s3fs), so of two racing writers exactly one wins; elsewhere create, then
    read back, which two writers racing within one round trip can both pass."""
    if isinstance(where, Path):
        where.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(where, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return True
    fs = where.fs
    if where.protocol in ("s3", "s3a"):
        try:
            fs.pipe_file(where.path, data, mode="create")
        except FileExistsError:  # s3fs's reading of 412 Precondition Failed
            return False
        return True
    if fs.exists(where.path):
        return False
    fs.pipe_file(where.path, data)
    return bytes(fs.cat_file(where.path)) == data


@overload
def list_files(where: Path, pattern: str = "*") -> list[Path]: ...
@overload
def list_files(where: ObjectPath, pattern: str = "*") -> list[ObjectPath]: ...
def list_files(where: Location, pattern: str = "*") -> list[Path] | list[ObjectPath]:
    """Files below ``where`` (any depth) whose name matches ``pattern``, sorted."""
    if isinstance(where, Path):
        return sorted(p for p in where.rglob(pattern) if p.is_file())
    found = where.fs.find(where.path)
    return sorted(ObjectPath(where.protocol, p) for p in found if PurePosixPath(p).match(pattern))


@overload
def glob(where: Path, pattern: str) -> list[Path]: ...
@overload
def glob(where: ObjectPath, pattern: str) -> list[ObjectPath]: ...
def glob(where: Location, pattern: str) -> list[Path] | list[ObjectPath]:
    """What matches ``pattern`` relative to ``where`` (one level per ``/``), sorted."""
    if isinstance(where, Path):
        return sorted(where.glob(pattern))
    return sorted(where.glob(pattern))


@overload
def children(where: Path) -> list[Path]: ...
@overload
def children(where: ObjectPath) -> list[ObjectPath]: ...
def children(where: Location) -> list[Path] | list[ObjectPath]:
    """What ``where`` holds directly (files and folders), sorted; nothing if it is no folder."""
    if isinstance(where, Path):
        return sorted(where.iterdir()) if where.is_dir() else []
    return sorted(where.iterdir())


def relative(where: Location, root: Location) -> str:
    """``where`` as a ``/``-separated path below ``root`` (both local or both of one store)."""
    return where.relative_to(root).as_posix()  # type: ignore[arg-type]


def delete(where: Location) -> None:
    """Remove the file at ``where`` if there is one."""
    if isinstance(where, Path):
        where.unlink(missing_ok=True)
        return
    with suppress(FileNotFoundError):
        where.fs.rm_file(where.path)


def delete_tree(where: Location) -> None:
    """Remove ``where`` and everything below it, if present."""
    if isinstance(where, Path):
        if where.exists():
            shutil.rmtree(where)
        return
    if where.fs.exists(where.path):
        where.fs.rm(where.path, recursive=True)


def prune_empty_dirs(where: Location) -> None:
    """Remove empty folders below ``where``, deepest first (object stores have none)."""
    if not isinstance(where, Path) or not where.is_dir():
        return
    for directory in sorted(where.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()


def overlaps(a: Location, b: Location) -> bool:
    """Whether one location is the other or lies inside it: local paths resolved, URLs of one
    protocol compared by their paths; a URL and a local path never overlap."""
    if isinstance(a, Path) and isinstance(b, Path):
        a, b = a.resolve(), b.resolve()
        return a.is_relative_to(b) or b.is_relative_to(a)
    if isinstance(a, ObjectPath) and isinstance(b, ObjectPath) and a.protocol == b.protocol:
        first, second = PurePosixPath(a.path), PurePosixPath(b.path)
        return first.is_relative_to(second) or second.is_relative_to(first)
    return False


def is_link(where: Location) -> bool:
    """Whether ``where`` is a symbolic link (object stores have none)."""
    return isinstance(where, Path) and where.is_symlink()


def make_dirs(where: Location) -> None:
    """Create the folder locally; object stores have no folders, so nothing to do there."""
    if isinstance(where, Path):
        where.mkdir(parents=True, exist_ok=True)


def sweep_temporaries(where: Location) -> int:
    """Delete temporaries of killed local writers; object stores leave none under a name
    (an unfinished upload is invisible and expires by the bucket's lifecycle rules)."""
    return atomic.sweep_temporaries(where) if isinstance(where, Path) else 0
