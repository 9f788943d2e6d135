"""The NearID Arrow export: index-aligned ``save_to_disk`` datasets, as NearID publishes its data.

One row per identity, in the identity order of the upstream stage. In the stage directory,
``nearid/`` holds (swapped in as a whole, so the datasets never disagree with each other):

- ``NearID/``: the positives, a ``DatasetDict({"train": ...})`` as released (NearID's
  ``sim_test.py`` reads ``load_from_disk(path)["train"]``). Columns: ``id`` (int64, the row
  position), ``category``, ``category_description``, ``images1..3``, ``masks1..3`` (PNG bytes as
  ``datasets.Image``), ``n_images``, ``objaverse_id``, ``prompts1..3``, ``quality``, then ours:
  ``identity`` (for tracing rows back to manifests) and ``split``;
- ``NearID-<name>/`` per distractor generator, also ``DatasetDict({"train": ...})``, with the
  release's columns: ``id, category, category_description, nimg1..3, n_images, objaverse_id,
  prompts1..3, quality`` (``nimgJ`` is painted on ``imagesJ``'s background, ``promptsJ`` is its
  prompt). ``<name>`` is the release's suffix for a generator configured with a NearID preset
  (``RELEASE_SUFFIXES``: ``sdxl-inpaint-nearid`` is ``SDXL_1024``), else the generator id;
- ``splits/{train,val,test}.json``: 0-based row positions, equal to the ``split`` column (NearID's
  ``--findx``).

The metadata columns are the same in every dataset. ``category_description`` describes the
object, never the scene: the source's ``source.description`` when it has one, else the caption
when the source gives no per-view scene prompt, else the category. ``promptsJ`` of the positives
is the view's scene prompt (``source.prompt``), else the caption. ``objaverse_id`` is the
source's, else ""; ``quality`` the source's label as a string, else None (NearID's column is a
string label and no QA figure of ours means the same thing).

Masks are binary (0 or 255), as segmentation wrote them; the released masks are soft (greyscale
edges), which NearID's evaluation cleans and binarises before use (``_clean_mask_pil``, then
``> 0``). Columns of a missing third view are None. NearID rows hold at most 3 views: further views
are rejected with ``view_beyond_3``. Needs ``pip install 'nearid-data[hub]'`` (``datasets``).
"""

from __future__ import annotations

import importlib.util
import shutil
from collections import Counter
from collections.abc import Iterator, Sequence
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from nearid_data.engine.atomic import dump_json
from nearid_data.engine.catalog import committed_samples
from nearid_data.engine.manifest import manifest_path, read_manifest
from nearid_data.engine.stage import (
    Kept,
    Outcome,
    Rejected,
    Stage,
    StageConfig,
    StageContext,
    WorkUnit,
)
from nearid_data.engine.storage import Location, location
from nearid_data.errors import NearidError
from nearid_data.export.materialise import identity_units, materialise
from nearid_data.sample import JSON_FIELD, KEY_FIELD, Sample, distractor_field, meta

if TYPE_CHECKING:
    from nearid_data.config import PipelineConfig

MAX_VIEWS = 3
VIEWS = range(1, MAX_VIEWS + 1)
SPLIT_FILES = ("train", "val", "test")
HUB_SPLIT = "train"
"""The one split of every released NearID dataset."""
POSITIVES_DIR = "NearID"
RELEASE_SUFFIXES = {
    "sdxl-inpaint-nearid": "SDXL_1024",
    "sdxl-inpaint-nearid-512": "SDXL",
    "flux-fill-nearid": "Flux_1024",
    "flux-fill-nearid-512": "Flux",
}
"""Generator preset -> the suffix of the NearID release made with those settings
(``scripts/upload_nearid_datasets.py``, ``SOURCES``)."""
METADATA_COLUMNS = ("category", "category_description", "objaverse_id", "quality")


