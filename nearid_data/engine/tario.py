"""Shards on disk: deterministic WebDataset tar files, streaming reads and keyed random access.

Tars are written uncompressed (``wids`` random access needs that; images are already compressed)
with fixed mtime, owner and mode, members of a sample contiguous and sorted by field name, so the
same samples always give the same bytes.

Every reader of shards (stages, catalogs, exports, loaders, eval, verify) reads members through
``checked_member``, one rule set: only regular, non-sparse members named ``<key>.<field>`` with a
valid key, each at most ``TarRules.max_member_bytes``, a key's members contiguous and each key once
per shard. A header is never trusted for an allocation. Readers given the sha256 a manifest
recorded hash the bytes as they read them and fail naming the shard on a mismatch.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections import OrderedDict
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO

from nearid_data.engine import storage
from nearid_data.engine.atomic import dump_json
from nearid_data.engine.storage import Location
from nearid_data.errors import NearidError
from nearid_data.sample import JSON_FIELD, KEY_FIELD, Sample, check_key

FIXED_MTIME = 0
_CHUNK = 1 << 20


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

    def __init__(self, path: Location) -> None:
        self.path = path
        self.result = WrittenShard()
        self._keys: set[str] = set()

    def __enter__(self) -> ShardWriter:
        self._context = storage.atomic_writer(self.path)
        self._hashing = _HashingFile(self._context.__enter__())
        self._tar = tarfile.open(fileobj=self._hashing, mode="w", format=tarfile.GNU_FORMAT)  # type: ignore[call-overload]
        return self

    def write(self, sample: Sample) -> dict[str, str]:
        """Append one sample; returns sha256 per field."""
        return self.write_fields(sample[KEY_FIELD], field_bytes(sample))

    def write_fields(self, key: str, fields: dict[str, bytes]) -> dict[str, str]:
        """Append the sample ``key`` with its fields already encoded; returns sha256 per field."""
        check_key(key)
        if key in self._keys:
            raise ValueError(f"duplicate key {key!r} in shard {self.path.name}")
        self._keys.add(key)
        hashes: dict[str, str] = {}
        total = 0
        for name, data in sorted(fields.items()):
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


@dataclass(frozen=True)
class TarRules:
    """Limits every shard reader enforces; the default member cap is far above any real image."""

    max_member_bytes: int = 512 * 2**20


DEFAULT_RULES = TarRules()


class ShardError(NearidError):
    """A shard breaks the reading rules or does not match its manifest; the message names it."""


def checked_member(member: tarfile.TarInfo, where: object, rules: TarRules) -> tuple[str, str]:
    """(key, field) of a member that passes the rules, else ``ShardError`` naming shard and member."""
    if member.issparse() or member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
        raise ShardError(
            f"{where}: member {member.name!r} is not a regular file (type {member.type!r}"
            f"{', sparse' if member.issparse() else ''}); shards hold regular files only"
        )
    if member.size > rules.max_member_bytes:
        raise ShardError(
            f"{where}: member {member.name!r} declares {member.size:,d} bytes, over the "
            f"{rules.max_member_bytes:,d}-byte limit per member"
        )
    key, dot, name = member.name.partition(".")
    try:
        check_key(key)
    except ValueError as exc:
        raise ShardError(f"{where}: member {member.name!r}: {exc}") from None
    if not dot or not name or "/" in name:
        raise ShardError(f"{where}: member {member.name!r} is not named <key>.<field>")
    return key, name


class _HashingReader:
    """Read-only file wrapper hashing bytes as tarfile reads them (streaming mode never seeks)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.sha256.update(data)
        return data

    def drain(self) -> str:
        while self.read(_CHUNK):
            pass
        return self.sha256.hexdigest()


def iter_members(
    fileobj: IO[bytes], where: object, rules: TarRules = DEFAULT_RULES
) -> Iterator[tuple[str, str, bytes]]:
    """(key, field, bytes) per member of a tar stream, in order, under the rules."""
    try:
        with tarfile.open(fileobj=fileobj, mode="r|") as tar:  # type: ignore[call-overload]
            for member in tar:
                key, name = checked_member(member, where, rules)
                handle = tar.extractfile(member)
                assert handle is not None  # a regular member always has a file object
                yield key, name, handle.read()
                # Streaming: keep no headers, so memory stays bounded however long the shard.
                tar.members = []  # type: ignore[attr-defined]
    except (tarfile.TarError, EOFError) as exc:
        raise ShardError(f"{where}: unreadable tar: {exc}") from exc


def group_samples(
    members: Iterable[tuple[str, str, bytes]], where: object
) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {field: bytes}) per sample; a key's members must be contiguous and fields distinct."""
    seen = UniqueKeys()
    key: str | None = None
    fields: dict[str, bytes] = {}
    for member_key, name, data in members:
        if member_key != key:
            if key is not None:
                yield key, fields
            seen.add(member_key, where)
            key, fields = member_key, {}
        if name in fields:
            raise ShardError(f"{where}: sample {key!r} has field {name!r} twice")
        fields[name] = data
    if key is not None:
        yield key, fields


