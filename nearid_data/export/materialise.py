"""Exports in the anchors' layouts: commit whole identities as shards, then materialise a folder.

An exporter that writes another layout (NearID Arrow, PODS folders, FPR CSVs) still runs as units
that commit shards, so every input is in a manifest and a rerun skips what is done:

1. ``plan``: ``identity_units`` cuts the upstream rows into runs of whole identities, in the same
   identity order as the WebDataset export (identity, then view).
2. ``run``: the stage yields ``Kept``/``Rejected`` per input of the unit, as any stage does.
3. ``finalize``: the catalog's ``committed_samples`` streams the committed samples back in plan order, reading
   only the fields asked for, and ``materialise`` writes the layout into a temporary sibling of
   its target and swaps it in. A reader sees the old layout or the new one, never a half-written
   one; a killed run leaves a temporary directory that the next run removes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from nearid_data.engine import transfer
from nearid_data.engine.atomic import TMP_MARK, fsync_dir, temp_path_for, writer_gone
from nearid_data.engine.catalog import CatalogRow
from nearid_data.engine.stage import WorkUnit
from nearid_data.engine.storage import Location, ObjectPath


def identity_units(rows: Iterable[CatalogRow], *, prefix: str, per_unit: int) -> list[WorkUnit]:
    """Units named ``<prefix>-NNNNN`` of up to ``per_unit`` identities each, rows sorted by
    identity and view; the payload lists ``[upstream unit, key]`` per row, as export's does."""
    by_identity: dict[str, list[CatalogRow]] = {}
    for row in sorted(rows, key=lambda r: (r.identity, r.view, r.key)):
        by_identity.setdefault(row.identity, []).append(row)
    identities = list(by_identity)
    units = []
    for index, start in enumerate(range(0, len(identities), per_unit)):
        chunk = [row for i in identities[start : start + per_unit] for row in by_identity[i]]
        units.append(WorkUnit(f"{prefix}-{index:05d}", {"rows": [[r.unit, r.key] for r in chunk]}))
    return units


def materialise(target: Location, write: Callable[[Path], None]) -> None:
    """Let ``write`` fill a fresh temporary directory beside ``target``, make it durable, then
    swap it in for ``target`` (two renames: the old tree is moved aside, then removed). On object
    storage, which cannot swap a folder, the layout is written to a local temporary folder and
    uploaded over ``target`` (see docs/RELIABILITY.md)."""
    if isinstance(target, ObjectPath):
        with tempfile.TemporaryDirectory() as local:
            write(Path(local))
            transfer.upload_tree(Path(local), target)
        return
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    for stale in parent.glob(f".{target.name}{TMP_MARK}*"):
        if writer_gone(stale):  # left by a killed run
            shutil.rmtree(stale)
    staging, retired = temp_path_for(target), temp_path_for(target)
    staging.mkdir()
    try:
        write(staging)
        _fsync_tree(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if target.exists():
        target.rename(retired)
    staging.rename(target)
    fsync_dir(parent)
    shutil.rmtree(retired, ignore_errors=True)


def _fsync_tree(root: Path) -> None:
    """Flush every file and directory below ``root``, so the renamed tree survives power loss."""
    for directory, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(directory, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(directory))
