"""Source manifests: a dataset copy is checked file by file against sizes and SHA-256 digests,
and a source whose config names a manifest refuses to list a copy that does not match."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nearid_data.errors import NearidError
from nearid_data.sources.checksums import check_files, require_files, write_manifest
from tests.source_fixtures import source_of, write_cub


def test_a_written_manifest_matches_its_copy(tmp_path: Path) -> None:
    written = write_cub(tmp_path / "cub", per_class=1)
    manifest = tmp_path / "manifests" / "cub.json"
    assert write_manifest(written.root, manifest) == 3 + 3 + 5  # images, masks, annotation files
    assert check_files(written.root, manifest) == []
    entries = json.loads(manifest.read_text())["files"]
    assert [e["path"] for e in entries] == sorted(e["path"] for e in entries)
    assert entries[0]["path"] == "bounding_boxes.txt"


def test_missing_resized_and_changed_files_are_named(tmp_path: Path) -> None:
    written = write_cub(tmp_path / "cub", per_class=1)
    manifest = tmp_path / "cub.json"
    write_manifest(written.root, manifest, ["images.txt", "classes.txt", "bounding_boxes.txt"])
    (written.root / "images.txt").unlink()
    size = (written.root / "classes.txt").stat().st_size
    with (written.root / "classes.txt").open("a") as handle:
        handle.write("4 004.Bird_4\n")
    boxes = (written.root / "bounding_boxes.txt").read_text()
    (written.root / "bounding_boxes.txt").write_text(boxes.replace("4.5", "5.5"))
    assert check_files(written.root, manifest) == [
        "sha256: bounding_boxes.txt differs from the manifest",
        f"size: classes.txt has {size + 13} bytes, expected {size}",
        "missing: images.txt",
    ]
    source = {**written.source, "manifest": str(manifest)}
    with pytest.raises(NearidError, match=r"does not match the source manifest .*3 problem\(s\)"):
        source_of(source).items()


def test_only_the_first_problems_are_shown(tmp_path: Path) -> None:
    names = [f"f{n:02d}" for n in range(12)]
    for name in names:
        (tmp_path / name).write_text(name)
    write_manifest(tmp_path, tmp_path.parent / "m.json", names)
    for name in names:
        (tmp_path / name).unlink()
    with pytest.raises(NearidError) as error:
        require_files(tmp_path, tmp_path.parent / "m.json")
    assert "missing: f09" in str(error.value) and "f10" not in str(error.value)
    assert "... and 2 more" in str(error.value)


@pytest.mark.parametrize(
    "content",
    [
        "[]",
        '{"files": {}}',
        '{"files": [{"path": "a", "bytes": 1}]}',
        '{"files": [{"path": "../a", "bytes": 1, "sha256": "' + "0" * 64 + '"}]}',
        '{"files": [{"path": "/etc/a", "bytes": 1, "sha256": "' + "0" * 64 + '"}]}',
        '{"files": [{"path": "a", "bytes": true, "sha256": "' + "0" * 64 + '"}]}',
        '{"files": [',
    ],
)
def test_malformed_manifests_are_errors(tmp_path: Path, content: str) -> None:
    (tmp_path / "m.json").write_text(content)
    with pytest.raises(NearidError, match=r"m\.json"):
        check_files(tmp_path, tmp_path / "m.json")


def test_a_missing_manifest_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(NearidError, match="cannot read source manifest"):
        check_files(tmp_path, tmp_path / "absent.json")
