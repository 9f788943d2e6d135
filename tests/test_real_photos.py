"""Real photographs end to end: scikit-image's photos as an imagefolder, through the CLI."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from nearid_data.engine.manifest import manifest_path, read_manifest, read_summary
from tests.test_cli import run

pytest.importorskip("skimage")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _example(name: str = "real_photos"):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_real_photos_build_end_to_end(tmp_path: Path) -> None:
    photos = _example().write_photo_folder(tmp_path / "my_photos", long_side=128)
    result = run(
        "build", "--set", "source.name=imagefolder", "--set", "source.root=my_photos",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "verify ok" in result.stderr
    build_dir = tmp_path / "build/demo"
    ingest = read_summary(build_dir / "ingest")
    assert ingest is not None and ingest.n_in == len(photos) == 21
    distractors = read_summary(build_dir / "distractors")
    assert distractors is not None
    rows = [
        row
        for entry in distractors.shards
        for row in read_manifest(manifest_path(build_dir / "distractors", entry.unit)).rows
    ]
    kept = [row for row in rows if row.status == "kept"]
    assert len(rows) == distractors.n_in and len(kept) >= 5
    # No ghost of the reference: every kept distractor's donor covers its subject.
    assert all(row.qa["cut_paste"]["subject_covered"] >= 0.85 for row in kept)
    assert all(row.reason and row.detail for row in rows if row.status == "rejected")
    export = build_dir / "export"
    card = (export / "README.md").read_text()
    assert "configs:" in card
    first = json.loads(next((export / "data").rglob("*.manifest.json")).read_text())
    assert first["rows"], "the export holds samples"
    # The docs' before/after sheets come from this build through examples/contact_sheet.py.
    sheet = _example("contact_sheet").contact_sheet(build_dir, tile=40)
    pairs_per_row = _example("contact_sheet").PAIRS_PER_ROW
    assert sheet.height > 40 * (len(kept) // pairs_per_row) and sheet.width > 80 * pairs_per_row
