"""DreamSim image embeddings (Fu et al., 2023), the similarity PODS filters synthetic positives by.

The ``dreamsim`` package builds the model and loads its weights from ``cache_dir``, downloading
them there when the directory lacks them and a network is reachable; offline, fetch them once
elsewhere and copy the directory. The cosine of two DreamSim embeddings is 1 minus the DreamSim
distance, so PODS's "DreamSim >= 0.6" is ``min_similarity: 0.6`` with this embedder.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import Field

from nearid_data.errors import NearidError
from nearid_data.optional import import_optional
from nearid_data.vision.embedders.base import Embedder, EmbedderConfig


class DreamSimEmbedder(Embedder):
    class Config(EmbedderConfig):
        dreamsim_type: str = Field(
            "ensemble", description="ensemble, dino_vitb16, open_clip_vitb32, ..."
        )
        cache_dir: str = Field("models/dreamsim", description="where the DreamSim weights are")

    config: Config

    def __init__(self, config: Config, *, device: str = "cpu") -> None:
        super().__init__(config, device=device)
        self.torch = import_optional("torch", extra="models")
        package = import_optional("dreamsim", extra="dreamsim")
        try:
            self.model, self.preprocess = package.dreamsim(
                pretrained=True,
                device=device,
                cache_dir=config.cache_dir,
                dreamsim_type=config.dreamsim_type,
            )
        except Exception as exc:  # the package raises whatever its download or load raised
            raise NearidError(
                f"DreamSim {config.dreamsim_type!r} could not be loaded from {config.cache_dir!r} "
                f"({type(exc).__name__}: {exc}). Run it once on a machine with a network to fetch "
                "the weights into that directory, then copy it here"
            ) from exc

    def _embed_batch(self, images: Sequence[np.ndarray]) -> np.ndarray:
        from PIL import Image

        batch: Any = self.torch.cat([self.preprocess(Image.fromarray(image)) for image in images])
        with self.torch.inference_mode():
            vectors = self.model.embed(batch.to(self.device))
        return np.asarray(vectors.float().cpu().numpy())
