"""An imagefolder source read from S3 gives the ingest a local copy of the folder gives."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from nearid_data.build import build
from nearid_data.config import PipelineConfig
from nearid_data.engine.manifest import manifest_path, read_manifest
from nearid_data.engine.storage import ObjectPath, filesystem
from nearid_data.errors import NearidError
from tests.badimages import valid_image, write_bad_images


def _folder(root: Path) -> None:
    (root / "broken mug").mkdir(parents=True)
    write_bad_images(root / "broken mug")
    for identity in ("plain mug", "red mug"):
        for view in range(2):
            path = root / identity / f"view {view}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), valid_image(view + len(identity))[..., ::-1])
    mask = np.zeros((40, 48), np.uint8)
    mask[10:30, 12:36] = 255
    cv2.imwrite(str(root / "plain mug" / "view 0.mask.png"), mask)
    (root / "red mug" / "notes.txt").write_text("not an image")
    (root / "metadata.jsonl").write_text(json.dumps({"identity": "red mug", "caption": "red"}))


def _ingest(root: str, out: Path) -> tuple[list[tuple[str, str, str | None]], dict[str, bytes]]:
    pipeline = {
        "name": "folder",
        "source": {"name": "imagefolder", "root": root},
        "stages": {"ingest": {"shard_size": 4}},
    }
    (summary,) = build(PipelineConfig.from_dict(pipeline), out=out)
    rows = [
        (row.key, row.status, row.locator)
        for entry in summary.shards
        for row in read_manifest(manifest_path(out / "ingest", entry.unit)).rows
    ]
    tars = {p.name: p.read_bytes() for p in sorted((out / "ingest").glob("*.tar"))}
    return rows, tars


def test_an_imagefolder_on_s3_ingests_like_its_local_copy(bucket: str, tmp_path: Path) -> None:
    local = tmp_path / "photos"
    _folder(local)
    remote = ObjectPath.from_url(f"{bucket}/photos")
    filesystem("s3").put(str(local), remote.path, recursive=True)

    expected_rows, expected_tars = _ingest(str(local), tmp_path / "local")
    rows, tars = _ingest(str(remote), tmp_path / "remote")
    assert {status for _, status, _ in rows} == {"kept", "rejected"}
    assert rows == expected_rows
    assert tars == expected_tars


def test_an_out_overlapping_the_source_in_the_store_is_refused_before_writing(
    bucket: str, tmp_path: Path
) -> None:
    _folder(tmp_path / "photos")
    fs = filesystem("s3")
    fs.put(str(tmp_path / "photos"), f"{bucket}/shop/photos", recursive=True)
    pipeline = PipelineConfig.from_dict({
        "name": "folder",
        "source": {"name": "imagefolder", "root": f"{bucket}/shop/photos"},
        "stages": {"ingest": {}},
    })  # fmt: skip
    before = sorted(fs.find(bucket))
    for out in (f"{bucket}/shop/photos", f"{bucket}/shop/photos/build", f"{bucket}/shop"):
        with pytest.raises(NearidError, match="overlap"):
            build(pipeline, out=ObjectPath.from_url(out))
        assert sorted(fs.find(bucket)) == before
    # A neighbour whose name only starts like the root's is another folder.
    pipeline.check_out(ObjectPath.from_url(f"{bucket}/shop/photos2"))
    pipeline.check_out(tmp_path / "photos")  # a local folder never overlaps a URL
