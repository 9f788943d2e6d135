"""The cub source reads CUB-200-2011's own files: species as identities, groups as categories,
boxes, soft segmentations binarised at > 127, and clear errors for inconsistent annotations."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from nearid_data.engine.catalog import Catalog
from nearid_data.errors import NearidError, Rejection
from nearid_data.sources.cub import FPR_GROUPS
from tests.badimages import valid_image
from tests.source_fixtures import ingest, soft_mask, source_of, write_cub


def test_items_are_the_species_in_image_id_order(tmp_path: Path) -> None:
    written = write_cub(tmp_path / "cub")
    items = source_of(written.source).items()
    assert items == source_of(written.source).items()
    assert {i.identity for i in items} == set(written.views)
    by_species = {name: [i for i in items if i.identity == name] for name in written.views}
    for name, views in by_species.items():
        assert [i.view for i in views] == list(range(written.views[name]))
        ids = [i.ref["image_id"] for i in views]
        assert ids == sorted(ids) and {i.category for i in views} == {"bird"}
    first = items[0]
    assert first.ref == {
        "path": "images/001.Bird_1/Bird_1_0000.jpg",
        "image_id": 1,
        "class_id": 1,
        "is_train": True,
        "bbox_xywh": [4.5, 3.25, 20.0, 18.0],
        "mask": "001.Bird_1/Bird_1_0000.png",  # relative to source.segmentations
    }


def test_load_gives_pixels_enclosing_box_and_binarised_soft_mask(tmp_path: Path) -> None:
    written = write_cub(tmp_path / "cub")
    source = source_of(written.source)
    record = source.load(source.items()[0])
    assert _distance(record.image, valid_image(1)) < _distance(record.image, valid_image(2)) / 3
    assert record.box == (4, 3, 25, 22)  # x 4.5 + 20 -> 25 (ceil), y 3.25 + 18 -> 22
    assert record.mask is not None
    np.testing.assert_array_equal(record.mask, soft_mask() > 127)


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(int) - b).mean())


def test_fpr_groups_keep_their_species_as_categories(tmp_path: Path) -> None:
    fpr_ids = [c for ids in FPR_GROUPS.values() for c in ids]
    written = write_cub(tmp_path / "cub", class_ids=(*fpr_ids, 200), per_class=1)
    items = source_of({**written.source, "groups": "fpr"}).items()
    categories = {i.identity: i.category for i in items}
    assert len(categories) == 15 and "200.Bird_200" not in categories
    assert categories["113.Bird_113"] == categories["117.Bird_117"] == "sparrow"
    assert categories["143.Bird_143"] == "tern" and categories["197.Bird_197"] == "wren"
    custom = source_of({**written.source, "groups": {"mine": [200, 113]}}).items()
    assert {(i.identity, i.category) for i in custom} == {
        ("113.Bird_113", "mine"),
        ("200.Bird_200", "mine"),
    }


@pytest.mark.parametrize(
    ("groups", "message"),
    [({"a": [999]}, "class id 999"), ({"a": [113], "b": [113]}, "in both a and b")],
)
def test_bad_groups_are_errors(tmp_path: Path, groups: dict, message: str) -> None:
    written = write_cub(tmp_path / "cub", class_ids=(113,), per_class=1)
    with pytest.raises(NearidError, match=message):
        source_of({**written.source, "groups": groups}).items()


def test_split_keeps_cubs_train_or_test_images(tmp_path: Path) -> None:
    written = write_cub(tmp_path / "cub", per_class=3)
    train = source_of({**written.source, "split": "train"}).items()
    test = source_of({**written.source, "split": "test"}).items()
    assert {i.ref["is_train"] for i in train} == {True} and {i.ref["is_train"] for i in test} == {
        False
    }
    assert len(train) + len(test) == written.n_items
    assert [i.view for i in train if i.identity == "001.Bird_1"] == [0, 1]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda root: (root / "bounding_boxes.txt").unlink(), "bounding_boxes.txt is missing"),
        (
            lambda root: _append(root / "images.txt", "10 x/y.jpg extra"),
            r"images.txt:10: expected 2",
        ),
        (lambda root: _append(root / "images.txt", "ten x/y.jpg"), "'ten' is not an integer"),
        (lambda root: _append(root / "images.txt", "1 again.jpg"), "id 1 is repeated"),
        (lambda root: _append(root / "images.txt", "10 extra.jpg"), "differ from images.txt"),
        (lambda root: _append(root / "bounding_boxes.txt", "10 1 2 nan 4"), "not a finite"),
        (
            lambda root: (root / "classes.txt").write_text("1 001.Bird_1\n2 002.Bird_2\n"),
            r"class ids \[3\] not in classes.txt",
        ),
    ],
)
def test_inconsistent_annotations_are_clear_errors(
    tmp_path: Path, damage: Callable[[Path], object], message: str
) -> None:
    written = write_cub(tmp_path / "cub")
    damage(written.root)
    with pytest.raises(NearidError, match=message):
        source_of(written.source).items()


def _append(path: Path, line: str) -> None:
    with path.open("a") as handle:
        handle.write(line + "\n")


def test_missing_and_corrupt_images_are_recorded_rejections(tmp_path: Path) -> None:
    written = write_cub(tmp_path / "cub")
    written.files[1].unlink()
    written.files[2].write_bytes(written.files[3].read_bytes()[:200])
    (written.root / "segmentations/002.Bird_2/Bird_2_0000.png").unlink()
    with pytest.raises(Rejection, match="missing_file"):
        source_of(written.source).load(source_of(written.source).items()[1])
    rows = ingest(written.source, tmp_path / "build")
    assert len(rows) == written.n_items
    rejected = {r.key: r.reason for r in rows if r.status == "rejected"}
    assert sorted(rejected.values()) == ["missing_file", "truncated_image"]
    catalog = Catalog(tmp_path / "build" / "ingest")
    samples = {r.view: catalog.fetch(r) for r in catalog.by_identity["002.Bird_2"]}
    assert "mask.png" not in samples[0] and "mask.png" in samples[1]
    assert samples[1]["json"]["box"] == [4, 3, 25, 22]
    assert samples[1]["json"]["source"]["image_id"] == 5
    assert samples[1]["json"]["source"]["class_id"] == 2
    assert samples[1]["json"]["source"]["is_train"] is False
