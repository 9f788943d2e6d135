"""Every number a pipeline can set has a range in its typed config, so a bad value fails up front
with the key's name instead of dropping inputs or failing deep inside a stage."""

from __future__ import annotations

import copy
import types
import typing
from pathlib import Path
from typing import Any

import annotated_types
import pytest
from pydantic import BaseModel

from nearid_data.build import build
from nearid_data.config import PipelineConfig
from nearid_data.distractors.registry import GENERATORS
from nearid_data.errors import NearidError
from nearid_data.segment.registry import DETECTORS, SEGMENTERS
from nearid_data.sources import SOURCES
from nearid_data.stages import STAGES
from nearid_data.vision.embedders import EMBEDDERS
from tests.build_helpers import cli
from tests.conftest import TINY_DEMO, write_pipeline


def _config_models() -> list[type[BaseModel]]:
    models: list[type[BaseModel]] = [PipelineConfig]
    for registry in (STAGES, SOURCES, SEGMENTERS, DETECTORS, GENERATORS, EMBEDDERS):
        models += [registry.load(name).Config for name in registry.names()]
    return models


def _is_number(annotation: Any) -> bool:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_is_number(a) for a in typing.get_args(annotation) if a is not type(None))
    return annotation in (int, float)


@pytest.mark.parametrize("model", _config_models(), ids=lambda m: m.__qualname__)
def test_every_numeric_setting_has_a_lower_bound(model: type[BaseModel]) -> None:
    unbounded = [
        name
        for name, info in model.model_fields.items()
        if _is_number(info.annotation)
        and not any(isinstance(m, (annotated_types.Ge, annotated_types.Gt)) for m in info.metadata)
    ]
    assert not unbounded, f"{model.__qualname__}: {unbounded}"


@pytest.mark.parametrize("value", ["-5", "0"])
def test_a_shard_size_below_one_is_a_clear_error(value: str) -> None:
    from nearid_data.config import apply_overrides

    raw = apply_overrides(copy.deepcopy(TINY_DEMO), [f"ingest.shard_size={value}"])
    with pytest.raises(NearidError, match=r"stages\.ingest\.shard_size: .*greater than"):
        PipelineConfig.from_dict(raw)


def test_split_fractions_and_sizes_are_checked() -> None:
    for rule in ({"fractions": {"train": 1.5, "test": -0.5}}, {"sizes": {"train": -1}}):
        raw = {**TINY_DEMO, "stages": {**TINY_DEMO["stages"], "splits": rule}}
        with pytest.raises(NearidError, match=r"stages\.splits"):
            PipelineConfig.from_dict(raw)


# --- names that become paths, and where a build may go ------------------------------------------


@pytest.mark.parametrize(
    "override",
    [
        "name=../../x",
        'splits.fractions={"../../../x": 0.5, "train": 0.5}',
        "splits.remainder=/tmp/x",
        'galleries.groups={"../g": ["a"]}',
    ],
)
def test_names_that_become_paths_must_be_safe(tmp_path: Path, override: str) -> None:
    pipeline = write_pipeline(
        tmp_path / "p.yaml",
        {**TINY_DEMO, "stages": {**TINY_DEMO["stages"], "galleries": {}}},
    )
    result = cli("build", "--pipeline", str(pipeline), "--set", override, check=False)
    assert result.returncode == 2 and "not a safe name" in result.stderr, result.stderr
    assert not (tmp_path / "x").exists() and "Traceback" not in result.stderr


def test_out_overlapping_the_source_root_is_refused_before_writing(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    (root / "bob").mkdir(parents=True)
    raw = {
        "name": "p",
        "source": {"name": "imagefolder", "root": str(root)},
        "stages": {"ingest": {}},
    }
    pipeline = write_pipeline(tmp_path / "p.yaml", raw)
    for out in (root, root / "build", tmp_path):
        before = sorted(tmp_path.rglob("*"))
        result = cli("build", "--pipeline", str(pipeline), "--out", str(out), check=False)
        assert result.returncode == 2 and "overlap" in result.stderr
        assert sorted(tmp_path.rglob("*")) == before
        # The Python API refuses it the same way.
        with pytest.raises(NearidError, match="overlap"):
            build(PipelineConfig.from_dict(raw), out=out)
        assert sorted(tmp_path.rglob("*")) == before
