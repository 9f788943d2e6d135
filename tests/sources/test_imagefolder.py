"""The imagefolder source through ingest: bad files become recorded rejections, odd ones are
normalised, nothing is dropped, and --strict turns rejections into a failing exit code."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from nearid_data.build import build
from nearid_data.config import PipelineConfig
from nearid_data.engine.manifest import manifest_path, read_manifest, read_summary
from nearid_data.errors import NearidError
from nearid_data.sources.imagefolder import ImageFolderConfig, ImageFolderSource
from tests.badimages import valid_image, write_bad_images
from tests.build_helpers import cli
from tests.conftest import write_pipeline


def _pipeline(root: Path) -> dict:
    return {
        "name": "folder",
        "source": {"name": "imagefolder", "root": str(root)},
        "stages": {"ingest": {"shard_size": 5}},
    }


@pytest.fixture
def folder(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    root = tmp_path / "raw photos"
    bad = root / "bjørn's mug"
    bad.mkdir(parents=True)
    expected = write_bad_images(bad)
    good = root / "plain mug"
    good.mkdir(parents=True)
    for view in range(2):
        cv2.imwrite(str(good / f"view {view}.png"), valid_image(view)[..., ::-1])
    mask = np.zeros((40, 48), np.uint8)
    mask[10:30, 12:36] = 255
    cv2.imwrite(str(good / "view 0.mask.png"), mask)
    (good / "notes.txt").write_text("not an image")
    (root / "metadata.jsonl").write_text(
        json.dumps({"identity": "plain mug", "category": "mug", "caption": "a plain mug"}) + "\n"
    )
    return root, expected


def test_every_file_is_kept_or_rejected_with_its_reason(
    folder: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    root, expected = folder
    out = tmp_path / "build"
    build(PipelineConfig.from_dict(_pipeline(root)), out=out)
    summary = read_summary(out / "ingest")
    assert summary is not None
    rows = [
        r for e in summary.shards for r in read_manifest(manifest_path(out / "ingest", e.unit)).rows
    ]
    n_files = len(expected) + 3  # two good views and a text file beside the bad images
    assert summary.n_in == len(rows) == n_files
    by_reason = {r.reason for r in rows if r.status == "rejected"}
    rejected_expected = {v for v in expected.values() if not v.startswith("ok")}
    assert by_reason == rejected_expected | {"unsupported_extension"}
    kept_notes = sorted(
        ",".join(r.qa["notes"]) for r in rows if r.status == "kept" and r.identity != "plain mug"
    )
    assert kept_notes == sorted(
        v.removeprefix("ok:") for v in expected.values() if v.startswith("ok")
    )
    plain = [r for r in rows if r.identity == "plain mug" and r.status == "kept"]
    assert {r.category for r in plain} == {"mug"} and {r.caption for r in plain} == {"a plain mug"}


def test_source_masks_travel_with_their_image(
    folder: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    root, _ = folder
    out = tmp_path / "build"
    build(PipelineConfig.from_dict(_pipeline(root)), out=out)
    from nearid_data.engine.catalog import Catalog

    catalog = Catalog(out / "ingest")
    samples = [catalog.fetch(r) for r in catalog.by_identity["plain mug"]]
    views = {Path(s["json"]["source"]["path"]).name: s for s in samples}
    assert "mask.png" in views["view 0.png"] and "mask.png" not in views["view 1.png"]


def test_strict_fails_on_rejections(folder: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    root, _ = folder
    pipeline = write_pipeline(tmp_path / "p.yaml", _pipeline(root))
    args = ("build", "--pipeline", str(pipeline), "--out", str(tmp_path / "b"))
    assert cli(*args).returncode == 0
    strict = cli(*args, "--strict", check=False)
    assert strict.returncode == 3 and "rejected" in strict.stderr
    assert "Traceback" not in strict.stderr


def test_missing_root_and_malformed_metadata_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(NearidError, match="not a directory"):
        ImageFolderSource(ImageFolderConfig(root=str(tmp_path / "nope")), seed=0).items()
    (tmp_path / "a").mkdir()
    (tmp_path / "metadata.jsonl").write_text('{"identity": "a"}\n{oops\n')
    with pytest.raises(NearidError, match=r"metadata.jsonl:2"):
        ImageFolderSource(ImageFolderConfig(root=str(tmp_path)), seed=0).items()
    (tmp_path / "metadata.jsonl").write_text('{"category": "mug"}\n')
    with pytest.raises(NearidError, match="identity"):
        ImageFolderSource(ImageFolderConfig(root=str(tmp_path)), seed=0).items()
