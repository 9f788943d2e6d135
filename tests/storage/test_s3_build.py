"""A build on S3 (moto's server, through s3fs) is the build on local disk, byte for byte; it
resumes after its driver is killed, and verify, inspect, report, export, both loaders and publish
planning read it where it is."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from nearid_data.engine.manifest import read_manifest
from nearid_data.engine.storage import ObjectPath, filesystem, location
from nearid_data.loaders.random_access import NearIDMapDataset
from nearid_data.loaders.shard_cache import VERSIONS
from nearid_data.loaders.streaming import NearIDStream, export_shards
from nearid_data.publish.hub import publish
from nearid_data.publish.plan import plan_upload
from tests.build_helpers import ROOT, cli, shard_bytes
from tests.conftest import TINY_DEMO, write_pipeline

PIPELINE = {**TINY_DEMO, "source": {**TINY_DEMO["source"], "n_identities": 6}}


@pytest.fixture(scope="module")
def builds(bucket: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The same pipeline built into a local folder and into ``<bucket>/demo``."""
    tmp = tmp_path_factory.mktemp("builds")
    pipeline = write_pipeline(tmp / "p.yaml", PIPELINE)
    local = tmp / "local"
    cli("build", "--pipeline", str(pipeline), "--out", str(local))
    remote = f"{bucket}/demo"
    remote_run = cli("build", "--pipeline", str(pipeline), "--out", remote)
    return {"pipeline": pipeline, "local": local, "remote": remote, "log": remote_run.stderr}


def remote_files(url: str) -> dict[str, bytes]:
    """Every object below ``url`` by relative path."""
    root = ObjectPath.from_url(url)
    fs = filesystem("s3")
    return {
        path.removeprefix(root.path + "/"): bytes(fs.cat_file(path)) for path in fs.find(root.path)
    }


def test_shards_indexes_and_card_are_byte_identical_to_a_local_build(
    builds: dict[str, Any],
) -> None:
    local = shard_bytes(builds["local"])
    remote = remote_files(builds["remote"])
    assert local, "the local build wrote no shards"
    assert {name: remote.get(name) for name in local} == local
    assert sorted(n for n in remote if n.endswith(".tar")) == sorted(
        n for n in local if n.endswith(".tar")
    )
    assert ".lock" not in remote  # the lease is released when the build ends
    assert "verify ok: 5 stages" in builds["log"]


def test_verify_reads_the_build_in_place_and_finds_a_truncated_shard(
    builds: dict[str, Any], bucket: str
) -> None:
    assert "verify ok" in cli("verify", builds["remote"]).stderr
    fs = filesystem("s3")
    copy = f"{bucket}/truncated"
    fs.copy(
        ObjectPath.from_url(builds["remote"]).path, ObjectPath.from_url(copy).path, recursive=True
    )
    tar = ObjectPath.from_url(copy) / "segment" / "shard-00000.tar"
    fs.pipe_file(tar.path, bytes(fs.cat_file(tar.path))[:-1024])
    result = cli("verify", copy, check=False)
    assert result.returncode == 1
    assert "segment/shard-00000.tar: size" in result.stderr


