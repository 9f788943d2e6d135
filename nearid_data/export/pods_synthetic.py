"""The synthetic training-set export: WebDataset shards of whole identities, and PODS's folders.

Input: the ``synthesize`` output. Every sample has ``image.png`` and ``json`` with ``kind`` one of
``real``, ``synthetic_positive``, ``synthetic_negative``, ``cut_paste`` (see docs/FORMAT.md), so
the shards under ``data/train/`` are uniform and an identity's four sets are contiguous in one
shard. A ``wids`` index ``train.wids.json`` and, materialised from the committed shards, the layout
PODS's training code (ssundaram21/personalized-rep, ``dataset/README.md``) reads:

```
pods/real/<class>/<n>.png                 the reference images
pods/synthetic_positive/<class>/<n>.png   a "synthetic dataset": one folder per instance
pods/cut_paste/<class>/<n>.png            another synthetic dataset
pods/negatives/<n>.png                    category negatives, one flat folder
pods/metadata.json                        image path -> key, identity, category, kind, record
```

A class is an instance (its identity made folder-safe with ``slug``), as in ``export-pods``.
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
from nearid_data.export.wids_index import write_wids_indexes
from nearid_data.sample import JSON_FIELD, KEY_FIELD, Sample, meta, slug

FIELDS = ("image.png", JSON_FIELD)
KINDS = ("real", "synthetic_positive", "synthetic_negative", "cut_paste")
FLAT_NEGATIVES = "negatives"


def folder_path(info: dict[str, Any], n: int) -> str:
    """Where an image of ``kind`` goes in the PODS layout (``n``: its number in that folder)."""
    if info["kind"] == "synthetic_negative":
        return f"{FLAT_NEGATIVES}/{n}.png"
    return f"{info['kind']}/{slug(info['identity'])}/{n}.png"


def write_synthetic_layout(root: Path, samples: Iterable[Sample]) -> None:
    counts: Counter[str] = Counter()
    metadata: dict[str, dict[str, Any]] = {}
    for sample in samples:
        info = meta(sample)
        folder = folder_path(info, 0).rsplit("/", 1)[0]
        path = folder_path(info, counts[folder])
        counts[folder] += 1
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(sample["image.png"])
        metadata[path] = {"key": sample[KEY_FIELD], **info}
    (root / "metadata.json").write_bytes(dump_json(metadata))


class SyntheticExportConfig(StageConfig):
    identities_per_shard: int = Field(64, ge=1)


class SyntheticExportStage(Stage):
    name = "export-synthetic"
    whole_samples = True
    Config = SyntheticExportConfig
    config: SyntheticExportConfig
    needs = frozenset({"image.png"})

    def adds(self) -> frozenset[str]:
        return frozenset(FIELDS)

    def plan(self) -> list[WorkUnit]:
        return identity_units(
            self.upstream_catalog.rows,
            prefix="data/train/train",
            per_unit=self.config.identities_per_shard,
        )

    def run(self, unit: WorkUnit) -> Iterator[Outcome]:
        for sample in self.upstream_catalog.stream(unit.payload["rows"]):
            key = sample[KEY_FIELD]
            if meta(sample).get("kind") not in KINDS:
                raise NearidError(
                    f"sample {key!r} has no synthetic-set kind: put 'synthesize' before '{self.name}'"
                )
            yield Kept({KEY_FIELD: key, **{f: sample[f] for f in FIELDS}})

    def finalize(self, build_dir: Location) -> None:
        stage_dir = self.ctx.stage_dir(self.name)
        write_wids_indexes(stage_dir)
        units = [unit.name for unit in self.plan()]
        materialise(
            stage_dir / "pods",
            lambda root: write_synthetic_layout(
                root, committed_samples(stage_dir, units, ("image.png",))
            ),
        )
