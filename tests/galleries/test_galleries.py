"""The galleries stage in builds: the demo with many views, and an image folder with a planted
near-duplicate, an identity with too few images and one outside every group."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from nearid_data.build import build
from nearid_data.config import PipelineConfig
from nearid_data.engine.manifest import SampleRow, manifest_path, read_manifest, read_summary
from nearid_data.engine.tario import read_samples
from nearid_data.sources.procedural import make_identity, render_view

DEMO = {"name": "demo", "n_identities": 8, "views": 12, "image_size": 64}


def _pipeline(source: dict, galleries: dict) -> PipelineConfig:
    stages = {"ingest": {"shard_size": 16}, "galleries": galleries}
    return PipelineConfig.from_dict({"name": "g", "seed": 3, "source": source, "stages": stages})


def _rows(stage_dir: Path) -> list[SampleRow]:
    summary = read_summary(stage_dir)
    assert summary is not None
    return [
        row for e in summary.shards for row in read_manifest(manifest_path(stage_dir, e.unit)).rows
    ]


@pytest.mark.parametrize("selection", ["random", "kmeans"])
def test_demo_roles_per_category_group(tmp_path: Path, selection: str) -> None:
    galleries = {
        "references_per_subject": 4,
        "gallery_per_subject": 5,
        "subjects_per_group": 1,
        "selection": selection,
    }
    build(_pipeline(DEMO, galleries), out=tmp_path)
    summary = read_summary(tmp_path / "galleries")
    assert summary is not None and summary.n_in == 96
    # 12 views - 4 - 5 per subject; a near-duplicate (low-res procedural views can be) is
    # replaced from the leftovers, so the sizes hold either way.
    assert summary.n_rejected == 4 * 3
    assert set(summary.rejected_by_reason) <= {"unused", "near_duplicate"}
    assert summary.models["roles"] == {"extra": 48, "gallery": 20, "reference": 16}
    samples = [
        s for tar in sorted((tmp_path / "galleries").glob("*.tar")) for s in read_samples(tar)
    ]
    roles = Counter((s["json"]["group"], s["json"]["identity"], s["json"]["role"]) for s in samples)
    for group in ("mug", "bottle", "shoe", "lamp"):
        subject, extra = sorted({i for g, i, _ in roles if g == group})
        assert (roles[group, subject, "reference"], roles[group, subject, "gallery"]) == (4, 5)
        assert roles[group, extra, "extra"] == 12
    assert all(s["json"]["category"] == s["json"]["group"] for s in samples)


def _view(index: int, view: int) -> np.ndarray:
    return render_view(make_identity(index, seed=5), view, size=64, seed=5).image


def _write(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 70])


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    for index, identity in enumerate(("alpha", "beta")):
        for view in range(10):
            _write(root / identity / f"{view:02d}.png", _view(index, view))
    # alpha's view 4 (its first reference under "first") is a recompressed copy of view 0.
    _write(root / "alpha" / "04.jpg", cv2.resize(_view(0, 0), (48, 48)))
    (root / "alpha" / "04.png").unlink()
    for view in range(3):
        _write(root / "tiny" / f"{view}.png", _view(2, view))
        _write(root / "loner" / f"{view}.png", _view(3, view))
    return root


def test_near_duplicates_dropped_and_every_input_accounted_for(
    folder: Path, tmp_path: Path
) -> None:
    galleries = {
        "groups": {"birds": ["alpha", "beta", "tiny"]},
        "references_per_subject": 4,
        "gallery_per_subject": 4,
        "min_images": 9,
        "selection": "first",
    }
    out = tmp_path / "build"  # beside the source, not around it
    build(_pipeline({"name": "imagefolder", "root": str(folder)}, galleries), out=out)
    rows = {row.key: row for row in _rows(out / "galleries")}
    assert len(rows) == 10 + 10 + 3 + 3
    dropped = rows["alpha_v000"]
    assert dropped.reason == "near_duplicate" and "alpha_v004" in (dropped.detail or "")
    alpha = {k: r.qa.get("role") for k, r in rows.items() if r.identity == "alpha"}
    assert [k for k, role in sorted(alpha.items()) if role == "gallery"] == [
        "alpha_v001",
        "alpha_v002",
        "alpha_v003",
        "alpha_v008",
    ]
    assert {rows[f"tiny_v00{v}"].reason for v in range(3)} == {"too_few_images"}
    assert {rows[f"loner_v00{v}"].detail for v in range(3)} == {"loner is in no group"}
    summary = read_summary(out / "galleries")
    assert summary is not None
    assert summary.models["near_duplicates"]["removed"] == 1
    assert summary.models["near_duplicates"]["by_group"] == {"birds": 1}
    assert summary.rejected_by_reason == {
        "near_duplicate": 1,
        "too_few_images": 3,
        "unused": 1 + 2 + 3,  # alpha's view 9, beta's views 8-9, loner
    }


@pytest.mark.parametrize("cluster_key", ["cluster_id", None])
def test_the_cluster_guard_is_an_option_whose_effect_is_reported(
    tmp_path: Path, cluster_key: str | None
) -> None:
    from tests.source_fixtures import write_wildlife

    # frames come in cluster pairs: 10 frames, 5 clusters per animal
    written = write_wildlife(tmp_path / "wild", per_identity=10, unknown_rows=0)
    galleries = {
        "references_per_subject": 3,
        "gallery_per_subject": 4,
        "min_images": 9,
        "cluster_key": cluster_key,
        "near_duplicate_hamming": None,
    }
    build(_pipeline(written.source, galleries), out=tmp_path / "build")
    rows = _rows(tmp_path / "build" / "galleries")
    guarded = [row for row in rows if row.qa.get("cluster_guard")]
    summary = read_summary(tmp_path / "build" / "galleries")
    assert summary is not None
    report = summary.models["cluster_guard"]
    assert report["cluster_key"] == cluster_key
    assert report["images_left_out"] == len(guarded)
    roles = Counter(row.qa.get("role") for row in rows if row.status == "kept")
    if cluster_key is None:
        assert not guarded and roles["reference"] == 4 * 3
    else:
        # a reference cluster cut at 3 leaves its pair frame out of the gallery
        assert guarded and {row.reason for row in guarded} == {"unused"}
        assert roles["reference"] == 4 * 3 and roles["gallery"] == 4 * 4