def distractor_sets(pipeline: PipelineConfig) -> dict[str, str]:
    """Generator id -> its dataset folder (``NearID-<name>``), in the configured order; none
    without a distractors stage. Two generators that would share a folder are an error."""
    if "distractors" not in pipeline.stages:
        return {}
    stage_config = pipeline.stage_config("distractors")
    folders: dict[str, str] = {}
    for spec in stage_config.generators:  # type: ignore[attr-defined]
        gid = spec.id
        folder = f"{POSITIVES_DIR}-{RELEASE_SUFFIXES.get(spec.preset or '', gid)}"
        clash = [other for other, name in folders.items() if name == folder]
        if clash:
            raise NearidError(
                f"export-nearid: generators {clash[0]!r} and {gid!r} would both be written to "
                f"{folder}/; give one of them another id"
            )
        folders[gid] = folder
    return folders


def metadata_columns(views: Sequence[Sample]) -> dict[str, Any]:
    """The identity's metadata, the same in the positives and every distractor dataset."""
    info = meta(views[0])
    source = info.get("source", {})
    return {
        "category": info["category"],
        "category_description": object_description(info),
        "objaverse_id": str(source.get("objaverse_id") or ""),
        "quality": None if source.get("quality") is None else str(source["quality"]),
    }


def object_description(info: dict[str, Any]) -> str:
    """A description of the object alone: a source's per-view prompt describes the scene."""
    source = info.get("source", {})
    if source.get("description"):
        return str(source["description"])
    if info.get("caption") and not source.get("prompt"):
        return str(info["caption"])
    return str(info["category"])


def positive_row(row_id: int, views: Sequence[Sample]) -> dict[str, Any]:
    """One identity's positives row from its (up to 3) exported views, in view order."""
    row: dict[str, Any] = {
        "id": row_id,
        **metadata_columns(views),
        "n_images": len(views),
        "identity": meta(views[0])["identity"],
        "split": meta(views[0]).get("split"),
    }
    for j, view in _padded(views):
        row[f"images{j}"] = _image(view, "image.png")
        row[f"masks{j}"] = _image(view, "mask.png")
        row[f"prompts{j}"] = None if view is None else _view_prompt(view)
    return row


def distractor_row(row_id: int, views: Sequence[Sample], gid: str) -> dict[str, Any]:
    """The same identity's row of generator ``gid``'s dataset: ``nimgJ`` sits on ``imagesJ``."""
    row: dict[str, Any] = {"id": row_id, **metadata_columns(views), "n_images": len(views)}
    for j, view in _padded(views):
        row[f"nimg{j}"] = _image(view, distractor_field(gid))
        row[f"prompts{j}"] = None if view is None else meta(view)["distractors"][gid]["prompt"]
    return row


def _padded(views: Sequence[Sample]) -> Iterator[tuple[int, Sample | None]]:
    return ((j, views[j - 1] if j <= len(views) else None) for j in VIEWS)


def _image(view: Sample | None, field: str) -> dict[str, Any] | None:
    return None if view is None else {"bytes": view[field], "path": None}


def _view_prompt(view: Sample) -> str:
    info = meta(view)
    return str(info.get("source", {}).get("prompt") or info.get("caption", ""))


def _rows(stage_dir: str, units: tuple[str, ...], gid: str | None) -> Iterator[dict[str, Any]]:
    """Rows of the positives (``gid`` None) or of one generator's distractors, from the committed
    shards: a module-level generator, so ``datasets`` can fingerprint it."""
    fields = ("image.png", "mask.png") if gid is None else (distractor_field(gid),)
    samples = committed_samples(location(stage_dir), units, fields)
    for row_id, (_, group) in enumerate(groupby(samples, key=lambda s: meta(s)["identity"])):
        views = list(group)
        yield positive_row(row_id, views) if gid is None else distractor_row(row_id, views, gid)


def _features(datasets: Any, gid: str | None) -> Any:
    """The release's column order (its dataset cards), ours (``identity``, ``split``) last."""
    string, int64, image = datasets.Value("string"), datasets.Value("int64"), datasets.Image()
    head = {"id": int64, "category": string, "category_description": string}
    tail = {"n_images": int64, "objaverse_id": string}
    tail |= {f"prompts{j}": string for j in VIEWS} | {"quality": string}
    if gid is not None:
        return datasets.Features(head | {f"nimg{j}": image for j in VIEWS} | tail)
    images = {f"images{j}": image for j in VIEWS} | {f"masks{j}": image for j in VIEWS}
    return datasets.Features(head | images | tail | {"identity": string, "split": string})


