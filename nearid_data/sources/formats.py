"""What the dataset adapters share: a base for sources read from files under a root, annotation
readers whose errors name the file and line, and image/mask loading (Hugging Face parquet files
and cells: ``sources/parquet.py``).

Conventions every adapter follows:

- ``items()`` returns items in the order the annotations list them; an identity's views are
  numbered in that order (:func:`number_views`). Parquet-backed items stay in file and row order,
  so a worker reads each row group once instead of once per image.
- ``ref`` holds the locator (``path`` relative to the root, or ``file`` and ``row``) plus the
  item's own annotations as the source wrote them (ids, raw boxes, split tags); ingest copies it
  into the sample's ``json`` under ``source``.
- A listed image that is not on disk is rejected as ``missing_file``; a missing mask is not an
  error (the segment stage makes one).
- Files are read through :meth:`DatasetSource.read_file` (images, masks) and
  :meth:`DatasetSource.annotation` (annotation files): only regular files inside the root, and no
  symbolic link that leads out of it unless ``follow_symlinks`` is set. Paths a config gives
  outside the root on purpose (``info:``, ``segmentations:``, ``extras:``) are the user's choice.
- Every root and path a config gives may be a local folder or an fsspec URL
  (``s3://bucket/cub``): files are read, listed and checked through the storage seam
  (``engine/storage.py``), so an adapter builds the same items and bytes from either. Object
  stores have no links, so there only ``..`` can leave a root.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import stat
from collections import Counter
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path, PurePath, PurePosixPath
from typing import Any, ClassVar, overload

import cv2
import numpy as np
from pydantic import Field

from nearid_data.engine import storage
from nearid_data.engine.storage import Location, ObjectPath
from nearid_data.errors import NearidError, Rejection
from nearid_data.imageio import DEFAULT_MAX_PIXELS, decode_image, decode_mask
from nearid_data.sources.base import Source, SourceConfig, SourceItem, SourceRecord
from nearid_data.sources.checksums import require_files

Box = tuple[float, float, float, float]


class DatasetConfig(SourceConfig):
    location_fields: ClassVar[frozenset[str]] = frozenset({"root", "manifest"})

    root: str
    manifest: str | None = None
    """A source manifest (see ``checksums``) that the files under ``root`` must match."""
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=1)
    follow_symlinks: bool = False
    """Read files through symbolic links that lead outside ``root`` (recorded in the summary)."""


class DatasetSource(Source):
    """A source read from a dataset's files: checks the root (and manifest), then lists."""

    Config: ClassVar[type[SourceConfig]] = DatasetConfig
    config: DatasetConfig
    label: ClassVar[str] = "dataset"

    @cached_property
    def root(self) -> Location:
        """The root as given: a local folder or an fsspec URL."""
        return storage.location(self.config.root)

    def items(self) -> list[SourceItem]:
        if not self.root.is_dir():
            raise NearidError(f"{self.label} root {str(self.root)!r} is not a directory")
        if self.config.manifest is not None:
            require_files(self.root, storage.location(self.config.manifest))
        return self.list_items()

    def list_items(self) -> list[SourceItem]:
        raise NotImplementedError

    def read_file(self, path: str | PurePath, *, root: Location | None = None) -> bytes:
        """The bytes of ``path`` (relative to ``root``, by default the source root)."""
        return read_inside(
            self.root if root is None else root,
            path,
            follow_symlinks=self.config.follow_symlinks,
        )

    def annotation(self, *parts: str) -> Location:
        """The annotation file ``root/parts...``, checked as :func:`annotation_path` does."""
        return annotation_path(
            self.root, PurePosixPath(*parts), follow_symlinks=self.config.follow_symlinks
        )


def number_views(entries: Iterable[tuple[str, str, dict[str, Any]]]) -> list[SourceItem]:
    """Items from (identity, category, ref) in order; views count up per identity."""
    seen: Counter[str] = Counter()
    items = []
    for identity, category, ref in entries:
        items.append(SourceItem(identity, category, seen[identity], ref))
        seen[identity] += 1
    return items


# --- annotation files --------------------------------------------------------------------------


@overload
def annotation_path(root: Path, path: str | PurePath, *, follow_symlinks: bool) -> Path: ...
@overload
def annotation_path(
    root: ObjectPath, path: str | PurePath, *, follow_symlinks: bool
) -> ObjectPath: ...
def annotation_path(root: Location, path: str | PurePath, *, follow_symlinks: bool) -> Location:
    """``root/path`` after the rules of :func:`inside_root`, and not something other than a
    regular file; a breach is a ``NearidError`` naming the file. A file that is not there is
    returned as is: whether that is an error is the caller's (some annotation files are
    optional)."""
    try:
        full = inside_root(root, path, follow_symlinks=follow_symlinks)
        if full.exists() and not full.is_file():
            raise NearidError(f"annotation file {full} is not a regular file")
    except Rejection as exc:
        raise NearidError(f"annotation file in {root}: {exc.detail}") from None
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop on older Pythons
        raise NearidError(f"cannot read annotation file {root / str(path)}: {exc}") from None
    return full


