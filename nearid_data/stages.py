"""The stage registry: pipeline YAML names -> stage classes (imported lazily)."""

from __future__ import annotations

from nearid_data.engine.stage import Stage
from nearid_data.registry import Registry

STAGES: Registry[Stage] = Registry(
    "stage",
    {
        "ingest": "nearid_data.sources.ingest:IngestStage",
        "segment": "nearid_data.segment.stage:SegmentStage",
        "distractors": "nearid_data.distractors.stage:DistractorsStage",
        "splits": "nearid_data.splits.stage:SplitsStage",
        "export": "nearid_data.export.stage:ExportStage",
    },
)
