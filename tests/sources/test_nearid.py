"""The nearid source reads NearID's save_to_disk positives: one item per row and view, ids as
identities, the identity's description as caption and the view's prompt kept beside it."""

from __future__ import annotations

import sys
from pathlib import Path

import datasets
import numpy as np
import pytest

from nearid_data.engine.catalog import Catalog
from nearid_data.errors import NearidError, Rejection
from tests.source_fixtures import Written, ingest, jpeg, soft_mask, source_of, write_nearid


@pytest.fixture(scope="module")
def nearid(tmp_path_factory: pytest.TempPathFactory) -> Written:
    return write_nearid(tmp_path_factory.mktemp("nearid") / "positives", n_identities=4)


def test_items_are_rows_times_views(nearid: Written) -> None:
    items = source_of(nearid.source).items()
    assert items == source_of(nearid.source).items()
    assert {i.identity: i.category for i in items} == nearid.categories
    assert [(i.identity, i.view) for i in items[:5]] == [
        ("7", 0),
        ("7", 1),
        ("7", 2),
        ("17", 0),
        ("17", 1),
    ]
    assert items[4].ref == {
        "row": 1,
        "objaverse_id": f"{1:032x}",
        "quality": "good",
        "split": "val",
        "description": "a chair number 1",
        "prompt": "object 1 in scene 2",
    }
    test_only = source_of({**nearid.source, "split": "test"}).items()
    assert [(i.identity, i.ref["row"]) for i in test_only] == [("27", 2)] * 3


def test_load_gives_view_pixels_mask_and_identity_caption(nearid: Written) -> None:
    source = source_of(nearid.source)
    record = source.load(source.items()[4])
    assert record.caption == "a chair number 1"
    assert record.mask is not None
    np.testing.assert_array_equal(record.mask, soft_mask() > 0)  # a PNG mask: any non-zero


def test_a_saved_dataset_dict_is_read_by_split(tmp_path: Path, nearid: Written) -> None:
    root = tmp_path / "dict"
    datasets.DatasetDict({"train": datasets.load_from_disk(str(nearid.root))}).save_to_disk(
        str(root)
    )
    assert len(source_of({"name": "nearid", "root": str(root)}).items()) == nearid.n_items
    with pytest.raises(NearidError, match=r"no split 'test' \(has: train\)"):
        source_of({"name": "nearid", "root": str(root), "hub_split": "test"}).items()


def test_malformed_datasets_are_clear_errors(tmp_path: Path) -> None:
    source = {"name": "nearid", "root": str(tmp_path)}
    with pytest.raises(NearidError, match="not a dataset saved with save_to_disk"):
        source_of(source).items()
    image = {"bytes": jpeg(0), "path": None}
    datasets.Dataset.from_dict({"id": [1], "images1": [image]}).save_to_disk(str(tmp_path / "a"))
    with pytest.raises(NearidError, match=r"missing column\(s\) category, n_images"):
        source_of({**source, "root": str(tmp_path / "a")}).items()
    rows = {"id": [1, 1], "category": ["mug"] * 2, "n_images": [1, 1], "images1": [image] * 2}
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "b"))
    with pytest.raises(NearidError, match="id 1 is in rows 0 and 1"):
        source_of({**source, "root": str(tmp_path / "b")}).items()
    rows = {"id": [1], "category": ["mug"], "n_images": [2], "images1": [image]}
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "c"))
    with pytest.raises(NearidError, match=r"row 0 has n_images=2, not 1\.\.1"):
        source_of({**source, "root": str(tmp_path / "c")}).items()


def test_without_datasets_says_how_to_install_it(
    nearid: Written, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(NearidError, match=r"pip install 'nearid-data\[hub\]'"):
        source_of(nearid.source).items()


def test_build_accounts_for_every_view(tmp_path: Path) -> None:
    root = tmp_path / "positives"
    written = write_nearid(root, n_identities=2)
    # Row 1 claims a third view that is not there: a listed image missing.
    table = datasets.load_from_disk(str(root)).to_dict()
    table["n_images"][1] = 3
    features = datasets.load_from_disk(str(root)).features
    datasets.Dataset.from_dict(table, features=features).save_to_disk(str(tmp_path / "edited"))
    source = {**written.source, "root": str(tmp_path / "edited")}
    with pytest.raises(Rejection, match="missing_file"):
        source_of(source).load(source_of(source).items()[-1])
    rows = ingest(source, tmp_path / "build")
    assert len(rows) == written.n_items + 1
    assert [(r.key, r.reason) for r in rows if r.status == "rejected"] == [
        ("17_v002", "missing_file")
    ]
    catalog = Catalog(tmp_path / "build" / "ingest")
    sample = catalog.fetch(catalog.by_identity["17"][1])
    assert sample["json"]["caption"] == "a chair number 1"
    assert sample["json"]["source"]["prompt"] == "object 1 in scene 2"
    assert sample["json"]["source"]["row"] == 1 and "mask.png" in sample
