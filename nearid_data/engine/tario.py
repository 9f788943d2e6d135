"""Shards on disk: deterministic WebDataset tar files, streaming reads and keyed random access.

Tars are written uncompressed (``wids`` random access needs that; images are already compressed)
with fixed mtime, owner and mode, members of a sample contiguous and sorted by field name, so the
same samples always give the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from nearid_data.engine.atomic import atomic_writer, dump_json
from nearid_data.sample import JSON_FIELD, KEY_FIELD, Sample, check_key

FIXED_MTIME = 0


def encode_field(name: str, value: object) -> bytes:
    if name == JSON_FIELD:
        return dump_json(value)
    if isinstance(value, bytes):
        return value
    raise TypeError(
        f"field {name!r} must be bytes (or a dict for 'json'), got {type(value).__name__}"
    )


def field_bytes(sample: Sample) -> dict[str, bytes]:
    """The sample's fields as the bytes written to disk, sorted by name."""
    return {name: encode_field(name, sample[name]) for name in sorted(sample) if name != KEY_FIELD}


class _HashingFile:
    """Write-only file wrapper hashing and counting bytes as tarfile writes them (one pass)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.raw.write(data)

    def tell(self) -> int:
        return self.size


@dataclass
class WrittenShard:
    bytes: int = 0
    sha256: str = ""
    field_sha256: dict[str, dict[str, str]] = field(default_factory=dict)
    sample_bytes: dict[str, int] = field(default_factory=dict)


class ShardWriter:
    """Write samples to ``path`` atomically: the tar appears under its name only when closed cleanly."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.result = WrittenShard()
        self._keys: set[str] = set()

    def __enter__(self) -> ShardWriter:
        self._context = atomic_writer(self.path)
        self._hashing = _HashingFile(self._context.__enter__())
        self._tar = tarfile.open(fileobj=self._hashing, mode="w", format=tarfile.GNU_FORMAT)  # type: ignore[call-overload]
        return self

    def write(self, sample: Sample) -> dict[str, str]:
        """Append one sample; returns sha256 per field."""
        key = sample[KEY_FIELD]
        check_key(key)
        if key in self._keys:
            raise ValueError(f"duplicate key {key!r} in shard {self.path.name}")
        self._keys.add(key)
        hashes: dict[str, str] = {}
        total = 0
        for name, data in field_bytes(sample).items():
            info = tarfile.TarInfo(f"{key}.{name}")
            info.size, info.mtime, info.mode = len(data), FIXED_MTIME, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            self._tar.addfile(info, io.BytesIO(data))
            hashes[name] = hashlib.sha256(data).hexdigest()
            total += len(data)
        self.result.field_sha256[key] = hashes
        self.result.sample_bytes[key] = total
        return hashes

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self._tar.close()
            self.result.bytes = self._hashing.size
            self.result.sha256 = self._hashing.sha256.hexdigest()
        self._context.__exit__(exc_type, exc, tb)  # type: ignore[arg-type]


def decode_fields(key: str, raw: dict[str, bytes]) -> Sample:
    sample: Sample = {KEY_FIELD: key}
    for name, data in raw.items():
        sample[name] = json.loads(data) if name == JSON_FIELD else data
    return sample


def iter_raw(path: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {field: bytes}) per sample, in file order; a sample's members must be contiguous."""
    with tarfile.open(path, mode="r:") as tar:
        key: str | None = None
        fields: dict[str, bytes] = {}
        for member in tar:
            if not member.isfile():
                continue
            member_key, _, name = member.name.partition(".")
            if member_key != key:
                if key is not None:
                    yield key, fields
                key, fields = member_key, {}
            handle = tar.extractfile(member)
            assert handle is not None
            fields[name] = handle.read()
        if key is not None:
            yield key, fields


def read_samples(path: Path) -> Iterator[Sample]:
    for key, raw in iter_raw(path):
        yield decode_fields(key, raw)


def index_shard(path: Path) -> dict[str, dict[str, tuple[int, int]]]:
    """key -> field -> (offset, size) of the member data, for random access without re-scanning."""
    index: dict[str, dict[str, tuple[int, int]]] = {}
    with tarfile.open(path, mode="r:") as tar:
        for member in tar:
            if member.isfile():
                key, _, name = member.name.partition(".")
                index.setdefault(key, {})[name] = (member.offset_data, member.size)
    return index


class ShardIndex:
    """Random access to samples by (shard path, key), with an LRU of shard indexes.

    An index is a few hundred bytes per sample, and donors and export regrouping jump between all
    shards of a stage, so the LRU is sized to hold every shard of a typical build: re-scanning
    tar headers on each miss would make those stages slower as datasets grow.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = capacity
        self._indexes: OrderedDict[Path, dict[str, dict[str, tuple[int, int]]]] = OrderedDict()

    def get(self, path: Path, key: str) -> Sample:
        index = self._index(path)
        if key not in index:
            raise KeyError(f"no sample {key!r} in {path}")
        raw: dict[str, bytes] = {}
        with open(path, "rb") as handle:
            for name, (offset, size) in sorted(index[key].items()):
                handle.seek(offset)
                raw[name] = handle.read(size)
        return decode_fields(key, raw)

    def _index(self, path: Path) -> dict[str, dict[str, tuple[int, int]]]:
        if path in self._indexes:
            self._indexes.move_to_end(path)
            return self._indexes[path]
        index = index_shard(path)
        self._indexes[path] = index
        if len(self._indexes) > self.capacity:
            self._indexes.popitem(last=False)
        return index
