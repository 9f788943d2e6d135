"""The segment and distractors stages on tiny random-weight models, end to end through export.

Models are built from configs, saved to a temp dir and loaded back through the same paths users
take (``from_pretrained(local_dir)``, ``sam_model_registry[kind](checkpoint)``).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nearid_data.build import build
from nearid_data.engine.manifest import manifest_path, read_manifest, read_summary
from nearid_data.engine.tario import read_samples
from tests.conftest import TINY_DEMO, tiny_pipeline

pytest.importorskip("torch")


def _rows(stage_dir: Path) -> list:
    summary = read_summary(stage_dir)
    assert summary is not None
    return [r for e in summary.shards for r in read_manifest(manifest_path(stage_dir, e.unit)).rows]


def test_segment_with_gdino_and_sam(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.tiny_models import (
        build_tiny_sam,
        import_segment_anything,
        save_tiny_gdino,
        save_tiny_sam_checkpoint,
    )

    segment_anything = import_segment_anything()

    gdino = save_tiny_gdino(tmp_path / "gdino")
    checkpoint = save_tiny_sam_checkpoint(tmp_path / "sam_tiny.pth")
    # The registry entry builds the tiny architecture; loading the checkpoint is the real path.
    monkeypatch.setitem(segment_anything.sam_model_registry, "vit_b", build_tiny_sam)
    segment = {
        "detector": {
            "name": "gdino",
            "model": str(gdino),
            "box_threshold": 0.0,
            "text_threshold": 0.0,
        },
        "segmenter": {"name": "sam", "kind": "vit_b", "checkpoint": str(checkpoint)},
        "source_masks": "replace",
        "batch_size": 4,
    }
    pipeline = tiny_pipeline(
        source={**TINY_DEMO["source"], "n_identities": 4, "views": 2},
        stages={"ingest": {"shard_size": 4}, "segment": segment},
    )
    build(pipeline, out=tmp_path / "build")
    rows = _rows(tmp_path / "build/segment")
    assert len(rows) == 8
    for row in rows:
        assert row.status == "kept" or row.reason in {
            "no_box",
            "empty_mask",
            "mask_too_small",
            "mask_too_large",
        }
        if row.status == "kept":
            assert {"box_score", "mask_score", "iou_vs_source", "prompt"} <= set(row.qa)
            assert row.qa["mask_source"] == "model"
            assert row.qa["prompt"].endswith(".")
    summary = read_summary(tmp_path / "build/segment")
    assert summary is not None and summary.models["detector"]["model"] == str(gdino)


def test_distractors_with_sd_inpaint_through_export(tmp_path: Path) -> None:
    from tests.tiny_pipelines import save_tiny_sd_inpaint

    model = save_tiny_sd_inpaint(tmp_path / "sd")
    generator = {
        "name": "sd-inpaint",
        "model": str(model),
        "steps": 2,
        "resolution": 64,
        "batch_size": 4,
    }
    stages = {
        **TINY_DEMO["stages"],
        "distractors": {
            "generators": [generator, {"name": "cut_paste"}],
            "concept": "perturb",
            "min_inside_changed": 0.0,
        },
    }
    source = {**TINY_DEMO["source"], "n_identities": 4, "views": 2, "categories": ["mug", "shoe"]}
    pipeline = tiny_pipeline(source=source, stages=stages)
    build(pipeline, out=tmp_path / "build")
    samples = [
        s for t in sorted((tmp_path / "build/export/data").rglob("*.tar")) for s in read_samples(t)
    ]
    assert samples
    for sample in samples:
        reference = np.asarray(Image.open(io.BytesIO(sample["image.png"])).convert("RGB"))
        outside = np.asarray(Image.open(io.BytesIO(sample["inpaint_mask.png"]))) == 0
        for field in ("distractor_sd_inpaint.png", "distractor_cut_paste.png"):
            distractor = np.asarray(Image.open(io.BytesIO(sample[field])).convert("RGB"))
            assert np.array_equal(reference[outside], distractor[outside]), field
        record = sample["json"]["distractors"]["sd_inpaint"]
        assert record["concept"] == "perturb" and record["swaps"] and record["prompt"]
        assert record["generator"]["steps"] == 2

    again = tmp_path / "again"
    build(pipeline, out=again, stage="all")
    first = sorted((tmp_path / "build/distractors").glob("*.tar"))
    second = sorted((again / "distractors").glob("*.tar"))
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


def test_segment_stage_from_the_command_line(tmp_path: Path) -> None:
    """The README's flow: a pipeline naming local model directories, run stage by stage."""
    from tests.build_helpers import cli
    from tests.conftest import write_pipeline
    from tests.tiny_models import save_tiny_gdino, save_tiny_sam_hf

    gdino, sam = save_tiny_gdino(tmp_path / "gdino"), save_tiny_sam_hf(tmp_path / "sam")
    raw = {
        "name": "models-cli",
        "source": {**TINY_DEMO["source"], "n_identities": 2, "views": 2},
        "stages": {
            "ingest": {},
            "segment": {
                "detector": {
                    "name": "gdino",
                    "model": str(gdino),
                    "box_threshold": 0.0,
                    "text_threshold": 0.0,
                },
                "segmenter": {"name": "sam-hf", "model": str(sam)},
                "source_masks": "compare",
            },
        },
    }
    pipeline = write_pipeline(tmp_path / "p.yaml", raw)
    out = tmp_path / "build"
    cli("build", "--pipeline", str(pipeline), "--out", str(out), "--stage", "ingest")
    result = cli("build", "--pipeline", str(pipeline), "--out", str(out), "--stage", "segment")
    assert "segment" in result.stderr
    rows = _rows(out / "segment")
    assert len(rows) == 4
    for row in rows:
        assert row.status == "kept" or row.reason
        if row.status == "kept":
            # compare: the source mask is kept and the model mask's IoU with it recorded.
            assert row.qa["mask_source"] == "source" and 0.0 <= row.qa["iou_vs_source"] <= 1.0


