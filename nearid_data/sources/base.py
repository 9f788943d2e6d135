"""The source contract: list items cheaply, then load one item at a time (in workers).

``items()`` runs once in the coordinating process and must be deterministic (sorted); it raises
``NearidError`` for problems with the dataset as a whole (missing root, unreadable annotation
file). ``load(item)`` raises ``Rejection`` for a problem with one item (undecodable image), which
the ingest stage records in the manifest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from nearid_data.strict import StrictModel


class SourceConfig(StrictModel):
    """Base of each source's settings (the keys under ``source:`` besides ``name``)."""

    location_fields: ClassVar[frozenset[str]] = frozenset()
    """Settings that say where the data lies, not what it is: left out of fingerprints, so a
    moved source folder rebuilds nothing (items are referenced relative to these locations)."""


@dataclass(frozen=True)
class SourceItem:
    """One image to ingest. ``ref`` locates it within the source (JSON-able: path, row, ...).

    ``rejection`` (reason, detail) marks an input that listing already knows cannot be used (a
    file outside the expected layout): ingest records it as rejected without loading it."""

    identity: str
    category: str
    view: int
    ref: dict[str, Any] = field(default_factory=dict)
    rejection: tuple[str, str] | None = None


@dataclass(frozen=True)
class SourceRecord:
    """A loaded item: normalised RGB pixels, an optional exact mask or subject box, metadata."""

    image: np.ndarray
    mask: np.ndarray | None = None
    box: tuple[int, int, int, int] | None = None
    caption: str = ""
    notes: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


class Source:
    Config: ClassVar[type[SourceConfig]] = SourceConfig

    def __init__(self, config: SourceConfig, *, seed: int) -> None:
        self.config = config
        self.seed = seed

    def items(self) -> list[SourceItem]:
        raise NotImplementedError

    def load(self, item: SourceItem) -> SourceRecord:
        raise NotImplementedError
