"""Image embedders for evaluation: registry names -> backend classes (imported lazily)."""

from __future__ import annotations

from nearid_data.registry import Registry
from nearid_data.vision.embedders.base import Embedder

EMBEDDERS: Registry[Embedder] = Registry(
    "embedder",
    {
        "colorhist": "nearid_data.vision.embedders.colorhist:ColorHistEmbedder",
        "clip": "nearid_data.vision.embedders.clip:ClipEmbedder",
        "siglip": "nearid_data.vision.embedders.siglip:SiglipEmbedder",
        "dinov2": "nearid_data.vision.embedders.dinov2:Dinov2Embedder",
        "dreamsim": "nearid_data.vision.embedders.dreamsim:DreamSimEmbedder",
    },
)
