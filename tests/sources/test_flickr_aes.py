"""The flickr-aes source: one history per worker in file order, benchmark captions and styles
optional, malformed rows named by file, line and column, rows left out recorded with their line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nearid_data.errors import NearidError
from nearid_data.sources.histories import HistorySource
from tests.history_layouts import write_flickr
from tests.source_fixtures import ingest, source_of

RATINGS = "FLICKR-AES_image_labeled_by_each_worker.csv"


def histories(source: dict) -> object:
    adapter = source_of(source)
    assert isinstance(adapter, HistorySource)
    return adapter.histories()


def test_sequences_items_and_styles(tmp_path: Path) -> None:
    source, sequences = write_flickr(tmp_path / "f")
    read = histories(source)
    assert {u: [i.item_id for i in s] for u, s in read.sequences.items()} == sequences
    assert [i.score for i in read.sequences["A01W"]] == [1, 2, 3, 4, 5, 1]
    item = read.items["img_1_3"]
    assert (item.path, item.caption, item.aesthetic_score) == (
        "40K/img_1_3.jpg",
        "a photo img_1_3",
        2.8,
    )
    assert read.styles["A02W"] == "style of A02W"
    assert read.unused == [] and read.notes == []
    items = source_of(source).items()
    assert [i.identity for i in items] == sorted(i for s in sequences.values() for i in s)
    assert {i.category for i in items} == {"FLICKR"}


def test_runs_without_benchmark_files_and_reads_them_from_elsewhere(tmp_path: Path) -> None:
    source, _ = write_flickr(tmp_path / "f")
    extras = tmp_path / "extras"
    extras.mkdir()
    for name in ("FLICKR_captions.json", "FLICKR_styles.json"):
        shutil.move(tmp_path / "f" / name, extras / name)
    bare = histories(source)
    assert all(i.caption == "" for i in bare.items.values()) and bare.styles == {}
    assert any("FLICKR_captions.json" in n and "captions are empty" in n for n in bare.notes)
    moved = histories({**source, "extras": str(extras)})
    assert moved.items["img_0_0"].caption == "a photo img_0_0" and len(moved.styles) == 3


def test_rows_left_out_are_recorded_with_their_line(tmp_path: Path) -> None:
    source, _ = write_flickr(
        tmp_path / "f",
        workers=1,
        per_worker=2,
        extra_rows=["A00W, img_0_0.jpg, 3", "A00W, x.jpg, 9"],
    )
    read = histories(source)
    csv_path = tmp_path / "f" / RATINGS
    assert [(r.where, r.reason) for r in read.unused] == [
        (f"{csv_path}:4", "duplicate_rating"),
        (f"{csv_path}:5", "score_out_of_range"),
    ]
    assert read.unused_by_reason() == {"duplicate_rating": 1, "score_out_of_range": 1}
    assert [i.item_id for i in read.sequences["A00W"]] == ["img_0_0", "img_0_1"]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("A00W, y.jpg, high", f"{RATINGS}:4: column score: 'high' is not a number"),
        (", y.jpg, 3", f"{RATINGS}:4: column worker is empty"),
        ("A00W, y.jpg", f"{RATINGS}:4: not as many fields"),
    ],
)
def test_malformed_ratings_name_file_line_and_column(
    tmp_path: Path, row: str, message: str
) -> None:
    source, _ = write_flickr(tmp_path / "f", workers=1, per_worker=2, extra_rows=[row])
    with pytest.raises(NearidError, match=message.replace("(", r"\(")):
        histories(source)


def test_malformed_header_and_score_file(tmp_path: Path) -> None:
    source, _ = write_flickr(tmp_path / "f", workers=1, per_worker=2)
    (tmp_path / "f" / "FLICKR-AES_image_score.txt").write_text("a.jpg 3\nb.jpg x\n")
    with pytest.raises(NearidError, match=r"image_score.txt:2: column 2: 'x' is not a number"):
        histories(source)
    (tmp_path / "f" / RATINGS).write_text("worker, image, score\n")
    with pytest.raises(NearidError, match=r"missing column.*imagePair"):
        histories(source)


def test_bad_styles_file_names_the_entry(tmp_path: Path) -> None:
    source, _ = write_flickr(tmp_path / "f", workers=1, per_worker=2)
    (tmp_path / "f" / "FLICKR_styles.json").write_text(json.dumps([{"worker": "A", "style": 1}]))
    with pytest.raises(NearidError, match=r"FLICKR_styles.json: entry 0: style is a int"):
        histories(source)
    (tmp_path / "f" / "FLICKR_styles.json").write_text("[{")
    with pytest.raises(NearidError, match=r"FLICKR_styles.json:1: not valid JSON"):
        histories(source)


def test_a_missing_image_is_recorded_by_ingest(tmp_path: Path) -> None:
    source, _ = write_flickr(tmp_path / "f", workers=1, per_worker=3)
    (tmp_path / "f" / "40K" / "img_0_1.jpg").unlink()
    rows = ingest(source, tmp_path / "build")
    assert {(r.identity, r.status, r.reason) for r in rows} == {
        ("img_0_0", "kept", None),
        ("img_0_1", "rejected", "missing_file"),
        ("img_0_2", "kept", None),
    }
