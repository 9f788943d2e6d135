"""Shared adapter pieces: boxes clipped to the image, Hub parquet split names, image cells."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nearid_data.errors import Rejection
from nearid_data.sources.formats import decode_record, number_views
from nearid_data.sources.parquet import ParquetRows, cell_bytes, image_cell_bytes, parquet_splits
from tests.source_fixtures import jpeg


@pytest.mark.parametrize(
    ("box", "expected", "notes"),
    [
        ((0.5, 1.2, 10.1, 20.0), (0, 1, 11, 20), ()),
        ((-5.0, -3.0, 60.0, 50.0), (0, 0, 48, 40), ()),
        ((50.0, 1.0, 60.0, 5.0), None, ("box_outside_image",)),
    ],
)
def test_boxes_enclose_and_clip(box: tuple, expected: tuple | None, notes: tuple) -> None:
    record = decode_record(jpeg(0), max_pixels=10_000, box=box)
    assert record.box == expected and record.notes == notes


def test_a_mask_of_another_size_is_rejected_unless_fitted() -> None:
    with pytest.raises(Rejection, match="mask_size_mismatch"):
        decode_record(jpeg(0), max_pixels=10_000, mask=jpeg(1, (20, 24)))


def test_parquet_split_names_follow_hub_file_names(tmp_path: Path) -> None:
    for name in (
        "data/train-00000-of-00002.parquet",
        "data/train-00001-of-00002.parquet",
        "test_dense.parquet",
    ):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).touch()
    assert {
        split: [p.name for p in paths]
        for split, paths in parquet_splits(tmp_path, follow_symlinks=False).items()
    } == {
        "test_dense": ["test_dense.parquet"],
        "train": ["train-00000-of-00002.parquet", "train-00001-of-00002.parquet"],
    }


def test_rows_are_found_across_row_groups(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"n": list(range(7))}), path, row_group_size=3)
    rows = ParquetRows()
    assert [rows.row(path, i, ["n"])["n"] for i in (6, 0, 4, 3)] == [6, 0, 4, 3]
    with pytest.raises(Rejection, match="has no row 7"):
        rows.row(path, 7, ["n"])


def test_image_cells() -> None:
    assert cell_bytes({"bytes": b"x", "path": None}, "r") == b"x"
    assert cell_bytes(None, "r") is None and cell_bytes({"bytes": None, "path": None}, "r") is None
    with pytest.raises(Rejection, match=r"missing_file: r: no embedded bytes \(path 'a.jpg'\)"):
        cell_bytes({"bytes": None, "path": "a.jpg"}, "r")
    with pytest.raises(Rejection, match="missing_file: r: empty image cell"):
        image_cell_bytes(None, "r")
    with pytest.raises(Rejection, match="not_an_image"):
        cell_bytes(3, "r")


def test_views_count_up_per_identity_in_order() -> None:
    items = number_views([("a", "x", {}), ("b", "x", {}), ("a", "x", {"n": 1})])
    assert [(i.identity, i.view, i.ref) for i in items] == [
        ("a", 0, {}),
        ("b", 0, {}),
        ("a", 1, {"n": 1}),
    ]
