"""CLIP image embeddings: ``CLIPModel.get_image_features``, the projected pooled [CLS] token."""

from __future__ import annotations

from nearid_data.vision.embedders.transformers_base import (
    TransformersEmbedder,
    TransformersEmbedderConfig,
)


class ClipEmbedder(TransformersEmbedder):
    model_types = ("clip",)

    class Config(TransformersEmbedderConfig):
        model: str = "openai/clip-vit-large-patch14"  # NearID's CLIP baseline

    config: Config
