"""``cub``: Caltech-UCSD Birds-200-2011 in its official layout.

    root/
      images.txt               <image_id> <path under images/>
      image_class_labels.txt   <image_id> <class_id>
      train_test_split.txt     <image_id> <1: train, 0: test>
      classes.txt              <class_id> <class name, e.g. 143.Caspian_Tern>
      bounding_boxes.txt       <image_id> <x> <y> <width> <height>   (floats, pixels)
      images/<class name>/<file>.jpg
    <segmentations>/<class name>/<file stem>.png   (a separate archive; ``segmentations:``)

Ids are 1-based and every image must appear in every file. The identity is the species (the
class name): as in Finer-Personalization Rank, the subject is a species and its photos are the
views, numbered in image-id order. ``groups`` keeps only named groups of look-alike species and
makes the group the category (``groups: fpr`` is FPR's sparrow 113-117, tern 143-147, wren
193-197); without groups every class is kept as category ``bird``. ``split`` keeps CUB's own
train or test images (FPR ignores that split).

Segmentations are soft: the mean of several annotators' masks, 0-255, so they are binarised at
> 127 (the any-non-zero rule for PNG masks would take every pixel one annotator marked). The
box becomes the enclosing integer [x0, x1) x [y0, y1), clipped to the image.
``source`` in the sample json: ``path``, ``image_id``, ``class_id``, ``is_train``,
``bbox_xywh`` (as the file has it) and ``mask`` (the segmentation file, when there is one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import PurePosixPath
from typing import ClassVar, Literal, TypeVar

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
    parse_number,
    read_text_rows,
)
from nearid_data.strict import SafeName

FPR_GROUPS: dict[str, list[int]] = {  # load_cub_data.py's species names and class ids
    "wren": list(range(193, 198)),
    "tern": list(range(143, 148)),
    "sparrow": list(range(113, 118)),
}
SEGMENTATION_THRESHOLD = 127
T = TypeVar("T")


class CubConfig(DatasetConfig):
    location_fields: ClassVar[frozenset[str]] = DatasetConfig.location_fields | {"segmentations"}

    segmentations: str | None = None
    """Root of the segmentations archive (``<class name>/<file stem>.png``)."""
    groups: Literal["fpr"] | dict[SafeName, list[int]] | None = None
    split: Literal["train", "test", "all"] = "all"


@dataclass(frozen=True)
class CubTables:
    paths: dict[int, str]  # image id -> path under images/
    labels: dict[int, int]  # image id -> class id
    is_train: dict[int, bool]
    boxes: dict[int, list[float]]  # image id -> x, y, w, h
    classes: dict[int, str]  # class id -> name


def read_cub(annotation: Callable[[str], Location]) -> CubTables:
    """The five annotation files (``annotation`` gives each file's path), checked against each
    other."""
    paths = _by_id(annotation("images.txt"), 2, lambda fields, where: fields[0])
    labels = _by_id(
        annotation("image_class_labels.txt"), 2, lambda f, where: parse_number(f[0], int, where)
    )
    is_train = _by_id(
        annotation("train_test_split.txt"), 2, lambda f, where: parse_number(f[0], int, where) == 1
    )
    boxes = _by_id(
        annotation("bounding_boxes.txt"),
        5,
        lambda f, where: [parse_number(v, float, where) for v in f],
    )
    classes = _by_id(annotation("classes.txt"), 2, lambda fields, where: fields[0])
    for name, table in (
        ("image_class_labels.txt", labels),
        ("train_test_split.txt", is_train),
        ("bounding_boxes.txt", boxes),
    ):
        if table.keys() != paths.keys():
            odd = sorted(table.keys() ^ paths.keys())
            raise NearidError(
                f"{annotation(name)}: image ids differ from images.txt "
                f"({len(odd)} ids, first: {odd[:5]})"
            )
    unknown = sorted({c for c in labels.values() if c not in classes})
    if unknown:
        raise NearidError(
            f"{annotation('image_class_labels.txt')}: class ids {unknown[:5]} not in classes.txt"
        )
    return CubTables(paths, labels, is_train, boxes, classes)


def _by_id(path: Location, n_fields: int, value: Callable[[list[str], str], T]) -> dict[int, T]:
    """id -> value(other fields, where) for each line; ids must be unique positive integers."""
    table: dict[int, T] = {}
    for number, fields in read_text_rows(path, n_fields):
        where = f"{path}:{number}"
        key = parse_number(fields[0], int, where)
        if key < 1 or key in table:
            raise NearidError(f"{where}: id {key} is {'repeated' if key in table else 'not >= 1'}")
        table[key] = value(fields[1:], where)
    return table


class CubSource(DatasetSource):
    Config = CubConfig
    config: CubConfig
    label = "cub"

    def list_items(self) -> list[SourceItem]:
        tables = read_cub(self.annotation)
        category_of = self._categories(tables.classes)
        wanted_split = {"train": True, "test": False}.get(self.config.split)
        segmentations = FileIndex(self._segmentations) if self.config.segmentations else None
        entries = []
        for image_id in sorted(tables.paths):
            class_id = tables.labels[image_id]
            if class_id not in category_of:
                continue
            if wanted_split is not None and tables.is_train[image_id] != wanted_split:
                continue
            relative = PurePosixPath(tables.paths[image_id])
            ref = {
                "path": f"images/{relative}",
                "image_id": image_id,
                "class_id": class_id,
                "is_train": tables.is_train[image_id],
                "bbox_xywh": tables.boxes[image_id],
            }
            if segmentations is not None:
                mask = relative.with_suffix(".png")  # relative: moving the archive changes nothing
                if segmentations.is_file(mask):
                    ref["mask"] = mask.as_posix()
            entries.append((tables.classes[class_id], category_of[class_id], ref))
        return number_views(entries)

    def load(self, item: SourceItem) -> SourceRecord:
        x, y, width, height = item.ref["bbox_xywh"]
        mask_path = item.ref.get("mask")
        return decode_record(
            self.read_file(item.ref["path"]),
            max_pixels=self.config.max_pixels,
            mask=(self.read_file(mask_path, root=self._segmentations) if mask_path else None),
            mask_threshold=SEGMENTATION_THRESHOLD,
            box=(x, y, x + width, y + height),
        )

    @cached_property
    def _segmentations(self) -> Location:
        # A separate archive the config names: where it lies is the user's choice, not the root's.
        return storage.location(self.config.segmentations or ".")

    def _categories(self, classes: dict[int, str]) -> dict[int, str]:
        """class id -> category for the kept classes."""
        groups = FPR_GROUPS if self.config.groups == "fpr" else self.config.groups
        if groups is None:
            return dict.fromkeys(classes, "bird")
        category_of: dict[int, str] = {}
        for group, class_ids in groups.items():
            for class_id in class_ids:
                if class_id not in classes:
                    raise NearidError(
                        f"cub groups: class id {class_id} ({group}) is not in classes.txt"
                    )
                if class_id in category_of:
                    raise NearidError(
                        f"cub groups: class id {class_id} is in both {category_of[class_id]} and {group}"
                    )
                category_of[class_id] = group
        return category_of
