"""Every shard reader against hostile tars: member names, types and sizes drawn by hypothesis.

The oracle: a tar whose members are all regular, named ``<valid key>.<field>``, within the size
cap, with each key's members contiguous and each field once, reads back exactly as written; any
other tar is refused with ``ShardError`` (a NearidError naming the shard), never another exception,
never a partial silent read, never an allocation the header alone asked for.
"""

from __future__ import annotations

import io
import tarfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nearid_data.engine.tario import ShardError, ShardIndex, TarRules, index_shard, iter_raw
from nearid_data.loaders.streaming import NearIDStream
from nearid_data.sample import check_key

CAP = 4096
RULES = TarRules(max_member_bytes=CAP)
SPARSE = "sparse"
TYPES = [tarfile.REGTYPE] * 6 + [
    tarfile.DIRTYPE,
    tarfile.SYMTYPE,
    tarfile.LNKTYPE,
    tarfile.CHRTYPE,
    tarfile.FIFOTYPE,
    SPARSE,
]
Member = tuple[str, object, int]  # name, type, size


def _read_iter_raw(path: Path) -> dict[str, dict[str, bytes]]:
    return dict(iter_raw(path, rules=RULES))


def _read_random_access(path: Path) -> dict[str, dict[str, bytes]]:
    reader = ShardIndex(rules=RULES)
    samples = {key: reader.get(path, key) for key in index_shard(path, RULES)}
    return {k: {f: v for f, v in s.items() if f != "__key__"} for k, s in samples.items()}


def _read_stream(path: Path) -> dict[str, dict[str, bytes]]:
    stream = NearIDStream([str(path)], shuffle=False, tar_rules=RULES)
    out = {}
    for sample in stream._samples(iter([{"url": str(path)}])):
        key = sample.pop("__key__")
        out[key] = {k: v for k, v in sample.items() if k != "__url__"}
    return out


READERS: dict[str, Callable[[Path], dict[str, dict[str, bytes]]]] = {
    "tario.iter_raw (stages, eval, verify)": _read_iter_raw,
    "tario.ShardIndex (catalog, export, random-access loader)": _read_random_access,
    "loaders.NearIDStream": _read_stream,
}


def _sparse_header(name: str, declared: int) -> bytes:
    """A GNU sparse member header whose map declares ``declared`` bytes (tarfile cannot write one)."""
    info = tarfile.TarInfo(name)
    info.type, info.size = tarfile.GNUTYPE_SPARSE, 512
    header = bytearray(info.tobuf(format=tarfile.GNU_FORMAT))
    header[386:398] = b"%011o\0" % 0  # one region: offset 0 ...
    header[398:410] = b"%011o\0" % min(declared, 8**11 - 1)  # ... of the declared length
    header[483:495] = b"%011o\0" % min(declared, 8**11 - 1)  # the member's real size
    header[148:156] = b" " * 8
    header[148:155] = b"%06o\0" % sum(header[:512])
    return bytes(header) + b"\0" * 512


def _tar(members: list[Member]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for index, (name, kind, size) in enumerate(members):
            if kind == SPARSE:
                tar.fileobj.write(_sparse_header(f"s{index}.png", size))  # type: ignore[union-attr]
                tar.offset += 1024
                continue
            info = tarfile.TarInfo(name)
            info.type = kind  # type: ignore[assignment]
            if kind == tarfile.REGTYPE:
                info.size = size
                tar.addfile(info, io.BytesIO(bytes([index % 256]) * size))
            else:
                info.linkname = "target" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
                tar.addfile(info)
    return buffer.getvalue()


def _expected(members: list[Member]) -> dict[str, dict[str, bytes]] | None:
    """What a reader must return, or None when it must refuse the tar."""
    samples: dict[str, dict[str, bytes]] = {}
    last = None
    for index, (name, kind, size) in enumerate(members):
        if kind != tarfile.REGTYPE or size > CAP:
            return None
        key, dot, field = name.partition(".")
        try:
            check_key(key)
        except ValueError:
            return None
        if not dot or not field or "/" in field:
            return None
        if (key != last and key in samples) or field in samples.get(key, {}):
            return None
        samples.setdefault(key, {})[field] = bytes([index % 256]) * size
        last = key
    return samples


valid_names = st.builds(
    lambda key, field: f"{key}.{field}",
    st.sampled_from(["a", "b", "id_1", "X-2"]),
    st.sampled_from(["png", "json", "mask.png", "distractor_x.png"]),
)
hostile_names = st.lists(
    st.sampled_from(["a", "b", ".", "-", "_", "/", " ", "é", "\\", "..", "../", "/abs"]),
    max_size=60,
).map("".join)
members = st.lists(
    st.tuples(
        st.one_of(valid_names, valid_names, hostile_names),
        st.sampled_from(TYPES),
        st.one_of(st.integers(0, 64), st.integers(CAP - 2, CAP + 2)),
    ),
    max_size=8,
)


@pytest.mark.parametrize("reader", list(READERS), ids=lambda name: name.split()[0])
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(drawn=members)
def test_reader_returns_exactly_the_valid_tar_or_refuses(
    tmp_path: Path, reader: str, drawn: list[Member]
) -> None:
    path = tmp_path / "fuzz.tar"
    path.write_bytes(_tar(drawn))
    expected = _expected(drawn)
    if expected is not None and reader.startswith("tario.ShardIndex"):
        # This reader decodes ``json``; drawn field bytes are never JSON (control characters).
        expected = None if any("json" in fields for fields in expected.values()) else expected
    if expected is None:
        with pytest.raises(ShardError, match=r"fuzz\.tar"):
            READERS[reader](path)
    else:
        assert READERS[reader](path) == expected


@pytest.mark.parametrize("reader", list(READERS), ids=lambda name: name.split()[0])
def test_a_small_sparse_tar_declaring_3_gb_allocates_nothing_like_it(
    tmp_path: Path, reader: str
) -> None:
    path = tmp_path / "sparse.tar"
    images = [(f"k{i}.png", tarfile.REGTYPE, 4000) for i in range(48)]
    path.write_bytes(_tar([*images, ("s.png", SPARSE, 3 * 2**30)]))
    assert path.stat().st_size < 230_000
    tracemalloc.start()
    with pytest.raises(ShardError, match="not a regular file"):
        READERS[reader](path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 16 * 2**20


def test_the_default_cap_is_far_above_any_real_image() -> None:
    assert TarRules().max_member_bytes >= 256 * 2**20
