"""``pods``: PODS, the Personal Object Discrimination Suite (Sundaram, Chae et al.).

``layout: folders`` (``pods.zip``, as ssundaram21/personalized-rep reads it)::

    root/
      pods_info.json           classes, class_to_idx, class_to_sc (category), class_to_split
      pods_image_annos.json    image id -> {class, split (train|test), test_split}
      train/<class>/<n>.jpg         3 reference images per instance
      test/<class>/<n>.jpg          test images, tagged by shift in pods_image_annos.json
      test_dense/<class>/<n>.jpg    12 test images per instance with masks
      <split>_masks/<class>/<n>.jpg the masks, where there are any

``layout: hf`` (``chaenayo/PODS`` on the Hub): ``<split>-*.parquet`` for the splits ``train``,
``test``, ``test_dense`` with columns ``image``, ``mask`` (``{bytes, path}``), ``label`` (the
class) and ``scene_type`` (the shift tag).

The identity is the instance (PODS's "class", e.g. one particular mug); its views are numbered
over ``splits`` in order, files in natural name order (parquet: row order). The category is the
instance's super-category from ``pods_info.json`` (in the root, or ``info:``), or ``object``
without one. ``splits`` defaults to ``train`` and ``test``: ``test_dense`` may repeat test images.

The id spelling in ``pods_image_annos.json`` is not documented, so an image is matched by its
class, its folder's split and the stem of the id; unmatched images have no ``test_split``.
``source`` in the sample json: ``path`` (+ ``mask``) or ``file``/``row``, ``pods_split``,
``test_split`` (test images with a tag), ``class_split`` (``val``/``test``, with an info file),
``class_index`` (its ``class_to_idx`` entry, with an info file that has one).
"""

from __future__ import annotations

import logging
import re
from functools import cached_property
from pathlib import PurePosixPath
from typing import Any, Literal

from nearid_data.engine import storage
from nearid_data.engine.storage import Location
from nearid_data.errors import NearidError
from nearid_data.sources.base import SourceItem, SourceRecord
from nearid_data.sources.formats import (
    DatasetConfig,
    DatasetSource,
    FileIndex,
    decode_record,
    number_views,
    read_json,
)
from nearid_data.sources.parquet import (
    ParquetRows,
    cell_bytes,
    image_cell_bytes,
    parquet_splits,
    read_parquet_columns,
    select_splits,
)

log = logging.getLogger(__name__)

PodsSplit = Literal["train", "test", "test_dense"]
MASK_SUFFIXES = (".jpg", ".png")
INFO_KEYS = ("class_to_sc", "class_to_split")
ANNOTATIONS = "pods_image_annos.json"


class PodsConfig(DatasetConfig):
    layout: Literal["folders", "hf"] = "folders"
    splits: tuple[PodsSplit, ...] = ("train", "test")
    info: str | None = None
    """pods_info.json; default: the root's, when there is one."""


