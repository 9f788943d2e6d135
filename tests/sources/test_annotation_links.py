"""Annotation files are read only from inside the source root: a symbolic link that leads out of
it is refused (naming the file) unless ``follow_symlinks``, a link inside the root is fine, a path
that climbs out by ``..`` is refused always, and a folder in a file's place is not read."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import cv2
import pytest

from nearid_data.engine.storage import ObjectPath
from nearid_data.errors import NearidError
from nearid_data.sources.formats import annotation_path
from tests.badimages import valid_image
from tests.source_fixtures import (
    source_of,
    write_cub,
    write_pods_folders,
    write_syncd,
    write_wildlife,
)
from tests.source_layouts import SOURCE_LAYOUTS, Layout


def _imagefolder(root: Path) -> dict[str, Any]:
    for n, identity in enumerate(("alice", "bob")):
        (root / identity).mkdir(parents=True)
        cv2.imwrite(str(root / identity / "a.png"), valid_image(n)[..., ::-1])
    lines = [json.dumps({"identity": i, "category": f"{i}-kind"}) for i in ("alice", "bob")]
    (root / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return {"name": "imagefolder", "root": str(root)}


# Annotation files only: NearID's Arrow folders are read by ``datasets``, not by the adapter.
LAYOUTS: dict[str, Layout] = {
    **{name: layout for name, layout in SOURCE_LAYOUTS.items() if name != "nearid"},
    "cub": lambda root: write_cub(root, segmentations=False).source,
    "syncd-listed": lambda root: {**write_syncd(root).source, "metadata": ["metadata.json"]},
    "imagefolder": _imagefolder,
}
# (layout, an annotation file relative to the root): every file each adapter reads to list.
CASES = [
    *(
        ("cub", name)
        for name in (
            "images.txt",
            "image_class_labels.txt",
            "train_test_split.txt",
            "bounding_boxes.txt",
            "classes.txt",
        )
    ),
    ("cars-devkit", "devkit/cars_meta.mat"),
    ("cars-devkit", "devkit/cars_train_annos.mat"),
    ("cars-devkit", "cars_test_annos_withlabels.mat"),
    ("cars-hf", "data/train-00000-of-00001.parquet"),
    ("wildlife", "metadata.csv"),
    ("pods-folders", "pods_info.json"),
    ("pods-folders", "pods_image_annos.json"),
    ("pods-hf", "data/test-00000-of-00001.parquet"),
    ("pods-hf", "pods_info.json"),
    ("syncd", "metadata.json"),
    ("syncd-listed", "metadata.json"),
    ("flickr-aes", "FLICKR-AES_image_labeled_by_each_worker.csv"),
    ("flickr-aes", "FLICKR-AES_image_score.txt"),
    ("flickr-aes", "FLICKR_captions.json"),
    ("flickr-aes", "FLICKR_styles.json"),
    ("pog", "user_data.txt"),
    ("pog", "item_data.txt"),
    ("pog", "outfit_data.txt"),
    ("pog", "captions_sampled.json"),
    ("ser30k", "Annotations/image-level/train.json"),
    ("ser30k", "id_map.csv"),
    ("ser30k", "ser30k_captions.json"),
    ("ser30k", "user_preferences.json"),
    ("imagefolder", "metadata.jsonl"),
]
CASE_IDS = [f"{layout}:{relative}" for layout, relative in CASES]


def listing(source: dict[str, Any]) -> list[tuple[Any, ...]]:
    """What the adapter lists to ingest (a file under the root that is no input is left out)."""
    return [
        (item.identity, item.category, item.view, item.ref)
        for item in source_of(source).items()
        if item.rejection is None
    ]


def _move_and_link(root: Path, relative: str, target: Path) -> None:
    """Move ``root/relative`` to ``target`` and leave a symbolic link to it in its place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(root / relative, target)
    os.symlink(target, root / relative)


@pytest.mark.parametrize(("layout", "relative"), CASES, ids=CASE_IDS)
def test_a_link_out_of_the_root_is_refused_unless_followed(
    tmp_path: Path, layout: str, relative: str
) -> None:
    root = tmp_path / "root"
    source = LAYOUTS[layout](root)
    expected = listing(source)
    _move_and_link(root, relative, tmp_path / "elsewhere" / relative)
    with pytest.raises(NearidError, match="outside the source root") as refused:
        listing(source)
    assert Path(relative).name in str(refused.value)
    assert "follow_symlinks" in str(refused.value)
    assert listing({**source, "follow_symlinks": True}) == expected


@pytest.mark.parametrize(("layout", "relative"), CASES, ids=CASE_IDS)
def test_a_link_inside_the_root_is_read(tmp_path: Path, layout: str, relative: str) -> None:
    root = tmp_path / "root"
    source = LAYOUTS[layout](root)
    expected = listing(source)
    # A hidden folder: no adapter lists it as images (imagefolder rejects its file as hidden).
    _move_and_link(root, relative, root / ".kept" / relative.replace("/", "_"))
    assert listing(source) == expected


def test_a_folder_in_place_of_an_annotation_file_is_refused(tmp_path: Path) -> None:
    source = write_wildlife(tmp_path / "root").source
    (tmp_path / "root" / "metadata.csv").unlink()
    (tmp_path / "root" / "metadata.csv").mkdir()
    with pytest.raises(NearidError, match=r"metadata\.csv is not a regular file"):
        listing(source)


def test_a_path_that_climbs_out_of_the_root_is_refused_even_when_following_links(
    tmp_path: Path,
) -> None:
    written = write_wildlife(tmp_path / "root")
    shutil.copy(written.root / "metadata.csv", tmp_path / "metadata.csv")
    for follow in (False, True):
        source = {**written.source, "metadata": "../metadata.csv", "follow_symlinks": follow}
        with pytest.raises(NearidError, match=r"\.\./metadata\.csv points outside the source root"):
            listing(source)
    absolute = {**written.source, "metadata": str(tmp_path / "metadata.csv")}
    with pytest.raises(NearidError, match="outside the source root"):
        listing(absolute)


def test_on_object_storage_only_dot_dot_leaves_the_root() -> None:
    root = ObjectPath("memory", "bucket/root")
    assert annotation_path(root, "a/meta.json", follow_symlinks=False) == root / "a/meta.json"
    for path in ("../meta.json", "a/../../meta.json"):
        with pytest.raises(NearidError, match="outside the source root"):
            annotation_path(root, path, follow_symlinks=True)


def test_files_a_config_names_outside_the_root_are_the_users_choice(tmp_path: Path) -> None:
    written = write_pods_folders(tmp_path / "root")
    info = shutil.move(written.root / "pods_info.json", tmp_path / "info.json")
    expected = listing({**written.source, "info": str(info)})
    assert {item[1] for item in expected} != {"object"}  # the categories come from that file
