"""Detector and segmenter registries: pipeline names -> backend classes (imported lazily)."""

from __future__ import annotations

from nearid_data.registry import Registry
from nearid_data.segment.base import Detector, Segmenter

DETECTORS: Registry[Detector] = Registry(
    "detector",
    {
        "gdino": "nearid_data.segment.gdino:GdinoDetector",
        "groundingdino-py": "nearid_data.segment.groundingdino_py:GroundingDinoPyDetector",
    },
)

SEGMENTERS: Registry[Segmenter] = Registry(
    "segmenter",
    {
        "classical": "nearid_data.segment.classical:ClassicalSegmenter",
        "sam": "nearid_data.segment.sam:SamSegmenter",
        "sam-hf": "nearid_data.segment.sam_hf:SamHfSegmenter",
    },
)
