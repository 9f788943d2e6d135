"""The pods source reads PODS's folder and Hub parquet layouts alike: instances as identities,
super-categories from pods_info.json, shift tags on test images only, masks where PODS has them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nearid_data.engine.catalog import Catalog
from nearid_data.errors import NearidError
from tests.source_fixtures import (
    SHIFTS,
    Written,
    ingest,
    source_of,
    write_pods_folders,
    write_pods_parquet,
)


@pytest.fixture(params=["folders", "hf"])
def pods(request: pytest.FixtureRequest, tmp_path: Path) -> Written:
    writer = write_pods_folders if request.param == "folders" else write_pods_parquet
    return writer(tmp_path / "pods", per_category=2, train=3, test=4, dense=2)


def test_items_are_instances_with_their_super_category(pods: Written) -> None:
    items = source_of(pods.source).items()
    assert items == source_of(pods.source).items()
    assert {i.identity: i.category for i in items} == pods.categories
    assert len(items) == pods.n_items
    mug = [i for i in items if i.identity == "mug_01"]
    assert [i.view for i in mug] == list(range(7))
    assert [i.ref["pods_split"] for i in mug] == ["train"] * 3 + ["test"] * 4
    assert [i.ref.get("test_split") for i in mug] == [None] * 3 + list(SHIFTS)
    assert {i.ref["class_split"] for i in mug} == {"test"}
    assert {i.ref["class_split"] for i in items if i.identity == "mug_00"} == {"val"}


def test_masks_come_with_train_and_test_dense_images(pods: Written) -> None:
    source = source_of({**pods.source, "splits": ["train", "test", "test_dense"]})
    items = [i for i in source.items() if i.identity == "shoe_00"]
    assert [i.ref["pods_split"] for i in items] == ["train"] * 3 + ["test"] * 4 + ["test_dense"] * 2
    masked = [source.load(i).mask is not None for i in items]
    assert masked == [True] * 3 + [False] * 4 + [True] * 2
    # The Hub rows carry their tag; the folder fixture's annotation file lists no test_dense ids.
    dense_tags = [i.ref.get("test_split") for i in items[-2:]]
    assert dense_tags == (list(SHIFTS[:2]) if pods.source["layout"] == "hf" else [None, None])


def test_without_info_the_category_is_object(tmp_path: Path) -> None:
    written = write_pods_parquet(tmp_path / "pods", info=False, per_category=1)
    items = source_of(written.source).items()
    assert {i.category for i in items} == {"object"}
    assert not any("class_split" in i.ref for i in items)


def test_folder_files_are_in_natural_order(tmp_path: Path) -> None:
    written = write_pods_folders(tmp_path / "pods", categories=("mug",), per_category=1, test=12)
    names = [
        i.ref["path"] for i in source_of(written.source).items() if i.ref["pods_split"] == "test"
    ]
    assert names == [f"test/mug_00/{n}.jpg" for n in range(12)]


def test_layout_errors_are_clear(tmp_path: Path) -> None:
    folders = write_pods_folders(tmp_path / "f", per_category=1)
    (folders.root / "test_dense").rename(folders.root / "dense")
    with pytest.raises(NearidError, match=r"split folder .*test_dense is missing"):
        source_of({**folders.source, "splits": ["train", "test_dense"]}).items()
    (folders.root / "train" / "cup_07").mkdir()
    (folders.root / "train" / "cup_07" / "0.jpg").write_bytes(folders.files[0].read_bytes())
    with pytest.raises(NearidError, match=r"instance 'cup_07' is not in pods_info\.json"):
        source_of(folders.source).items()
    with pytest.raises(NearidError, match=r"elsewhere.json is missing"):
        source_of({**folders.source, "info": str(tmp_path / "elsewhere.json")}).items()
    (folders.root / "pods_info.json").write_text(json.dumps({"classes": []}))
    with pytest.raises(NearidError, match="expected an object with the mappings class_to_sc"):
        source_of(folders.source).items()
    hub = write_pods_parquet(tmp_path / "h", per_category=1)
    (hub.root / "data" / "test-00000-of-00001.parquet").unlink()
    with pytest.raises(NearidError, match=r"no parquet files for split\(s\) test"):
        source_of(hub.source).items()


def test_unmatched_annotations_leave_test_images_untagged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    written = write_pods_folders(tmp_path / "pods", per_category=1)
    annotations = json.loads((written.root / "pods_image_annos.json").read_text())
    renamed = {f"other-{n}": entry for n, entry in enumerate(annotations.values(), start=1000)}
    (written.root / "pods_image_annos.json").write_text(json.dumps(renamed))
    items = source_of(written.source).items()
    assert not any("test_split" in i.ref for i in items)
    assert "matched none of the listed images" in caplog.text
    (written.root / "pods_image_annos.json").write_text(json.dumps({"1.jpg": "mug"}))
    with pytest.raises(NearidError, match=r"image '1\.jpg' needs an object with a 'class'"):
        source_of(written.source).items()


def test_build_accounts_for_every_image(pods: Written, tmp_path: Path) -> None:
    # The folder layout lists what is on disk, so a bad file is there but empty.
    if pods.files:
        pods.files[0].write_bytes(b"")
    rows = ingest(pods.source, tmp_path / "build")
    assert len(rows) == pods.n_items
    rejected = [r.reason for r in rows if r.status == "rejected"]
    assert rejected == (["empty_file"] if pods.files else [])
    catalog = Catalog(tmp_path / "build" / "ingest")
    samples = [catalog.fetch(r) for r in catalog.by_identity["shoe_01"]]
    assert ["mask.png" in s for s in samples] == [True] * 3 + [False] * 4
    assert [s["json"]["source"].get("test_split") for s in samples] == [None] * 3 + list(SHIFTS)
