from pathlib import Path

import pytest

from nearid_data.config import PipelineConfig, apply_overrides
from nearid_data.errors import NearidError
from tests.conftest import TINY_DEMO, tiny_pipeline


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"stages": {**TINY_DEMO["stages"], "segment": {"dilate": 3}}}, "stages.segment.dilate"),
        (
            {"stages": {**TINY_DEMO["stages"], "segment": {"min_area": "big"}}},
            "stages.segment.min_area",
        ),
        ({"source": {"name": "demo", "n_identities": 0}}, "source.n_identities"),
        ({"source": {"name": "nope"}}, "unknown source 'nope'"),
        (
            {
                "stages": {
                    **TINY_DEMO["stages"],
                    "segment": {"segmenter": {"name": "sam", "kind": "vit_q"}},
                }
            },
            "stages.segment.segmenter.kind",
        ),
        (
            {
                "stages": {
                    **TINY_DEMO["stages"],
                    "distractors": {"generators": [{"name": "cut_paste", "fil": 1}]},
                }
            },
            "generators.0.fil",
        ),
        ({"stages": {"ingest": {}, "distractors": {}}}, "needs fields"),
        ({"stages": {"mystery": {}}}, "unknown stage 'mystery'"),
    ],
)
def test_bad_config_names_the_key(override: dict, message: str) -> None:
    with pytest.raises(NearidError, match=message.replace(".", r"\.").replace("(", r"\(")):
        tiny_pipeline(**override)


def test_overrides_parse_yaml_values_and_stage_shorthand() -> None:
    raw = apply_overrides(
        {"stages": {"segment": {}}, "source": {}},
        ["segment.dilate_px=9", "source.n_identities=3", "source.categories=[mug, shoe]"],
    )
    assert raw["stages"]["segment"]["dilate_px"] == 9
    assert raw["source"] == {"n_identities": 3, "categories": ["mug", "shoe"]}
    with pytest.raises(NearidError, match="key=value"):
        apply_overrides({}, ["nonsense"])


PIPELINES = sorted((Path(__file__).parents[1] / "pipelines").glob("*.yaml"))


@pytest.mark.parametrize("path", PIPELINES, ids=[p.stem for p in PIPELINES])
def test_shipped_pipelines_are_valid(path: Path) -> None:
    pipeline = PipelineConfig.load(path)
    stages = list(pipeline.stages)
    # The last stage writes the deliverable: an export, or windows (shards, JSON and card itself).
    assert stages[0] == "ingest" and (stages[-1].startswith("export") or stages[-1] == "windows")