@pytest.mark.parametrize("name", ["sdxl-inpaint", "flux-fill"])
def test_sdxl_and_flux_generators_through_export(tmp_path: Path, name: str) -> None:
    from tests import tiny_pipelines

    save = {"sdxl-inpaint": tiny_pipelines.save_tiny_sdxl_inpaint,
            "flux-fill": tiny_pipelines.save_tiny_flux_fill}[name]  # fmt: skip
    generator = {"name": name, "model": str(save(tmp_path / "model")), "steps": 2,
                 "resolution": 64, "batch_size": 4}  # fmt: skip
    stages = {
        **TINY_DEMO["stages"],
        "distractors": {"generators": [generator], "concept": "sibling", "min_inside_changed": 0.0},
    }
    source = {**TINY_DEMO["source"], "n_identities": 4, "views": 2, "categories": ["mug", "shoe"]}
    build(tiny_pipeline(source=source, stages=stages), out=tmp_path / "build")
    field = f"distractor_{name.replace('-', '_')}.png"
    samples = [
        s for t in sorted((tmp_path / "build/export/data").rglob("*.tar")) for s in read_samples(t)
    ]
    assert len(samples) == 8
    for sample in samples:
        reference = np.asarray(Image.open(io.BytesIO(sample["image.png"])).convert("RGB"))
        outside = np.asarray(Image.open(io.BytesIO(sample["inpaint_mask.png"]))) == 0
        distractor = np.asarray(Image.open(io.BytesIO(sample[field])).convert("RGB"))
        assert np.array_equal(reference[outside], distractor[outside])
        record = sample["json"]["distractors"][name.replace("-", "_")]
        assert (
            record["concept"] == "sibling"
            and record["donor_identity"] != sample["json"]["identity"]
        )
