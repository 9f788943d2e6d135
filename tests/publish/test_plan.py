"""The upload plan: exactly the files the manifests account for, each checked on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nearid_data.publish.plan import PublishError, plan_upload


def _expected_paths(export: Path) -> set[str]:
    summary = json.loads((export / "_summary.json").read_text())
    shards = {s["tar"] for s in summary["shards"]}
    manifests = {s["unit"] + ".manifest.json" for s in summary["shards"]}
    indexes = {f"{split}.wids.json" for split in ("train", "val", "test")}
    return shards | manifests | indexes | {"README.md", "_summary.json"}


def test_plan_lists_shards_manifests_indexes_and_card(built: Path) -> None:
    export = built / "export"
    plan = plan_upload(export)
    assert set(plan.paths) == _expected_paths(export)
    assert len(plan.paths) == len(set(plan.paths))
    for planned in plan.files:
        assert planned.bytes == (export / planned.path).stat().st_size
    assert plan.total_bytes == sum(f.bytes for f in plan.files)
    assert "total, " in plan.describe()


def test_stray_files_are_not_planned(export_copy: Path) -> None:
    (export_copy / "notes.txt").write_text("scratch")
    (export_copy / "data/train/.train-00000.tar.tmp-123").write_bytes(b"half")
    assert set(plan_upload(export_copy).paths) == _expected_paths(export_copy)


def test_unlisted_data_file_is_an_error_unless_allowed(export_copy: Path) -> None:
    stray = export_copy / "data/train/train-00007.tar"
    stray.write_bytes((export_copy / "data/train/train-00000.tar").read_bytes())
    with pytest.raises(PublishError, match=r"data/train/train-00007\.tar: data file not in"):
        plan_upload(export_copy)
    plan = plan_upload(export_copy, allow_extra=True)
    assert set(plan.paths) == _expected_paths(export_copy)
    assert any("train-00007.tar" in w and "--allow-extra" in w for w in plan.warnings)


def test_same_size_corrupt_shard_is_named(export_copy: Path) -> None:
    tar = export_copy / "data/val/val-00000.tar"
    data = bytearray(tar.read_bytes())
    data[600] ^= 0x01
    tar.write_bytes(bytes(data))
    with pytest.raises(PublishError, match=r"data/val/val-00000\.tar: sha256 differs"):
        plan_upload(export_copy)


def test_missing_shard_is_named(export_copy: Path) -> None:
    (export_copy / "data/train/train-00001.tar").unlink()
    with pytest.raises(PublishError, match=r"data/train/train-00001\.tar: missing \(shard\)"):
        plan_upload(export_copy)


def test_resized_shard_is_named_with_both_sizes(export_copy: Path) -> None:
    tar = export_copy / "data/val/val-00000.tar"
    size = tar.stat().st_size
    tar.write_bytes(tar.read_bytes() + b"\0" * 512)
    with pytest.raises(PublishError) as error:
        plan_upload(export_copy)
    assert "data/val/val-00000.tar" in str(error.value)
    assert f"{size + 512:,d} bytes on disk" in str(error.value)
    assert f"records {size:,d}" in str(error.value)


def test_stale_manifest_is_named(export_copy: Path) -> None:
    stale = export_copy / "data/train/train-00009.manifest.json"
    stale.write_text((export_copy / "data/train/train-00000.manifest.json").read_text())
    with pytest.raises(PublishError, match=r"train-00009\.manifest\.json: not in _summary\.json"):
        plan_upload(export_copy)


def test_unfinished_export_is_refused(export_copy: Path) -> None:
    (export_copy / "_summary.json").unlink()
    with pytest.raises(PublishError, match="not a finished WebDataset export"):
        plan_upload(export_copy)


def test_shards_over_the_limit_are_errors_with_the_fix(built: Path) -> None:
    with pytest.raises(PublishError) as error:
        plan_upload(built / "export", max_shard_gb=0.0001)  # 100 kB: every tiny shard is over
    message = str(error.value)
    assert "data/train/train-00000.tar" in message and "over --max-shard-gb 0.0001" in message
    assert "--set export.max_shard_bytes=90000" in message


def test_many_small_shards_only_warn(built: Path) -> None:
    warnings = plan_upload(built / "export").warnings
    assert any("split train: 2 shards" in w and "1-5 GB" in w for w in warnings)
    assert not any("split val" in w for w in warnings)  # one shard: nothing to merge
