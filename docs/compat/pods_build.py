import json, sys
from pathlib import Path
from nearid_data.build import build
from nearid_data.config import PipelineConfig
from tests.source_fixtures import write_pods_folders
out = Path(sys.argv[1])
written = write_pods_folders(out / "raw", categories=("mug", "shoe", "bag"), per_category=4, train=3, test=8, dense=3, size=(48, 64))
info = json.loads((written.root / "pods_info.json").read_text())
info["class_to_idx"] = {c: i for i, c in enumerate(reversed(info["classes"]))}  # not sorted, as released
(written.root / "pods_info.json").write_text(json.dumps(info))
pipeline = PipelineConfig.from_dict({"name": "pods", "seed": 0,
    "source": {**written.source, "splits": ["train", "test", "test_dense"]},
    "stages": {"ingest": {}, "pods-splits": {"references": 3}, "export-pods": {}}})
build(pipeline, out=out / "build")
