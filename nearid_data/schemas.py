"""JSON Schemas of the manifests, generated from their typed records into ``manifests/``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nearid_data.engine.atomic import write_json_atomic
from nearid_data.engine.manifest import ShardManifest, StageSummary
from nearid_data.strict import StrictModel

SCHEMAS: dict[str, type[StrictModel]] = {
    "shard-manifest.schema.json": ShardManifest,
    "stage-summary.schema.json": StageSummary,
}


def schema_of(name: str) -> dict[str, Any]:
    return SCHEMAS[name].model_json_schema()


def write_schemas(directory: Path) -> list[Path]:
    paths = []
    for name in SCHEMAS:
        path = directory / name
        write_json_atomic(path, schema_of(name))
        paths.append(path)
    return paths
