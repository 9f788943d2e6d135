"""Embeddings cached on disk, so re-running an evaluation (another protocol, a metric change, a
larger build) embeds only what it has not seen.

Layout: ``<cache dir>/<embedder fingerprint>/<bucket>.npz`` with ``ids`` (one per image: sha256
of its key, field and content digest, see ``ImageRef.cache_id``) and ``vectors`` (float32 rows).
The fingerprint covers the embedder's backend, settings and weights, not its batch size or
device. A bucket groups the images one call embeds (a shard, a gallery); entries are only added,
so delete the directory to reclaim space. Files are replaced atomically: a killed run leaves the
previous file or the new one.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nearid_data.engine.atomic import write_bytes_atomic
from nearid_data.evaluate.images import ImageRef
from nearid_data.sample import slug
from nearid_data.vision.embedders.base import Embedder

log = logging.getLogger("nearid_data")


class EmbeddingCache:
    """Embed ``ImageRef`` s through ``embedder``, reusing vectors stored under ``root`` (or
    nothing stored when ``root`` is None)."""

    def __init__(self, embedder: Embedder, root: Path | None) -> None:
        self.embedder = embedder
        self.directory = None if root is None else root / embedder.fingerprint()

    def embed(self, refs: Sequence[ImageRef], bucket: str) -> np.ndarray:
        """(len(refs), D) float32 unit rows in ``refs`` order; misses are decoded and embedded a
        batch at a time (memory stays bounded by the batch size), then stored."""
        stored = self._load(bucket)
        ids = [ref.cache_id() for ref in refs]
        by_id = dict(zip(ids, refs, strict=True))
        missing = [i for i in by_id if i not in stored]  # each distinct image once
        size = self.embedder.config.batch_size
        for start in range(0, len(missing), size):
            chunk = missing[start : start + size]
            vectors = self.embedder.embed([by_id[i].load() for i in chunk])
            stored.update(zip(chunk, vectors, strict=True))
        log.info("%s: %d images, %d embedded", bucket, len(ids), len(missing))
        if missing:
            self._store(bucket, stored)
        if not ids:
            return np.zeros((0, 0), np.float32)
        return np.stack([stored[i] for i in ids])

    def _path(self, bucket: str) -> Path | None:
        return None if self.directory is None else self.directory / f"{slug(bucket)}.npz"

    def _load(self, bucket: str) -> dict[str, np.ndarray]:
        path = self._path(bucket)
        if path is None or not path.is_file():
            return {}
        with np.load(path, allow_pickle=False) as data:
            return dict(zip(data["ids"].tolist(), data["vectors"], strict=True))

    def _store(self, bucket: str, stored: dict[str, np.ndarray]) -> None:
        path = self._path(bucket)
        if path is None:
            return
        buffer = io.BytesIO()
        ids = np.array(list(stored), dtype="U64")
        np.savez(buffer, ids=ids, vectors=np.stack(list(stored.values())).astype(np.float32))
        write_bytes_atomic(path, buffer.getvalue())
