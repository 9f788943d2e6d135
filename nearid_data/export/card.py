"""The dataset card (``README.md``): Hub YAML front matter with ``configs``, then counts and usage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from nearid_data.engine.atomic import write_bytes_atomic
from nearid_data.export.shards import manifests_by_split


def card_text(
    name: str, seed: int, license_id: str, fields: list[str], counts: dict[str, dict[str, int]]
) -> str:
    front = {
        "license": license_id,
        "pretty_name": name,
        "tags": ["webdataset", "nearid-data", "near-identity-distractors", "identity"],
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": split, "path": f"data/{split}/*.tar"} for split in counts],
            }
        ],
    }
    rows = "\n".join(
        f"| {split} | {c['identities']} | {c['samples']} | {c['shards']} |"
        for split, c in counts.items()
    )
    field_list = ", ".join(f"`{f}`" for f in fields)
    return f"""---
{yaml.safe_dump(front, sort_keys=False).strip()}
---

# {name}

Built with nearid-data (pipeline `{name}`, seed {seed}). One sample per reference view; views of
one identity are contiguous and never split across shards or splits.

| split | identities | samples | shards |
|---|---|---|---|
{rows}

Fields of every sample: {field_list}. `json` holds identity, category, view, caption, split, the
segmentation figures and, per distractor generator, its settings, prompt, seed and QA figures.
Outside `inpaint_mask.png` every distractor is bit-identical to `image.png`.

## Load

```python
import datasets
ds = datasets.load_dataset("webdataset", data_files={{"train": "data/train/*.tar"}}, split="train")

import webdataset as wds
for sample in wds.WebDataset("data/train/train-00000.tar").decode("rgb"):
    anchor, distractors = sample["image.png"], [sample[k] for k in sample if k.startswith("distractor_")]

import wids
dataset = wids.ShardListDataset("train.wids.json")
```
"""


def write_card(export_dir: Path, pipeline: Any, config: Any, fields: list[str]) -> Path:
    counts = {}
    for split, manifests in manifests_by_split(export_dir).items():
        identities = {row.identity for m in manifests for row in m.rows if row.status == "kept"}
        counts[split] = {
            "identities": len(identities),
            "samples": sum(m.n_kept for m in manifests),
            "shards": sum(1 for m in manifests if m.n_kept),
        }
    text = card_text(
        config.pretty_name or pipeline.name, pipeline.seed, config.license, fields, counts
    )
    path = export_dir / "README.md"
    write_bytes_atomic(path, text.encode("utf-8"))
    return path
