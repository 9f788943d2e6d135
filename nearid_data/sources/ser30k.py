"""``ser30k``: SER30K sticker themes, one history per theme (the theme is the user).

    root/
      Annotations/image-level/{train,val,test}.json   {"annotations": [{topic, file_name, ...}]}
      Images/<topic>/<file_name>
      id_map.csv             item_id, image_path (under Images/)        (optional)
    extras (default: root)/
      ser30k_captions.json   {item_id or image path: caption} or [{item_id, caption}]   (optional)
      user_preferences.json  {topic: {topic, keywords: [...], ...}}                    (optional)

A theme's sequence is its stickers in annotation order, split files read train, val, test. The
item id is ``id_map.csv``'s id for the image where the file has one, else ``<topic>/<file stem>``.
The user style is the theme's keywords joined by ", ". Rows left out, each recorded with its file
and index: a sticker listed twice (``duplicate_sticker``); id-map rows naming no annotated
sticker (``unknown_image``).
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from nearid_data.engine.storage import Location
from nearid_data.errors import NearidError
from nearid_data.sources.formats import read_csv, read_json, require_columns
from nearid_data.sources.histories import (
    Histories,
    HistoryConfig,
    HistorySource,
    Interaction,
    Item,
    UnusedRow,
    text_table,
)

SPLIT_FILES = ("train", "val", "test")
ANNOTATIONS = "Annotations/image-level"
IMAGE_DIR = "Images"
ID_MAP = "id_map.csv"
CAPTIONS = "ser30k_captions.json"
PREFERENCES = "user_preferences.json"


class Ser30kConfig(HistoryConfig):
    pass


class Ser30kSource(HistorySource):
    Config = Ser30kConfig
    config: Ser30kConfig
    label = "ser30k"

    def read_histories(self) -> Histories:
        notes: list[str] = []
        unused: list[UnusedRow] = []
        stickers: list[tuple[str, str, str]] = []  # (where, topic, path under Images/)
        seen: set[str] = set()
        split_paths = [self.annotation(ANNOTATIONS, f"{s}.json") for s in SPLIT_FILES]
        if not any(p.is_file() for p in split_paths):
            raise NearidError(
                f"{self.root / ANNOTATIONS}: no annotation file ({', '.join(p.name for p in split_paths)})"
            )
        for path in split_paths:
            if not path.is_file():
                notes.append(f"no {path}")
                continue
            for where, topic, image in _annotations(path):
                if image in seen:
                    unused.append(UnusedRow(where, "duplicate_sticker", image))
                    continue
                seen.add(image)
                stickers.append((where, topic, image))
        ids = self._id_map(seen, unused, notes)
        captions = text_table(
            self.extras_file(CAPTIONS, notes, "captions are empty"),
            ("item_id", "image", "file_name"),
            "caption",
        )
        styles = _styles(self.extras_file(PREFERENCES, notes, "user styles are empty"))
        items: dict[str, Item] = {}
        sequences: dict[str, list[Interaction]] = {}
        for _, topic, image in stickers:
            item_id = ids.get(image) or str(PurePosixPath(image).with_suffix(""))
            caption = captions.get(item_id, captions.get(image, ""))
            items[item_id] = Item(item_id, f"{IMAGE_DIR}/{image}", caption)
            sequences.setdefault(topic, []).append(Interaction(item_id))
        return Histories("SER", items, dict(sorted(sequences.items())), styles, unused, notes)

    def _id_map(
        self, images: set[str], unused: list[UnusedRow], notes: list[str]
    ) -> dict[str, str]:
        """image path -> item id from ``id_map.csv`` (absent: ids are the paths)."""
        path = self.annotation(ID_MAP)
        if not path.is_file():
            notes.append(f"no {path}: item ids are <topic>/<file stem>")
            return {}
        header, rows = read_csv(path)
        require_columns(path, header, ["item_id", "image_path"])
        ids: dict[str, str] = {}
        owner: dict[str, str] = {}
        for index, row in enumerate(rows):
            where = f"{path}:{index + 2}"
            item_id, image = row["item_id"].strip(), row["image_path"].strip()
            if not item_id:
                raise NearidError(f"{where}: column item_id is empty")
            if owner.setdefault(item_id, image) != image:
                raise NearidError(f"{where}: item_id {item_id!r} also names {owner[item_id]!r}")
            if image not in images:
                unused.append(UnusedRow(where, "unknown_image", image))
                continue
            ids[image] = item_id
        return ids


def _annotations(path: Location) -> list[tuple[str, str, str]]:
    """(file: annotation index, topic, ``<topic>/<file_name>``) for each annotation."""
    raw = read_json(path)
    entries = raw.get("annotations") if isinstance(raw, dict) else None
    if not isinstance(entries, list):
        raise NearidError(f"{path}: expected an object with an 'annotations' list")
    rows = []
    for index, entry in enumerate(entries):
        where = f"{path}: annotations[{index}]"
        if not isinstance(entry, dict):
            raise NearidError(f"{where} is a {type(entry).__name__}, not an object")
        values = {}
        for key in ("topic", "file_name"):
            value = entry.get(key)
            if (
                not isinstance(value, str)
                or not value.strip()
                or "/" in value
                or value in ("..", ".")
            ):
                raise NearidError(f"{where}: {key} is {value!r}, not a file or folder name")
            values[key] = value.strip()
        rows.append((where, values["topic"], f"{values['topic']}/{values['file_name']}"))
    return rows


def _styles(path: Location | None) -> dict[str, str]:
    """topic -> its keywords joined by ", "."""
    if path is None:
        return {}
    raw = read_json(path)
    if not isinstance(raw, dict):
        raise NearidError(f"{path}: expected an object keyed by topic")
    styles = {}
    for topic, entry in raw.items():
        keywords: Any = entry.get("keywords") if isinstance(entry, dict) else None
        if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
            raise NearidError(f"{path}: {topic!r}: keywords must be a list of strings")
        styles[str(topic)] = ", ".join(keywords)
    return styles
