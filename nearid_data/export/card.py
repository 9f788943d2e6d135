"""The dataset card (``README.md``): Hub YAML front matter, then what the build did, from its manifests.

The card is written by the export stage, so it may only use what is on disk and deterministic:
counts, settings, rejections and QA figures, never wall times (the same build gives the same card).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import yaml

from nearid_data.engine.manifest import MANIFEST_SUFFIX, ShardManifest, read_manifest, read_summary
from nearid_data.engine.storage import Location, glob, write_bytes
from nearid_data.export.shards import manifests_by_split

# BibTeX of what a build may rest on, cited only when the build used it.
CITATIONS = {
    "nearid": """@article{cvejic2026nearid,
  title   = {NearID: Identity Representation Learning via Near-identity Distractors},
  author  = {Cvejic, Aleksandar and Abdal, Rameen and Eldesokey, Abdelrahman and Ghanem, Bernard and Wonka, Peter},
  journal = {arXiv preprint arXiv:2604.01973},
  year    = {2026}
}""",
    "syncd": """@inproceedings{kumari2025syncd,
  title     = {Generating Multi-Image Synthetic Data for Text-to-Image Customization},
  author    = {Kumari, Nupur and Yin, Xi and Zhu, Jun-Yan and Misra, Ishan and Azadi, Samaneh},
  booktitle = {International Conference on Computer Vision (ICCV)},
  year      = {2025}
}""",
    "fpr": """@article{kilrain2025fpr,
  title   = {Finer-Personalization Rank: Fine-Grained Retrieval Examines Identity Preservation for Personalized Generation},
  author  = {Kilrain, Connor and Carlyn, David and Chae, Julia and Beery, Sara and Chao, Wei-Lun and Gu, Jianyang},
  journal = {arXiv preprint arXiv:2512.19026},
  year    = {2025}
}""",
    "pods": """@article{sundaram2024pods,
  title   = {Personalized Representation from Personalized Generation},
  author  = {Sundaram, Shobhita and Chae, Julia and Tian, Yonglong and Beery, Sara and Isola, Phillip},
  journal = {arXiv preprint arXiv:2412.16156},
  year    = {2024}
}""",
    "cub": """@techreport{wah2011cub,
  title       = {The Caltech-UCSD Birds-200-2011 Dataset},
  author      = {Wah, Catherine and Branson, Steve and Welinder, Peter and Perona, Pietro and Belongie, Serge},
  institution = {California Institute of Technology},
  number      = {CNS-TR-2011-001},
  year        = {2011}
}""",
    "stanford-cars": """@inproceedings{krause2013cars,
  title     = {3D Object Representations for Fine-Grained Categorization},
  author    = {Krause, Jonathan and Stark, Michael and Deng, Jia and Fei-Fei, Li},
  booktitle = {ICCV Workshops on 3D Representation and Recognition (3dRR)},
  year      = {2013}
}""",
}
# Which stage or source of a pipeline makes which work worth citing.
CITED_BY = {"distractors": "nearid", "galleries": "fpr", "pods-splits": "pods"}
SIZE_CATEGORIES = (
    (10**3, "n<1K"),
    (10**4, "1K<n<10K"),
    (10**5, "10K<n<100K"),
    (10**6, "100K<n<1M"),
    (10**7, "1M<n<10M"),
)


@dataclass
class CardFacts:
    """Everything the card says, gathered from the build directory."""

    name: str
    seed: int
    license_id: str
    fields: list[str]
    counts: dict[str, dict[str, int]]
    content: str = ""
    generators: dict[str, Any] = field(default_factory=dict)
    distractor_qa: dict[str, dict[str, float]] = field(default_factory=dict)
    stages: list[dict[str, Any]] = field(default_factory=list)
    citations: list[str] = field(default_factory=list)


def card_text(facts: CardFacts) -> str:
    return "\n".join(
        [
            f"---\n{yaml.safe_dump(_front_matter(facts), sort_keys=False).strip()}\n---\n",
            f"# {facts.name}\n",
            f"Built with nearid-data (pipeline `{facts.name}`, seed {facts.seed}). One sample per "
            "reference view; views of one identity are contiguous and never split across shards "
            "or splits.\n",
            _table(
                ["split", "identities", "samples", "shards", "MB"],
                [
                    [s, c["identities"], c["samples"], c["shards"], f"{c['bytes'] / 1e6:.1f}"]
                    for s, c in facts.counts.items()
                ],
            ),
            "Fields of every sample: " + ", ".join(f"`{f}`" for f in facts.fields) + ". `json` "
            "holds identity, category, view, caption, split, the segmentation figures and, per "
            "distractor generator, its settings, prompt, donor identity, seed and QA figures. "
            "Outside `inpaint_mask.png` every distractor is bit-identical to `image.png`.\n",
            *_generators_section(facts),
            "## Quality control\n",
            "Every input of every stage is accounted for in the manifests shipped beside the "
            "shards (`data/<split>/*.manifest.json`, `_summary.json`).\n",
            _table(
                ["stage", "in", "kept", "rejected", "rejected by reason"],
                [
                    [s["stage"], s["n_in"], s["n_kept"], s["n_rejected"], _reasons(s["reasons"])]
                    for s in facts.stages
                ],
            ),
            LOAD_SECTION,
            *_citation_section(facts.citations),
        ]
    )


def _front_matter(facts: CardFacts) -> dict[str, Any]:
    samples = sum(c["samples"] for c in facts.counts.values())
    size = next((label for bound, label in SIZE_CATEGORIES if samples < bound), "10M<n<100M")
    return {
        "license": facts.license_id,
        "pretty_name": facts.name,
        "task_categories": ["image-feature-extraction"],
        "tags": ["webdataset", "nearid-data", "near-identity-distractors", "identity"],
        "size_categories": [size],
        # One config: a WebDataset config can only choose files, not fields, and every generator
        # is a field of every sample, so a config per generator would list the same files.
        "configs": [
            {
                "config_name": "default",
                # `datasets` keys its cache of a local folder on this YAML alone, not on the files:
                # naming the shards' content makes `load_dataset(folder)` read this folder's data
                # even after another export with the same patterns was loaded.
                "description": f"nearid-data export, shards {facts.content}",
                "data_files": [
                    {"split": s, "path": f"data/{s}/*.tar"}
                    for s, c in facts.counts.items()
                    if c["samples"]  # a split without samples has no tar to point at
                ],
            }
        ],
    }


def _generators_section(facts: CardFacts) -> list[str]:
    if not facts.generators:
        return []
    rows = []
    for gid, settings in facts.generators.items():
        qa = facts.distractor_qa.get(gid, {})
        figures = ", ".join(f"{k} {v:.3g}" for k, v in sorted(qa.items()))
        rows.append(
            [f"`distractor_{gid}.png`", f"`{json.dumps(settings, sort_keys=True)}`", figures]
        )
    return [
        "## Distractor generators\n",
        "A view is kept only if every generator produced a distractor that passed QA, so the "
        "generators' distractors are index-aligned. QA figures are means over the distractors "
        "stage's kept views (FORMAT.md explains each).\n",
        _table(["field", "settings", "QA"], rows),
        "All generators are fields of every sample; pick one with "
        '`ds.select_columns(["image.png", "distractor_<id>.png", "json"])`.\n',
    ]


def _citation_section(keys: list[str]) -> list[str]:
    if not keys:
        return []
    entries = "\n\n".join(CITATIONS[k] for k in keys)
    return ["## Citation\n", f"```bibtex\n{entries}\n```\n"]


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _reasons(reasons: dict[str, int]) -> str:
    return ", ".join(f"{r}: {n}" for r, n in sorted(reasons.items())) or "-"


LOAD_SECTION = """## Load

