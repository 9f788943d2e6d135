"""The PODS folder export: the layout PODS's own code (ssundaram21/personalized-rep) reads.

Written to ``pods/`` in the stage directory, swapped in as a whole, from the ``pods-splits`` json:

```
pods/train/<class>/<n>.png          reference images (PODS's "train" images), n = 0, 1, ...
pods/test/<class>/<n>.png           test images
pods/test_dense/<class>/<n>.png     test images the source had in PODS's test_dense split
pods/{train,test,test_dense}_masks/<class>/<n>.png   their masks, where the sample has one
pods/pods_info.json                 classes, class_to_idx, class_to_sc, class_to_split
pods/pods_image_annos.json          image id -> {class, split: train|test, test_split}
```

A class is an instance (its identity, made folder-safe with ``slug``); ``class_to_sc`` is its
category, ``class_to_split`` its class-level split (``val``/``test``). ``class_to_idx`` and the
order of ``classes`` are the source's (PODS's ``pods_info.json``, ``source.class_index``) when
every class has an index, else the sorted class names. The image id is the image's path relative
to ``pods/``; the dense split's images are ``test`` in ``pods_image_annos.json`` (PODS lists only
train and test there) and their own folder is what PODS's dense tasks read
(``downstream/run_downstream.py``: ``test_root = <root>/test_dense``, masks by swapping
``/test_dense/`` for ``/test_dense_masks/``).

Why PNG although PODS ships ``.jpg``: their loader globs ``jpg, png, JPEG, jpeg, JPG``
(``util/constants.py: IMAGE_EXTENSIONS``), so PNG is read as well, and it keeps our pixels and
masks exact. JPEG would also break their masks: test masks are found by swapping ``/test/`` for
``/test_masks/`` in the image path (same name, same extension) and binarised with ``> 0``, which
turns JPEG ringing around the subject into foreground. For train masks, run their code with
``mask_ext: png``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import Field

from nearid_data.engine.atomic import dump_json
from nearid_data.engine.catalog import committed_samples
from nearid_data.engine.stage import Kept, Outcome, Stage, StageConfig, WorkUnit
from nearid_data.engine.storage import Location
from nearid_data.errors import NearidError
from nearid_data.export.materialise import identity_units, materialise
from nearid_data.sample import JSON_FIELD, KEY_FIELD, Sample, meta, slug

EXPORTED = ("image.png", "mask.png")


def write_pods_layout(root: Path, samples: Iterable[Sample]) -> None:
    """Write ``samples`` (in identity and view order, with ``pods-splits`` json) under ``root``."""
    counts: Counter[tuple[str, str]] = Counter()
    category: dict[str, str] = {}
    class_split: dict[str, str] = {}
    class_index: dict[str, int | None] = {}
    annos: dict[str, dict[str, Any]] = {}
    for sample in samples:
        info = meta(sample)
        source = info.get("source", {})
        name = slug(info["identity"])
        folder = _folder(info["role"], source.get("pods_split"))
        n = counts[folder, name]
        counts[folder, name] += 1
        image_id = f"{folder}/{name}/{n}.png"
        _write(root / image_id, sample["image.png"])
        if "mask.png" in sample:
            _write(root / f"{folder}_masks/{name}/{n}.png", sample["mask.png"])
        split = "train" if folder == "train" else "test"
        annos[image_id] = {"class": name, "split": split, "test_split": info["test_split"]}
        category[name], class_split[name] = info["category"], info["class_split"]
        class_index[name] = source.get("class_index")
    indexed = {name: i for name, i in class_index.items() if i is not None}
    if len(indexed) == len(class_index) and len(set(indexed.values())) == len(indexed):
        classes = sorted(indexed, key=lambda name: indexed[name])
    else:
        classes, indexed = sorted(category), {name: i for i, name in enumerate(sorted(category))}
    pods_info = {
        "classes": classes,
        "class_to_idx": {name: indexed[name] for name in classes},
        "class_to_sc": {name: category[name] for name in classes},
        "class_to_split": {name: class_split[name] for name in classes},
    }
    (root / "pods_info.json").write_bytes(dump_json(pods_info))
    (root / "pods_image_annos.json").write_bytes(dump_json(annos))


def _folder(role: str, source_split: str | None) -> str:
    if role == "reference":
        return "train"
    return "test_dense" if source_split == "test_dense" else "test"


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


class PodsFoldersConfig(StageConfig):
    instances_per_unit: int = Field(100, ge=1)


class PodsFoldersStage(Stage):
    name = "export-pods"
    whole_samples = True
    Config = PodsFoldersConfig
    config: PodsFoldersConfig
    needs = frozenset({"image.png"})

    def keeps(self) -> frozenset[str]:
        return frozenset(EXPORTED)

    def plan(self) -> list[WorkUnit]:
        rows = self.upstream_catalog.rows
        return identity_units(rows, prefix="shards/pods", per_unit=self.config.instances_per_unit)

    def run(self, unit: WorkUnit) -> Iterator[Outcome]:
        for sample in self.upstream_catalog.stream(unit.payload["rows"]):
            key = sample[KEY_FIELD]
            if "role" not in meta(sample):
                raise NearidError(
                    f"sample {key!r} has no PODS role: put the 'pods-splits' stage before "
                    f"'{self.name}'"
                )
            kept = {f: sample[f] for f in EXPORTED if f in sample}
            yield Kept({KEY_FIELD: key, **kept, JSON_FIELD: sample[JSON_FIELD]})

    def finalize(self, build_dir: Location) -> None:
        stage_dir = self.ctx.stage_dir(self.name)
        units = [unit.name for unit in self.plan()]
        materialise(
            stage_dir / "pods",
            lambda root: write_pods_layout(root, committed_samples(stage_dir, units, EXPORTED)),
        )
