"""Helpers for end-to-end build tests: run the CLI, collect shard bytes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from nearid_data.engine.catalog import Catalog

ROOT = Path(__file__).resolve().parents[1]


def stage_samples(stage_dir: Path) -> list[dict[str, Any]]:
    """A stage's kept samples in shard order, whole: the catalog joins the fields its shards
    inherit from earlier stages (a stage's tar holds only what it added or changed)."""
    catalog = Catalog(stage_dir)
    return [catalog.fetch(row) for row in catalog.rows]


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "nearid_data", *args], cwd=ROOT, capture_output=True, text=True
    )
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def shard_bytes(build_dir: Path) -> dict[str, bytes]:
    """Every tar of every stage, plus the export's indexes and card, by relative path."""
    paths = [
        *build_dir.rglob("*.tar"),
        *build_dir.glob("export/*.wids.json"),
        build_dir / "export/README.md",
    ]
    return {
        p.relative_to(build_dir).as_posix(): p.read_bytes() for p in sorted(paths) if p.exists()
    }