def require_file(path: Location) -> Location:
    if not path.is_file():
        raise NearidError(f"annotation file {path} is missing")
    return path


def read_text(path: Location, *, encoding: str = "utf-8") -> str:
    """The text of an annotation file, read whole through the storage seam."""
    try:
        return storage.read_bytes(require_file(path)).decode(encoding)
    except UnicodeDecodeError as exc:
        raise NearidError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise NearidError(f"cannot read annotation file {path}: {exc}") from None


def read_text_rows(path: Location, n_fields: int) -> list[tuple[int, list[str]]]:
    """(line number, fields) of a whitespace-separated file whose lines have ``n_fields``."""
    rows = []
    text = read_text(path)
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != n_fields:
            raise NearidError(f"{path}:{number}: expected {n_fields} fields, got {len(fields)}")
        rows.append((number, fields))
    return rows


def parse_number(value: str, kind: type[int] | type[float], where: str) -> Any:
    try:
        number = kind(value)
    except ValueError:
        raise NearidError(
            f"{where}: {value!r} is not {'an integer' if kind is int else 'a number'}"
        ) from None
    if not math.isfinite(number):
        raise NearidError(f"{where}: {value!r} is not a finite number")
    return number


def read_json(path: Location) -> Any:
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise NearidError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None


def read_csv(path: Location) -> tuple[list[str], list[dict[str, str]]]:
    """The header and rows of a CSV file (a UTF-8 byte-order mark is ignored); a row with more
    or fewer fields than the header is an error naming its line."""
    rows = []
    # newline="": the csv module reads line ends itself (quoted fields may hold them).
    reader = csv.DictReader(io.StringIO(read_text(path, encoding="utf-8-sig"), newline=""))
    try:
        for row in reader:
            if None in row or None in row.values():
                raise NearidError(f"{path}:{reader.line_num}: not as many fields as the header")
            rows.append(row)
    except csv.Error as exc:
        raise NearidError(f"{path}:{reader.line_num}: {exc}") from None
    return list(reader.fieldnames or []), rows


def require_columns(where: Location, present: Iterable[str], required: Iterable[str]) -> None:
    present = list(present)
    missing = [column for column in required if column not in present]
    if missing:
        raise NearidError(
            f"{where}: missing column(s) {', '.join(missing)} (it has: {', '.join(present)})"
        )


# --- inside the root ----------------------------------------------------------------------------


@overload
def inside_root(root: Path, path: str | PurePath, *, follow_symlinks: bool) -> Path: ...
@overload
def inside_root(root: ObjectPath, path: str | PurePath, *, follow_symlinks: bool) -> ObjectPath: ...
def inside_root(root: Location, path: str | PurePath, *, follow_symlinks: bool) -> Location:
    """``root/path``, refused (``Rejection("outside_root")``) when it leaves ``root`` by ``..``
    (always) or through a symbolic link (unless ``follow_symlinks``). Object storage has no links,
    so there only ``..`` can leave the root. A path that does not exist is returned as is."""
    if isinstance(root, ObjectPath):
        pure = PurePath(path)
        if pure.is_absolute() or ".." in pure.parts:
            raise Rejection("outside_root", f"{path} points outside the source root")
        return root / pure.as_posix()
    full = root / path
    if not _is_inside(os.path.normpath(full), os.path.normpath(root)):
        raise Rejection("outside_root", f"{path} points outside the source root")
    if not follow_symlinks:
        try:
            resolved = full.resolve(strict=True)
        except FileNotFoundError:
            return full
        if not _is_inside(str(resolved), str(root.resolve())):
            raise Rejection(
                "outside_root",
                f"{path} is a link to {resolved}, outside the source root "
                "(set source.follow_symlinks: true to read it)",
            )
    return full