class PodsSource(DatasetSource):
    Config = PodsConfig
    config: PodsConfig
    label = "pods"

    def list_items(self) -> list[SourceItem]:
        listing = self._folder_entries if self.config.layout == "folders" else self._hf_entries
        entries = []
        for instance, ref in listing():
            ref = {**ref, **self._class_info(instance)}
            entries.append((instance, self._category(instance), ref))
        return number_views(entries)

    def load(self, item: SourceItem) -> SourceRecord:
        ref = item.ref
        if "row" in ref:
            row = self._rows.row(self.root / ref["file"], ref["row"], ["image", "mask"])
            where = f"{ref['file']} row {ref['row']}"
            image, mask = image_cell_bytes(row["image"], where), cell_bytes(row["mask"], where)
        else:
            image = self.read_file(ref["path"])
            mask = self.read_file(ref["mask"]) if "mask" in ref else None
        return decode_record(image, mask=mask, max_pixels=self.config.max_pixels)

    @cached_property
    def _rows(self) -> ParquetRows:
        return ParquetRows()

    @cached_property
    def _info(self) -> dict[str, dict[str, str]] | None:
        # An ``info:`` file the config names may lie anywhere: that is the user's choice.
        path = (
            storage.location(self.config.info)
            if self.config.info
            else self.annotation("pods_info.json")
        )
        if self.config.info is None and not path.is_file():
            return None
        info = read_json(path)
        if not isinstance(info, dict) or any(not isinstance(info.get(k), dict) for k in INFO_KEYS):
            raise NearidError(
                f"{path}: expected an object with the mappings {', '.join(INFO_KEYS)}"
            )
        return info

    def _category(self, instance: str) -> str:
        if self._info is None:
            return "object"
        if instance not in self._info["class_to_sc"]:
            raise NearidError(f"pods: instance {instance!r} is not in pods_info.json class_to_sc")
        return str(self._info["class_to_sc"][instance])

    def _class_info(self, instance: str) -> dict[str, Any]:
        """The instance's class-level split and its index in ``class_to_idx``, where given."""
        split = self._info["class_to_split"].get(instance) if self._info else None
        index = (self._info.get("class_to_idx") or {}).get(instance) if self._info else None
        info: dict[str, Any] = {"class_split": split} if split else {}
        return info | ({"class_index": int(index)} if index is not None else {})

    def _folder_entries(self) -> list[tuple[str, dict[str, Any]]]:
        tags = test_tags(self.annotation(ANNOTATIONS))
        listing = FileIndex(self.root)
        entries = []
        for split in self.config.splits:
            folder = self.root / split
            if not folder.is_dir():
                raise NearidError(f"pods: split folder {folder} is missing")
            for instance in _visible(listing.entries(split)[0]):
                files = _visible(listing.entries(f"{split}/{instance}")[1])
                for name in sorted(files, key=natural_key):
                    ref: dict[str, Any] = {
                        "path": f"{split}/{instance}/{name}",
                        "pods_split": split,
                    }
                    tag = tags.get((instance, split, PurePosixPath(name).stem))
                    if tag:
                        ref["test_split"] = tag
                    mask = mask_of(listing, split, instance, name)
                    if mask is not None:
                        ref["mask"] = mask
                    entries.append((instance, ref))
        if tags and not any("test_split" in ref for _, ref in entries):
            log.warning("pods_image_annos.json matched none of the listed images: no test_split")
        return entries

    def _hf_entries(self) -> list[tuple[str, dict[str, Any]]]:
        files = parquet_splits(self.root, follow_symlinks=self.config.follow_symlinks)
        select_splits(self.root, files, self.config.splits)
        entries = []
        for split in self.config.splits:
            for path in files[split]:
                columns = read_parquet_columns(
                    path, ["label", "scene_type"], required=["image", "mask"]
                )
                relative = storage.relative(path, self.root)
                tags = zip(columns["label"], columns["scene_type"], strict=True)
                for row, (label, tag) in enumerate(tags):
                    ref: dict[str, Any] = {"file": relative, "row": row, "pods_split": split}
                    if split != "train" and tag:
                        ref["test_split"] = tag
                    entries.append((str(label), ref))
        return entries


def mask_of(files: FileIndex, split: str, instance: str, image_name: str) -> str | None:
    """The mask of ``<split>/<instance>/<image_name>`` relative to the root ``files`` indexes: the
    same name in ``<split>_masks/<instance>/`` (PODS's code swaps the folder), else the stem with
    a mask suffix; None without one."""
    folder = PurePosixPath(f"{split}_masks", instance)
    stem = PurePosixPath(image_name).stem
    for name in (image_name, *(stem + suffix for suffix in MASK_SUFFIXES)):
        if files.is_file(folder / name):
            return str(folder / name)
    return None


def test_tags(path: Location) -> dict[tuple[str, str, str], str]:
    """(class, split, id stem) -> shift tag, from pods_image_annos.json if there is one."""
    if not path.is_file():
        return {}
    annotations = read_json(path)
    if not isinstance(annotations, dict):
        raise NearidError(f"{path}: expected an object mapping image ids to annotations")
    tags = {}
    for image_id, entry in annotations.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("class"), str):
            raise NearidError(f"{path}: image {image_id!r} needs an object with a 'class'")
        if entry.get("test_split"):
            key = (entry["class"], str(entry.get("split")), PurePosixPath(image_id).stem)
            tags[key] = str(entry["test_split"])
    return tags


def _visible(names: list[str]) -> list[str]:
    return [name for name in names if not name.startswith(".")]


def natural_key(name: str) -> list[Any]:
    """Sort key: digit runs compare as numbers, so 2.jpg comes before 10.jpg."""
    return [
        (0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name)
    ]
