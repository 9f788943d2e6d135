"""The windows stage end to end on raw layouts: shards with the window's images, the benchmark's
JSON per split, manifests accounting for rejected windows, the card and summary, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nearid_data.build import build
from nearid_data.config import PipelineConfig
from nearid_data.engine.catalog import Catalog
from nearid_data.engine.manifest import manifest_path, read_manifest, read_summary
from nearid_data.engine.tario import read_samples
from nearid_data.errors import NearidError
from tests.history_layouts import write_flickr, write_pog
from tests.source_fixtures import write_wildlife

FIELDS = {"target.png", "history_0.png", "history_1.png", "json"}


def run(source: dict, out: Path, **windows: object) -> list:
    pipeline = {
        "name": "pmg-t",
        "seed": 5,
        "source": source,
        "stages": {"ingest": {}, "windows": windows},
    }
    return build(PipelineConfig.from_dict(pipeline), out=out)


def test_flickr_time_split_end_to_end(tmp_path: Path) -> None:
    # A01W also rates A00W's first image; a score of 9 is left out with its line.
    source, _ = write_flickr(tmp_path / "f", workers=2, per_worker=6)
    ratings = tmp_path / "f" / "FLICKR-AES_image_labeled_by_each_worker.csv"
    ratings.write_text(
        ratings.read_text().replace("A01W, img_1_0.jpg", "A01W, img_0_0.jpg")
        + "A00W, img_0_0.jpg, 9\n"
    )
    out = tmp_path / "build"
    run(source, out, num_interactions=2, split_by="time", max_shard_windows=3)
    stage_dir = out / "windows"
    summary = read_summary(stage_dir)
    assert summary is not None
    facts = summary.models
    assert facts["split_rule"] == {"by": "time", "val_windows": 1, "test_windows": 1}
    assert facts["unused_rows"] == {"score_out_of_range": 1}
    assert facts["windows"] == {"train": 4, "val": 2, "test": 2}
    assert facts["users"] == {"train": 2, "val": 2, "test": 2}
    rows = [r for e in summary.shards for r in read_manifest(manifest_path(stage_dir, e.unit)).rows]
    assert len(rows) == summary.n_in == summary.n_kept == 8

    ingested = {r.identity: r for r in Catalog(out / "ingest").rows}
    ingest_catalog = Catalog(out / "ingest")
    records: dict[str, list[dict]] = {}
    keys: dict[str, list[str]] = {}
    for entry in summary.shards:
        for sample in read_samples(stage_dir / f"{entry.unit}.tar"):
            assert set(sample) - {"__key__"} == FIELDS
            info = sample["json"]
            records.setdefault(info["split"], []).append(info)
            keys.setdefault(info["split"], []).append(sample["__key__"])
            target = ingest_catalog.fetch(ingested[info["target_item_id"]])
            assert sample["target.png"] == target["image.png"]
            first = ingest_catalog.fetch(ingested[info["history_item_ids"][0]])
            assert sample["history_0.png"] == first["image.png"]
    for split, shard_records in records.items():
        written = json.loads((stage_dir / "json" / f"{split}.json").read_text())
        bookkeeping = {"identity", "category", "view", "caption", "split"}
        assert written == [
            {k: v for k, v in r.items() if k not in bookkeeping} for r in shard_records
        ]
    test_record = json.loads((stage_dir / "json" / "test.json").read_text())[0]
    assert test_record["worker_style"] == f"style of {test_record['worker_id']}"
    image_path = test_record["history_items_info"][0]["image_path"]
    assert image_path.startswith("40K/") and (tmp_path / "f" / image_path).is_file()
    unused = json.loads((stage_dir / "unused_rows.json").read_text())
    assert unused == [{"where": f"{ratings}:14", "reason": "score_out_of_range", "detail": "9"}]
    card = (stage_dir / "README.md").read_text()
    assert '"by": "time"' in card and "| train | 4 | 2 |" in card
    assert json.loads((stage_dir / "test.wids.json").read_text())["shardlist"][0]["nsamples"] == 2

    again = run(source, out, num_interactions=2, split_by="time", max_shard_windows=3)
    assert again[-1].units_run == 0 and again[-1].units_skipped == len(summary.shards)
    # Other settings without a val split leave no val files behind.
    run(source, out, num_interactions=2, split_by="time", val_windows=0)
    assert sorted(p.name for p in (stage_dir / "json").iterdir()) == [
        "test.json",
        "test.keys.json",
        "train.json",
        "train.keys.json",
    ]
    assert not (stage_dir / "val.wids.json").exists()


def test_pog_user_split_keeps_users_apart_and_drops_imageless_items(tmp_path: Path) -> None:
    source, _ = write_pog(tmp_path / "p", users=6, per_user=5, missing_images=["i12"])
    out = tmp_path / "build"
    run(source, out, num_interactions=2, fractions={"train": 0.5, "val": 0.25, "test": 0.25})
    facts = read_summary(out / "windows").models  # type: ignore[union-attr]
    assert facts["interactions_dropped"] == {"item_without_image": 1}
    users = {split: set() for split in ("train", "val", "test")}
    for split in users:
        for record in json.loads((out / "windows" / "json" / f"{split}.json").read_text()):
            users[split].add(record["user_id"])
            assert "i12" not in [*record["history_item_ids"], record["target_item_id"]]
    assert not (
        users["train"] & users["val"]
        or users["train"] & users["test"]
        or users["val"] & users["test"]
    )
    assert sum(map(len, users.values())) == 6


def test_time_split_records_windows_that_leak_a_test_target(tmp_path: Path) -> None:
    source, _ = write_pog(tmp_path / "p", users=1, per_user=6)
    users = tmp_path / "p" / "user_data.txt"
    users.write_text("u0,i05;i00;i01;i02;i03;i04;i05,o0\n")  # i05 again as the last (test) target
    out = tmp_path / "build"
    run(source, out, num_interactions=2, split_by="time")
    summary = read_summary(out / "windows")
    assert summary is not None
    assert summary.rejected_by_reason == {"leaks_eval_target": 1}
    assert summary.models["rejected_windows"] == {"leaks_eval_target": 1}
    train = json.loads((out / "windows" / "json" / "train.json").read_text())
    test = json.loads((out / "windows" / "json" / "test.json").read_text())
    assert test[0]["target_item_id"] == "i05"
    assert [r["window_position"] for r in train] == [1, 2]
    assert all("i05" not in [*r["history_item_ids"], r["target_item_id"]] for r in train)
    assert "window: leaks_eval_target | 1" in (out / "windows" / "README.md").read_text()


def test_needs_a_history_source_and_scores_for_min_score(tmp_path: Path) -> None:
    written = write_wildlife(tmp_path / "w")
    with pytest.raises(NearidError, match="needs a history source"):
        run(written.source, tmp_path / "b1")
    source, _ = write_pog(tmp_path / "p")
    with pytest.raises(NearidError, match="min_score: POG has no per-user scores"):
        run(source, tmp_path / "b2", min_score=3)
