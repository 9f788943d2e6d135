"""One duplicate-key rule for every reader: a key seen twice in a shard set is an error naming both
places, never a merge where one sample silently replaces the other."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest

from nearid_data.build import build
from nearid_data.engine.catalog import Catalog, committed_samples
from nearid_data.engine.manifest import manifest_path, read_manifest, tar_path, write_model
from nearid_data.engine.tario import ShardError, ShardWriter, UniqueKeys, read_samples
from nearid_data.loaders.random_access import NearIDMapDataset
from nearid_data.loaders.streaming import NearIDStream
from tests.conftest import tiny_pipeline


def test_the_rule_names_both_places() -> None:
    keys = UniqueKeys()
    keys.add("a_v000", "one.tar")
    keys.add("b_v000", "one.tar")
    with pytest.raises(ShardError, match=r"'a_v000': in one\.tar and in two\.tar"):
        keys.add("a_v000", "two.tar")


def test_a_key_split_across_one_shard_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.tar"
    with ShardWriter(path) as writer:
        writer.write({"__key__": "a", "json": {}})
        writer.write({"__key__": "b", "json": {}})
    # Rewrite the tar with a's members again after b's: the writer itself refuses duplicates.
    with tarfile.open(path) as source, tarfile.open(tmp_path / "d.tar", "w") as target:
        members = source.getmembers()
        for member in [*members, members[0]]:
            target.addfile(member, source.extractfile(member))
    with pytest.raises(ShardError, match="'a' appears twice"):
        list(read_samples(tmp_path / "d.tar"))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dup")
    build(tiny_pipeline(), out=out)
    return out


def _duplicate_first_train_shard(built: Path, tmp_path: Path) -> Path:
    """A copy of the build whose train split lists its first shard twice, under two names."""
    copy = tmp_path / "b"
    shutil.copytree(built, copy)
    export = copy / "export"
    index = json.loads((export / "train.wids.json").read_text())
    first = index["shardlist"][0]
    twin = first["url"].replace("-00000", "-00009")
    shutil.copy(export / first["url"], export / twin)
    manifest = read_manifest(export / first["url"].replace(".tar", ".manifest.json"))
    write_model(manifest_path(export, twin.removesuffix(".tar")), manifest)
    index["shardlist"].append({**first, "url": twin})
    (export / "train.wids.json").write_text(json.dumps(index))
    return export


def test_loaders_refuse_a_key_in_two_shards_of_a_split(built: Path, tmp_path: Path) -> None:
    export = _duplicate_first_train_shard(built, tmp_path)
    with pytest.raises(ShardError, match="duplicate sample key"):
        NearIDMapDataset(export / "train.wids.json")
    shards = [str(p) for p in sorted((export / "data/train").glob("*.tar"))]
    stream = NearIDStream(shards, shuffle=False)
    with pytest.raises(ShardError, match="duplicate sample key"):
        list(stream._samples(iter({"url": s} for s in shards)))


def test_stage_readers_refuse_a_key_in_two_shards(built: Path, tmp_path: Path) -> None:
    copy = tmp_path / "b"
    shutil.copytree(built, copy)
    stage = copy / "segment"
    summary = Catalog(stage).summary
    first, second = summary.shards[0].unit, summary.shards[1].unit
    shutil.copy(tar_path(stage, first), tar_path(stage, second))
    manifest = read_manifest(manifest_path(stage, first))
    write_model(manifest_path(stage, second), manifest.model_copy(update={"unit": second}))
    with pytest.raises(ShardError, match="duplicate sample key"):
        Catalog(stage).rows  # noqa: B018 (the property does the reading)
    with pytest.raises(ShardError, match="duplicate sample key"):
        list(committed_samples(stage, [first, second], fields=()))


def test_random_access_refuses_a_shard_that_differs_from_its_manifest(
    built: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "b"
    shutil.copytree(built, copy)
    train = sorted((copy / "export/data/train").glob("*.tar"))
    with tarfile.open(train[0]) as tar:  # the shard cut after its first sample: a valid tar
        first = [
            m
            for m in tar.getmembers()
            if m.name.startswith(tar.getmembers()[0].name.split(".")[0] + ".")
        ]
        with tarfile.open(tmp_path / "cut.tar", "w") as cut:
            for member in first:
                cut.addfile(member, tar.extractfile(member))
    shutil.copy(tmp_path / "cut.tar", train[0])
    with pytest.raises(ShardError, match="differ from"):
        NearIDMapDataset(copy / "export/train.wids.json")
