"""``datasets.load_dataset(folder)`` returns that folder's data, whatever else the HF cache holds."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from nearid_data.build import build
from tests.conftest import TINY_DEMO, tiny_pipeline

datasets = pytest.importorskip("datasets")


def _train_keys(export: Path) -> list[str]:
    keys = []
    for tar in sorted((export / "data/train").glob("*.tar")):
        with tarfile.open(tar) as archive:
            for member in archive.getmembers():
                if member.name.endswith(".json"):
                    keys.append(member.name.removesuffix(".json"))
    return keys


def test_two_exports_loaded_in_one_cache_each_give_their_own_rows(tmp_path: Path) -> None:
    exports = []
    for name, seed, identities in (("a", 1, 8), ("b", 2, 12)):
        source = {**TINY_DEMO["source"], "n_identities": identities}
        build(tiny_pipeline(seed=seed, source=source), out=tmp_path / name)
        exports.append(tmp_path / name / "export")  # same folder name, same `configs:` patterns
    cache = tmp_path / "hf_cache"
    for export in exports:
        rows = datasets.load_dataset(str(export), split="train", cache_dir=str(cache))
        assert rows["__key__"] == _train_keys(export)
        first = json.load(io.BytesIO(json.dumps(rows[0]["json"]).encode()))
        assert first["split"] == "train"