def iter_raw(
    path: Location, *, sha256: str | None = None, rules: TarRules = DEFAULT_RULES
) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {field: bytes}) per sample, in file order. With ``sha256`` (from the manifest) the
    file is hashed as it is read and a mismatch raises ``ShardError`` after the last sample, so
    a consumer that commits only on success never commits what it derived from a corrupt shard."""
    with storage.open_read(path) as raw:
        reader = _HashingReader(raw)
        yield from group_samples(iter_members(reader, path, rules), path)  # type: ignore[arg-type]
        if sha256 is not None and reader.drain() != sha256:
            raise ShardError(f"{path}: sha256 differs from its manifest (corrupt shard)")


def read_samples(
    path: Location, *, sha256: str | None = None, rules: TarRules = DEFAULT_RULES
) -> Iterator[Sample]:
    for key, raw in iter_raw(path, sha256=sha256, rules=rules):
        yield decode_fields(key, raw, path)


def decode_fields(key: str, raw: dict[str, bytes], where: object) -> Sample:
    sample: Sample = {KEY_FIELD: key}
    for name, data in raw.items():
        sample[name] = data
    if JSON_FIELD in raw:
        try:
            sample[JSON_FIELD] = json.loads(raw[JSON_FIELD])
        except ValueError as exc:
            raise ShardError(
                f"{where}: sample {key!r}: its json field is not JSON ({exc})"
            ) from None
    return sample


class UniqueKeys:
    """The one duplicate-key rule for readers: a key may appear once per shard set (a shard, a
    split, a stage); a second appearance is an error naming both places, never a silent merge."""

    def __init__(self) -> None:
        self._where: dict[str, object] = {}

    def add(self, key: str, where: object) -> None:
        if key not in self._where:
            self._where[key] = where
            return
        first = self._where[key]
        raise ShardError(
            f"{where}: sample key {key!r} appears twice"
            if first == where
            else f"duplicate sample key {key!r}: in {first} and in {where}"
        )


def index_shard(
    path: Location, rules: TarRules = DEFAULT_RULES
) -> dict[str, dict[str, tuple[int, int]]]:
    """key -> field -> (offset, size) of the member data, for random access without re-scanning."""
    index: dict[str, dict[str, tuple[int, int]]] = {}
    try:
        with storage.open_read(path) as raw, tarfile.open(fileobj=raw, mode="r:") as tar:
            last: str | None = None
            for member in tar:
                key, name = checked_member(member, path, rules)
                if key != last and key in index:
                    raise ShardError(f"{path}: sample key {key!r} appears twice")
                if name in index.setdefault(key, {}):
                    raise ShardError(f"{path}: sample {key!r} has field {name!r} twice")
                index[key][name] = (member.offset_data, member.size)
                last = key
    except (tarfile.TarError, EOFError) as exc:
        raise ShardError(f"{path}: unreadable tar: {exc}") from exc
    return index


_VERIFIED: dict[Location, tuple[tuple[int, str], str]] = {}


def file_sha256(path: Location) -> str:
    """The sha256 of a file, cached in this process by its size and version (mtime or ETag): a
    rewrite re-hashes."""
    version = storage.version(path)
    cached = _VERIFIED.get(path)
    if cached is not None and cached[0] == version:
        return cached[1]
    digest = storage.file_sha256(path)
    _VERIFIED[path] = (version, digest)
    return digest


def check_sha256(path: Location, sha256: str) -> None:
    if file_sha256(path) != sha256:
        raise ShardError(f"{path}: sha256 differs from its manifest (corrupt shard)")


class ShardIndex:
    """Random access to samples by (shard path, key), with an LRU of shard indexes.

    An index is a few hundred bytes per sample, and donors and export regrouping jump between all
    shards of a stage, so the LRU is sized to hold every shard of a typical build: re-scanning
    tar headers on each miss would make those stages slower as datasets grow. A shard given with
    its manifest's sha256 is hashed once when first indexed.
    """

    def __init__(self, capacity: int = 1024, rules: TarRules = DEFAULT_RULES) -> None:
        self.capacity = capacity
        self.rules = rules
        self._indexes: OrderedDict[Location, dict[str, dict[str, tuple[int, int]]]] = OrderedDict()

    def get(
        self,
        path: Location,
        key: str,
        *,
        sha256: str | None = None,
        fields: Collection[str] | None = None,
    ) -> Sample:
        """The sample ``key`` of the shard at ``path``, with ``fields`` of it (None: all)."""
        return self.get_many(path, [(key, fields)], sha256=sha256)[0]

    def get_many(
        self,
        path: Location,
        wanted: Sequence[tuple[str, Collection[str] | None]],
        *,
        sha256: str | None = None,
    ) -> list[Sample]:
        """The samples (key, fields of it; None: all) of the shard at ``path``, in order, read in
        one ranged read (``storage.read_range`` merges neighbouring members)."""
        index = self._index(path, sha256)
        members: list[list[tuple[str, tuple[int, int]]]] = []
        for key, fields in wanted:
            if key not in index:
                raise KeyError(f"no sample {key!r} in {path}")
            members.append(
                [
                    (n, span)
                    for n, span in sorted(index[key].items())
                    if fields is None or n in fields
                ]
            )
        data = iter(storage.read_range(path, [span for spans in members for _, span in spans]))
        return [
            decode_fields(key, {name: next(data) for name, _ in spans}, path)
            for (key, _), spans in zip(wanted, members, strict=True)
        ]

    def keys(self, path: Location, *, sha256: str | None = None) -> list[str]:
        """The sample keys of the shard at ``path``, in shard order."""
        return list(self._index(path, sha256))

    def _index(self, path: Location, sha256: str | None) -> dict[str, dict[str, tuple[int, int]]]:
        if path in self._indexes:
            self._indexes.move_to_end(path)
            return self._indexes[path]
        if sha256 is not None:
            check_sha256(path, sha256)
        index = index_shard(path, self.rules)
        self._indexes[path] = index
        if len(self._indexes) > self.capacity:
            self._indexes.popitem(last=False)
        return index
