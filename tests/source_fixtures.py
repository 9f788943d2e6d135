"""Writers of tiny raw datasets in the official on-disk formats of the real sources.

For tests of the source adapters and of the stages that read them (galleries, splits). Each
writer builds a dataset under ``root`` and returns a :class:`Written`: the ``source`` mapping to
put in a pipeline, and what the adapter must list (identity -> number of views, identity ->
category, the image files in listing order). Images are ``valid_image`` with a distinct seed
each, JPEG-encoded, so no two are alike. Sizes are (height, width).

:func:`source_of` builds the adapter a ``source`` mapping names, as a pipeline would;
:func:`ingest` runs the ingest stage alone and returns every manifest row.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from nearid_data.build import build
from nearid_data.config import PipelineConfig
from nearid_data.engine.manifest import SampleRow, manifest_path, read_manifest, read_summary
from nearid_data.sources import SOURCES
from nearid_data.sources.base import Source
from tests.badimages import valid_image

SIZE = (40, 48)
SHIFTS = ("in_distribution", "pose", "distractors", "pose_and_distractors")
CAR_NAMES = (
    "AM General Hummer SUV 2000",
    "Acura RL Sedan 2012",
    "Aston Martin V8 Vantage Convertible 2012",
    "BMW M3 Coupe 2012",
    "Land Rover Range Rover SUV 2012",
    "Mercedes-Benz C-Class Sedan 2012",
)
CAR_BBOX = (3, 2, 30, 25)
"""The devkit box of every car: 1-based, inclusive (x1, y1, x2, y2)."""
CUB_BBOX = (4.5, 3.25, 20.0, 18.0)
"""The CUB box of every bird: x, y, width, height."""


@dataclass
class Written:
    source: dict[str, Any]
    """The ``source:`` mapping of a pipeline reading it."""
    views: dict[str, int] = field(default_factory=dict)
    """identity -> number of views the adapter must list."""
    categories: dict[str, str] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    """Image files written, in listing order (empty for parquet and Arrow layouts)."""
    tables: dict[str, Any] = field(default_factory=dict)
    """Writer-specific content: the devkit's .mat variables by relative path."""

    @property
    def root(self) -> Path:
        return Path(self.source["root"])

    @property
    def n_items(self) -> int:
        return sum(self.views.values())

    def add(self, identity: str, category: str, path: Path | None = None) -> None:
        self.views[identity] = self.views.get(identity, 0) + 1
        self.categories[identity] = category
        if path is not None:
            self.files.append(path)


def jpeg(seed: int, size: tuple[int, int] = SIZE) -> bytes:
    ok, buffer = cv2.imencode(".jpg", valid_image(seed, size)[..., ::-1])
    assert ok
    return buffer.tobytes()


