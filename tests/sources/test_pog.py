"""The pog source: click histories from user_data.txt, items from item_data.txt (titles may hold
commas), items without an image recorded by ingest, rows left out recorded with their line."""

from __future__ import annotations

from pathlib import Path

import pytest

from nearid_data.errors import NearidError
from tests.history_layouts import write_pog
from tests.source_fixtures import ingest, source_of


def test_sequences_items_captions_and_styles(tmp_path: Path) -> None:
    source, sequences = write_pog(tmp_path / "p")
    read = source_of(source).histories()  # type: ignore[attr-defined]
    assert read.dataset == "POG"
    assert {u: [i.item_id for i in s] for u, s in read.sequences.items()} == sequences
    assert read.items["i12"].path == "images_sampled/i12.jpg"
    assert read.items["i12"].caption == "garment i12"
    assert read.styles == {u: f"{u} style" for u in sequences}
    # The item row no history uses is counted, once.
    assert read.unused_by_reason() == {"item_not_in_any_history": 1}
    assert "unclicked" not in {i.identity for i in source_of(source).items()}


def test_users_on_several_lines_and_unknown_items_and_outfits(tmp_path: Path) -> None:
    source, _ = write_pog(tmp_path / "p", users=1, per_user=2)
    users = tmp_path / "p" / "user_data.txt"
    users.write_text(users.read_text() + "u0,i01;nope;i00,o9\n")
    items = tmp_path / "p" / "item_data.txt"
    items.write_text(items.read_text() + "i00,c2,http://x,again\n")
    read = source_of(source).histories()  # type: ignore[attr-defined]
    assert [i.item_id for i in read.sequences["u0"]] == ["i00", "i01", "i01", "i00"]
    assert [
        (r.where, r.reason, r.detail) for r in read.unused if r.where.startswith(str(users))
    ] == [
        (f"{users}:2", "unknown_outfit", "o9"),
        (f"{users}:2", "unknown_item", "nope"),
    ]
    assert [(r.where, r.reason) for r in read.unused if r.reason == "duplicate_item"] == [
        (f"{items}:4", "duplicate_item"),
    ]


def test_runs_without_benchmark_files(tmp_path: Path) -> None:
    source, _ = write_pog(tmp_path / "p", extras=False)
    (tmp_path / "p" / "outfit_data.txt").unlink()
    read = source_of(source).histories()  # type: ignore[attr-defined]
    assert read.styles == {} and {i.caption for i in read.items.values()} == {""}
    assert len(read.notes) == 3  # captions, styles, outfits
    assert not any(r.reason == "unknown_outfit" for r in read.unused)


@pytest.mark.parametrize(
    ("name", "line", "message"),
    [
        ("user_data.txt", "u9,i00", r"user_data.txt:4: expected 3 comma-separated fields, got 2"),
        ("user_data.txt", "u9,i00;;i01,o1", r"user_data.txt:4: column 2: empty item id"),
        ("user_data.txt", ",i00,o1", r"user_data.txt:4: column 1 is empty"),
        ("item_data.txt", "i99,c1", r"item_data.txt:20: expected 4 comma-separated fields, got 2"),
    ],
)
def test_malformed_lines_name_file_line_and_column(
    tmp_path: Path, name: str, line: str, message: str
) -> None:
    source, _ = write_pog(tmp_path / "p")
    path = tmp_path / "p" / name
    path.write_text(path.read_text() + line + "\n")
    with pytest.raises(NearidError, match=message):
        source_of(source).histories()  # type: ignore[attr-defined]


def test_items_without_an_image_are_recorded_not_dropped(tmp_path: Path) -> None:
    source, _ = write_pog(tmp_path / "p", users=1, per_user=3, missing_images=["i01"])
    rows = ingest(source, tmp_path / "build")
    assert [(r.identity, r.status, r.reason) for r in rows] == [
        ("i00", "kept", None),
        ("i01", "rejected", "missing_file"),
        ("i02", "kept", None),
    ]