def test_driver_killed_mid_build_resumes_to_the_same_bytes(
    builds: dict[str, Any], bucket: str
) -> None:
    out = f"{bucket}/killed"
    root = ObjectPath.from_url(out)
    fs = filesystem("s3")
    command = [sys.executable, "-m", "nearid_data", "build", "--pipeline", str(builds["pipeline"])]
    process = subprocess.Popen([*command, "--out", out], cwd=ROOT, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not fs.exists((root / "distractors" / "shard-00000.manifest.json").path):
        assert process.poll() is None and time.monotonic() < deadline, "the build ended first"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert fs.exists((root / ".lock").path), "a killed build leaves its lease behind"
    assert not fs.exists((root / "export" / "_summary.json").path)
    for path in fs.find(root.path):
        if path.endswith(".manifest.json"):
            manifest = read_manifest(ObjectPath("s3", path))
            tar = bytes(fs.cat_file(path.removesuffix(".manifest.json") + ".tar"))
            assert hashlib.sha256(tar).hexdigest() == manifest.sha256, path
    # A tar without its manifest counts as absent, whatever it holds.
    fs.rm_file((root / "ingest" / "shard-00000.manifest.json").path)
    fs.pipe_file((root / "ingest" / "shard-00000.tar").path, b"not a tar")

    resumed = cli("build", "--pipeline", str(builds["pipeline"]), "--out", out)
    assert "taking over the stale build lease" in resumed.stderr
    local = shard_bytes(builds["local"])
    remote = remote_files(out)
    assert {name: remote.get(name) for name in local} == local
    assert ".lock" not in remote


def test_streaming_loader_reads_shards_from_s3_urls(builds: dict[str, Any]) -> None:
    urls = export_shards(f"{builds['remote']}/export", "train")
    assert urls and all(url.startswith("s3://") for url in urls)
    local_urls = export_shards(builds["local"] / "export", "train")

    def tuples(shards: list[str]) -> list[tuple[str, str, bytes]]:
        stream = NearIDStream(shards, seed=3, shuffle_buffer=1)
        stream.set_epoch(0)
        return [(t.key, t.generator, t.anchor.tobytes() + t.negative.tobytes()) for t in stream]

    remote = tuples(urls)
    assert remote and remote == tuples(local_urls)


def test_inspect_reads_a_build_on_s3(builds: dict[str, Any]) -> None:
    def table(directory: str) -> list[list[str]]:
        lines = cli("inspect", directory).stdout.splitlines()
        return [line.split()[:-1] for line in lines]  # wall times differ

    remote = table(builds["remote"])
    assert remote == table(str(builds["local"]))
    assert [row[0] for row in remote[1:6]] == [
        "ingest",
        "segment",
        "distractors",
        "splits",
        "export",
    ]


def test_report_reads_a_build_on_s3_and_caches_its_thumbnails_there(
    builds: dict[str, Any], tmp_path: Path
) -> None:
    first = cli("report", builds["remote"])
    page = ObjectPath.from_url(builds["remote"]) / "report.html"
    local_page = tmp_path / "report.html"
    cli("report", str(builds["local"]), "--out", str(local_page))
    html = page.read_text()
    assert html.count("data:image/jpeg") == local_page.read_text().count("data:image/jpeg") > 0
    drawn = int(first.stderr.split(" thumbnails drawn")[0].rsplit("; ", 1)[1])
    assert drawn > 0
    cache = ObjectPath.from_url(builds["remote"]) / ".report-cache"
    assert len(filesystem("s3").find(cache.path)) == drawn
    again = cli("report", builds["remote"], "--out", f"{builds['remote']}/again.html")
    assert "; 0 thumbnails drawn" in again.stderr


def test_random_access_copies_an_s3_split_once_and_draws_the_local_tuples(
    builds: dict[str, Any], tmp_path: Path
) -> None:
    def picks(dataset: NearIDMapDataset) -> list[tuple[str, ...]]:
        return [
            (t.key, t.positive_key, t.negative_key, t.generator)
            for t in (dataset[i] for i in range(len(dataset)))
        ]

    url = f"{builds['remote']}/export/train.wids.json"
    cache = tmp_path / "shards"
    remote = NearIDMapDataset(url, seed=3, cache_dir=cache)
    local = NearIDMapDataset(builds["local"] / "export" / "train.wids.json", seed=3)
    assert remote.index == cache / "train.wids.json"
    assert picks(remote) and picks(remote) == picks(local)
    copied = {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.name != VERSIONS}
    assert any(p.suffix == ".tar" for p in copied)

    NearIDMapDataset(url, seed=3, cache_dir=cache)  # nothing changed: nothing copied
    assert {p: p.stat().st_mtime_ns for p in copied} == copied
    tar = next(p for p in sorted(copied) if p.suffix == ".tar")
    tar.write_bytes(b"damaged")  # a local copy that is not what was copied is copied again
    assert picks(NearIDMapDataset(url, seed=3, cache_dir=cache)) == picks(local)


class _RecordingApi:
    def __init__(self) -> None:
        self.uploaded: dict[str, bytes] = {}

    def create_repo(self, *args: Any, **kwargs: Any) -> None:
        return None

    def create_branch(self, *args: Any, **kwargs: Any) -> None:
        return None

    def upload_folder(self, *, folder_path: str, **kwargs: Any) -> None:
        folder = Path(folder_path)
        self.uploaded = {
            p.relative_to(folder).as_posix(): p.read_bytes()
            for p in folder.rglob("*")
            if p.is_file()
        }


def test_publish_plans_and_uploads_an_export_on_s3(builds: dict[str, Any]) -> None:
    local_plan = plan_upload(builds["local"] / "export")
    remote_export = location(f"{builds['remote']}/export")
    remote_plan = plan_upload(remote_export)
    # Manifests and summaries record wall times, so only data files are compared by size.
    assert [(f.path, f.kind) for f in remote_plan.files] == [
        (f.path, f.kind) for f in local_plan.files
    ]
    data = [f for f in local_plan.files if f.kind in ("shard", "index", "card")]
    assert data and set(data) <= set(remote_plan.files)
    api = _RecordingApi()
    publish(remote_export, "owner/name", api=api)  # type: ignore[arg-type]
    assert sorted(api.uploaded) == sorted(local_plan.paths)
    for name, data in api.uploaded.items():
        if name.endswith((".tar", ".wids.json", "README.md")):
            assert data == (builds["local"] / "export" / name).read_bytes(), name
