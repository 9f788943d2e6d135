"""The command line as a user types it: default pipeline, shipped pipelines, overrides, hints."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nearid_data.config import PipelineConfig, apply_overrides
from nearid_data.errors import NearidError
from nearid_data.pipeline_files import resolve_pipeline, shipped_pipelines
from tests.build_helpers import ROOT
from tests.conftest import TINY_DEMO, write_pipeline


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m nearid_data ARGS`` from ``cwd``, with this checkout importable."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "nearid_data", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )


def test_build_stage_as_typed_uses_the_shipped_demo_and_its_upstream(tmp_path: Path) -> None:
    result = run("build", "--stage", "distractors", "--set", "source.n_identities=4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "pipeline: demo.yaml" in result.stderr
    built = tmp_path / "build/demo"
    stages = sorted(p.name for p in built.iterdir() if not p.name.startswith("."))
    assert stages == ["distractors", "ingest", "segment"]
    assert (built / "distractors/_summary.json").is_file()


def test_build_without_pipeline_prefers_local_nearid_yaml(tmp_path: Path) -> None:
    write_pipeline(tmp_path / "nearid.yaml", {**TINY_DEMO, "name": "mine"})
    result = run("build", "--stage", "ingest", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "pipeline: nearid.yaml" in result.stderr
    assert (tmp_path / "build/mine/ingest/_summary.json").is_file()


def test_shipped_pipelines_by_name_and_listed_one_line_each(tmp_path: Path) -> None:
    shipped = shipped_pipelines()
    assert {"demo", "fpr-cub"} <= set(shipped)
    assert resolve_pipeline("fpr-cub") == shipped["fpr-cub"]
    # The checkout's pipelines/ folder shows the same files: one copy of each.
    assert (ROOT / "pipelines/demo.yaml").resolve() == shipped["demo"].resolve()
    listing = run("pipelines", cwd=tmp_path)
    lines = listing.stdout.splitlines()
    assert [line.split()[0] for line in lines] == list(shipped)
    assert all(len(line.split(maxsplit=1)) == 2 for line in lines)  # every one described
    with pytest.raises(NearidError, match="did you mean 'fpr-cub'"):
        resolve_pipeline("fpr-cb")


def test_version_and_stage_help(tmp_path: Path) -> None:
    from nearid_data import __version__

    assert run("--version", cwd=tmp_path).stdout.strip() == f"nearid-data {__version__}"
    assert "export-fpr" in " ".join(run("build", "--help", cwd=tmp_path).stdout.split())


def test_switching_the_source_starts_from_its_defaults(tmp_path: Path) -> None:
    demo = yaml.safe_load(shipped_pipelines()["demo"].read_text())
    (tmp_path / "a").mkdir()
    for order in (["source.name=imagefolder", f"source.root={tmp_path}"],
                  [f"source.root={tmp_path}", "source.name=imagefolder"]):  # fmt: skip
        raw = apply_overrides(copy.deepcopy(demo), order)
        assert raw["source"] == {"name": "imagefolder", "root": str(tmp_path)}
        PipelineConfig.from_dict(raw)
    # Re-stating the same name keeps the other keys.
    same = apply_overrides({"source": {"name": "demo", "views": 3}}, ["source.name=demo"])
    assert same["source"] == {"name": "demo", "views": 3}
    # The pipeline's own name only renames it; an unsafe one is refused, nothing written.
    renamed = PipelineConfig.from_dict(apply_overrides(copy.deepcopy(demo), ["name=mine"]))
    assert renamed.name == "mine" and renamed.source == demo["source"]
    result = run("build", "--set", "name=../../x", cwd=tmp_path / "a")
    assert result.returncode == 2 and "not a safe name" in result.stderr
    assert not any((tmp_path / "a").iterdir()) and not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("overrides", "hint"),
    [
        (["source.n_identites=3"], "did you mean 'n_identities'"),
        (["segmnt.dilate_px=3"], "did you mean 'segment'"),
        (["segment.dilate=3"], "did you mean 'dilate_px'"),
        (["segment.segmenter.name=clasical"], "did you mean 'classical'"),
    ],
)
def test_unknown_keys_get_a_suggestion(overrides: list[str], hint: str) -> None:
    with pytest.raises(NearidError, match=hint):
        PipelineConfig.load(shipped_pipelines()["demo"], overrides)


def test_unknown_stage_gets_a_suggestion(tmp_path: Path) -> None:
    result = run("build", "--stage", "distractor", cwd=tmp_path)
    assert result.returncode == 2
    assert "did you mean 'distractors'" in result.stderr
    assert not (tmp_path / "build").exists()


def test_changing_a_build_says_what_it_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from nearid_data.build import build
    from tests.conftest import tiny_pipeline

    build(tiny_pipeline(), out=tmp_path, stage="ingest")
    fewer = {**TINY_DEMO["source"], "n_identities": 4}  # 12 views in 2 shards instead of 24 in 3
    with caplog.at_level("INFO", logger="nearid_data"):
        build(tiny_pipeline(source=fewer), out=tmp_path, stage="ingest")
    lines = [r.getMessage() for r in caplog.records]
    replaced = f"replaced the existing {tmp_path / 'ingest'} (24 samples in 3 shards"
    assert any(line.startswith(f"ingest       {replaced}") for line in lines)
    stale = [line for line in lines if "stale" in line]
    assert stale == [f"removed 1 stale shards from {tmp_path / 'ingest'} (units no longer planned)"]
