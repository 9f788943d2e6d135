"""Hugging Face parquet for the dataset adapters: split files under a root, columns, rows read
one row group at a time, and image bytes from cells.

Files are local paths or object-store locations: pyarrow reads either through a seekable handle
(``storage.open_read``; on object stores its seeks become ranged reads), so a row group is
fetched without the rest of the file."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import IO, Any

from nearid_data.engine import storage
from nearid_data.engine.storage import Location
from nearid_data.errors import NearidError, Rejection
from nearid_data.optional import import_optional
from nearid_data.sources.formats import annotation_path, require_columns


def parquet_splits(root: Location, *, follow_symlinks: bool) -> dict[str, list[Location]]:
    """Split name -> its parquet files under ``root``, from Hub file names such as
    ``data/train-00000-of-00002.parquet`` or ``test_dense.parquet``. Each is checked as an
    annotation file (:func:`annotation_path`): a link out of ``root`` is an error unless
    ``follow_symlinks``."""
    splits: dict[str, list[Location]] = {}
    for found in storage.list_files(root, "*.parquet"):
        path = annotation_path(root, storage.relative(found, root), follow_symlinks=follow_symlinks)
        splits.setdefault(path.name.removesuffix(".parquet").split("-")[0], []).append(path)
    return splits


def select_splits(
    root: Location, available: dict[str, list[Location]], wanted: Sequence[str]
) -> None:
    missing = [split for split in wanted if split not in available]
    if missing:
        raise NearidError(
            f"{root}: no parquet files for split(s) {', '.join(missing)} "
            f"(found: {', '.join(sorted(available)) or 'none'})"
        )


def _parquet() -> ModuleType:
    return import_optional("pyarrow.parquet", needed_for="reading parquet", extra="hub")


@contextmanager
def _opened(path: Location) -> Iterator[IO[bytes]]:
    """``path`` open for pyarrow; its I/O and "not a parquet file" errors name the file."""
    try:
        with storage.open_read(path) as handle:
            yield handle
    except (OSError, ValueError) as exc:
        raise NearidError(f"cannot read {path}: {exc}") from None


def read_parquet_columns(
    path: Location, columns: Sequence[str], *, required: Sequence[str] = ()
) -> dict[str, list[Any]]:
    """Whole ``columns`` of a parquet file; ``required`` columns must exist but are not read."""
    with _opened(path) as handle:
        parquet_file = _parquet().ParquetFile(handle)
        require_columns(path, parquet_file.schema_arrow.names, [*columns, *required])
        table = parquet_file.read(columns=list(columns))
    return {column: table.column(column).to_pylist() for column in columns}


def class_label_names(path: Location, column: str) -> list[str] | None:
    """Class names that ``datasets`` stored for a ``ClassLabel`` column in the parquet schema."""
    with _opened(path) as handle:
        metadata = _parquet().read_schema(handle).metadata or {}
    try:
        features = json.loads(metadata[b"huggingface"])["info"]["features"]
        names = features[column]["names"]
    except (KeyError, TypeError, ValueError):
        return None
    return [str(name) for name in names]


class ParquetRows:
    """Rows of parquet files by index, keeping the last row group read in memory."""

    def __init__(self) -> None:
        self._files: dict[Location, Any] = {}
        self._group_key: tuple[Location, int, tuple[str, ...]] | None = None
        self._group: list[dict[str, Any]] = []

    def row(self, path: Location, index: int, columns: Sequence[str]) -> dict[str, Any]:
        try:
            if path not in self._files:
                # Kept open: the rows of one file are read one row group after another.
                self._files[path] = _parquet().ParquetFile(storage.open_read(path))
            metadata = self._files[path].metadata
            start = 0
            for group in range(metadata.num_row_groups):
                size = metadata.row_group(group).num_rows
                if index < start + size:
                    key = (path, group, tuple(columns))
                    if key != self._group_key:
                        table = self._files[path].read_row_group(group, columns=list(columns))
                        self._group, self._group_key = table.to_pylist(), key
                    return self._group[index - start]
                start += size
        except (OSError, ValueError) as exc:  # pyarrow's I/O and corrupt-data errors
            raise Rejection("unreadable_file", f"{path}: {exc}") from None
        raise Rejection("missing_file", f"{path} has no row {index}")


def cell_bytes(cell: Any, where: str) -> bytes | None:
    """The encoded bytes of a Hugging Face ``Image`` cell ({bytes, path}) or a binary cell;
    None for an empty cell."""
    if cell is None or isinstance(cell, bytes):
        return cell
    if isinstance(cell, dict) and cell.get("bytes") is not None:
        return bytes(cell["bytes"])
    if isinstance(cell, dict) and cell.get("path"):
        raise Rejection("missing_file", f"{where}: no embedded bytes (path {cell['path']!r})")
    if isinstance(cell, dict):
        return None
    raise Rejection("not_an_image", f"{where}: a {type(cell).__name__} cell, not an image")


def image_cell_bytes(cell: Any, where: str) -> bytes:
    """Like :func:`cell_bytes`, but an empty cell is a listed image that is not there."""
    data = cell_bytes(cell, where)
    if data is None:
        raise Rejection("missing_file", f"{where}: empty image cell")
    return data
