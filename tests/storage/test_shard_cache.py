"""The local copy of an S3 split for wids: copied once, copied again where a file changed at the
URL (same size, other content), and never written outside its folder."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from nearid_data.engine.manifest import ShardManifest
from nearid_data.engine.storage import ObjectPath, filesystem
from nearid_data.engine.tario import ShardError
from nearid_data.errors import NearidError
from nearid_data.loaders.shard_cache import local_split


def _put(url: ObjectPath, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        filesystem("s3").pipe_file((url / name).path, data)


def _shard(tar: bytes, recorded: bytes | None = None) -> dict[str, bytes]:
    """``train/a.tar`` holding ``tar`` and its manifest, recording the sha256 of ``recorded``
    (default: ``tar`` itself)."""
    manifest = ShardManifest(
        stage="export", unit="train/a", fingerprint="0", tar="train/a.tar", bytes=len(tar),
        sha256=hashlib.sha256(tar if recorded is None else recorded).hexdigest(),
        n_in=0, n_kept=0, n_rejected=0, wall_s=0.0, rows=[],
    )  # fmt: skip
    return {"train/a.tar": tar, "train/a.manifest.json": manifest.model_dump_json().encode()}


INDEX = json.dumps({"shardlist": [{"url": "train/a.tar", "nsamples": 1}]}).encode()


def test_a_file_changed_at_the_url_is_copied_again(bucket: str, tmp_path: Path) -> None:
    export = ObjectPath.from_url(f"{bucket}/cache/export")
    _put(export, {"train.wids.json": INDEX, **_shard(b"first")})
    copy = local_split(export / "train.wids.json", tmp_path)
    assert copy == tmp_path / "train.wids.json" and copy.read_bytes() == INDEX
    assert (tmp_path / "train" / "a.tar").read_bytes() == b"first"

    _put(export, _shard(b"other"))
    local_split(export / "train.wids.json", tmp_path)
    assert (tmp_path / "train" / "a.tar").read_bytes() == b"other"


def test_a_copy_that_differs_from_its_manifest_fails_and_is_copied_again(
    bucket: str, tmp_path: Path
) -> None:
    export = ObjectPath.from_url(f"{bucket}/cache/changing")
    _put(export, {"train.wids.json": INDEX, **_shard(b"torn", recorded=b"whole")})
    with pytest.raises(ShardError, match="differs from its manifest's sha256"):
        local_split(export / "train.wids.json", tmp_path)
    _put(export, _shard(b"whole"))
    local_split(export / "train.wids.json", tmp_path)
    assert (tmp_path / "train" / "a.tar").read_bytes() == b"whole"


def test_a_shard_outside_the_export_is_refused(bucket: str, tmp_path: Path) -> None:
    export = ObjectPath.from_url(f"{bucket}/cache/climbing")
    index = json.dumps({"shardlist": [{"url": "../../x.tar", "nsamples": 1}]}).encode()
    _put(export, {"train.wids.json": index})
    with pytest.raises(NearidError, match=r"shard '\.\./\.\./x\.tar' points outside the export"):
        local_split(export / "train.wids.json", tmp_path / "copy")
    assert not (tmp_path / "x.tar").exists()
