"""``imagefolder``: ``root/<identity>/<image>`` with optional masks and ``metadata.jsonl``.

- Views of an identity are its image files in sorted name order.
- A mask beside an image is named ``<stem>.mask.png`` (any value > 0 is subject).
- ``root/metadata.jsonl`` (optional), one JSON object per identity:
  ``{"identity": "...", "category": "...", "caption": "..."}``.
Files with other extensions in an identity folder are listed and rejected with a reason, not
skipped in silence.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field

from nearid_data.errors import NearidError, Rejection
from nearid_data.imageio import DEFAULT_MAX_PIXELS, decode_image, decode_mask
from nearid_data.sources.base import Source, SourceConfig, SourceItem, SourceRecord

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
MASK_SUFFIX = ".mask.png"


class ImageFolderConfig(SourceConfig):
    root: str
    default_category: str = "object"
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=1)


class ImageFolderSource(Source):
    Config = ImageFolderConfig
    config: ImageFolderConfig

    @property
    def root(self) -> Path:
        return Path(self.config.root)

    def items(self) -> list[SourceItem]:
        if not self.root.is_dir():
            raise NearidError(f"imagefolder root {str(self.root)!r} is not a directory")
        metadata = self._metadata()
        items: list[SourceItem] = []
        for folder in sorted(
            p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")
        ):
            info = metadata.get(folder.name, {})
            category = info.get("category", self.config.default_category)
            files = sorted(
                p
                for p in folder.iterdir()
                if p.is_file() and not p.name.startswith(".") and not p.name.endswith(MASK_SUFFIX)
            )
            items.extend(
                SourceItem(
                    folder.name, category, view, {"path": path.relative_to(self.root).as_posix()}
                )
                for view, path in enumerate(files)
            )
        return items

    def load(self, item: SourceItem) -> SourceRecord:
        path = self.root / item.ref["path"]
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            raise Rejection("unsupported_extension", path.name)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise Rejection("unreadable_file", str(exc)) from None
        decoded = decode_image(data, max_pixels=self.config.max_pixels)
        mask = decoded.alpha
        mask_path = path.with_name(path.stem + MASK_SUFFIX)
        if mask_path.exists():
            mask = decode_mask(mask_path.read_bytes(), shape=decoded.rgb.shape[:2])
        caption = self._metadata().get(item.identity, {}).get("caption", "")
        return SourceRecord(image=decoded.rgb, mask=mask, caption=caption, notes=decoded.notes)

    def _metadata(self) -> dict[str, dict[str, Any]]:
        if not hasattr(self, "_metadata_cache"):
            self._metadata_cache = read_metadata(self.root / "metadata.jsonl")
        return self._metadata_cache


def read_metadata(path: Path) -> dict[str, dict[str, Any]]:
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
