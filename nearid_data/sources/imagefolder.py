"""``imagefolder``: a folder per identity, optionally grouped by category, with optional masks and
``metadata.jsonl``.

Layouts (``layout:``):

- ``identity``: ``root/<identity>/<image>``;
- ``category/identity``: ``root/<category>/<identity>/<image>``; the identity is then
  ``<category>/<identity>``, so the same folder name under two categories stays two identities.

- Views of an identity are its image files in sorted name order.
- A mask beside an image is named ``<stem>.mask.png`` (any value > 0 is subject).
- ``root/metadata.jsonl`` (optional), one JSON object per identity:
  ``{"identity": "...", "category": "...", "caption": "..."}``.
- An identity's category is, first found: ``categories:`` in the config, its metadata line, its
  category folder, ``default_category``.

Every regular file under the root becomes a manifest row, never a silent skip: an image of an
identity is a view; anything else is a rejected row with its reason (``unsupported_extension``,
``not_in_identity_folder``, ``in_subfolder``, ``hidden``, ``mask_without_image``,
``linked_folder``). Only ``metadata.jsonl`` and the source manifest, which describe the
dataset, are not inputs.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from nearid_data.engine import storage
from nearid_data.engine.storage import Location, ObjectPath
from nearid_data.errors import NearidError, Rejection
from nearid_data.imageio import decode_image, decode_mask
from nearid_data.sources.base import SourceItem, SourceRecord
from nearid_data.sources.formats import DatasetConfig, DatasetSource, annotation_path

log = logging.getLogger("nearid_data")

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
MASK_SUFFIX = ".mask.png"
METADATA_NAME = "metadata.jsonl"
Layout = Literal["identity", "category/identity"]
LAYOUT_PATTERNS: dict[str, str] = {
    "identity": "<root>/<identity>/<image>",
    "category/identity": "<root>/<category>/<identity>/<image>",
}


class ImageFolderConfig(DatasetConfig):
    layout: Layout = "identity"
    categories: dict[str, str] | None = None
    """identity -> category; wins over metadata.jsonl and category folders."""
    default_category: str = "object"


@dataclass(frozen=True)
class _Entry:
    """A file under the root: the folder it counts for, and why it is not a view (if it is not)."""

    path: PurePosixPath
    folder: str
    rejection: tuple[str, str] | None = None


class ImageFolderSource(DatasetSource):
    Config = ImageFolderConfig
    config: ImageFolderConfig
    label = "imagefolder"

    def list_items(self) -> list[SourceItem]:
        depth = 2 if self.config.layout == "category/identity" else 1
        files, linked_folders = self._walk()
        images = {
            (p.parent, p.stem)
            for p in files
            if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.endswith(MASK_SUFFIX)
        }
        entries = [e for p in files if (e := self._classify(p, depth, images)) is not None]
        entries += [
            _Entry(
                path,
                self._folder_of(path, depth),
                (
                    "linked_folder",
                    f"{path} is a link (set source.follow_symlinks: true to read it)",
                ),
            )
            for path in linked_folders
        ]
        identities = sorted(
            {e.folder for e in entries if e.rejection is None} | set(self._folders(depth))
        )
        if not identities:
            raise NearidError(
                f"imagefolder root {str(self.root)!r} has no identity folders: expected "
                f"{LAYOUT_PATTERNS[self.config.layout]} (layout: {self.config.layout}), "
                "one folder per identity holding its images"
            )
        category_of = self._categories(identities, depth)
        views: Counter[str] = Counter()
        items: list[SourceItem] = []
        # Views first, in sorted order, so an identity's views are numbered 0..n-1; then every
        # other file, so that it too has a row (and a unique key).
        for entry in sorted(entries, key=lambda e: (e.rejection is not None, e.path.parts)):
            category = category_of.get(entry.folder, self.config.default_category)
            items.append(
                SourceItem(
                    entry.folder,
                    category,
                    views[entry.folder],
                    {"path": entry.path.as_posix()},
                    rejection=entry.rejection,
                )
            )
            views[entry.folder] += 1
        return items

    def load(self, item: SourceItem) -> SourceRecord:
        path = PurePosixPath(item.ref["path"])
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            raise Rejection("unsupported_extension", path.name)
        decoded = decode_image(self.read_file(path), max_pixels=self.config.max_pixels)
        mask = decoded.alpha
        mask_path = path.with_name(path.stem + MASK_SUFFIX)
        if (self.root / mask_path.as_posix()).exists():
            mask = decode_mask(self.read_file(mask_path), shape=decoded.rgb.shape[:2])
        caption = self._metadata().get(item.identity, {}).get("caption", "")
        return SourceRecord(image=decoded.rgb, mask=mask, caption=caption, notes=decoded.notes)

    # -- listing --------------------------------------------------------------------------------
    def _walk(self) -> tuple[list[PurePosixPath], list[PurePosixPath]]:
        """Every file under the root, and the folder links not followed (paths relative)."""
        root = self.root
        if isinstance(root, ObjectPath):  # object stores have no links
            found = storage.list_files(root)
            return [PurePosixPath(storage.relative(p, root)) for p in found], []
        files: list[PurePosixPath] = []
        linked: list[PurePosixPath] = []
        seen: set[tuple[int, int]] = set()
        follow = self.config.follow_symlinks
        for folder, subfolders, names in os.walk(root, onerror=_unlistable, followlinks=follow):
            here = Path(folder)
            info = here.stat()
            if (info.st_dev, info.st_ino) in seen:  # a link loop: this folder was walked already
                subfolders.clear()
                continue
            seen.add((info.st_dev, info.st_ino))
            relative = PurePosixPath(here.relative_to(root).as_posix())
            subfolders.sort()
            if not follow:
                linked += [relative / n for n in subfolders if (here / n).is_symlink()]
            files += [relative / name for name in sorted(names)]
        return files, linked

    def _classify(
        self, path: PurePosixPath, depth: int, images: set[tuple[PurePosixPath, str]]
    ) -> _Entry | None:
        """The file as an input (a view, or a rejection with its reason); None for the files that
        describe the dataset and for masks, which travel with their image."""
        folder = self._folder_of(path, depth)
        levels = len(path.parts) - 1
        if levels == 0 and (path.name == METADATA_NAME or self._is_manifest(path)):
            return None
        if any(part.startswith(".") for part in path.parts):
            return _Entry(
                path, folder, ("hidden", f"{path}: hidden files and folders are not read")
            )
        if levels < depth:
            layout = LAYOUT_PATTERNS[self.config.layout]
            return _Entry(path, folder, ("not_in_identity_folder", f"{path}: expected {layout}"))
        if levels > depth:
            detail = f"{path}: identity folders hold their images directly, not in subfolders"
            return _Entry(path, folder, ("in_subfolder", detail))
        if path.name.endswith(MASK_SUFFIX):
            stem = path.name.removesuffix(MASK_SUFFIX)
            if (path.parent, stem) in images:
                return None
            return _Entry(path, folder, ("mask_without_image", f"{path}: no image {stem}.*"))
        return _Entry(path, folder)

    @staticmethod
    def _folder_of(path: PurePosixPath, depth: int) -> str:
        """The identity folder a file counts for (or the folder it is in, when it is not in one)."""
        return "/".join(path.parts[: min(depth, len(path.parts) - 1)]) or "."

    def _folders(self, depth: int) -> list[str]:
        """Identity folders (no hidden part), even empty ones."""
        pattern = "/".join(["*"] * depth)
        folders = [
            storage.relative(p, self.root)
            for p in storage.glob(self.root, pattern)
            if p.is_dir() and (self.config.follow_symlinks or not storage.is_link(p))
        ]
        return [f for f in folders if not any(part.startswith(".") for part in f.split("/"))]

    def _is_manifest(self, path: PurePosixPath) -> bool:
        if self.config.manifest is None:
            return False
        manifest, here = storage.location(self.config.manifest), self.root / path.as_posix()
        if isinstance(manifest, Path) and isinstance(here, Path):
            return manifest.resolve() == here.resolve()
        return manifest == here

    def _categories(self, identities: list[str], depth: int) -> dict[str, str]:
        configured = self.config.categories or {}
        unknown = sorted(set(configured) - set(identities))
        if unknown:
            raise NearidError(
                f"source.categories names identities that are not folders under "
                f"{str(self.root)!r}: {', '.join(map(repr, unknown[:5]))}"
            )
        metadata = self._metadata()
        category_of: dict[str, str] = {}
        for identity in identities:
            category = configured.get(identity) or metadata.get(identity, {}).get("category")
            if category is None and depth == 2:
                category = identity.split("/")[0]
            if category is not None:
                category_of[identity] = str(category)
        if not category_of and len(identities) > 1:
            log.warning(
                "imagefolder: no categories (source.categories, metadata.jsonl or layout: "
                "category/identity); every identity is in category %r, so distractor siblings "
                "are drawn across all identities",
                self.config.default_category,
            )
        return category_of

    def _metadata(self) -> dict[str, dict[str, Any]]:
        if not hasattr(self, "_metadata_cache"):
            self._metadata_cache = read_metadata(
                annotation_path(
                    self.root, METADATA_NAME, follow_symlinks=self.config.follow_symlinks
                )
            )
        return self._metadata_cache


def _unlistable(error: OSError) -> None:
    """A folder that cannot be listed would lose its files without a row: stop instead."""
    raise NearidError(f"imagefolder cannot list {error.filename}: {error.strerror}")


def read_metadata(path: Location) -> dict[str, dict[str, Any]]:
    """identity -> its metadata line; a malformed line is an error naming the file and line."""
    if not path.exists():
        return {}
    by_identity: dict[str, dict[str, Any]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise NearidError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("identity"), str):
            raise NearidError(f"{path}:{number}: each line needs a string 'identity' field")
        by_identity[record["identity"]] = record
    return by_identity
