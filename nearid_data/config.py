"""Pipeline YAML -> typed, validated configuration.

A pipeline names a source and an ordered mapping of stages; each stage's input is the previous
stage's output. Every section is validated by the typed config of the class it configures, so
unknown keys and wrong types fail up front with the key's full path.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field

from nearid_data.engine import storage
from nearid_data.engine.executor import ExecutorConfig, StageFactory
from nearid_data.engine.stage import Stage, StageConfig, StageContext
from nearid_data.engine.storage import Location, location
from nearid_data.errors import NearidError
from nearid_data.sample import JSON_FIELD
from nearid_data.sources.base import SourceConfig
from nearid_data.strict import SafeName, StrictModel, validated
from nearid_data.suggest import did_you_mean


class PipelineConfig(StrictModel):
    name: SafeName
    seed: int = Field(0, ge=0, lt=2**63)
    out: str | None = None
    source: dict[str, Any]
    stages: dict[str, dict[str, Any]]
    executor: dict[str, Any] = Field(default_factory=lambda: {"name": "local"})
    """Where units run: ``{name: local}`` or ``{name: ray, address: auto, retries: 2}``."""

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> PipelineConfig:
        pipeline = validated(cls, raw, "")
        for name in pipeline.stages:
            pipeline.stage_config(name)
        pipeline.source_config()
        pipeline.executor_config()
        pipeline.check_fields()
        return pipeline

    @classmethod
    def load(cls, path: Path, overrides: list[str] = ()) -> PipelineConfig:  # type: ignore[assignment]
        raw = read_yaml(path)
        roots = [*cls.model_fields, *(raw.get("stages") or {})]
        return cls.from_dict(apply_overrides(raw, overrides, roots))

    def stage_config(self, name: str) -> StageConfig:
        from nearid_data.stages import STAGES

        stage_cls = STAGES.load(name)
        return validated(stage_cls.Config, self.stages[name] or {}, f"stages.{name}.")

    def source_config(self) -> SourceConfig:
        from nearid_data.sources import SOURCES

        raw = dict(self.source)
        name = raw.pop("name", None)
        if not isinstance(name, str):
            raise NearidError("source.name: required (one of: " + ", ".join(SOURCES.names()) + ")")
        return validated(SOURCES.load(name).Config, raw, "source.")

    def executor_config(self) -> ExecutorConfig:
        from nearid_data.executors import EXECUTORS

        raw = dict(self.executor)
        name = raw.pop("name", "local")
        return validated(EXECUTORS.load(name).Config, raw, "executor.")

    def stage_factory(self) -> StageFactory:
        """What a worker rebuilds this pipeline's stages with: picklable plain data."""
        return partial(build_pipeline_stage, self.model_dump(mode="json"))

    def check_out(self, out: Location) -> None:
        """Refuse a build directory that is the source root, lies inside it or holds it, on a
        local disk or in one object store: a build must neither write among its inputs nor read
        its own outputs as inputs."""
        root = self.source.get("root")
        if isinstance(root, str) and storage.overlaps(out, location(root)):
            raise NearidError(
                f"--out {str(out)!r} and source.root {root!r} overlap: the build directory must "
                "be outside the source folder and must not contain it"
            )

    def upstream_of(self, name: str) -> str | None:
        order = list(self.stages)
        position = order.index(name)
        return order[position - 1] if position else None

    def build_stage(
        self, name: str, build_dir: Location, upstream: str | None, device: str = "cpu"
    ) -> Stage:
        from nearid_data.stages import STAGES

        if name not in self.stages:
            raise NearidError(
                f"stage {name!r} is not in pipeline {self.name!r}: {list(self.stages)}"
            )
        ctx = StageContext(build_dir=build_dir, pipeline=self, upstream=upstream, device=device)
        return STAGES.load(name)(self.stage_config(name), ctx)

    def check_fields(self) -> None:
        """Every stage's needed fields are added by a stage before it and kept by those between."""
        available = {JSON_FIELD}
        for name in self.stages:
            stage = self.build_stage(name, Path("."), self.upstream_of(name))
            missing = stage.needs - available
            if missing:
                raise NearidError(
                    f"stage {name!r} needs fields {sorted(missing)} that no earlier stage adds "
                    f"or an earlier stage drops (available: {sorted(available)})"
                )
            kept = stage.keeps()
            available = (available if kept is None else available & kept) | stage.adds()


def build_pipeline_stage(
    pipeline: dict[str, Any], name: str, build_dir: Path, upstream: str | None, device: str
) -> Stage:
    """Stage ``name`` of the pipeline ``pipeline`` (as dumped to JSON), for a worker."""
    return PipelineConfig.from_dict(pipeline).build_stage(name, build_dir, upstream, device)


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NearidError(f"pipeline file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise NearidError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise NearidError(
            f"{path}: a pipeline is a YAML mapping with 'name', 'source' and 'stages'"
        )
    return raw


def apply_overrides(
    raw: dict[str, Any], overrides: list[str], roots: list[str] | None = None
) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides (values parsed as YAML); ``segment.x`` means ``stages.segment.x``.

    ``roots``, when given, are the top-level keys an override may start with.

    Setting a section's ``name`` to another backend or source starts that section afresh: the
    keys it had belong to the old name, so only the keys set by ``--set`` are kept. The
    pipeline's own ``name`` (top level) only renames it.
    """
    applied: list[tuple[list[str], Any]] = []
    for item in overrides:
        path, sep, text = item.partition("=")
        if not sep or not path:
            raise NearidError(f"--set expects key=value, got {item!r}")
        keys = path.split(".")
        stages = raw.get("stages") or {}
        if keys[0] not in raw and keys[0] in stages:
            keys = ["stages", *keys]
        if roots is not None and keys[0] not in roots:
            raise NearidError(
                f"--set {path}: unknown key {keys[0]!r}{did_you_mean(keys[0], roots)}"
            )
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise NearidError(f"--set {path}: value is not valid YAML: {exc}") from None
        node = _mapping_at(raw, keys[:-1], path)
        if len(keys) > 1 and keys[-1] == "name" and node.get("name", value) != value:
            node.clear()
            for earlier, earlier_value in applied:
                if earlier[: len(keys) - 1] == keys[:-1]:
                    _mapping_at(raw, earlier[:-1], path)[earlier[-1]] = earlier_value
        node[keys[-1]] = value
        applied.append((keys, value))
    return raw


def _mapping_at(raw: dict[str, Any], keys: list[str], path: str) -> dict[str, Any]:
    node = raw
    for key in keys:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise NearidError(f"--set {path}: {key!r} is not a mapping")
        node = child
    return node
