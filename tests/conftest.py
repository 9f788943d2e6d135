"""Shared fixtures: a tiny demo pipeline and offline Hugging Face caches."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from nearid_data.config import PipelineConfig
from tests.tiny_models import offline_hub

TINY_DEMO: dict[str, Any] = {
    "name": "tiny",
    "seed": 7,
    "source": {"name": "demo", "n_identities": 8, "views": 3, "image_size": 96},
    "stages": {
        "ingest": {"shard_size": 8},
        "segment": {"dilate_px": 5},
        "distractors": {"generators": [{"name": "cut_paste"}]},
        "splits": {"fractions": {"train": 0.5, "val": 0.25, "test": 0.25}},
        "export": {"max_shard_samples": 6},
    },
}


@pytest.fixture(autouse=True)
def no_network(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach the network or a real cache (nor wait on one)."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    offline_hub(monkeypatch, tmp_path_factory.mktemp("hf_home"))


def tiny_pipeline(**overrides: Any) -> PipelineConfig:
    raw = copy.deepcopy(TINY_DEMO)
    for key, value in overrides.items():
        raw[key] = value
    return PipelineConfig.from_dict(raw)


def write_pipeline(path: Path, raw: dict[str, Any] | None = None) -> Path:
    path.write_text(yaml.safe_dump(raw or TINY_DEMO, sort_keys=False), encoding="utf-8")
    return path