```python
import datasets
ds = datasets.load_dataset("OWNER/NAME", split="train")  # or a local copy's folder
stream = datasets.load_dataset("OWNER/NAME", split="train", streaming=True)

import webdataset as wds
for sample in wds.WebDataset("data/train/train-00000.tar").decode("rgb"):
    anchor, info = sample["image.png"], sample["json"]

import wids
dataset = wids.ShardListDataset("train.wids.json")  # random access

# Training tuples (anchor, positive, distractor, negative), DDP- and worker-aware:
from nearid_data.loaders.streaming import NearIDStream, export_shards
tuples = NearIDStream(export_shards("path/to/export", "train"), generator="random", seed=0)
```
"""


def gather_facts(export_dir: Location, pipeline: Any, config: Any, fields: list[str]) -> CardFacts:
    by_split = manifests_by_split(export_dir)
    facts = CardFacts(
        name=config.pretty_name or pipeline.name,
        seed=pipeline.seed,
        license_id=config.license,
        fields=fields,
        counts={split: _split_counts(manifests) for split, manifests in by_split.items()},
        content=_content_fingerprint(by_split),
    )
    build_dir = export_dir.parent
    for stage in pipeline.stages:
        if stage == export_dir.name:
            # The export's own summary is written after the card: count from its manifests.
            export_manifests = [m for ms in by_split.values() for m in ms]
            facts.stages.append(_stage_row(stage, export_manifests))
        elif (summary := read_summary(build_dir / stage)) is not None:
            facts.stages.append(
                {
                    "stage": stage,
                    "n_in": summary.n_in,
                    "n_kept": summary.n_kept,
                    "n_rejected": summary.n_rejected,
                    "reasons": summary.rejected_by_reason,
                }
            )
            if stage == "distractors":
                facts.generators = summary.models
                facts.distractor_qa = _distractor_qa(build_dir / stage)
    cited = [CITED_BY[s] for s in pipeline.stages if s in CITED_BY]
    cited.append(str(pipeline.source.get("name", "")))
    facts.citations = [k for k in dict.fromkeys(cited) if k in CITATIONS]
    return facts


def _split_counts(manifests: list[ShardManifest]) -> dict[str, int]:
    identities = {row.identity for m in manifests for row in m.rows if row.status == "kept"}
    return {
        "identities": len(identities),
        "samples": sum(m.n_kept for m in manifests),
        "shards": sum(1 for m in manifests if m.n_kept),
        "bytes": sum(m.bytes for m in manifests if m.n_kept),
    }


def _content_fingerprint(by_split: dict[str, list[ShardManifest]]) -> str:
    digest = hashlib.sha256()
    for split, manifests in sorted(by_split.items()):
        for manifest in manifests:
            digest.update(f"{split}/{manifest.tar}:{manifest.sha256}\n".encode())
    return digest.hexdigest()[:16]


def _stage_row(stage: str, manifests: list[ShardManifest]) -> dict[str, Any]:
    reasons: Counter[str] = Counter()
    for manifest in manifests:
        reasons.update(manifest.rejected_by_reason())
    return {
        "stage": stage,
        "n_in": sum(m.n_in for m in manifests),
        "n_kept": sum(m.n_kept for m in manifests),
        "n_rejected": sum(m.n_rejected for m in manifests),
        "reasons": dict(reasons),
    }


def _distractor_qa(stage_dir: Location) -> dict[str, dict[str, float]]:
    """Per generator, the mean of each numeric QA figure over kept views (booleans as shares)."""
    values: dict[str, dict[str, list[float]]] = {}
    for path in glob(stage_dir, f"*{MANIFEST_SUFFIX}"):
        for row in read_manifest(path).rows:
            if row.status != "kept":
                continue
            for gid, figures in row.qa.items():
                for name, value in figures.items():
                    if isinstance(value, bool | int | float):
                        values.setdefault(gid, {}).setdefault(name, []).append(float(value))
    return {
        gid: {name: sum(v) / len(v) for name, v in figures.items()}
        for gid, figures in values.items()
    }


def write_card(export_dir: Location, pipeline: Any, config: Any, fields: list[str]) -> Location:
    path = export_dir / "README.md"
    write_bytes(path, card_text(gather_facts(export_dir, pipeline, config, fields)).encode())
    return path