class FileIndex:
    """What lies below ``root``, asked for many paths (a mask beside each image, the files of
    each identity folder): on an object store from one listing of ``root``, as a request per path
    would cost a round trip each; locally from the file system, which answers through links as
    reads do. Paths are relative to ``root``, ``/``-separated."""

    def __init__(self, root: Location) -> None:
        self.root = root

    @cached_property
    def _tree(self) -> dict[str, tuple[set[str], set[str]]]:
        """Folder -> (names of its subfolders, names of its files), from one listing."""
        assert isinstance(self.root, ObjectPath)
        tree: dict[str, tuple[set[str], set[str]]] = {}
        for found in storage.list_files(self.root):
            parts = storage.relative(found, self.root).split("/")
            for depth, name in enumerate(parts):
                folders, files = tree.setdefault("/".join(parts[:depth]), (set(), set()))
                (files if depth == len(parts) - 1 else folders).add(name)
        return tree

    def is_file(self, path: str | PurePath) -> bool:
        if isinstance(self.root, Path):
            return (self.root / path).is_file()
        relative = PurePosixPath(path)
        return relative.name in self._in(relative.parent)[1]

    def entries(self, folder: str) -> tuple[list[str], list[str]]:
        """The names of the folders and of the files directly in ``root/folder``, sorted."""
        if isinstance(self.root, Path):
            here = storage.children(self.root / folder)
            return [p.name for p in here if p.is_dir()], [p.name for p in here if p.is_file()]
        folders, files = self._in(PurePosixPath(folder))
        return sorted(folders), sorted(files)

    def _in(self, folder: PurePosixPath) -> tuple[set[str], set[str]]:
        key = folder.as_posix()
        return self._tree.get("" if key == "." else key, (set(), set()))


# --- images and masks --------------------------------------------------------------------------


def read_inside(root: Location, path: str | PurePath, *, follow_symlinks: bool) -> bytes:
    """The bytes of the regular file ``root/path`` (:func:`inside_root` says which paths may be
    read). Everything else that is not a readable regular file is a rejection naming the path."""
    try:
        full = inside_root(root, path, follow_symlinks=follow_symlinks)
        if isinstance(full, ObjectPath):
            return _read_object(full, path)
        if not stat.S_ISREG(full.stat().st_mode):
            raise Rejection("not_a_regular_file", str(path))
        return full.read_bytes()
    except FileNotFoundError:
        raise Rejection("missing_file", str(root / str(path))) from None
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop on older Pythons
        raise Rejection("unreadable_file", str(exc)) from None


def _read_object(full: ObjectPath, path: str | PurePath) -> bytes:
    try:
        return full.read_bytes()
    except IsADirectoryError:
        raise Rejection("not_a_regular_file", str(path)) from None


def _is_inside(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root


def decode_record(
    image: bytes,
    *,
    max_pixels: int,
    mask: bytes | None = None,
    mask_threshold: int | None = None,
    fit_mask: bool = False,
    box: Box | None = None,
    caption: str = "",
) -> SourceRecord:
    """Decode an item's image and optional mask; ``box`` is (x0, y0, x1, y1) in pixels, x1 and y1
    exclusive, and becomes the enclosing integer box clipped to the image.

    ``mask_threshold`` None: the mask rule of ``decode_mask`` (> 0, or > 127 for JPEG); a number:
    grey level > threshold whatever the format, for soft masks stored losslessly. A mask of
    another size than the image is rejected, or with ``fit_mask`` resized to it (nearest).
    """
    decoded = decode_image(image, max_pixels=max_pixels)
    height, width = decoded.rgb.shape[:2]
    notes = list(decoded.notes)
    decoded_mask = decoded.alpha
    if mask is not None:
        decoded_mask = _decode_mask(mask, mask_threshold, (height, width), fit_mask, notes)
    clipped = None
    if box is not None:
        clipped = _clip_box(box, width, height)
        if clipped is None:
            notes.append("box_outside_image")
    return SourceRecord(
        image=decoded.rgb, mask=decoded_mask, box=clipped, caption=caption, notes=tuple(notes)
    )


def _decode_mask(
    data: bytes, threshold: int | None, shape: tuple[int, int], fit: bool, notes: list[str]
) -> np.ndarray:
    if threshold is None:
        mask = decode_mask(data)
    else:
        mask = cv2.cvtColor(decode_image(data).rgb, cv2.COLOR_RGB2GRAY) > threshold
    if mask.shape != shape:
        if not fit:
            raise Rejection("mask_size_mismatch", f"mask is {mask.shape}, expected {shape}")
        notes.append("mask_resized")
        size = (shape[1], shape[0])
        mask = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    return np.ascontiguousarray(mask)


def _clip_box(box: Box, width: int, height: int) -> tuple[int, int, int, int] | None:
    x0, y0 = max(0, math.floor(box[0])), max(0, math.floor(box[1]))
    x1, y1 = min(width, math.ceil(box[2])), min(height, math.ceil(box[3]))
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None
