"""``stanford-cars``: Stanford Cars (Krause et al., 2013), devkit or Hugging Face layout.

``layout: devkit`` (the original release; reading ``.mat`` needs scipy, which is handed each
file's bytes as read through the storage seam, so the root may be a URL too)::

    root/
      devkit/cars_meta.mat             class_names: the 196 class names
      devkit/cars_train_annos.mat      annotations: bbox_x1, bbox_y1, bbox_x2, bbox_y2,
                                                    class (1-based), fname
      cars_test_annos_withlabels.mat   the same for the test images (or in devkit/)
      cars_train/<fname>, cars_test/<fname>

``layout: hf`` (Hub mirrors): parquet files named ``<split>-*.parquet`` (any folder under the
root) with an ``image`` column (``{bytes, path}``) and a ``label`` column: 0-based ints whose
names ``datasets`` stored in the file's schema (``ClassLabel``), or the class names themselves.

The identity is the model (class name, e.g. ``BMW M3 Coupe 2012``), its views numbered train
first, then test, in annotation (row) order; the category is the make (the class name's first
word, or two for AM General, Aston Martin and Land Rover), or ``car`` with ``category: car``.
The devkit box is MATLAB's 1-based inclusive (x1, y1, x2, y2); it becomes 0-based with the far
edges exclusive. ``source`` in the sample json: devkit ``path``, ``split``, ``class_id``
(1-based), ``bbox``; hf ``file``, ``row``, ``split``, ``label`` (as stored).
"""

from __future__ import annotations

import io
from functools import cached_property
from typing import Any, Literal

import numpy as np

from nearid_data.engine import storage
from nearid_data.engine.storage import Location
from nearid_data.errors import NearidError
from nearid_data.optional import import_optional
from nearid_data.sources.base import SourceItem, SourceRecord
from nearid_data.sources.formats import (
    DatasetConfig,
    DatasetSource,
    decode_record,
    number_views,
    require_columns,
    require_file,
)
from nearid_data.sources.parquet import (
    ParquetRows,
    class_label_names,
    image_cell_bytes,
    parquet_splits,
    read_parquet_columns,
    select_splits,
)

TWO_WORD_MAKES = ("AM General", "Aston Martin", "Land Rover")
ANNOTATION_FIELDS = ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname")
SPLITS = ("train", "test")


class StanfordCarsConfig(DatasetConfig):
    layout: Literal["devkit", "hf"] = "devkit"
    split: Literal["train", "test", "all"] = "all"
    category: Literal["make", "car"] = "make"


def make_of(class_name: str) -> str:
    for make in TWO_WORD_MAKES:
        if class_name.startswith(make + " "):
            return make
    return class_name.split(" ", 1)[0]


