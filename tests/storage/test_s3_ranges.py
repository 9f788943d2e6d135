"""Ranged reads on an object store: neighbouring ranges share a request, and every range comes
back with the bytes a local read gives, in the order asked (unsorted, overlapping, repeated)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nearid_data.engine import storage
from nearid_data.engine.storage import ObjectPath


def test_ranges_read_remotely_equal_local_reads_with_fewer_requests(
    bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = bytes(range(256)) * 8192  # 2 MiB
    local = tmp_path / "blob"
    local.write_bytes(data)
    remote = ObjectPath.from_url(f"{bucket}/ranges/blob")
    storage.write_bytes(remote, data)
    ranges = [(1_900_000, 100), (0, 10), (5, 20), (600, 512), (0, 10), (2 * 2**20 - 1, 1)]

    requests: list[tuple[int, int]] = []
    fs = remote.fs
    original = fs.cat_ranges

    def counting(paths: list[str], starts: list[int], ends: list[int], **kw: object) -> object:
        requests.extend(zip(starts, ends, strict=True))
        return original(paths, starts, ends, **kw)

    monkeypatch.setattr(fs, "cat_ranges", counting)
    assert storage.read_range(remote, ranges) == storage.read_range(local, ranges)
    assert storage.read_range(local, ranges)[0] == data[1_900_000:1_900_100]
    assert requests == [(0, 1112), (1_900_000, 2 * 2**20)]