def soft_mask(size: tuple[int, int] = SIZE) -> np.ndarray:
    """A soft mask like CUB's: 255 core, a 100-grey rim (under the > 127 cut), 0 elsewhere."""
    height, width = size
    mask = np.zeros(size, np.uint8)
    mask[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = 100
    mask[height // 3 : 2 * height // 3, width // 3 : 2 * width // 3] = 255
    return mask


def png(array: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(".png", array)
    assert ok
    return buffer.tobytes()


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _lines(path: Path, rows: Sequence[Sequence[object]]) -> None:
    path.write_text("".join(" ".join(map(str, row)) + "\n" for row in rows), encoding="utf-8")


def source_of(source: dict[str, Any], seed: int = 0) -> Source:
    """The adapter ``source`` configures, its config validated as a pipeline's would be."""
    pipeline = PipelineConfig.from_dict({"name": "src", "source": source, "stages": {"ingest": {}}})
    return SOURCES.load(source["name"])(pipeline.source_config(), seed=seed)


def ingest(source: dict[str, Any], out: Path, shard_size: int = 4) -> list[SampleRow]:
    """Build ``source`` through the ingest stage only; every row of its shard manifests."""
    pipeline = {"name": "src", "source": source, "stages": {"ingest": {"shard_size": shard_size}}}
    build(PipelineConfig.from_dict(pipeline), out=out)
    summary = read_summary(out / "ingest")
    assert summary is not None
    rows = [
        row
        for entry in summary.shards
        for row in read_manifest(manifest_path(out / "ingest", entry.unit)).rows
    ]
    assert summary.n_in == len(rows) and summary.n_kept + summary.n_rejected == len(rows)
    return rows


# --- CUB-200-2011 --------------------------------------------------------------------------------


def write_cub(
    root: Path,
    *,
    class_ids: Sequence[int] = (1, 2, 3),
    per_class: int = 3,
    size: tuple[int, int] = SIZE,
    segmentations: bool = True,
) -> Written:
    """CUB's five annotation files, ``images/`` and (optionally) ``segmentations/``; class ``c`` is
    named ``{c:03d}.Bird_{c}``, image ``k`` of a class is a train image when ``k`` is even."""
    classes = {cid: f"{cid:03d}.Bird_{cid}" for cid in class_ids}
    source: dict[str, Any] = {"name": "cub", "root": str(root)}
    if segmentations:
        source["segmentations"] = str(root / "segmentations")
    written = Written(source)
    images, labels, split, boxes = [], [], [], []
    for cid, name in classes.items():
        for k in range(per_class):
            image_id = len(images) + 1
            relative = f"{name}/Bird_{cid}_{k:04d}.jpg"
            path = _write(root / "images" / relative, jpeg(image_id, size))
            if segmentations:
                _write(
                    root / "segmentations" / relative.replace(".jpg", ".png"), png(soft_mask(size))
                )
            images.append((image_id, relative))
            labels.append((image_id, cid))
            split.append((image_id, int(k % 2 == 0)))
            boxes.append((image_id, *CUB_BBOX))
            written.add(name, "bird", path)
    _lines(root / "images.txt", images)
    _lines(root / "image_class_labels.txt", labels)
    _lines(root / "train_test_split.txt", split)
    _lines(root / "bounding_boxes.txt", boxes)
    _lines(root / "classes.txt", list(classes.items()))
    return written


# --- Stanford Cars ----------------------------------------------------------------------------


def car_names(n_classes: int) -> list[str]:
    return [*CAR_NAMES, *(f"Make{i} Model {i} 2012" for i in range(len(CAR_NAMES), n_classes))][
        :n_classes
    ]


def car_make(name: str) -> str:
    """The make, written out independently of the adapter's rule."""
    two_words = ("AM General", "Aston Martin", "Land Rover")
    return next((m for m in two_words if name.startswith(m)), name.split()[0])


def write_cars_devkit(
    root: Path, *, n_classes: int = 3, per_split: int = 2, size: tuple[int, int] = SIZE
) -> Written:
    """The devkit layout: ``cars_train/``, ``cars_test/`` and three .mat files, written with scipy
    when it is installed. ``tables`` holds each file's variables as ``scipy.io.loadmat(...,
    squeeze_me=True)`` returns them, for tests that stand in for scipy."""
    names = car_names(n_classes)
    written = Written({"name": "stanford-cars", "root": str(root), "layout": "devkit"})
    written.tables["devkit/cars_meta.mat"] = {"class_names": np.array(names, dtype=object)}
    fields = ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname")
    for split, mat in (
        ("train", "devkit/cars_train_annos.mat"),
        ("test", "cars_test_annos_withlabels.mat"),
    ):
        records = np.empty(n_classes * per_split, dtype=[(f, object) for f in fields])
        for index in range(len(records)):
            class_id = index % n_classes + 1  # classes interleaved, as in the real files
            fname = f"{index + 1:05d}.jpg"
            seed = 1000 * (split == "test") + index
            path = _write(root / f"cars_{split}" / fname, jpeg(seed, size))
            records[index] = (*CAR_BBOX, class_id, fname)
            written.add(names[class_id - 1], car_make(names[class_id - 1]), path)
        written.tables[mat] = {"annotations": records}
    try:
        from scipy.io import savemat
    except ImportError:
        return written
    for relative, variables in written.tables.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        savemat(root / relative, variables)
    return written


def write_cars_hf(
    root: Path,
    *,
    n_classes: int = 3,
    per_split: int = 2,
    rows_per_group: int = 2,
    size: tuple[int, int] = SIZE,
) -> Written:
    """A Hub mirror: ``data/{train,test}-00000-of-00001.parquet`` with ``image`` and a
    ``ClassLabel`` ``label`` (0-based), classes interleaved over small row groups."""
    import datasets

    names = car_names(n_classes)
    written = Written({"name": "stanford-cars", "root": str(root), "layout": "hf"})
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=names)}
    )
    for split in ("train", "test"):
        labels = [index % n_classes for index in range(n_classes * per_split)]
        images = [
            {"bytes": jpeg(1000 * (split == "test") + i, size), "path": None}
            for i in range(len(labels))
        ]
        for label in labels:
            written.add(names[label], car_make(names[label]))
        path = root / "data" / f"{split}-00000-of-00001.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        table = datasets.Dataset.from_dict({"image": images, "label": labels}, features=features)
        table.to_parquet(str(path), batch_size=rows_per_group)
    return written


