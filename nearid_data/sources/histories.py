"""What the user-history sources share (``flickr-aes``, ``pog``, ``ser30k``): items, each user's
ordered interactions, style texts, and every annotation row left out with its reason.

A history source is a ``DatasetSource`` whose items are the item images (identity: the item id,
one view each), so ingest decodes each image once however many users saw it; the ``windows``
stage reads :meth:`HistorySource.histories` for the sequences. The personalized generation
benchmark adds caption and style files to the raw datasets; each adapter also runs without them
(empty captions and styles, said in ``notes``) and reads them from ``extras`` when they live
outside the root.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from nearid_data.engine import storage
from nearid_data.engine.storage import Location
from nearid_data.errors import NearidError
from nearid_data.sources.base import SourceItem, SourceRecord
from nearid_data.sources.formats import (
    DatasetConfig,
    DatasetSource,
    decode_record,
    read_json,
)


@dataclass(frozen=True)
class Item:
    """An item as the benchmark's records describe it; ``path`` is relative to the source root."""

    item_id: str
    path: str
    caption: str = ""
    aesthetic_score: float | None = None


@dataclass(frozen=True)
class Interaction:
    """One entry of a user's sequence; ``score`` is the user's own rating where there is one."""

    item_id: str
    score: float | None = None


@dataclass(frozen=True)
class UnusedRow:
    """An annotation row that no sequence uses: where it is (file:line) and why."""

    where: str
    reason: str
    detail: str = ""


@dataclass
class Histories:
    dataset: Literal["FLICKR", "POG", "SER"]
    items: dict[str, Item]
    sequences: dict[str, list[Interaction]]
    """user -> interactions in the dataset's order (users sorted)."""
    styles: dict[str, str]
    unused: list[UnusedRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def unused_by_reason(self) -> dict[str, int]:
        return dict(sorted(Counter(row.reason for row in self.unused).items()))


class HistoryConfig(DatasetConfig):
    extras: str | None = None
    """Folder of the benchmark's caption and style JSON files (default: the root)."""


class HistorySource(DatasetSource):
    config: HistoryConfig

    def read_histories(self) -> Histories:
        raise NotImplementedError

    @cached_property
    def _histories(self) -> Histories:
        return self.read_histories()

    def histories(self) -> Histories:
        """The sequences (read once per source object); raises ``NearidError`` on a bad file."""
        if not self.root.is_dir():
            raise NearidError(f"{self.label} root {str(self.root)!r} is not a directory")
        return self._histories

    def list_items(self) -> list[SourceItem]:
        """Every item some sequence uses, by item id, whether or not its image is on disk (ingest
        records a missing one as ``missing_file``)."""
        histories = self._histories
        used = sorted({i.item_id for seq in histories.sequences.values() for i in seq})
        return [
            SourceItem(item_id, histories.dataset, 0, {"path": histories.items[item_id].path})
            for item_id in used
        ]

    def load(self, item: SourceItem) -> SourceRecord:
        return decode_record(self.read_file(item.ref["path"]), max_pixels=self.config.max_pixels)

    def extras_file(self, name: str, notes: list[str], missing: str) -> Location | None:
        """The benchmark file ``name`` (in ``extras`` or the root), or None with ``missing`` noted."""
        # An ``extras`` folder the config names may lie anywhere: that is the user's choice.
        extras = self.config.extras
        path = storage.location(extras) / name if extras else self.annotation(name)
        if path.is_file():
            return path
        notes.append(f"no {path}: {missing}")
        return None


def text_table(path: Location | None, id_keys: tuple[str, ...], text_key: str) -> dict[str, str]:
    """id -> text from a JSON mapping (``{id: text}``) or a list of objects holding one of
    ``id_keys`` and ``text_key``; an entry of another shape is an error naming its position."""
    if path is None:
        return {}
    raw = read_json(path)
    if isinstance(raw, dict):
        pairs = [(key, value, f"key {key!r}") for key, value in raw.items()]
    elif isinstance(raw, list):
        pairs = [_entry(path, i, entry, id_keys, text_key) for i, entry in enumerate(raw)]
    else:
        raise NearidError(f"{path}: expected a JSON object or list, got {type(raw).__name__}")
    table = {}
    for key, value, where in pairs:
        if not isinstance(value, str):
            raise NearidError(f"{path}: {where}: {text_key} is a {type(value).__name__}, not text")
        table[str(key)] = value
    return table


def _entry(
    path: Location, index: int, entry: Any, id_keys: tuple[str, ...], text_key: str
) -> tuple[str, Any, str]:
    where = f"entry {index}"
    if not isinstance(entry, dict):
        raise NearidError(f"{path}: {where} is a {type(entry).__name__}, not an object")
    id_key = next((k for k in id_keys if k in entry), None)
    if id_key is None or text_key not in entry:
        raise NearidError(
            f"{path}: {where} needs keys {' or '.join(id_keys)} and {text_key} "
            f"(it has: {', '.join(entry) or 'none'})"
        )
    return str(entry[id_key]), entry[text_key], where
