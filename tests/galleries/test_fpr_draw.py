"""``draw: fpr``: the roles, names, file names and CSVs Finer-Personalization Rank's loaders
(OSU-MLB/Finer-Personalization-Rank, data_load_scripts/) give the same source at the same seed.

The expectations are their loaders' pandas lines, transcribed with the file copying left out (CI
cannot fetch their repository); each is cited by file and function."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pandas as pd
import pytest

from nearid_data.build import build
from nearid_data.config import PipelineConfig
from nearid_data.engine.tario import read_samples
from nearid_data.errors import NearidError
from nearid_data.sources.cub import FPR_GROUPS
from tests.source_fixtures import jpeg, write_cub

SEED = 101


def _build(tmp_path: Path, source: dict, galleries: dict, seed: int = SEED) -> Path:
    stages = {"ingest": {"shard_size": 64}, "galleries": galleries, "export-fpr": {}}
    pipeline = PipelineConfig.from_dict(
        {"name": "fpr", "seed": seed, "source": source, "stages": stages}
    )
    build(pipeline, out=tmp_path / "build")
    return tmp_path / "build" / "export-fpr"


def _exported(export: Path) -> dict[str, str]:
    """Source image path -> its path in the export, from the export's shards."""
    return {
        s["json"]["source"]["path"]: s["json"]["fpr_path"]
        for tar in sorted((export / "shards").glob("*.tar"))
        for s in read_samples(tar)
    }


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def _cub_reference(root: Path, gallery_num: int, train_num: int, seed: int) -> dict[str, str]:
    """load_cub_data.py, main and load_class: the same frames, the same sampling calls."""
    images_df = pd.read_csv(root / "images.txt", sep=" ", names=["img_id", "img_path"])
    labels_df = pd.read_csv(root / "image_class_labels.txt", sep=" ", names=["img_id", "class_id"])
    split_df = pd.read_csv(root / "train_test_split.txt", sep=" ", names=["img_id", "is_train"])
    classes_df = pd.read_csv(root / "classes.txt", sep=" ", names=["class_id", "class_name"])
    cub_df = images_df.merge(labels_df, on="img_id").merge(split_df, on="img_id")
    cub_df = cub_df.merge(classes_df, on="class_id")
    cub_df[["class_num", "name"]] = cub_df["class_name"].str.split(".", expand=True)
    groups = {"wren": FPR_GROUPS["wren"], "tern": FPR_GROUPS["tern"]}
    groups["sparrow"] = FPR_GROUPS["sparrow"]
    expected: dict[str, str] = {}
    for group, ids in groups.items():
        df = cub_df[cub_df["class_id"].isin(ids)]
        df_gallery = df.groupby("name", group_keys=False).sample(n=gallery_num, random_state=seed)
        df = df[~df["img_path"].isin(df_gallery["img_path"])]
        df_train = df.groupby("name", group_keys=False).sample(n=train_num, random_state=seed)
        for role, drawn in (("gallery", df_gallery), ("train", df_train)):
            for name in drawn["name"].unique():
                paths = drawn[drawn["name"] == name]["img_path"].tolist()
                for index, path in enumerate(paths):
                    expected[f"images/{path}"] = os.path.join(
                        "data", group, name, role, f"{index}.png"
                    )
    return expected


def test_cub_draw_is_the_loaders_image_for_image(tmp_path: Path) -> None:
    ids = [c for ids in FPR_GROUPS.values() for c in ids]
    written = write_cub(tmp_path / "cub", class_ids=ids, per_class=24, size=(32, 40))
    source = {**written.source, "groups": "fpr"}
    galleries = {"draw": "fpr", "references_per_subject": 10, "gallery_per_subject": 10}
    export = _build(tmp_path, source, galleries)
    expected = _cub_reference(written.root, 10, 10, SEED)
    assert len(expected) == 300
    assert _exported(export) == expected  # every drawn image, its role, name and number
    for csv_name, role in (("gallery_data.csv", "gallery"), ("train_data.csv", "train")):
        header, rows = _read_csv(export / csv_name)
        assert header == ["", "name", "file_path", "species"]  # load_cub_data.py: to_csv(path)
        assert len(rows) == 150 and {r["species"] for r in rows} == {"wren", "tern", "sparrow"}
        for row in rows:
            assert (
                row["file_path"]
                == f"data/{row['species']}/{row['name']}/{role}/{Path(row['file_path']).name}"
            )
            assert (export / row["file_path"]).is_file()  # opens from the export folder
        assert [r[""] for r in rows] == [str(i) for i in range(150)]
    assert {r["name"] for r in _read_csv(export / "train_data.csv")[1]} == {
        f"Bird_{c}" for c in ids
    }


def test_classes_with_too_few_images_are_an_error_naming_them(tmp_path: Path) -> None:
    ids = [c for ids in FPR_GROUPS.values() for c in ids]
    written = write_cub(tmp_path / "cub", class_ids=ids, per_class=12, size=(32, 40))
    galleries = {"draw": "fpr", "references_per_subject": 10, "gallery_per_subject": 10}
    with pytest.raises(NearidError, match=r"fewer than the 20 images .*113\.Bird_113 \(12\)"):
        _build(tmp_path, {**written.source, "groups": "fpr"}, galleries)
    stratified = {"references_per_subject": 10, "gallery_per_subject": 10, "min_images": 20}
    with pytest.raises(NearidError, match=r"no identity of group 'sparrow' has the 20 images"):
        _build(tmp_path, {**written.source, "groups": "fpr"}, stratified)


