"""What the transformers embedders share: loading a model and its image processor from a hub id or
a local directory, batching on the device, and a fingerprint of the loaded weights.

Subclasses name the model families they take and set the default model in their ``Config``;
where ``get_image_features`` is not the embedding (DINOv2) they say how features come out of the
model. Heavy imports happen in ``__init__``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from types import ModuleType
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from nearid_data.backend import checked_model_type
from nearid_data.vision.embedders.base import Embedder, EmbedderConfig
from nearid_data.vision.inference import DType, load_transformers_model, model_inputs


class TransformersEmbedderConfig(EmbedderConfig):
    model: str = Field(description="hub id or local directory")
    revision: str | None = None
    dtype: DType = Field("auto", description="auto: float16 on CUDA, float32 elsewhere")


class TransformersEmbedder(Embedder):
    model_types: ClassVar[tuple[str, ...]]
    """The ``model_type`` s (from the model's config.json) this embedder takes."""
    config: TransformersEmbedderConfig

    def __init__(self, config: TransformersEmbedderConfig, *, device: str = "cpu") -> None:
        super().__init__(config, device=device)
        loaded = load_transformers_model(
            config.model,
            revision=config.revision,
            dtype=config.dtype,
            device=device,
            classes=self._classes,
        )
        self._torch, self.dtype, self.processor = loaded.torch, loaded.dtype, loaded.processor
        self.model = loaded.model
        self.weights_sha256 = _weights_sha256(self._torch, self.model)

    def _classes(self, transformers: ModuleType) -> tuple[Any, Any]:
        checked_model_type(
            transformers,
            self.config.model,
            self.model_types,
            revision=self.config.revision,
            taker="this embedder",
        )
        # The image processor alone: CLIP/SigLIP processors would also load a tokenizer.
        return transformers.AutoModel, transformers.AutoImageProcessor

    def _embed_batch(self, images: Sequence[np.ndarray]) -> np.ndarray:
        batch = self.processor(images=list(images), return_tensors="pt")
        with self._torch.inference_mode():
            features = self._features(model_inputs(batch, self.device, self.dtype))
        return features.float().cpu().numpy()  # type: ignore[no-any-return]

    def _features(self, inputs: dict[str, Any]) -> Any:
        """The image embedding: ``get_image_features`` (CLIP, SigLIP, SigLIP 2)."""
        out = self.model.get_image_features(**inputs)
        # transformers 5 returns a model output whose pooler_output is the projected embedding.
        return out if isinstance(out, self._torch.Tensor) else out.pooler_output

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "model_class": type(self.model).__name__,
            "processor": type(self.processor).__name__,
            "resolved_dtype": str(self.dtype).removeprefix("torch."),
            "weights_sha256": self.weights_sha256,
        }


def _weights_sha256(torch: Any, model: Any) -> str:
    """sha256 over the state dict (names and raw bytes): the cache follows the weights, not the
    path, so a retrained checkpoint saved to the same directory never reuses stale vectors."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        flat = tensor.detach().cpu().reshape(-1).contiguous()
        digest.update(flat.view(torch.uint8).numpy())
    return digest.hexdigest()
