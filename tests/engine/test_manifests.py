import json
from pathlib import Path

import jsonschema

from nearid_data.schemas import SCHEMAS, schema_of

ROOT = Path(__file__).resolve().parents[2]


def test_committed_schemas_match_the_records() -> None:
    for name in SCHEMAS:
        committed = json.loads((ROOT / "manifests" / name).read_text())
        assert committed == schema_of(name), (
            f"regenerate with: python -m nearid_data schemas ({name})"
        )


def test_a_built_manifest_validates_against_its_schema(tmp_path: Path) -> None:
    from nearid_data.build import build
    from tests.conftest import tiny_pipeline

    build(tiny_pipeline(stages={"ingest": {"shard_size": 4}, "segment": {}}), out=tmp_path)
    summary = json.loads((tmp_path / "segment/_summary.json").read_text())
    jsonschema.validate(summary, schema_of("stage-summary.schema.json"))
    for path in (tmp_path / "segment").glob("*.manifest.json"):
        jsonschema.validate(json.loads(path.read_text()), schema_of("shard-manifest.schema.json"))
