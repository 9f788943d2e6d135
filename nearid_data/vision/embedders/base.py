"""The embedder contract: RGB images in, L2-normalised float32 rows out, a batch at a time."""

from __future__ import annotations

import hashlib
from abc import abstractmethod
from collections.abc import Sequence

import numpy as np
from pydantic import Field

from nearid_data.backend import Backend, BackendConfig
from nearid_data.engine.atomic import dump_json

# Settings that change speed, not the vectors: the cache is shared across them.
_NOT_IN_FINGERPRINT = ("batch_size",)


class EmbedderConfig(BackendConfig):
    batch_size: int = Field(32, ge=1, description="images per forward pass")


class Embedder(Backend):
    Config = EmbedderConfig
    config: EmbedderConfig

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(N, D) float32 rows of unit L2 norm (a zero vector stays zero), in input order, for RGB
        uint8 (H, W, 3) images of any size. No images give a (0, 0) array."""
        size = self.config.batch_size
        rows = [self._embed_batch(images[i : i + size]) for i in range(0, len(images), size)]
        if not rows:
            return np.zeros((0, 0), np.float32)
        vectors = np.concatenate(rows).astype(np.float64)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
        return unit.astype(np.float32)

    @abstractmethod
    def _embed_batch(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(len(images), D) raw feature rows for one batch."""

    def fingerprint(self) -> str:
        """A short hash of what determines the vectors: backend, settings, weights."""
        described = {k: v for k, v in self.describe().items() if k not in _NOT_IN_FINGERPRINT}
        return hashlib.sha256(dump_json(described)).hexdigest()[:16]
