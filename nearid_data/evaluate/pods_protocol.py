"""PODS's global tasks on the PODS folder layout (``pods_info.json``, ``pods_image_annos.json``,
``{train,test}[_masks]/<class>/``), per shift and per class-level split: the released PODS
(``pods.zip``) and the toolkit's ``export-pods`` alike.

For each instance c with reference images (PODS's ``train``) and a shift s (or ``all`` shifts):

- classification: every test image of shift s, of any instance, is scored by its largest cosine
  to c's references; PR-AUC (``pr_auc``) against "is it c";
- retrieval: each test image of c in shift s queries all reference images of all instances,
  relevant = c's references; NDCG (full ranking), MRR and top-10 accuracy, averaged over c's
  queries.

As in PODS's code, negatives are all other instances, not only those of c's category. A pair
(c, s) without a test image of c is left out. Groups report the mean over their instances
(macro) per shift: ``val``, ``test`` (PODS's class-level split: the paper reports ``test``) and
``all``.

Images are found as PODS's loader finds them (``dataset/image_dataset.py``, ``EvalDataset``): for
each class of ``class_to_idx``, the image files in ``train/<class>/`` and ``test/<class>/``. The
shift tag of a test image comes from ``pods_image_annos.json``, matched by class, split and file
stem (the release's ids are not paths); a test image without one counts in ``all`` only. A mask
is the file of the same name (or stem) in ``<split>_masks/<class>/``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from nearid_data.errors import NearidError
from nearid_data.evaluate.images import file_ref, image_files
from nearid_data.evaluate.metrics import cosine_matrix, mean_ndcg, mrr, pr_auc, top_k_accuracy
from nearid_data.evaluate.protocols import Context, Options, locate, markdown_table, percent
from nearid_data.sources.formats import FileIndex
from nearid_data.sources.pods import mask_of, natural_key, test_tags

INFO = "pods_info.json"
ANNOS = "pods_image_annos.json"
SHIFTS = ("in_distribution", "pose", "distractors", "pose_and_distractors")
ALL = "all"
TOP_K = 10
METRICS = ("pr_auc", "ndcg", "mrr", f"top_{TOP_K}")


def evaluate(directory: Path, context: Context, options: Options) -> dict[str, Any]:
    root = locate(directory, (".", "pods", "export-pods/pods"), INFO, "PODS layout")
    info = _read_json(root / INFO)
    tags = test_tags(root / ANNOS)
    images = _images(root, list(info.get("class_to_idx") or info["classes"]))
    refs = [file_ref(i, root / i, _mask(root, i) if context.masked else None) for i, _, _ in images]
    vectors = context.cache.embed(refs, "pods")
    classes = np.array([name for _, name, _ in images], dtype=object)
    is_reference = np.array([split == "train" for _, _, split in images], dtype=bool)
    shifts = np.array(
        [tags.get((name, split, Path(i).stem)) for i, name, split in images], dtype=object
    )[~is_reference]
    test_classes, reference_classes = classes[~is_reference], classes[is_reference]
    similarity = cosine_matrix(vectors[~is_reference], vectors[is_reference])
    order = [ALL, *SHIFTS, *sorted(set(shifts) - set(SHIFTS) - {None})]
    per_class: dict[str, dict[str, dict[str, float]]] = {}
    for name in info["classes"]:
        own = reference_classes == name
        if not own.any():
            continue
        for shift in order:
            pool = np.ones(len(shifts), bool) if shift == ALL else shifts == shift
            is_own = test_classes[pool] == name
            if is_own.any():
                per_class.setdefault(name, {})[shift] = _scores(similarity[pool], is_own, own)
    if not per_class:
        raise NearidError(f"{root}: no instance has both reference and test images")
    split_of = {c: info.get("class_to_split", {}).get(c, "none") for c in per_class}
    groups = {
        split: _group([c for c in per_class if split in (ALL, split_of[c])], per_class, order)
        for split in [*sorted(set(split_of.values())), ALL]
    }
    return {"groups": groups, "per_class": per_class}


def _scores(similarity: np.ndarray, is_own: np.ndarray, own: np.ndarray) -> dict[str, float]:
    """One instance on one pool of test images: ``similarity`` (tests x references), ``is_own``
    marking the instance's test images (the queries), ``own`` its references."""
    queries = similarity[is_own]
    relevant = np.broadcast_to(own, queries.shape)
    return {
        "pr_auc": pr_auc(similarity[:, own].max(axis=1), is_own),
        "ndcg": mean_ndcg(queries, relevant),
        "mrr": mrr(queries, relevant),
        f"top_{TOP_K}": top_k_accuracy(queries, relevant, TOP_K),
        "queries": len(queries),
    }


def _group(
    members: list[str], per_class: dict[str, dict[str, dict[str, float]]], order: list[str]
) -> dict[str, dict[str, float]]:
    """Per shift: the mean of each metric over ``members`` evaluated on it, and the counts."""
    out = {}
    for shift in order:
        scored = [per_class[c][shift] for c in members if shift in per_class[c]]
        if scored:
            out[shift] = {m: float(np.mean([s[m] for s in scored])) for m in METRICS}
            out[shift] |= {"instances": len(scored), "queries": sum(s["queries"] for s in scored)}
    return out


def _images(root: Path, classes: list[str]) -> list[tuple[str, str, str]]:
    """(path relative to ``root``, class, split) of every train and test image of ``classes``."""
    images = []
    for split in ("train", "test"):
        for name in classes:
            folder = root / split / name
            files = image_files(folder) if folder.is_dir() else []
            for path in sorted(files, key=lambda p: natural_key(p.name)):
                images.append((f"{split}/{name}/{path.name}", name, split))
    if not images:
        raise NearidError(
            f"{root}: no images in train/<class>/ or test/<class>/ for {INFO}'s classes"
        )
    return images


def _mask(root: Path, image_id: str) -> Path:
    split, name, file_name = image_id.split("/")
    mask = mask_of(FileIndex(root), split, name, file_name)
    if mask is None:
        raise NearidError(f"{root}: {image_id} has no mask in {split}_masks/{name}/ (--masked)")
    return root / mask


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NearidError(f"cannot read {path}: {exc}") from None


def table(results: dict[str, Any]) -> str:
    rows = [
        [split, shift, s["instances"], s["queries"], *(percent(s[m]) for m in METRICS)]
        for split, by_shift in results["groups"].items()
        for shift, s in by_shift.items()
    ]
    headers = [
        "classes",
        "shift",
        "instances",
        "queries",
        "PR-AUC %",
        "NDCG %",
        "MRR %",
        f"top-{TOP_K} %",
    ]
    return markdown_table(headers, rows)
