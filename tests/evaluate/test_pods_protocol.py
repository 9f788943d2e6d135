"""``eval --protocol pods`` end to end on a tiny PODS layout with ``colorhist``, checked against
classification and retrieval recomputed from the files with the plain-Python reference."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nearid_data.build import build
from nearid_data.imageio import decode_image, decode_mask_png
from tests.conftest import tiny_pipeline
from tests.evaluate import reference as ref
from tests.evaluate.eval_helpers import colorhist_vector, run_eval


@pytest.fixture(scope="module")
def pods(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pods")
    stages = {
        "ingest": {"shard_size": 16},
        "pods-splits": {"references": 3, "val_fraction": 0.5},
        "export-pods": {"instances_per_unit": 4},
    }
    source = {"name": "demo", "n_identities": 8, "views": 6, "image_size": 64}
    build(tiny_pipeline(source=source, stages=stages), out=out)
    return out / "export-pods" / "pods"


def _recompute(root: Path, masked: bool) -> dict[str, dict[str, dict[str, float]]]:
    """class -> shift -> metrics, from the layout's files and the reference metrics."""
    annos = json.loads((root / "pods_image_annos.json").read_text())

    def vector(image_id: str) -> list[float]:
        rgb = decode_image((root / image_id).read_bytes()).rgb
        if masked:
            folder, _, rest = image_id.partition("/")
            rgb = rgb * decode_mask_png((root / f"{folder}_masks" / rest).read_bytes())[:, :, None]
        return colorhist_vector(rgb)

    vectors = {image_id: vector(image_id) for image_id in sorted(annos)}
    references = [i for i in sorted(annos) if annos[i]["split"] == "train"]
    tests = [i for i in sorted(annos) if annos[i]["split"] == "test"]
    expected: dict[str, dict[str, dict[str, float]]] = {}
    for name in sorted({annos[r]["class"] for r in references}):
        relevant = [annos[r]["class"] == name for r in references]
        for shift in ["all", *sorted({annos[t]["test_split"] for t in tests})]:
            pool = [t for t in tests if shift in ("all", annos[t]["test_split"])]
            scores = [
                max(
                    ref.cosine(vectors[t], vectors[r])
                    for r in references
                    if annos[r]["class"] == name
                )
                for t in pool
            ]
            labels = [annos[t]["class"] == name for t in pool]
            rankings = [
                [ref.cosine(vectors[t], vectors[r]) for r in references]
                for t in pool
                if annos[t]["class"] == name
            ]
            expected.setdefault(name, {})[shift] = {
                "pr_auc": ref.pr_auc(scores, labels),
                "ndcg": float(np.mean([ref.ndcg(s, relevant) for s in rankings])),
                "mrr": float(np.mean([ref.reciprocal_rank(s, relevant) for s in rankings])),
                "top_10": float(np.mean([ref.top_k_hit(s, relevant, 10) for s in rankings])),
                "queries": len(rankings),
            }
    return expected


def _assert_close(got: dict[str, Any], expected: dict[str, Any]) -> None:
    assert got.keys() == expected.keys()
    for name in expected:
        assert got[name].keys() == expected[name].keys(), name
        for shift, metrics in expected[name].items():
            for metric, value in metrics.items():
                assert abs(got[name][shift][metric] - value) < 1e-9, (name, shift, metric)


@pytest.mark.parametrize("masked", [False, True])
def test_pods_matches_a_recomputation(pods: Path, masked: bool, tmp_path: Path) -> None:
    out = tmp_path / "pods.json"
    flags = ["--masked"] if masked else []
    assert (
        run_eval(
            pods.parent.parent,
            "--protocol",
            "pods",
            "--embedder",
            "colorhist",
            *flags,
            "--out",
            out,
        )
        == 0
    )
    results = json.loads(out.read_text())["results"]
    _assert_close(results["per_class"], _recompute(pods, masked))
    groups = results["groups"]
    assert set(groups) == {"test", "val", "all"}  # JSON keys are sorted
    assert (groups["all"]["all"]["instances"], groups["all"]["all"]["queries"]) == (8, 24)
    macro = np.mean([c["all"]["pr_auc"] for c in results["per_class"].values()])
    assert abs(groups["all"]["all"]["pr_auc"] - macro) < 1e-12
    assert set(groups["all"]) == {"all", "in_distribution"}


def test_each_shift_ranks_only_its_own_test_images(pods: Path, tmp_path: Path) -> None:
    root = tmp_path / "pods"
    shutil.copytree(pods, root)
    annos_path = root / "pods_image_annos.json"
    annos = json.loads(annos_path.read_text())
    for image_id, anno in annos.items():  # each instance's first test image becomes "pose"
        if anno["split"] == "test" and image_id.endswith("/0.png"):
            anno["test_split"] = "pose"
    annos_path.write_text(json.dumps(annos))
    out = tmp_path / "shifts.json"
    assert run_eval(root, "--protocol", "pods", "--embedder", "colorhist", "--out", out) == 0
    results = json.loads(out.read_text())["results"]
    _assert_close(results["per_class"], _recompute(root, masked=False))
    assert set(results["groups"]["all"]) == {"all", "in_distribution", "pose"}
    assert results["groups"]["all"]["pose"]["queries"] == 8


def test_the_released_layout_reads_the_class_folders_not_the_ids(
    pods: Path, tmp_path: Path
) -> None:
    """pods.zip as released: its image ids are not paths, class_to_idx is not sorted, and a test
    image missing from the annotations has no shift. Images are found as PODS's EvalDataset finds
    them (dataset/image_dataset.py: get_paths(root/cls) for cls in class_to_idx)."""
    root = tmp_path / "pods"
    shutil.copytree(pods, root)
    annos_path, info_path = root / "pods_image_annos.json", root / "pods_info.json"
    annos = json.loads(annos_path.read_text())
    released = {f"pods/{a['class']}/{a['split']}/{Path(i).stem}": a for i, a in annos.items()}
    annos_path.write_text(json.dumps(released))
    info = json.loads(info_path.read_text())
    info["class_to_idx"] = {c: i for i, c in enumerate(reversed(info["classes"]))}
    info_path.write_text(json.dumps(info))
    out = tmp_path / "released.json"
    assert run_eval(root, "--protocol", "pods", "--embedder", "colorhist", "--out", out) == 0
    results = json.loads(out.read_text())["results"]
    _assert_close(results["per_class"], _recompute(pods, masked=False))
    assert results["groups"]["all"]["in_distribution"]["queries"] == 24
    annos_path.unlink()  # no annotations: every test image counts in "all" only
    assert run_eval(root, "--protocol", "pods", "--embedder", "colorhist", "--out", out) == 0
    groups = json.loads(out.read_text())["results"]["groups"]
    assert set(groups["all"]) == {"all"} and groups["all"]["all"]["queries"] == 24
