"""The PODS folder export: the layout PODS's code reads, JSONs that agree with the folders."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nearid_data.build import build
from nearid_data.engine.manifest import read_summary
from nearid_data.export.materialise import materialise
from tests.build_helpers import stage_samples
from tests.conftest import tiny_pipeline
from tests.source_fixtures import write_pods_folders

IMAGE_EXTENSIONS = ("jpg", "png", "JPEG", "jpeg", "JPG")  # PODS's util/constants.py


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pods")
    pipeline = tiny_pipeline(
        source={"name": "demo", "n_identities": 8, "views": 5, "image_size": 64},
        stages={
            "ingest": {"shard_size": 16},
            "pods-splits": {"references": 3, "val_fraction": 0.5},
            "export-pods": {"instances_per_unit": 3},
        },
    )
    build(pipeline, out=out)
    return out


def _pods_paths(folder: Path) -> list[Path]:
    """What PODS's ``get_paths`` globs in one class folder."""
    return sorted(p for ext in IMAGE_EXTENSIONS for p in folder.glob(f"*.{ext}"))


def test_every_input_is_in_the_layout(built: Path) -> None:
    ingest, splits = read_summary(built / "ingest"), read_summary(built / "pods-splits")
    export = read_summary(built / "export-pods")
    assert ingest is not None and splits is not None and export is not None
    assert splits.n_kept + splits.n_rejected == ingest.n_kept == 40
    assert export.n_in == export.n_kept == splits.n_kept
    root = built / "export-pods/pods"
    images = [p for folder in ("train", "test") for p in (root / folder).rglob("*.png")]
    assert len(images) == export.n_kept
    masks = [p for folder in ("train_masks", "test_masks") for p in (root / folder).rglob("*")]
    assert len([p for p in masks if p.is_file()]) == export.n_kept


def test_layout_matches_its_jsons(built: Path) -> None:
    root = built / "export-pods/pods"
    info = json.loads((root / "pods_info.json").read_text())
    annos = json.loads((root / "pods_image_annos.json").read_text())
    classes = info["classes"]
    assert classes == sorted(p.name for p in (root / "train").iterdir())
    assert classes == sorted(p.name for p in (root / "test").iterdir())
    assert info["class_to_idx"] == {name: i for i, name in enumerate(classes)}
    assert {info["class_to_sc"][c] for c in classes} == {"mug", "bottle", "shoe", "lamp"}
    per_category = Counter((info["class_to_sc"][c], info["class_to_split"][c]) for c in classes)
    assert set(per_category.values()) == {1}  # 2 instances per category: 1 val, 1 test
    files = {p.relative_to(root).as_posix() for p in root.glob("t*/*/*.png")}
    assert set(annos) == {f for f in files if f.split("/")[0] in ("train", "test")}
    for image_id, anno in annos.items():
        split, name, _ = image_id.split("/")
        assert (anno["split"], anno["class"]) == (split, name)
        assert anno["test_split"] == (None if split == "train" else "in_distribution")
        assert (root / f"{split}_masks" / name / Path(image_id).name).exists()
    for name in classes:
        assert [p.name for p in _pods_paths(root / "train" / name)] == ["0.png", "1.png", "2.png"]
        assert [p.name for p in _pods_paths(root / "test" / name)] == ["0.png", "1.png"]


def test_files_are_the_pipelines_pixels_in_view_order(built: Path) -> None:
    root = built / "export-pods/pods"
    samples = stage_samples(built / "pods-splits")
    numbered: Counter[tuple[str, str]] = Counter()
    for sample in sorted(samples, key=lambda s: (s["json"]["identity"], s["json"]["view"])):
        info = sample["json"]
        folder = "train" if info["role"] == "reference" else "test"
        n = numbered[folder, info["identity"]]
        numbered[folder, info["identity"]] += 1
        assert (root / folder / info["identity"] / f"{n}.png").read_bytes() == sample["image.png"]
        # PODS binarises a mask with Image.open(path).convert("L") > 0: exact for PNG masks
        theirs = np.array(
            Image.open(root / f"{folder}_masks" / info["identity"] / f"{n}.png").convert("L")
        )
        ours = np.array(Image.open(io.BytesIO(sample["mask.png"])))
        assert np.array_equal(theirs > 0, ours > 0) and (ours > 0).any()


def test_materialise_keeps_the_old_layout_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "layout"
    materialise(target, lambda root: (root / "a.txt").write_text("old"))

    def broken(root: Path) -> None:
        (root / "a.txt").write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        materialise(target, broken)
    assert (target / "a.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["layout"]
    materialise(target, lambda root: (root / "b.txt").write_text("new"))
    assert [p.name for p in target.iterdir()] == ["b.txt"]


def test_the_pods_source_round_trips(tmp_path: Path) -> None:
    """PODS in, PODS out: official references, shift tags and class split survive unchanged."""
    written = write_pods_folders(tmp_path / "raw")
    pipeline = tiny_pipeline(
        source=written.source,
        stages={"ingest": {"shard_size": 8}, "pods-splits": {}, "export-pods": {}},
    )
    build(pipeline, out=tmp_path / "build")
    ours, theirs = tmp_path / "build/export-pods/pods", written.root
    for name in ("pods_info.json", "pods_image_annos.json"):
        expected = (theirs / name).read_text().replace(".jpg", ".png")
        assert json.loads((ours / name).read_text()) == json.loads(expected), name
    for image_id in json.loads((theirs / "pods_image_annos.json").read_text()):
        exported = Image.open(ours / image_id.replace(".jpg", ".png"))
        assert np.array_equal(np.asarray(exported), np.asarray(Image.open(theirs / image_id)))


def test_pods_source_keeps_its_class_order_and_dense_split(tmp_path: Path) -> None:
    """From PODS itself: class_to_idx as in its pods_info.json (run_downstream.py looks the
    positive class up there and EvalDataset walks its keys), and the test_dense split with its
    masks, which the dense tasks read (run_downstream.py: test_root = <root>/test_dense;
    dense_tasks.py swaps /test_dense/ for /test_dense_masks/)."""
    written = write_pods_folders(tmp_path / "raw", dense=2)
    info_path = written.root / "pods_info.json"
    info = json.loads(info_path.read_text())
    info["class_to_idx"] = {c: i for i, c in enumerate(reversed(info["classes"]))}
    info_path.write_text(json.dumps(info))
    pipeline = tiny_pipeline(
        source={**written.source, "splits": ["train", "test", "test_dense"]},
        stages={"ingest": {}, "pods-splits": {"references": 3}, "export-pods": {}},
    )
    build(pipeline, out=tmp_path / "build")
    root = tmp_path / "build/export-pods/pods"
    exported = json.loads((root / "pods_info.json").read_text())
    assert exported["class_to_idx"] == info["class_to_idx"]
    assert exported["classes"] == list(reversed(info["classes"]))
    for name in info["classes"]:
        dense = _pods_paths(root / "test_dense" / name)
        assert len(dense) == 2 and len(_pods_paths(root / "test" / name)) == 4
        for path in dense:
            mask = Path(str(path).replace("/test_dense/", "/test_dense_masks/"))
            assert mask.is_file()
