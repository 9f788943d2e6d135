"""``eval --protocol fpr`` end to end on a tiny FPR layout with ``colorhist``, checked against
mAP recomputed from the CSVs with the plain-Python reference."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from nearid_data.build import build
from nearid_data.config import PipelineConfig
from nearid_data.errors import NearidError
from nearid_data.imageio import decode_image
from tests.evaluate import reference as ref
from tests.evaluate.eval_helpers import colorhist_vector, run_eval


@pytest.fixture(scope="module")
def fpr(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fpr")
    galleries = {"references_per_subject": 3, "gallery_per_subject": 4, "subjects_per_group": 2}
    stages = {"ingest": {"shard_size": 16}, "galleries": galleries, "export-fpr": {}}
    source = {"name": "demo", "n_identities": 8, "views": 10, "image_size": 64}
    raw = {"name": "f", "seed": 11, "source": source, "stages": stages}
    build(PipelineConfig.from_dict(raw), out=out)
    return out


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_fpr_references_as_queries(fpr: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_eval(fpr, "--protocol", "fpr", "--embedder", "colorhist") == 0
    assert "| (all) | (pooled) | 24 |" in capsys.readouterr().out
    results = json.loads((fpr / "eval-fpr-colorhist.json").read_text())["results"]
    root = fpr / "export-fpr"
    gallery, queries = _csv(root / "gallery_data.csv"), _csv(root / "train_data.csv")
    total = 0.0
    for group, scores in results["groups"].items():
        g = [r for r in gallery if r["species"] == group]
        q = [r for r in queries if r["species"] == group]
        expected = ref.mean_average_precision(
            [colorhist_vector(decode_image((root / r["file_path"]).read_bytes()).rgb) for r in q],
            [r["name"] for r in q],
            [colorhist_vector(decode_image((root / r["file_path"]).read_bytes()).rgb) for r in g],
            [r["name"] for r in g],
        )
        assert abs(scores["map"] - expected) < 1e-9
        assert (scores["queries"], scores["gallery"]) == (len(q), len(g))
        total += expected * len(q)
    assert results["queries"] == "references"
    assert abs(results["pooled"]["map"] - total / len(queries)) < 1e-9


def test_fpr_query_folders(fpr: Path, tmp_path: Path) -> None:
    root = fpr / "export-fpr"
    gallery = _csv(root / "gallery_data.csv")
    subject = gallery[0]["name"]
    for row in gallery:  # the subject's own gallery images as its queries: each finds itself
        if row["name"] == subject:
            target = tmp_path / "queries" / subject / Path(row["file_path"]).name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(root / row["file_path"], target)
    out = tmp_path / "q.json"
    run_eval(
        fpr,
        "--protocol",
        "fpr",
        "--embedder",
        "colorhist",
        "--queries",
        tmp_path / "queries",
        "--out",
        out,
    )
    results = json.loads(out.read_text())["results"]
    group = gallery[0]["species"]
    assert results["pooled"]["queries"] == results["groups"][group]["queries"] == 4
    assert results["groups"][group]["subjects"][subject]["queries"] == 4
    assert results["groups"][group]["subjects"][subject]["map"] > 0.5
    (tmp_path / "queries" / "nobody").mkdir()
    with pytest.raises(NearidError, match="nobody"):
        run_eval(
            fpr, "--protocol", "fpr", "--embedder", "colorhist", "--queries", tmp_path / "queries"
        )


def test_fpr_refuses_masked_and_foreign_options(fpr: Path) -> None:
    with pytest.raises(NearidError, match="FPR layout has none"):
        run_eval(fpr, "--protocol", "fpr", "--embedder", "colorhist", "--masked")
    with pytest.raises(NearidError, match="--split applies"):
        run_eval(fpr, "--protocol", "fpr", "--embedder", "colorhist", "--split", "test")
    with pytest.raises(NearidError, match="holds no PODS layout"):
        run_eval(fpr, "--protocol", "pods", "--embedder", "colorhist")