# --- WildlifeReID-10k ---------------------------------------------------------------------------


def write_wildlife(
    root: Path,
    *,
    species: dict[str, str] | None = None,
    identities_per_dataset: int = 2,
    per_identity: int = 3,
    unknown_rows: int = 1,
    old_id_column: bool = False,
    size: tuple[int, int] = SIZE,
) -> Written:
    """``metadata.csv`` + ``images/<dataset>/<identity>/<n>.jpg``. ``species`` maps dataset ->
    species; identity names ("0", "1", ...) repeat across datasets, and each dataset also has
    ``unknown_rows`` rows of identity ``unknown``. Frames of an identity come in near-duplicate
    pairs (``cluster_id``)."""
    species = species or {"ZebraFish": "fish", "SeaTurtleID": "sea turtle"}
    written = Written({"name": "wildlife", "root": str(root)})
    header = ["id" if old_id_column else "image_id", "identity", "path", "species", "dataset"]
    header += ["split", "date", "orientation", "cluster_id"]
    rows = []
    for dataset, animal in species.items():
        named = [(str(i), k) for i in range(identities_per_dataset) for k in range(per_identity)]
        for identity, k in [*named, *(("unknown", k) for k in range(unknown_rows))]:
            relative = f"images/{dataset}/{identity}/{k}.jpg"
            path = _write(root / relative, jpeg(len(rows), size))
            date, side = f"2020-01-{k + 1:02d}", "left" if k % 2 else "right"
            split, cluster = "train" if k else "test", f"{identity}-{k // 2}"
            rows.append(
                [len(rows), identity, relative, animal, dataset, split, date, side, cluster]
            )
            if identity != "unknown":
                written.add(f"{dataset}/{identity}", animal, path)
    with (root / "metadata.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return written


# --- PODS ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PodsImage:
    instance: str
    split: str  # train | test | test_dense
    index: int
    test_split: str | None
    has_mask: bool


def pods_images(
    categories: Sequence[str], per_category: int, train: int, test: int, dense: int
) -> list[PodsImage]:
    """The images of a PODS-like set: per instance ``train`` references (masked), ``test``
    tagged test images (no masks) and ``dense`` tagged, masked test_dense images."""
    images = []
    for category in categories:
        for i in range(per_category):
            instance = f"{category}_{i:02d}"
            images += [PodsImage(instance, "train", k, None, True) for k in range(train)]
            images += [PodsImage(instance, "test", k, SHIFTS[k % 4], False) for k in range(test)]
            images += [
                PodsImage(instance, "test_dense", k, SHIFTS[k % 4], True) for k in range(dense)
            ]
    return images


def pods_info(categories: Sequence[str], per_category: int) -> dict[str, Any]:
    """``pods_info.json``: the first instance of each category is ``val``, the others ``test``."""
    classes = [f"{c}_{i:02d}" for c in categories for i in range(per_category)]
    return {
        "classes": classes,
        "class_to_idx": {name: index for index, name in enumerate(classes)},
        "class_to_sc": {name: name.rsplit("_", 1)[0] for name in classes},
        "class_to_split": {name: "val" if name.endswith("_00") else "test" for name in classes},
    }


def write_pods_folders(
    root: Path,
    *,
    categories: Sequence[str] = ("mug", "shoe"),
    per_category: int = 2,
    train: int = 3,
    test: int = 4,
    dense: int = 2,
    size: tuple[int, int] = SIZE,
) -> Written:
    """``pods.zip``'s layout: ``{train,test,test_dense}/<instance>/<n>.jpg``, masks in
    ``train_masks/`` and ``test_dense_masks/``, ``pods_info.json`` and ``pods_image_annos.json``
    (ids ``<split>/<instance>/<n>.jpg``). Listed splits: train and test (the adapter's default)."""
    written = Written({"name": "pods", "root": str(root), "layout": "folders"})
    annotations = {}
    for seed, image in enumerate(pods_images(categories, per_category, train, test, dense)):
        relative = f"{image.instance}/{image.index}.jpg"
        path = _write(root / image.split / relative, jpeg(seed, size))
        if image.has_mask:
            _write(root / f"{image.split}_masks" / relative, jpeg_mask(size))
        if image.split != "test_dense":
            annotations[f"{image.split}/{relative}"] = {
                "class": image.instance,
                "split": image.split,
                "test_split": image.test_split,
            }
            written.add(image.instance, image.instance.rsplit("_", 1)[0], path)
    (root / "pods_info.json").write_text(json.dumps(pods_info(categories, per_category)))
    (root / "pods_image_annos.json").write_text(json.dumps(annotations))
    return written


def jpeg_mask(size: tuple[int, int] = SIZE) -> bytes:
    """A binary mask saved as JPEG, with the compression ringing JPEG masks have."""
    ok, buffer = cv2.imencode(".jpg", (soft_mask(size) > 127).astype(np.uint8) * 255)
    assert ok
    return buffer.tobytes()


def write_pods_parquet(
    root: Path,
    *,
    categories: Sequence[str] = ("mug", "shoe"),
    per_category: int = 2,
    train: int = 3,
    test: int = 4,
    dense: int = 2,
    info: bool = True,
    size: tuple[int, int] = SIZE,
) -> Written:
    """``chaenayo/PODS``'s layout: ``data/{train,test,test_dense}-00000-of-00001.parquet`` with
    ``image``, ``mask`` (empty for test), ``label`` and ``scene_type`` (empty for train), and
    ``pods_info.json`` when ``info``. Listed splits: train and test."""
    import datasets

    written = Written({"name": "pods", "root": str(root), "layout": "hf"})
    features = datasets.Features(
        {
            "image": datasets.Image(),
            "mask": datasets.Image(),
            "label": datasets.Value("string"),
            "scene_type": datasets.Value("string"),
        }
    )
    images = pods_images(categories, per_category, train, test, dense)
    for split in ("train", "test", "test_dense"):
        rows: dict[str, list[Any]] = {"image": [], "mask": [], "label": [], "scene_type": []}
        for seed, image in enumerate(images):
            if image.split != split:
                continue
            rows["image"].append({"bytes": jpeg(seed, size), "path": None})
            rows["mask"].append(
                {"bytes": jpeg_mask(size), "path": None} if image.has_mask else None
            )
            rows["label"].append(image.instance)
            rows["scene_type"].append(image.test_split)
            if split != "test_dense":
                written.add(image.instance, image.instance.rsplit("_", 1)[0])
        path = root / "data" / f"{split}-00000-of-00001.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        datasets.Dataset.from_dict(rows, features=features).to_parquet(str(path), batch_size=4)
    if info:
        (root / "pods_info.json").write_text(json.dumps(pods_info(categories, per_category)))
    else:
        written.categories = dict.fromkeys(written.categories, "object")
    return written


# --- SynCD --------------------------------------------------------------------------------------


def write_syncd(
    root: Path,
    *,
    n_rigid: int = 2,
    n_deformable: int = 1,
    views: int = 3,
    size: tuple[int, int] = SIZE,
    mask_size: tuple[int, int] | None = None,
) -> Written:
    """``metadata.json`` + ``<stem>.jpg`` + ``masks/<stem>.jpg``; rigid entries have an Objaverse
    id (32 hex digits), deformable ones none. Listed: the rigid identities (the default)."""
    written = Written({"name": "syncd", "root": str(root)})
    entries = []
    for index in range(n_rigid + n_deformable):
        rigid = index < n_rigid
        objaverse_id = f"{index:032x}" if rigid else None
        stems = [f"{index:04d}_{k}" for k in range(views)]
        for k, stem in enumerate(stems):
            path = _write(root / f"{stem}.jpg", jpeg(10 * index + k, size))
            _write(root / "masks" / f"{stem}.jpg", jpeg_mask(mask_size or size))
            if objaverse_id is not None:
                written.add(objaverse_id, "rigid", path)
        entries.append(
            {
                "filenames": [f"{stem}.jpg" for stem in stems],
                "prompts": [f"a photo of object {index} in scene {k}" for k in range(views)],
                "original_filenames": [f"render_{k}.png" for k in range(views)],
                "objaverse_id": objaverse_id,
                "category": "rigid" if rigid else "deformable",
            }
        )
    (root / "metadata.json").write_text(json.dumps(entries))
    return written


# --- NearID -------------------------------------------------------------------------------------


def write_nearid(
    root: Path,
    *,
    n_identities: int = 4,
    splits: Sequence[str] = ("train", "val", "test"),
    size: tuple[int, int] = SIZE,
) -> Written:
    """NearID's positives as ``save_to_disk`` writes them: row ``i`` has id ``10 * i + 7`` (ids are
    sparse), 3 views when ``i`` is even, else 2 (``images3`` empty), split ``splits[i % 3]``."""
    import datasets

    written = Written({"name": "nearid", "root": str(root)})
    image, text = datasets.Image(), datasets.Value("string")
    features = datasets.Features(
        {
            "id": datasets.Value("int64"),
            "category": text,
            "category_description": text,
            **{f"images{j}": image for j in (1, 2, 3)},
            **{f"masks{j}": image for j in (1, 2, 3)},
            "n_images": datasets.Value("int64"),
            "objaverse_id": text,
            **{f"prompts{j}": text for j in (1, 2, 3)},
            "quality": text,
            "split": text,
        }
    )
    rows: dict[str, list[Any]] = {name: [] for name in features}
    for i in range(n_identities):
        n_images = 3 if i % 2 == 0 else 2
        category = ("mug", "chair")[i % 2]
        rows["id"].append(10 * i + 7)
        rows["category"].append(category)
        rows["category_description"].append(f"a {category} number {i}")
        for j in (1, 2, 3):
            present = j <= n_images
            rows[f"images{j}"].append(
                {"bytes": jpeg(10 * i + j, size), "path": None} if present else None
            )
            rows[f"masks{j}"].append(
                {"bytes": png(soft_mask(size)), "path": None} if present else None
            )
            rows[f"prompts{j}"].append(f"object {i} in scene {j}" if present else None)
            if present:
                written.add(str(10 * i + 7), category)
        rows["n_images"].append(n_images)
        rows["objaverse_id"].append(f"{i:032x}")
        rows["quality"].append("good")
        rows["split"].append(splits[i % len(splits)])
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(root))
    return written
