"""DINOv2 image embeddings (``AutoModel``: DINOv2, with or without registers).

``pooling: cls`` (default) is the [CLS] token after the final layer norm (the model's
``pooler_output``), as NearID's and PODS's evaluations use it; ``mean`` averages the patch
tokens after the final layer norm, leaving out [CLS] and any register tokens.
"""

from __future__ import annotations

from typing import Any, Literal

from nearid_data.vision.embedders.transformers_base import (
    TransformersEmbedder,
    TransformersEmbedderConfig,
)


class Dinov2Embedder(TransformersEmbedder):
    model_types = ("dinov2", "dinov2_with_registers")

    class Config(TransformersEmbedderConfig):
        model: str = "facebook/dinov2-large"  # NearID's DINOv2 baseline
        pooling: Literal["cls", "mean"] = "cls"

    config: Config

    def _features(self, inputs: dict[str, Any]) -> Any:
        out = self.model(**inputs)
        if self.config.pooling == "cls":
            return out.pooler_output
        first_patch = 1 + getattr(self.model.config, "num_register_tokens", 0)
        return out.last_hidden_state[:, first_patch:].mean(dim=1)
