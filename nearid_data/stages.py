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
        "galleries": "nearid_data.galleries.stage:GalleriesStage",
        "export": "nearid_data.export.stage:ExportStage",
        "export-fpr": "nearid_data.export.fpr:FprExportStage",
        "pods-splits": "nearid_data.splits.pods:PodsSplitsStage",
        "export-nearid": "nearid_data.export.nearid_arrow:NearidArrowStage",
        "export-pods": "nearid_data.export.pods_folders:PodsFoldersStage",
        "windows": "nearid_data.windows.stage:WindowsStage",
        "personalize": "nearid_data.personalize.stage:PersonalizeStage",
        "synthesize": "nearid_data.personalize.synthesize:SynthesizeStage",
        "export-synthetic": "nearid_data.export.pods_synthetic:SyntheticExportStage",
    },
)
