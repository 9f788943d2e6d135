"""Detector prompts and box choice: what the segment stage asks a detector, and which box it keeps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from nearid_data.segment.base import Box

BoxPolicy = Literal["best", "largest", "union"]


def grounding_text(text: str) -> str:
    """``text`` as GroundingDINO wants a caption: lower case, single spaces, one final ``.``.

    The final dot matters beyond style: it separates phrases, and transformers' processor merges a
    batch of dot-less prompts into one caption.
    """
    words = " ".join(text.replace("_", " ").lower().split()).rstrip(" .")
    if not words:
        raise ValueError(f"empty detector prompt: {text!r}")
    return words + "."


def build_prompt(
    category: str,
    caption: str | None,
    *,
    override: str | None = None,
    use: Literal["category", "caption"] = "category",
) -> str:
    """The detector prompt for one sample, in GroundingDINO's format.

    ``override`` (a fixed prompt from the pipeline) wins; otherwise the sample's category or, with
    ``use="caption"``, its caption, falling back to the category when the sample has none.
    """
    if override:
        return grounding_text(override)
    if use == "caption" and caption and caption.strip(" ."):
        return grounding_text(caption)
    return grounding_text(category)


def select_box(boxes: Sequence[Box], policy: BoxPolicy) -> Box | None:
    """The one box to segment: ``best`` score, ``largest`` area, or the ``union`` enclosing all.

    The union keeps the best box's score and label. No boxes gives ``None``; ties keep the earlier
    (detectors return boxes best first).
    """
    if not boxes:
        return None
    best = max(boxes, key=lambda box: box.score)
    if policy == "best":
        return best
    if policy == "largest":
        return max(boxes, key=lambda box: box.area)
    if policy == "union":
        x0 = min(box.xyxy[0] for box in boxes)
        y0 = min(box.xyxy[1] for box in boxes)
        x1 = max(box.xyxy[2] for box in boxes)
        y1 = max(box.xyxy[3] for box in boxes)
        return Box(xyxy=(x0, y0, x1, y1), score=best.score, label=best.label)
    raise ValueError(f"unknown box policy {policy!r}; known: best, largest, union")
