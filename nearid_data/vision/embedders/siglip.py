"""SigLIP and SigLIP 2 image embeddings: ``get_image_features``, the attention-pooled output.

The model's config picks the family; SigLIP 2's processor also returns the patch mask and
spatial shapes its NaFlex variants need, and they are passed through.
"""

from __future__ import annotations

from nearid_data.vision.embedders.transformers_base import (
    TransformersEmbedder,
    TransformersEmbedderConfig,
)


class SiglipEmbedder(TransformersEmbedder):
    model_types = ("siglip", "siglip2")

    class Config(TransformersEmbedderConfig):
        model: str = "google/siglip2-so400m-patch14-384"  # NearID's headline baseline

    config: Config
