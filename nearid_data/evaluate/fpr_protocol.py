"""Finer-Personalization Rank's mAP on the ``export-fpr`` layout (``gallery_data.csv``,
``train_data.csv``; paths relative to the layout's directory).

Each group (the CSVs' ``species``) is its own retrieval problem, as in the paper: a query ranks
its group's whole gallery by distance 1 - cosine, relevant = the query's subject, and
``average_precisions`` scores it (0 when its subject has no gallery image). Reported per
subject, per group and pooled over all queries. The queries are the reference images
(``train_data.csv``: the paper's real-image baseline) or, with ``queries``, a folder holding one
sub-folder of images per subject (named as the CSVs' ``name``, or its folder-safe slug), e.g. a
personalisation method's generated images. The ``extra`` pool is not used.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nearid_data.errors import NearidError
from nearid_data.evaluate.images import file_ref, image_files
from nearid_data.evaluate.metrics import average_precisions
from nearid_data.evaluate.protocols import Context, Options, locate, markdown_table, percent
from nearid_data.sample import slug

GALLERY_CSV = "gallery_data.csv"
REFERENCES_CSV = "train_data.csv"


@dataclass(frozen=True)
class Entry:
    subject: str
    group: str
    key: str
    """The path as listed (CSV) or relative to the queries folder: the image's cache key."""
    path: Path


def evaluate(directory: Path, context: Context, options: Options) -> dict[str, Any]:
    if context.masked:
        raise NearidError("--masked needs subject masks, and the FPR layout has none")
    root = locate(directory, (".", "export-fpr"), GALLERY_CSV, "FPR layout")
    gallery = _read_csv(root, GALLERY_CSV)
    references = _read_csv(root, REFERENCES_CSV)
    if options.queries is None:
        queries, bucket = references, "fpr-references"
    else:
        group_of = {e.subject: e.group for e in [*references, *gallery]}
        queries, bucket = _query_folders(options.queries, group_of), "fpr-queries"
    gallery_vectors = _embed(context, gallery, "fpr-gallery")
    query_vectors = _embed(context, queries, bucket)
    groups, all_aps = {}, []
    for group in sorted({e.group for e in [*gallery, *queries]}):
        in_gallery = [i for i, e in enumerate(gallery) if e.group == group]
        in_queries = [i for i, e in enumerate(queries) if e.group == group]
        groups[group], aps = _score_group(
            [queries[i] for i in in_queries],
            query_vectors[in_queries],
            [gallery[i] for i in in_gallery],
            gallery_vectors[in_gallery],
        )
        all_aps.append(aps)
    pooled = np.concatenate(all_aps) if all_aps else np.zeros(0)
    query_source = "references" if options.queries is None else str(options.queries)
    return {
        "queries": query_source,
        "groups": groups,
        "pooled": {"map": _mean(pooled), "queries": int(pooled.size)},
    }


def _score_group(
    queries: list[Entry],
    query_vectors: np.ndarray,
    gallery: list[Entry],
    gallery_vectors: np.ndarray,
) -> tuple[dict[str, Any], np.ndarray]:
    """The group's scores (overall and per subject) and the AP of each of its queries."""
    query_labels = np.array([e.subject for e in queries], dtype=object)
    gallery_labels = np.array([e.subject for e in gallery], dtype=object)
    aps = average_precisions(query_vectors, query_labels, gallery_vectors, gallery_labels)
    subjects = {
        subject: {
            "map": _mean(aps[query_labels == subject]),
            "queries": int((query_labels == subject).sum()),
            "relevant": int((gallery_labels == subject).sum()),
        }
        for subject in sorted({*gallery_labels, *query_labels})
    }
    scores = {"map": _mean(aps), "queries": len(queries), "gallery": len(gallery)}
    return {**scores, "subjects": subjects}, aps


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else 0.0


def _embed(context: Context, entries: list[Entry], bucket: str) -> np.ndarray:
    return context.cache.embed([file_ref(e.key, e.path) for e in entries], bucket)


def _read_csv(root: Path, name: str) -> list[Entry]:
    path = root / name
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise NearidError(f"cannot read {path}: {exc}") from None
    missing = {"name", "species", "file_path"} - set(rows[0] if rows else {})
    if rows and missing:
        raise NearidError(f"{path}: missing columns {', '.join(sorted(missing))}")
    return [Entry(r["name"], r["species"], r["file_path"], root / r["file_path"]) for r in rows]


def _query_folders(folder: Path, group_of: dict[str, str]) -> list[Entry]:
    """One entry per image in ``folder/<subject>/``, subjects sorted, images by name."""
    if not folder.is_dir():
        raise NearidError(f"--queries {folder} is not a directory")
    by_folder_name = {slug(s): s for s in group_of} | {s: s for s in group_of}
    entries, unknown = [], []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        subject = by_folder_name.get(sub.name)
        if subject is None:
            unknown.append(sub.name)
            continue
        for path in image_files(sub):
            key = path.relative_to(folder).as_posix()
            entries.append(Entry(subject, group_of[subject], key, path))
    if unknown:
        raise NearidError(
            f"--queries: folders name no subject of the FPR layout: {', '.join(unknown)}"
        )
    if not entries:
        raise NearidError(f"--queries {folder}: no images in per-subject folders")
    return entries


def table(results: dict[str, Any]) -> str:
    rows: list[list[object]] = []
    for group, scores in results["groups"].items():
        for subject, s in scores["subjects"].items():
            rows.append([group, subject, s["queries"], s["relevant"], percent(s["map"])])
        rows.append(
            [group, "(group)", scores["queries"], scores["gallery"], percent(scores["map"])]
        )
    pooled = results["pooled"]
    rows.append(["(all)", "(pooled)", pooled["queries"], "", percent(pooled["map"])])
    return markdown_table(["group", "subject", "queries", "relevant / gallery", "mAP %"], rows)
