"""The local copy of an S3 split for wids: copied once, copied again where a file changed at the
URL (same size, other content), and never written outside its folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nearid_data.engine.storage import ObjectPath, filesystem
from nearid_data.errors import NearidError
from nearid_data.loaders.shard_cache import local_split


def _put(url: ObjectPath, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        filesystem("s3").pipe_file((url / name).path, data)


def test_a_file_changed_at_the_url_is_copied_again(bucket: str, tmp_path: Path) -> None:
    export = ObjectPath.from_url(f"{bucket}/cache/export")
    index = json.dumps({"shardlist": [{"url": "train/a.tar", "nsamples": 1}]}).encode()
    _put(
        export, {"train.wids.json": index, "train/a.tar": b"first", "train/a.manifest.json": b"{}"}
    )
    copy = local_split(export / "train.wids.json", tmp_path)
    assert copy == tmp_path / "train.wids.json" and copy.read_bytes() == index
    assert (tmp_path / "train" / "a.tar").read_bytes() == b"first"

    _put(export, {"train/a.tar": b"other"})
    local_split(export / "train.wids.json", tmp_path)
    assert (tmp_path / "train" / "a.tar").read_bytes() == b"other"


def test_a_shard_outside_the_export_is_refused(bucket: str, tmp_path: Path) -> None:
    export = ObjectPath.from_url(f"{bucket}/cache/climbing")
    index = json.dumps({"shardlist": [{"url": "../../x.tar", "nsamples": 1}]}).encode()
    _put(export, {"train.wids.json": index})
    with pytest.raises(NearidError, match=r"shard '\.\./\.\./x\.tar' points outside the export"):
        local_split(export / "train.wids.json", tmp_path / "copy")
    assert not (tmp_path / "x.tar").exists()
