"""A tiny demo build with two generators and rejections in three stages, built once per session."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from nearid_data.build import build
from tests.conftest import TINY_DEMO, tiny_pipeline


@pytest.fixture(scope="session")
def rejecting_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Mask-area bounds reject at segment, a high change threshold without retries at
    distractors, and the identities left with one view at splits."""
    stages = copy.deepcopy(TINY_DEMO["stages"])
    stages["segment"] = {"dilate_px": 5, "min_area": 0.1, "max_area": 0.3}
    stages["distractors"] = {
        "generators": [
            {"name": "cut_paste"},
            {"name": "cut_paste", "id": "cut_paste_ns", "fill": "ns", "scale_jitter": 0.2},
        ],
        "min_inside_changed": 0.7,
        "retries": 0,
    }
    source = {**TINY_DEMO["source"], "n_identities": 12}
    out = tmp_path_factory.mktemp("report-build")
    build(tiny_pipeline(stages=stages, source=source), out=out)
    return out
