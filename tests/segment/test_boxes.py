"""Detector prompts and box choice; and that the segment backends' modules import without torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nearid_data.segment.base import Box
from nearid_data.segment.boxes import build_prompt, grounding_text, select_box


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("dog", "dog."),
        ("  Golden   Retriever ", "golden retriever."),
        ("teddy_bear", "teddy bear."),
        ("A red car.", "a red car."),
        ("a cat . ", "a cat."),
        ("dog . cat", "dog . cat."),
    ],
)
def test_grounding_text(text: str, expected: str) -> None:
    assert grounding_text(text) == expected


@pytest.mark.parametrize("text", ["", "  ", " . ", ".."])
def test_grounding_text_refuses_an_empty_prompt(text: str) -> None:
    with pytest.raises(ValueError, match="empty detector prompt"):
        grounding_text(text)


def test_prompt_from_the_category_by_default() -> None:
    assert build_prompt("Sea_Turtle", "A turtle on a beach") == "sea turtle."


def test_prompt_from_the_caption_when_asked() -> None:
    assert build_prompt("turtle", "A Turtle on a beach.", use="caption") == "a turtle on a beach."


@pytest.mark.parametrize("caption", [None, "", " . "])
def test_prompt_falls_back_to_the_category_without_a_caption(caption: str | None) -> None:
    assert build_prompt("turtle", caption, use="caption") == "turtle."


def test_override_wins() -> None:
    assert build_prompt("turtle", "a turtle", override="Plush Toy", use="caption") == "plush toy."


SMALL_SURE = Box((10.0, 10.0, 20.0, 20.0), 0.9, "dog")
LARGE_UNSURE = Box((0.0, 5.0, 50.0, 40.0), 0.4, "dog")
FAR = Box((60.0, 0.0, 70.0, 90.0), 0.6, "cat")


def test_no_boxes_select_nothing() -> None:
    for policy in ("best", "largest", "union"):
        assert select_box([], policy) is None  # type: ignore[arg-type]


def test_best_is_the_highest_score() -> None:
    assert select_box([LARGE_UNSURE, SMALL_SURE, FAR], "best") == SMALL_SURE


def test_largest_is_the_largest_area() -> None:
    assert select_box([SMALL_SURE, LARGE_UNSURE, FAR], "largest") == LARGE_UNSURE


def test_union_encloses_all_with_the_best_score_and_label() -> None:
    union = select_box([LARGE_UNSURE, SMALL_SURE, FAR], "union")
    assert union == Box((0.0, 0.0, 70.0, 90.0), 0.9, "dog")


def test_ties_keep_the_earlier_box() -> None:
    twin = Box((30.0, 30.0, 40.0, 40.0), SMALL_SURE.score, "twin")
    assert select_box([SMALL_SURE, twin], "best") == SMALL_SURE
    assert select_box([SMALL_SURE, twin], "largest") == SMALL_SURE


def test_a_single_box_is_its_own_union() -> None:
    assert select_box([FAR], "union") == FAR


def test_unknown_policy() -> None:
    with pytest.raises(ValueError, match="unknown box policy 'smallest'"):
        select_box([FAR], "smallest")  # type: ignore[arg-type]


def test_backend_modules_import_without_heavy_dependencies() -> None:
    modules = [
        "segment.boxes",
        "segment.predictions",
        "segment.gdino",
        "segment.groundingdino_py",
        "segment.sam",
        "segment.sam_hf",
        "vision.inference",
        "vision.embedders.transformers_base",
    ]
    heavy = ["torch", "transformers", "segment_anything", "groundingdino"]
    code = (
        "import sys\n"
        + "".join(f"import nearid_data.{module}\n" for module in modules)
        + f"print([name for name in {heavy!r} if name in sys.modules])"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
