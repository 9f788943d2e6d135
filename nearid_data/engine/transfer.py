"""Copies between a location and local disk, for libraries that read or write only local folders
(diffusers pipelines and adapters, the Hub client, folder layouts built with local tools).

A local location is used in place; an object-store location is downloaded to, or uploaded from,
a temporary folder through the storage seam (``engine/storage.py``).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nearid_data.engine.storage import (
    CHUNK,
    Location,
    ObjectPath,
    atomic_writer,
    delete,
    list_files,
    relative,
)


def upload_tree(local: Path, target: ObjectPath) -> None:
    """Replace the folder ``target`` by the files of ``local``: files are uploaded whole, the
    folder is not swapped at once (object stores have no rename); stale files are removed after."""
    fresh = {p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()}
    for name in sorted(fresh):
        with atomic_writer(target / name) as handle, open(local / name, "rb") as source:
            shutil.copyfileobj(source, handle, CHUNK)
    for old in list_files(target):
        if relative(old, target) not in fresh:
            delete(old)


@contextmanager
def local_copy(root: Location, files: list[str]) -> Iterator[Path]:
    """A local folder holding ``files`` (paths relative to ``root``): ``root`` itself when it is
    local, else a temporary download of just those files, removed afterwards."""
    if isinstance(root, Path):
        yield root
        return
    with tempfile.TemporaryDirectory() as folder:
        for name in files:
            target = Path(folder) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            root.fs.get_file((root / name).path, str(target))
        yield Path(folder)


@contextmanager
def local_folder(where: Location) -> Iterator[Path]:
    """``where`` itself when it is local, else a temporary download of everything below it (for
    libraries that load a folder from disk), removed afterwards."""
    files = [] if isinstance(where, Path) else [relative(p, where) for p in list_files(where)]
    with local_copy(where, files) as folder:
        yield folder
