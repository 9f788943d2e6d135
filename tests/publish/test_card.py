"""The dataset card: Hub YAML that parses and loads with `datasets`, a body from the manifests."""

from __future__ import annotations

from pathlib import Path

import yaml

from nearid_data.export.shards import manifests_by_split


def _front_matter(card: str) -> dict:
    _, front, _ = card.split("---\n", 2)
    return yaml.safe_load(front)


def test_front_matter_parses_with_one_config_per_split(built: Path) -> None:
    front = _front_matter((built / "export/README.md").read_text())
    assert front["license"] == "cc-by-4.0"
    assert "webdataset" in front["tags"]
    assert front["task_categories"] == ["image-feature-extraction"]
    assert front["size_categories"] == ["n<1K"]
    (config,) = front["configs"]
    assert config["config_name"] == "default"
    splits = {f["split"]: f["path"] for f in config["data_files"]}
    assert splits == {s: f"data/{s}/*.tar" for s in ("train", "val", "test")}


def test_configs_load_with_datasets_and_count_as_the_manifests(built: Path, tmp_path: Path) -> None:
    import datasets

    export = built / "export"
    loaded = datasets.load_dataset(str(export), cache_dir=str(tmp_path / "cache"))
    expected = {s: sum(m.n_kept for m in ms) for s, ms in manifests_by_split(export).items()}
    assert {split: len(ds) for split, ds in loaded.items()} == expected
    assert {"image.png", "distractor_cut_paste.png", "json"} <= set(loaded["train"].column_names)
    # The card's advice for one generator: select its column (here on a stream).
    stream = datasets.load_dataset(str(export), split="val", streaming=True)
    first = next(iter(stream.select_columns(["distractor_cut_paste.png", "json"])))
    assert set(first) == {"distractor_cut_paste.png", "json"}


def test_body_reports_counts_generators_rejections_and_citations(built: Path) -> None:
    card = (built / "export/README.md").read_text()
    for split, manifests in manifests_by_split(built / "export").items():
        samples = sum(m.n_kept for m in manifests)
        assert f"| {split} | " in card and f" | {samples} | " in card
    assert '`distractor_cut_paste.png` | `{"name": "cut_paste"}`' in card
    assert "outside_equal 1" in card
    for stage in ("ingest", "segment", "distractors", "splits", "export"):
        assert f"| {stage} | 24 | 24 | 0 | - |" in card
    assert "arXiv:2604.01973" in card and "@article{cvejic2026nearid" in card
    assert "wall" not in card  # nothing that changes between identical builds
