"""The distractors stage's QA around generators: retries, thresholds, the embedder crop check."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from nearid_data.backend import BackendConfig
from nearid_data.build import build
from nearid_data.distractors.base import Generator, InpaintRequest
from nearid_data.engine.manifest import manifest_path, read_manifest, read_summary
from nearid_data.errors import NearidError, Rejection
from nearid_data.sample import meta
from tests.conftest import TINY_DEMO, tiny_pipeline


def _distractor_rows(out: Path) -> list:
    summary = read_summary(out / "distractors")
    assert summary is not None
    return [
        r
        for e in summary.shards
        for r in read_manifest(manifest_path(out / "distractors", e.unit)).rows
    ]


# cut_paste without its own coverage check, for tests of the stage's thresholds alone.
ANY_COVERAGE = [{"name": "cut_paste", "max_uncovered": 1.0}]


def _build(tmp_path: Path, **distractors: object) -> list:
    stages = {
        "ingest": TINY_DEMO["stages"]["ingest"],
        "segment": TINY_DEMO["stages"]["segment"],
        "distractors": {"generators": [{"name": "cut_paste"}], **distractors},
    }
    build(tiny_pipeline(stages=stages), out=tmp_path)
    return _distractor_rows(tmp_path)


def test_crop_similarity_is_recorded_and_thresholded(tmp_path: Path) -> None:
    common = {"embedder": {"name": "colorhist"}, "retries": 0, "generators": ANY_COVERAGE}
    rows = _build(tmp_path / "a", **common)
    kept = [r for r in rows if r.status == "kept"]
    assert kept and all(-1 <= r.qa["cut_paste"]["crop_similarity"] <= 1 for r in kept)
    similarities = sorted(r.qa["cut_paste"]["crop_similarity"] for r in kept)
    floor = similarities[len(similarities) // 2]
    strict = _build(tmp_path / "b", **common, min_crop_similarity=floor)
    rejected = [r for r in strict if r.status == "rejected"]
    assert rejected and {r.reason for r in rejected} == {"cut_paste:not_same_category"}
    assert len(rejected) == sum(s < floor for s in similarities)


def test_retries_draw_new_seeds_and_every_view_is_accounted_for(tmp_path: Path) -> None:
    rows = _build(tmp_path, min_inside_changed=0.97, retries=2, generators=ANY_COVERAGE)
    assert len(rows) == 8 * 3
    kept = [r for r in rows if r.status == "kept"]
    rejected = [r for r in rows if r.status == "rejected"]
    assert rejected and all(r.reason == "cut_paste:too_little_change" for r in rejected)
    assert all(r.detail for r in rejected)
    if kept:
        assert all(r.qa["cut_paste"]["inside_changed_fraction"] >= 0.97 for r in kept)


def test_a_threshold_without_an_embedder_is_a_config_error() -> None:
    stages = {**TINY_DEMO["stages"], "distractors": {"min_crop_similarity": 0.5}}
    with pytest.raises(NearidError, match="embedder"):
        tiny_pipeline(stages=stages)


def test_siblings_by_embedding_pick_the_most_similar_identity(tmp_path: Path) -> None:
    import json

    from nearid_data.engine.catalog import Catalog

    rows = _build(tmp_path, embedder={"name": "colorhist"}, sibling_by="embedding", retries=0)
    kept = [r for r in rows if r.status == "kept"]
    assert kept
    stage = Catalog(tmp_path / "distractors")
    # Recompute the nearest sibling with the same embedder, independently of the stage.
    from nearid_data.backend import build_backend
    from nearid_data.imageio import decode_mask_png, decode_png
    from nearid_data.vision.embedders import EMBEDDERS
    from nearid_data.vision.masks import bbox

    upstream = Catalog(tmp_path / "segment")
    embedder = build_backend(EMBEDDERS, {"name": "colorhist"}, where="test")
    crops = {}
    for identity, identity_rows in upstream.by_identity.items():
        sample = upstream.fetch(min(identity_rows, key=lambda r: r.view))
        image = decode_png(sample["image.png"])
        x0, y0, x1, y1 = bbox(decode_mask_png(sample["mask.png"]))
        crops[identity] = image[y0:y1, x0:x1]
    vectors = dict(zip(crops, embedder.embed(list(crops.values())), strict=True))
    for row in stage.rows:
        record = stage.fetch(row)["json"]["distractors"]["cut_paste"]
        siblings = [i for i, r in upstream.by_identity.items()
                    if r[0].category == row.category and i != row.identity]  # fmt: skip
        best = max(siblings, key=lambda i: float(vectors[row.identity] @ vectors[i]))
        assert record["donor_identity"] == best, json.dumps(record)


class BrokenFirstGenerator(Generator):
    """Paints the mask white, but answers each view's first attempt with a NaN-output rejection."""

    def __init__(self, config: BackendConfig, *, device: str = "cpu") -> None:
        super().__init__(config, device=device)
        self.seen: set[str] = set()

    def generate(self, requests: Sequence[InpaintRequest]) -> list[np.ndarray | Rejection]:
        outputs: list[np.ndarray | Rejection] = []
        for request in requests:
            if request.key not in self.seen:
                self.seen.add(request.key)
                outputs.append(Rejection("non_finite_output", "NaN in the model output"))
            else:
                outputs.append(
                    np.where(request.mask[..., None], 255, request.image).astype(np.uint8)
                )
        return outputs


def test_a_rejected_model_output_is_retried_with_a_new_seed_and_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nearid_data.distractors.registry import GENERATORS

    target = f"{__name__}:BrokenFirstGenerator"
    monkeypatch.setitem(GENERATORS._entries, "broken_first", target)
    stages = {
        "ingest": TINY_DEMO["stages"]["ingest"],
        "segment": TINY_DEMO["stages"]["segment"],
        "distractors": {"generators": [{"name": "broken_first"}], "retries": 1},
    }
    build(tiny_pipeline(stages=stages), out=tmp_path / "retried")
    rows = _distractor_rows(tmp_path / "retried")
    assert rows and all(r.status == "kept" for r in rows)
    stages["distractors"]["retries"] = 0
    build(tiny_pipeline(stages=stages), out=tmp_path / "no_retry")
    rows = _distractor_rows(tmp_path / "no_retry")
    assert rows and {r.reason for r in rows} == {"broken_first:non_finite_output"}
    from nearid_data.engine.catalog import Catalog

    catalog = Catalog(tmp_path / "retried" / "distractors")
    records = [
        meta(catalog.fetch(row))["distractors"]["broken_first"]
        for rows in catalog.by_identity.values()
        for row in rows
    ]
    assert records and all(r["attempt"] == 1 for r in records)
    assert all(r["failed_attempts"] == "non_finite_output" for r in records)
