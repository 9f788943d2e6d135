"""The ser30k source: one history per theme across the split files, ids from id_map.csv, keywords
as styles; malformed annotations named by file and entry, rows left out recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nearid_data.errors import NearidError
from tests.history_layouts import write_ser
from tests.source_fixtures import ingest, source_of

ANNOTATIONS = Path("Annotations") / "image-level"


def read(source: dict):  # type: ignore[no-untyped-def]
    return source_of(source).histories()  # type: ignore[attr-defined]


def test_themes_are_users_in_annotation_order(tmp_path: Path) -> None:
    source, sequences = write_ser(tmp_path / "s")
    histories = read(source)
    assert {u: [i.item_id for i in s] for u, s in histories.sequences.items()} == sequences
    assert histories.items["id-1-4"].path == "Images/t1/s4.png"
    assert histories.items["id-1-4"].caption == "sticker id-1-4"
    assert histories.styles == {"t0": "t0-a, t0-b", "t1": "t1-a, t1-b"}
    assert any("val.json" in note for note in histories.notes)
    rows = ingest(source, tmp_path / "build")
    assert len(rows) == 12 and all(r.status == "kept" and r.category == "SER" for r in rows)


def test_without_id_map_and_benchmark_files(tmp_path: Path) -> None:
    source, _ = write_ser(tmp_path / "s", topics=1, extras=False)
    (tmp_path / "s" / "id_map.csv").unlink()
    histories = read(source)
    assert [i.item_id for i in histories.sequences["t0"]][:2] == ["t0/s0", "t0/s1"]
    assert histories.styles == {} and histories.items["t0/s0"].caption == ""


def test_duplicates_and_unknown_id_map_rows_are_recorded(tmp_path: Path) -> None:
    source, _ = write_ser(tmp_path / "s", topics=1, per_topic=4)
    test_file = tmp_path / "s" / ANNOTATIONS / "test.json"
    data = json.loads(test_file.read_text())
    data["annotations"].append({"topic": "t0", "file_name": "s0.png"})
    test_file.write_text(json.dumps(data))
    id_map = tmp_path / "s" / "id_map.csv"
    id_map.write_text(id_map.read_text() + "ghost,t0/none.png\n")
    histories = read(source)
    assert [(r.where, r.reason) for r in histories.unused] == [
        (f"{test_file}: annotations[2]", "duplicate_sticker"),
        (f"{id_map}:6", "unknown_image"),
    ]
    assert len(histories.sequences["t0"]) == 4


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"topic": "t0"}, r"test.json: annotations\[3\]: file_name is None"),
        ({"topic": "../x", "file_name": "a.png"}, r"annotations\[3\]: topic is '../x'"),
        ("s9.png", r"annotations\[3\] is a str"),
    ],
)
def test_malformed_annotations_name_file_and_entry(
    tmp_path: Path, entry: object, message: str
) -> None:
    source, _ = write_ser(tmp_path / "s", topics=1)
    test_file = tmp_path / "s" / ANNOTATIONS / "test.json"
    data = json.loads(test_file.read_text())
    data["annotations"].append(entry)
    test_file.write_text(json.dumps(data))
    with pytest.raises(NearidError, match=message):
        read(source)


def test_malformed_files(tmp_path: Path) -> None:
    source, _ = write_ser(tmp_path / "s", topics=1)
    root = tmp_path / "s"
    (root / "user_preferences.json").write_text(json.dumps({"t0": {"keywords": "cute"}}))
    with pytest.raises(NearidError, match="'t0': keywords must be a list of strings"):
        read(source)
    (root / "id_map.csv").write_text("item_id,image_path\na,t0/s0.png\na,t0/s1.png\n")
    with pytest.raises(NearidError, match=r"id_map.csv:3: item_id 'a' also names 't0/s0.png'"):
        read(source)
    for name in ("train.json", "test.json"):
        (root / ANNOTATIONS / name).unlink()
    with pytest.raises(NearidError, match="no annotation file"):
        read(source)