class StanfordCarsSource(DatasetSource):
    Config = StanfordCarsConfig
    config: StanfordCarsConfig
    label = "stanford-cars"

    def list_items(self) -> list[SourceItem]:
        splits = SPLITS if self.config.split == "all" else (self.config.split,)
        listing = self._devkit_entries if self.config.layout == "devkit" else self._hf_entries
        return number_views(
            (name, self._category(name), ref) for split in splits for name, ref in listing(split)
        )

    def load(self, item: SourceItem) -> SourceRecord:
        if "row" in item.ref:
            row = self._rows.row(self.root / item.ref["file"], item.ref["row"], ["image"])
            image = image_cell_bytes(row["image"], f"{item.ref['file']} row {item.ref['row']}")
            return decode_record(image, max_pixels=self.config.max_pixels)
        x1, y1, x2, y2 = item.ref["bbox"]
        return decode_record(
            self.read_file(item.ref["path"]),
            max_pixels=self.config.max_pixels,
            box=(x1 - 1, y1 - 1, x2, y2),
        )

    @cached_property
    def _rows(self) -> ParquetRows:
        return ParquetRows()

    def _category(self, class_name: str) -> str:
        return make_of(class_name) if self.config.category == "make" else "car"

    @cached_property
    def _class_names(self) -> list[str]:
        meta = self.annotation("devkit", "cars_meta.mat")
        return [str(_scalar(v, meta)) for v in np.atleast_1d(_mat_variable(meta, "class_names"))]

    def _devkit_entries(self, split: str) -> list[tuple[str, dict[str, Any]]]:
        names = self._class_names
        if split == "train":
            annotations = self.annotation("devkit", "cars_train_annos.mat")
        else:
            candidates = [
                self.annotation("cars_test_annos_withlabels.mat"),
                self.annotation("devkit", "cars_test_annos_withlabels.mat"),
            ]
            annotations = next((p for p in candidates if p.is_file()), candidates[0])
        records = np.atleast_1d(_mat_variable(annotations, "annotations"))
        require_columns(annotations, records.dtype.names or (), ANNOTATION_FIELDS)
        entries = []
        for number, record in enumerate(records):
            values = {field: _scalar(record[field], annotations) for field in ANNOTATION_FIELDS}
            try:
                class_id, bbox = (
                    int(values["class"]),
                    [int(values[f]) for f in ANNOTATION_FIELDS[:4]],
                )
            except (TypeError, ValueError):
                raise NearidError(f"{annotations}: annotation {number} is not numeric") from None
            if not 1 <= class_id <= len(names):
                raise NearidError(
                    f"{annotations}: annotation {number} has class {class_id}, "
                    f"outside 1..{len(names)} (cars_meta.mat)"
                )
            ref = {
                "path": f"cars_{split}/{values['fname']}",
                "split": split,
                "class_id": class_id,
                "bbox": bbox,
            }
            entries.append((names[class_id - 1], ref))
        return entries

    def _hf_entries(self, split: str) -> list[tuple[str, dict[str, Any]]]:
        files = parquet_splits(self.root, follow_symlinks=self.config.follow_symlinks)
        select_splits(self.root, files, [split])
        entries = []
        for path in files[split]:
            labels = read_parquet_columns(path, ["label"], required=["image"])["label"]
            names = class_label_names(path, "label")
            relative = storage.relative(path, self.root)
            for row, label in enumerate(labels):
                ref = {"file": relative, "row": row, "split": split, "label": label}
                entries.append((_label_name(label, names, f"{path} row {row}"), ref))
        return entries


def _label_name(label: Any, names: list[str] | None, where: str) -> str:
    if isinstance(label, str):
        return label
    if names is None:
        raise NearidError(f"{where}: integer label without class names (no ClassLabel metadata)")
    if not isinstance(label, int) or not 0 <= label < len(names):
        raise NearidError(f"{where}: label {label!r} is not a class index 0..{len(names) - 1}")
    return names[label]


def _mat_variable(path: Location, name: str) -> Any:
    content = _loadmat(require_file(path))
    if name not in content:
        raise NearidError(f"{path}: no variable {name!r}")
    return content[name]


def _loadmat(path: Location) -> dict[str, Any]:
    scipy_io = import_optional(
        "scipy.io", needed_for="reading the Stanford Cars devkit (.mat)", extra="sources"
    )
    try:
        data = io.BytesIO(storage.read_bytes(path))  # a few MB; scipy reads file objects
        # squeeze_me: 1 x N struct and cell arrays come back as 1-D arrays, 1 x 1 fields as scalars.
        return scipy_io.loadmat(data, squeeze_me=True)  # type: ignore[no-any-return]
    except (OSError, ValueError, scipy_io.matlab.MatReadError) as exc:
        raise NearidError(f"cannot read {path}: {exc}") from None


def _scalar(value: Any, where: Location) -> Any:
    array = np.asarray(value)
    if array.size != 1:
        raise NearidError(f"{where}: expected a single value, got an array of shape {array.shape}")
    return array.item()
