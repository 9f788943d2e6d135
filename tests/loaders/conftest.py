"""A tiny demo build with two distractor generators and one identity per shard, and the ground
truth the loader tests check against: every exported sample, read with the toolkit's tar reader."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from nearid_data.build import build
from nearid_data.engine.tario import read_samples
from tests.conftest import TINY_DEMO, tiny_pipeline

GENERATORS = ("cut_paste", "jitter")


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    stages = copy.deepcopy(TINY_DEMO["stages"])
    stages["distractors"]["generators"].append(
        {"name": "cut_paste", "id": "jitter", "scale_jitter": 0.15}
    )
    # Three views per identity, so one identity per shard: train has 4 shards, one per slot of
    # 2 ranks x 2 workers, and each slot must borrow its negatives from another slot's shards.
    stages["export"]["max_shard_samples"] = 3
    out = tmp_path_factory.mktemp("loaders_build")
    build(tiny_pipeline(stages=stages), out=out)
    return out / "export"


@pytest.fixture(scope="session")
def truth(export_dir: Path) -> dict[str, dict[str, Any]]:
    """key -> exported sample (bytes and parsed json), for every split."""
    return {s["__key__"]: s for tar in export_dir.rglob("*.tar") for s in read_samples(tar)}
