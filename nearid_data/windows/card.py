"""The dataset card (``README.md``) of a ``windows`` build: Hub front matter, the split rule,
windows and users per split, and what was left out, all from the stage's plan (deterministic)."""

from __future__ import annotations

import json
from typing import Any

import yaml

from nearid_data.engine.storage import Location, write_bytes
from nearid_data.evaluate.protocols import markdown_table

BENCHMARK = "personalized multimodal generation benchmark (FLICKR-AES, POG, SER30K)"


def windows_card(name: str, license_id: str, fields: list[str], facts: dict[str, Any]) -> str:
    splits = list(facts["windows"])
    front = {
        "license": license_id,
        "pretty_name": name,
        "task_categories": ["text-to-image"],
        "tags": ["webdataset", "nearid-data", "personalized-generation", "user-history"],
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": f"data/{s}/*.tar"} for s in splits],
            }
        ],
    }
    rows = [[s, facts["windows"][s], facts["users"][s]] for s in splits]
    return "\n".join(
        [
            f"---\n{yaml.safe_dump(front, sort_keys=False).strip()}\n---\n",
            f"# {name}\n",
            f"User-history windows for the {BENCHMARK}, dataset {facts['dataset']}, built with "
            "nearid-data. One sample per window: the history images, the target image and the "
            "benchmark's unified JSON record.\n",
            f"Split rule: `{json.dumps(facts['split_rule'], sort_keys=True)}` "
            "(by user: users disjoint; by time: each user's last windows, and no train window "
            "holds an evaluation target of its user).\n",
            markdown_table(["split", "windows", "users"], rows) + "\n",
            "Fields of every sample: " + ", ".join(f"`{f}`" for f in fields) + ". The same "
            "records as JSON: `json/<split>.json`.\n",
            "## Left out\n",
            markdown_table(
                ["what", "count"],
                [
                    *[[f"window: {r}", n] for r, n in sorted(facts["rejected_windows"].items())],
                    *[[f"interaction: {r}", n] for r, n in facts["interactions_dropped"].items()],
                    ["users with too short a sequence", facts["users_too_short"]],
                    *[[f"annotation row: {r}", n] for r, n in facts["unused_rows"].items()],
                ],
            )
            + "\n",
            "Every annotation row left out is listed with its file and line in `unused_rows.json`.\n",
        ]
    )


def write_windows_card(
    out: Location, pipeline: Any, config: Any, fields: list[str], facts: dict[str, Any]
) -> Location:
    path = out / "README.md"
    text = windows_card(config.pretty_name or pipeline.name, config.license, fields, facts)
    write_bytes(path, text.encode("utf-8"))
    return path
