"""Every file-based source reads a root given as an S3 URL through the storage seam: the same rows
and byte-identical shards as from a local copy of the folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nearid_data.engine.storage import ObjectPath, filesystem
from nearid_data.errors import NearidError
from nearid_data.sources.checksums import write_manifest
from nearid_data.sources.formats import FileIndex
from tests.history_layouts import write_pog
from tests.source_fixtures import ingest, source_of, write_syncd, write_wildlife
from tests.source_layouts import SOURCE_LAYOUTS

pytest.importorskip("scipy")
pytest.importorskip("datasets")

LAYOUTS = {
    **SOURCE_LAYOUTS,
    "pog": lambda root: write_pog(root, missing_images=["i00"])[0],
}


def upload(local: Path, url: str) -> None:
    filesystem("s3").put(str(local), ObjectPath.from_url(url).path, recursive=True)


def on_s3(source: dict[str, Any], local: Path, url: str) -> dict[str, Any]:
    """``source`` with every location below ``local`` moved to ``url``."""
    return {
        key: value.replace(str(local), url)
        if isinstance(value, str) and value.startswith(str(local))
        else value
        for key, value in source.items()
    }


def built(source: dict[str, Any], out: Path) -> tuple[list[tuple[str, str, str | None]], dict]:
    rows = [(row.key, row.status, row.reason) for row in ingest(source, out)]
    tars = {p.name: p.read_bytes() for p in sorted((out / "ingest").glob("*.tar"))}
    return rows, tars


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_a_source_on_s3_ingests_like_its_local_copy(
    layout: str, bucket: str, tmp_path: Path
) -> None:
    local = tmp_path / "raw"
    source = LAYOUTS[layout](local)
    url = f"{bucket}/{layout.replace(' ', '-')}"
    upload(local, url)

    expected_rows, expected_tars = built(source, tmp_path / "local")
    rows, tars = built(on_s3(source, local, url), tmp_path / "remote")
    assert any(status == "kept" for _, status, _ in rows)
    assert rows == expected_rows
    assert tars == expected_tars


def test_a_source_manifest_on_s3_checks_the_files_on_s3(bucket: str, tmp_path: Path) -> None:
    local = tmp_path / "raw"
    source = write_wildlife(local).source
    write_manifest(local, local / "manifest.json", ["metadata.csv"])
    url = f"{bucket}/checked"
    upload(local, url)
    remote = {**on_s3(source, local, url), "manifest": f"{url}/manifest.json"}
    assert source_of(remote).items() == source_of(source).items()

    metadata = ObjectPath.from_url(f"{url}/metadata.csv")
    filesystem("s3").pipe_file(metadata.path, metadata.read_bytes() + b"\n")
    with pytest.raises(NearidError, match=r"size: metadata\.csv has \d+ bytes"):
        source_of(remote).items()


def test_a_source_manifest_is_written_from_and_to_s3_as_from_a_local_copy(
    bucket: str, tmp_path: Path
) -> None:
    local = tmp_path / "raw"
    write_wildlife(local)
    (local / ".hidden").write_text("left out")
    url = ObjectPath.from_url(f"{bucket}/written")
    upload(local, str(url))
    counted = write_manifest(url, url / "manifests" / "wildlife.json")
    assert counted == write_manifest(local, tmp_path / "wildlife.json") > 1
    assert (url / "manifests" / "wildlife.json").read_bytes() == (
        tmp_path / "wildlife.json"
    ).read_bytes()
    with pytest.raises(NearidError, match="no such file"):
        write_manifest(url, url / "other.json", ["missing.csv"])


def test_reads_on_s3_stay_inside_the_root(bucket: str, tmp_path: Path) -> None:
    local = tmp_path / "raw"
    source = write_syncd(local).source
    url = f"{bucket}/climbing/syncd"
    upload(local, url)
    upload(local, f"{bucket}/climbing/outside")  # what a climbing path would reach
    metadata = json.loads((local / "metadata.json").read_text())
    metadata[0]["filenames"][0] = "../outside/0000_0.jpg"
    filesystem("s3").pipe_file(
        ObjectPath.from_url(f"{url}/metadata.json").path, json.dumps(metadata).encode()
    )
    rows = ingest(on_s3(source, local, url), tmp_path / "out")
    climbed = [row for row in rows if row.status == "rejected"]
    assert [(row.reason, row.detail) for row in climbed] == [
        ("outside_root", "../outside/0000_0.jpg points outside the source root")
    ]


def test_a_file_index_on_s3_answers_as_its_local_copy_does(bucket: str, tmp_path: Path) -> None:
    local = tmp_path / "tree"
    for name in ("a.txt", "d/b.txt", "d/e/c.txt", "d/.hidden/x", "v1./f"):
        (local / name).parent.mkdir(parents=True, exist_ok=True)
        (local / name).write_text(name)
    upload(local, f"{bucket}/tree")
    here, there = FileIndex(local), FileIndex(ObjectPath.from_url(f"{bucket}/tree"))
    for folder in ("", "d", "d/e", "v1.", "missing"):
        assert there.entries(folder) == here.entries(folder), folder
    for path in ("a.txt", "d", "d/b.txt", "d/e/c.txt", "v1./f", "f", "d/c.txt", "x/../a.txt"):
        assert there.is_file(path) == here.is_file(path), path
    assert there.entries("d") == ([".hidden", "e"], ["b.txt"])
