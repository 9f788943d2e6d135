"""Image embedders for evaluation: registry names -> backend classes (imported lazily)."""

from __future__ import annotations

from nearid_data.evaluate.embedders.base import Embedder
from nearid_data.registry import Registry

EMBEDDERS: Registry[Embedder] = Registry(
    "embedder",
    {
        "colorhist": "nearid_data.evaluate.embedders.colorhist:ColorHistEmbedder",
        "clip": "nearid_data.evaluate.embedders.clip:ClipEmbedder",
        "siglip": "nearid_data.evaluate.embedders.siglip:SiglipEmbedder",
        "dinov2": "nearid_data.evaluate.embedders.dinov2:Dinov2Embedder",
        "dreamsim": "nearid_data.evaluate.embedders.dreamsim:DreamSimEmbedder",
    },
)
