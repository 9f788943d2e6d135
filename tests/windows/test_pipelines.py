"""The shipped pmg pipelines build on the raw layouts, with the root given on the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from nearid_data.cli import main
from nearid_data.engine.manifest import read_summary
from tests.history_layouts import write_flickr, write_pog, write_ser

PIPELINES = Path(__file__).parents[2] / "pipelines"


@pytest.mark.parametrize(
    ("name", "writer", "dataset"),
    [
        ("pmg-flickr", write_flickr, "FLICKR"),
        ("pmg-pog", write_pog, "POG"),
        ("pmg-ser", write_ser, "SER"),
    ],
)
def test_pipeline_builds_from_the_raw_layout(
    tmp_path: Path, name: str, writer, dataset: str
) -> None:  # type: ignore[no-untyped-def]
    source, sequences = writer(tmp_path / "raw")
    out = tmp_path / "build"
    argv = ["build", "--pipeline", str(PIPELINES / f"{name}.yaml"), "--out", str(out)]
    assert main([*argv, "--set", f"source.root={source['root']}"]) == 0
    summary = read_summary(out / "windows")
    assert summary is not None and summary.models["dataset"] == dataset
    # Every user has >= 6 items: 3 windows each at least, the last two evaluate.
    assert summary.models["users"] == {split: len(sequences) for split in ("train", "val", "test")}
    assert (out / "windows" / "json" / "test.json").is_file()
