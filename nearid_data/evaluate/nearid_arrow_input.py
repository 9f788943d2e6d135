"""NearID's Arrow layout as ``eval --protocol nearid`` input: the release, and ``export-nearid``.

A folder holding ``NearID/`` (the positives: ``images1..3``, ``masks1..3``, ``n_images``, ``id``)
and ``NearID-<name>/`` per distractor set (``nimg1..3``, row-aligned with the positives), each a
``save_to_disk`` ``DatasetDict`` whose rows are ``["train"]`` (or a plain ``Dataset``), and
optionally ``splits/<split>.json`` (0-based rows: a list, or ``{"indices": [...]}``, as NearID's
``--findx`` reads them). The same folders NearID's ``evaluation/sim_test.py`` takes as ``--ds`` and
``--ds_neg``.

Rows are identities: ``imagesJ`` is view p_J and ``nimgJ`` the distractor n_J painted on its
background, masked (foreground-only mode) with ``masksJ``. A cell that is empty (None) is a
missing view or distractor: margins that need it are left out (NearID's loader instead closes the
gap, so its ``cross_ii`` can pair p_i with another view's distractor). Rows are embedded in
blocks of ``BLOCK_ROWS`` through the cache, one bucket per block and dataset, so memory stays
bounded and a rerun on another split reuses the vectors.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from nearid_data.errors import NearidError, Rejection
from nearid_data.evaluate.images import ImageRef, encoded_ref
from nearid_data.evaluate.metrics import nearid_margins
from nearid_data.evaluate.protocols import Context
from nearid_data.optional import import_optional
from nearid_data.sources.formats import read_json
from nearid_data.sources.parquet import cell_bytes

POSITIVES = "NearID"
SET_PREFIX = "NearID-"
HUB_SPLIT = "train"
VIEWS = (1, 2, 3)
BLOCK_ROWS = 512
CANDIDATES = (".", "nearid", "export-nearid/nearid")
_NONE = np.zeros(0)


def find_root(directory: Path) -> Path | None:
    """The first of ``CANDIDATES`` under ``directory`` that holds ``NearID/``, else None."""
    for candidate in CANDIDATES:
        if (directory / candidate / POSITIVES).is_dir():
            return directory / candidate
    return None


def margins_by_set(
    root: Path, context: Context, split: str | None
) -> tuple[int, dict[str, list[np.ndarray]]]:
    """(rows evaluated, distractor set name -> each row's margins)."""
    positives = _load(root / POSITIVES)
    sets = {p.name[len(SET_PREFIX) :]: _load(p) for p in sorted(root.glob(f"{SET_PREFIX}*"))}
    if not sets:
        raise NearidError(f"{root} holds {POSITIVES}/ but no {SET_PREFIX}<name>/ distractor set")
    for name, dataset in sets.items():
        _check_aligned(root, positives, name, dataset)
    rows = _rows(root, positives, split)
    margins: dict[str, list[np.ndarray]] = {name: [] for name in sets}
    for block in _blocks(rows):
        where = f"{POSITIVES}/{block[0] // BLOCK_ROWS * BLOCK_ROWS:07d}"
        cells = _cells(positives, block, ["images", "masks"])
        views = _vectors(context, where, cells, "images")
        masks = {key: cell for key, cell in cells.items() if key[1].startswith("masks")}
        for name, dataset in sets.items():
            bucket = where.replace(POSITIVES, SET_PREFIX + name, 1)
            vectors = _vectors(
                context, bucket, {**_cells(dataset, block, ["nimg"]), **masks}, "nimg"
            )
            for row in block:
                scored = row in views and row in vectors  # else: no view or no distractor at all
                margins[name].append(nearid_margins(views[row], vectors[row]) if scored else _NONE)
    return len(rows), margins


def _load(folder: Path) -> Any:
    datasets = import_optional("datasets", needed_for="NearID's Arrow layout", extra="hub")
    try:
        loaded = datasets.load_from_disk(str(folder))
    except (FileNotFoundError, ValueError) as exc:
        raise NearidError(f"{folder}: not a dataset saved with save_to_disk ({exc})") from None
    if isinstance(loaded, datasets.DatasetDict):
        if HUB_SPLIT not in loaded:
            raise NearidError(f"{folder}: no split {HUB_SPLIT!r} (has: {', '.join(loaded)})")
        loaded = loaded[HUB_SPLIT]
    for column, feature in loaded.features.items():
        if isinstance(feature, datasets.Image):  # bytes for the cache digest, decoded on a miss
            loaded = loaded.cast_column(column, datasets.Image(decode=False))
    return loaded


def _check_aligned(root: Path, positives: Any, name: str, dataset: Any) -> None:
    if len(dataset) != len(positives):
        raise NearidError(
            f"{root}: {SET_PREFIX}{name} has {len(dataset)} rows, {POSITIVES} {len(positives)}: "
            f"the datasets must be row-aligned"
        )
    if "id" in dataset.column_names and "id" in positives.column_names:
        theirs, ours = dataset["id"], positives["id"]
        if theirs != ours:
            row = next(i for i, (a, b) in enumerate(zip(theirs, ours, strict=True)) if a != b)
            raise NearidError(
                f"{root}: row {row} has id {theirs[row]} in {SET_PREFIX}{name} but {ours[row]} "
                f"in {POSITIVES}: the datasets must be row-aligned"
            )


def _rows(root: Path, positives: Any, split: str | None) -> list[int]:
    """The rows to evaluate: all, or the split's from ``splits/<split>.json`` or the ``split``
    column."""
    if split is None:
        return list(range(len(positives)))
    path = root / "splits" / f"{split}.json"
    if path.is_file():
        listed = read_json(path)
        listed = listed.get("indices") if isinstance(listed, dict) else listed
        if not isinstance(listed, list) or not all(isinstance(i, int) for i in listed):
            raise NearidError(f"{path}: expected a list of row numbers or {{'indices': [...]}}")
        outside = [i for i in listed if not 0 <= i < len(positives)]
        if outside:
            raise NearidError(f"{path}: row {outside[0]} is outside 0..{len(positives) - 1}")
        return sorted(set(listed))
    if "split" in positives.column_names:
        return [i for i, s in enumerate(positives["split"]) if s == split]
    raise NearidError(f"--split {split}: {root} has no {path.name} in splits/ and no split column")


def _blocks(rows: list[int]) -> Iterator[list[int]]:
    """The rows grouped by fixed ``BLOCK_ROWS`` ranges, so buckets do not depend on the split."""
    block: list[int] = []
    for row in rows:
        if block and row // BLOCK_ROWS != block[0] // BLOCK_ROWS:
            yield block
            block = []
        block.append(row)
    if block:
        yield block


def _cells(dataset: Any, block: list[int], prefixes: list[str]) -> dict[tuple[int, str], Any]:
    present = dataset.column_names
    columns = [f"{p}{j}" for p in prefixes for j in VIEWS if f"{p}{j}" in present]
    table = dataset.select(block).select_columns(columns).to_dict()
    return {(row, c): table[c][i] for c in columns for i, row in enumerate(block)}


def _vectors(
    context: Context, bucket: str, cells: dict[tuple[int, str], Any], prefix: str
) -> dict[int, np.ndarray]:
    """Row -> (3, D) embeddings of its ``<prefix>1..3`` (NaN rows where a cell is empty), for
    the rows with at least one such image."""
    refs: list[ImageRef] = []
    slots: dict[tuple[int, int], int] = {}
    for row in sorted({row for row, _ in cells}):
        for j in VIEWS:
            image = _bytes(cells.get((row, f"{prefix}{j}")), f"row {row} {prefix}{j}")
            if image is None:
                continue
            mask = None
            if context.masked:
                mask = _bytes(cells.get((row, f"masks{j}")), f"row {row} masks{j}")
                if mask is None:
                    raise NearidError(f"{bucket}: row {row} has {prefix}{j} but no masks{j}")
            slots[row, j] = len(refs)
            refs.append(
                encoded_ref(
                    f"{bucket}/{row}", f"{prefix}{j}", image, mask, clean=context.clean_masks()
                )
            )
    vectors = context.cache.embed(refs, bucket=bucket)
    missing = np.full(vectors.shape[1:], np.nan)
    rows = sorted({row for row, _ in slots})
    return {
        row: np.stack([vectors[slots[row, j]] if (row, j) in slots else missing for j in VIEWS])
        for row in rows
    }


def _bytes(cell: Any, where: str) -> bytes | None:
    try:
        return cell_bytes(cell, where)
    except Rejection as exc:
        raise NearidError(f"{exc.reason}: {exc.detail}") from None
