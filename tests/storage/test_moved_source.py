"""Source references are relative to the source's locations: moving the data rebuilds nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

from nearid_data.build import build
from nearid_data.config import PipelineConfig
from nearid_data.engine.manifest import manifest_path, read_manifest
from tests.source_fixtures import write_cub


def _pipeline(source: dict[str, object]) -> PipelineConfig:
    return PipelineConfig.from_dict(
        {
            "name": "moved",
            "seed": 1,
            "source": source,
            "stages": {
                "ingest": {"shard_size": 4},
                "segment": {"segmenter": {"name": "classical"}},
            },
        }
    )


def test_moving_the_source_folder_keeps_every_fingerprint(tmp_path: Path) -> None:
    written = write_cub(tmp_path / "cub")  # images and a separate segmentations folder
    out = tmp_path / "build"
    first = build(_pipeline(written.source), out=out)
    assert first[0].n_kept > 0 and all(s.units_run == len(s.shards) for s in first)
    rows = [
        row
        for entry in first[0].shards
        for row in read_manifest(manifest_path(out / "ingest", entry.unit)).rows
    ]
    assert any(row.status == "kept" for row in rows)

    shutil.move(tmp_path / "cub", tmp_path / "moved")
    moved = {
        key: str(value).replace(str(tmp_path / "cub"), str(tmp_path / "moved"))
        for key, value in written.source.items()
    }
    assert moved["segmentations"] != written.source["segmentations"]
    again = build(_pipeline(moved), out=out)
    assert [s.fingerprint for s in again] == [s.fingerprint for s in first]
    assert [(s.units_run, s.units_skipped) for s in again] == [(0, len(s.shards)) for s in first]
