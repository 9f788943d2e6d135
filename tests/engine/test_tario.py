from pathlib import Path

import pytest

from nearid_data.engine.tario import ShardIndex, ShardWriter, read_samples


def _samples(n: int) -> list[dict]:
    return [
        {
            "__key__": f"id{i}_v000",
            "image.png": bytes([i]) * (100 + i),
            "json": {"i": i, "z": [1, 2]},
        }
        for i in range(n)
    ]


def test_same_samples_give_same_bytes(tmp_path: Path) -> None:
    for name in ("a.tar", "b.tar"):
        with ShardWriter(tmp_path / name) as writer:
            for sample in _samples(5):
                writer.write(sample)
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()


def test_round_trip_and_random_access(tmp_path: Path) -> None:
    path = tmp_path / "s.tar"
    with ShardWriter(path) as writer:
        for sample in _samples(4):
            writer.write(sample)
    assert list(read_samples(path)) == _samples(4)
    assert ShardIndex().get(path, "id2_v000") == _samples(4)[2]
    assert writer.result.bytes == path.stat().st_size


def test_failed_write_leaves_no_shard(tmp_path: Path) -> None:
    path = tmp_path / "s.tar"
    with pytest.raises(RuntimeError), ShardWriter(path) as writer:
        writer.write(_samples(1)[0])
        raise RuntimeError("killed mid-shard")
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("key", ["a.b", "", "a/b", "bjørn"])
def test_bad_keys_are_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError), ShardWriter(tmp_path / "s.tar") as writer:
        writer.write({"__key__": key, "json": {}})


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="duplicate"), ShardWriter(tmp_path / "s.tar") as writer:
        writer.write(_samples(1)[0])
        writer.write(_samples(1)[0])
