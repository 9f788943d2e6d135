"""``syncd``: SynCD, the synthetic customization dataset (Kumari et al., ICCV 2025).

    root/
      *metadata.json     lists of {filenames: [3], prompts: [3], original_filenames,
      metadata_<rank>.json  objaverse_id, category: rigid | deformable}
      <filename>.jpg     the views, relative to the root
      masks/<stem>.jpg   a view's mask, in a ``masks`` folder beside it

Every metadata file in the root is read (in name order) unless ``metadata`` lists the files:
``*metadata.json``, as released and as SynCD's loader (``method/data/data.py``) globs, and
``metadata_<rank>.json``, as its generation scripts (``dataset/gen_rigid.py``) write them. Score
files (``metadata_with_scores.json``, from ``dataset/cal_scores.py``) repeat entries and are not
read. When no file matches, the error lists the JSON files that are there. Each entry is one
identity: its Objaverse asset (``objaverse_id``; entries of one asset share the identity), or
``entry-<n>`` for entries without one (deformable identities are generated from text, not an
asset). Its views are the entry's files in order; the category is ``rigid`` or ``deformable``
(from ``category``; without one, rigid exactly when there is an Objaverse id). ``category``
selects which to keep: ``rigid`` by default (NearID uses only the rigid part), ``deformable`` or
``all``. The caption is the view's own prompt.

Masks are JPEG, binarised at > 127 (SynCD's loader takes > 0, which keeps compression speckle),
and resized to their image when the sizes differ, as SynCD's loader does. ``source`` in the sample
json: ``path``, ``mask``, ``entry`` (position over the metadata files), ``objaverse_id``,
``prompt``.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any, Literal

from nearid_data.engine import storage
from nearid_data.engine.storage import Location
from nearid_data.errors import NearidError
from nearid_data.sources.base import SourceItem, SourceRecord
from nearid_data.sources.formats import (
    DatasetConfig,
    DatasetSource,
    FileIndex,
    decode_record,
    number_views,
    read_json,
)

METADATA_NAME = re.compile(r"^(.*metadata|metadata_\d+)\.json$")
CATEGORIES = ("rigid", "deformable")


class SyncdConfig(DatasetConfig):
    metadata: list[str] | None = None
    """Metadata files relative to the root; default: every ``*metadata.json`` and
    ``metadata_<rank>.json`` there."""
    category: Literal["rigid", "deformable", "all"] = "rigid"


class SyncdSource(DatasetSource):
    Config = SyncdConfig
    config: SyncdConfig
    label = "syncd"

    def list_items(self) -> list[SourceItem]:
        entries = []
        masks = FileIndex(self.root)
        for index, entry in enumerate(self._entries()):
            category = entry.get("category") or (
                "rigid" if entry.get("objaverse_id") else "deformable"
            )
            if self.config.category not in ("all", category):
                continue
            identity = str(entry.get("objaverse_id") or f"entry-{index}")
            for filename, prompt in zip(entry["filenames"], entry["prompts"], strict=True):
                ref: dict[str, Any] = {"path": filename, "entry": index, "prompt": prompt}
                if entry.get("objaverse_id"):
                    ref["objaverse_id"] = str(entry["objaverse_id"])
                image = PurePosixPath(filename)
                mask = image.parent / "masks" / f"{image.stem}.jpg"
                if masks.is_file(mask):
                    ref["mask"] = str(mask)
                entries.append((identity, category, ref))
        return number_views(entries)

    def load(self, item: SourceItem) -> SourceRecord:
        mask = item.ref.get("mask")
        return decode_record(
            self.read_file(item.ref["path"]),
            max_pixels=self.config.max_pixels,
            mask=self.read_file(mask) if mask else None,
            fit_mask=True,
            caption=item.ref["prompt"],
        )

    def _entries(self) -> list[dict[str, Any]]:
        if self.config.metadata is not None:
            paths = [self.annotation(name) for name in self.config.metadata]
        else:
            found = storage.glob(self.root, "*.json")
            paths = [self.annotation(path.name) for path in found if METADATA_NAME.match(path.name)]
            if not paths:
                listed = ", ".join(path.name for path in found) or "none"
                raise NearidError(
                    f"syncd: no *metadata.json or metadata_<rank>.json in {self.root} "
                    f"(JSON files there: {listed}); name the files with 'metadata'"
                )
        entries: list[dict[str, Any]] = []
        for path in paths:
            content = read_json(path)
            if not isinstance(content, list):
                raise NearidError(f"{path}: expected a list of entries")
            entries.extend(_checked(path, number, entry) for number, entry in enumerate(content))
        return entries


def _checked(path: Location, number: int, entry: Any) -> dict[str, Any]:
    where = f"{path}: entry {number}"
    if not isinstance(entry, dict):
        raise NearidError(f"{where}: expected an object")
    filenames, prompts = entry.get("filenames"), entry.get("prompts")
    if not isinstance(filenames, list) or not all(isinstance(f, str) and f for f in filenames):
        raise NearidError(f"{where}: 'filenames' must be a list of file names")
    if not isinstance(prompts, list) or len(prompts) != len(filenames):
        raise NearidError(f"{where}: 'prompts' must be a list with one prompt per file")
    if not all(isinstance(p, str) for p in prompts):
        raise NearidError(f"{where}: every prompt must be a string")
    if entry.get("category") not in (None, *CATEGORIES):
        raise NearidError(f"{where}: category {entry['category']!r} is not one of {CATEGORIES}")
    return entry