def _reid_reference(metadata: Path, seed: int, per_species: int) -> dict[str, str]:
    """load_data_reid.py, main, with its defaults (min 4 + 5 images, 10 references, 15 gallery)."""
    df = pd.read_csv(metadata)
    df = df.rename(columns={"identity": "name", "orientation": "viewpoint", "path": "file_path"})
    train_df = df.groupby("name").filter(lambda x: len(x) >= 4 + 5)
    train_df = pd.concat(  # groupby('name').apply(lambda x: x.sample(...)), group by group
        [x.sample(n=min(len(x) - 5, 10), random_state=seed) for _, x in train_df.groupby("name")]
    )
    names: list[str] = []
    for specie in df["species"].unique():
        specie_df = train_df[train_df["species"] == specie]
        names += specie_df["name"].value_counts().head(per_species).index.tolist()
    train_df = train_df[train_df["name"].isin(names)]
    df = df[~df["file_path"].isin(train_df["file_path"])]
    gallery_df = df[df["name"].isin(names)]
    gallery_df = pd.concat(
        [x.sample(n=min(len(x), 15), random_state=seed) for _, x in gallery_df.groupby("name")]
    )
    df = df[~df["file_path"].isin(gallery_df["file_path"])]
    expected = {}
    for role, drawn in (("train", train_df), ("gallery", gallery_df), ("extra", df)):
        for name in drawn["name"].unique():
            rows = drawn[drawn["name"] == name]
            for index, path in enumerate(rows["file_path"]):
                specie = rows["species"].iloc[0]
                folder = f"extra/{name}" if role == "extra" else f"data/{specie}/{name}/{role}"
                expected[path] = f"{folder}/{index}.png"
    return expected


def _write_reid(root: Path, counts: list[int]) -> dict:
    """A WildlifeReID-10k metadata.csv of one species whose identities have ``counts`` images,
    their rows interleaved as in the real file."""
    header = ["image_id", "identity", "path", "species", "dataset", "orientation"]
    rows = []
    for k in range(max(counts)):
        for identity, n in enumerate(counts):
            if k < n:
                path = f"images/{identity}/{k}.jpg"
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                (root / path).write_bytes(jpeg(len(rows), (32, 32)))
                rows.append([len(rows), str(identity), path, "fish", "ZebraFish", "left"])
    with (root / "metadata.csv").open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, *rows])
    return {"name": "wildlife", "root": str(root)}


def test_reid_draw_is_the_loaders_with_extra_and_n_minus_5(tmp_path: Path) -> None:
    source = _write_reid(tmp_path / "wild", [14, 11, 9, 8, 20])
    galleries = {
        "draw": "fpr",
        "references_per_subject": 10,
        "gallery_per_subject": 15,
        "min_images": 9,
        "subjects_per_group": 2,
    }
    export = _build(tmp_path, source, galleries, seed=42)
    expected = _reid_reference(tmp_path / "wild" / "metadata.csv", 42, per_species=2)
    exported = _exported(export)
    assert exported == expected
    references = [p for p in exported.values() if "/train/" in p]
    assert len(references) == 10 + 9  # min(20 - 5, 10) and min(14 - 5, 10): the top two
    header, rows = _read_csv(export / "extra_data.csv")
    assert header == ["image_id", "name", "file_path", "species", "dataset", "viewpoint"]
    # everything not drawn: the 9, 11 and 8 image identities, none of the subjects' images
    assert sorted({r["name"] for r in rows}) == ["1", "2", "3"] and len(rows) == 28
    assert all((export / r["file_path"]).is_file() for r in rows)


def _cars_reference(root: Path, ids: list[int], gallery_num: int, train_num: int) -> dict:
    """load_cars_data.py, load_class: per label id, in dataset order, the first gallery_num
    images are the gallery and the next train_num the references; name = str(label id)."""
    import datasets

    test_set = datasets.Dataset.from_parquet(str(root / "data" / "test-00000-of-00001.parquet"))
    expected = {}
    for label in ids:
        rows = [row for row, s in enumerate(test_set) if s["label"] == label]
        for role, drawn in (
            ("gallery", rows[:gallery_num]),
            ("train", rows[gallery_num : gallery_num + train_num]),
        ):
            for index, row in enumerate(drawn):
                expected[row] = os.path.join("data", "car", str(label), role, f"{index}.png")
    return expected


def test_cars_draw_is_the_loaders_with_label_ids_as_names(tmp_path: Path) -> None:
    from tests.source_fixtures import car_names, write_cars_hf

    written = write_cars_hf(tmp_path / "cars", n_classes=4, per_split=7)
    names = car_names(4)
    source = {**written.source, "split": "test", "category": "car"}
    galleries = {
        "draw": "fpr",
        "groups": {"car": [names[1], names[3]]},
        "references_per_subject": 2,
        "gallery_per_subject": 3,
    }
    export = _build(tmp_path, source, galleries)
    exported = {
        s["json"]["source"]["row"]: s["json"]["fpr_path"]
        for tar in sorted((export / "shards").glob("*.tar"))
        for s in read_samples(tar)
    }
    assert exported == _cars_reference(written.root, [1, 3], 3, 2)
    header, rows = _read_csv(export / "gallery_data.csv")
    assert header == ["", "name", "species", "file_path"]  # load_cars_data.py column order
    assert [(r["name"], r["species"]) for r in rows] == [("1", "car")] * 3 + [("3", "car")] * 3


def test_draw_fpr_without_a_loader_for_the_source_is_refused_at_validation() -> None:
    stages = {"ingest": {}, "galleries": {"draw": "fpr"}, "export-fpr": {}}
    with pytest.raises(NearidError, match="there is none for 'demo'"):
        PipelineConfig.from_dict({"name": "x", "source": {"name": "demo"}, "stages": stages})
