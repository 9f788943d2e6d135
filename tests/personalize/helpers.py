"""Tiny synthetic-data pipelines for the personalize tests: demo identities, a tiny SD model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nearid_data.build import build
from nearid_data.config import PipelineConfig
from nearid_data.engine.manifest import SampleRow, manifest_path, read_manifest, read_summary

PERSONALIZE = {
    "steps": 4,
    "checkpoint_every": 2,
    "learning_rate": 1e-2,
    "class_images": 2,
    "class_steps": 2,
    "resolution": 32,
}
SYNTHESIZE = {"positives": 2, "negatives": 2, "cut_paste": 2, "steps": 2, "min_similarity": -1.0}


def pipeline(
    model: Path, *, n_identities: int = 2, synthesize: bool = False, **personalize: Any
) -> PipelineConfig:
    stages: dict[str, Any] = {
        "ingest": {"shard_size": 8},
        "segment": {"dilate_px": 3},
        "personalize": {"model": str(model), **PERSONALIZE, **personalize},
    }
    if synthesize:
        stages |= {"synthesize": dict(SYNTHESIZE), "export-synthetic": {"identities_per_shard": 2}}
    source = {"name": "demo", "n_identities": n_identities, "views": 3, "image_size": 64}
    return PipelineConfig.from_dict({"name": "t", "seed": 5, "source": source, "stages": stages})


def rows(stage_dir: Path) -> list[SampleRow]:
    summary = read_summary(stage_dir)
    assert summary is not None
    return [
        row
        for entry in summary.shards
        for row in read_manifest(manifest_path(stage_dir, entry.unit)).rows
    ]


def adapters(out: Path) -> dict[str, bytes]:
    return {
        p.parent.name: p.read_bytes()
        for p in sorted((out / "personalize/adapters").glob("*/pytorch_lora_weights.safetensors"))
    }


__all__ = ["adapters", "build", "pipeline", "rows"]