class NearidArrowConfig(StageConfig):
    identities_per_unit: int = Field(1000, ge=1)


class NearidArrowStage(Stage):
    name = "export-nearid"
    whole_samples = True
    Config = NearidArrowConfig
    config: NearidArrowConfig

    def __init__(self, config: NearidArrowConfig, ctx: StageContext) -> None:
        super().__init__(config, ctx)
        if importlib.util.find_spec("datasets") is None:
            raise NearidError(
                "stage 'export-nearid' writes Hugging Face datasets and needs the package "
                "'datasets'; install it with: pip install 'nearid-data[hub]'"
            )
        self.sets = distractor_sets(ctx.pipeline)
        self.gids = list(self.sets)

    def fields(self) -> list[str]:
        return ["image.png", "mask.png", *map(distractor_field, self.gids), JSON_FIELD]

    @property
    def needs(self) -> frozenset[str]:  # type: ignore[override]
        return frozenset(self.fields())

    def adds(self) -> frozenset[str]:
        return frozenset(self.fields())

    def keeps(self) -> frozenset[str]:
        return frozenset(self.fields())

    def describe(self) -> dict[str, Any]:
        return {"distractor_sets": self.sets}

    def plan(self) -> list[WorkUnit]:
        rows = self.upstream_catalog.rows
        return identity_units(rows, prefix="shards/rows", per_unit=self.config.identities_per_unit)

    def run(self, unit: WorkUnit) -> Iterator[Outcome]:
        fields = self.fields()
        kept: Counter[str] = Counter()
        catalog = self.upstream_catalog
        rows = [catalog.kept_row(key, shard) for shard, key in unit.payload["rows"]]  # by identity
        keep = []
        for row in rows:
            keep.append(kept[row.identity] < MAX_VIEWS)
            kept[row.identity] += keep[-1]
        samples = catalog.stream((r.unit, r.key) for r, k in zip(rows, keep, strict=True) if k)
        for row, keeping in zip(rows, keep, strict=True):
            if not keeping:
                detail = f"view {row.view}: a NearID row holds the first {MAX_VIEWS} views"
                yield Rejected(
                    row.key, row.identity, row.category, row.view, "view_beyond_3", detail
                )
                continue
            sample = next(samples)
            yield Kept({KEY_FIELD: row.key, **{f: sample[f] for f in fields}})

    def finalize(self, build_dir: Location) -> None:
        stage_dir = self.ctx.stage_dir(self.name)
        units = [unit.name for unit in self.plan()]
        materialise(stage_dir / "nearid", lambda root: self._write(root, stage_dir, units))

    def _write(self, root: Path, stage_dir: Location, units: list[str]) -> None:
        import datasets

        cache = root / ".generator-cache"  # from_generator's Arrow files, removed once saved
        for gid in [None, *self.gids]:
            dataset = datasets.Dataset.from_generator(
                _rows,
                features=_features(datasets, gid),
                # a tuple, not a list: datasets splits list arguments into separate generator
                # calls, and row ids count from 0 in each call
                gen_kwargs={"stage_dir": str(stage_dir), "units": tuple(units), "gid": gid},
                cache_dir=str(cache),
            )
            folder = POSITIVES_DIR if gid is None else self.sets[gid]
            datasets.DatasetDict({HUB_SPLIT: dataset}).save_to_disk(str(root / folder))
            del dataset
        shutil.rmtree(cache)
        (root / "splits").mkdir()
        for split, positions in _split_positions(stage_dir, units).items():
            (root / "splits" / f"{split}.json").write_bytes(dump_json(positions))


def _split_positions(stage_dir: Location, units: list[str]) -> dict[str, list[int]]:
    """split -> 0-based row positions, from the kept rows of the committed manifests (rows are
    identities in manifest order); train, val and test are always written, empty if unused."""
    splits: list[str | None] = []
    seen: set[str] = set()
    for unit in units:
        for row in read_manifest(manifest_path(stage_dir, unit)).rows:
            if row.status == "kept" and row.identity not in seen:
                seen.add(row.identity)
                splits.append(row.split)
    names = [*SPLIT_FILES, *sorted({s for s in splits if s and s not in SPLIT_FILES})]
    return {name: [i for i, split in enumerate(splits) if split == name] for name in names}
