"""The model backends' shared helpers: batching, detections to boxes, SAM's mask choice, files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nearid_data.errors import NearidError
from nearid_data.segment.base import Box
from nearid_data.segment.predictions import best_mask, prompt_box, to_boxes
from nearid_data.vision.inference import checkpoint_file, in_batches, torch_dtype


def test_in_batches_slices_and_keeps_order() -> None:
    calls = []

    def run(items, prompts):
        calls.append(list(items))
        return [f"{item}:{prompt}" for item, prompt in zip(items, prompts, strict=True)]

    assert in_batches(run, [1, 2, 3, 4, 5], "abcde", 2) == ["1:a", "2:b", "3:c", "4:d", "5:e"]
    assert calls == [[1, 2], [3, 4], [5]]


def test_in_batches_groups_by_prompt_key() -> None:
    calls = []

    def run(items, prompts):
        calls.append(list(prompts))
        return [item * 10 for item in items]

    prompts = ["a.", "bbb.", "c.", "ddd.", "e."]
    assert in_batches(run, [1, 2, 3, 4, 5], prompts, 2, group_by=len) == [10, 20, 30, 40, 50]
    assert calls == [["a.", "c."], ["e."], ["bbb.", "ddd."]]


def test_in_batches_needs_one_prompt_per_item() -> None:
    with pytest.raises(ValueError, match="2 images but 1 prompts"):
        in_batches(lambda items, prompts: [], [1, 2], ["a"], 4)


def test_to_boxes_clips_to_the_image_and_sorts_best_first() -> None:
    boxes = to_boxes([0.3, 0.8], [[-5, 10, 50, 200], [1, 2, 3, 4]], [" dog ", "cat"], (100, 40))
    assert boxes == [
        Box((1.0, 2.0, 3.0, 4.0), 0.8, "cat"),
        Box((0.0, 10.0, 40.0, 100.0), 0.3, "dog"),
    ]


def test_prompt_box_is_the_whole_image_without_a_detection() -> None:
    assert prompt_box(None, (90, 160)) == [0.0, 0.0, 160.0, 90.0]
    assert prompt_box(Box((1, 2, 3, 4), 0.5), (90, 160)) == [1.0, 2.0, 3.0, 4.0]


def test_best_mask_is_the_highest_rated() -> None:
    masks = np.zeros((3, 4, 4), bool)
    masks[1, :2] = True
    prediction = best_mask(masks, np.array([0.1, 0.9, 0.5], np.float32))
    assert prediction.score == pytest.approx(0.9)
    np.testing.assert_array_equal(prediction.mask, masks[1])


def test_checkpoint_file(tmp_path: Path) -> None:
    present = tmp_path / "weights.pth"
    present.write_bytes(b"x")
    assert checkpoint_file(present, "https://example.org/weights.pth") == present
    with pytest.raises(NearidError, match=r"curl -L --create-dirs -o .*absent\.pth https://e"):
        checkpoint_file(tmp_path / "absent.pth", "https://example.org/absent.pth")


def test_torch_dtype() -> None:
    torch = pytest.importorskip("torch")
    assert torch_dtype(torch, "auto", "cpu") == torch.float32
    assert torch_dtype(torch, "auto", "cuda:0") == torch.float16
    assert torch_dtype(torch, "bfloat16", "cpu") == torch.bfloat16


def test_finite_rejects_nan_and_infinity_but_allows_masked_minus_infinity() -> None:
    import torch

    from nearid_data.errors import Rejection
    from nearid_data.vision.inference import finite

    ok = torch.tensor([[0.5, -3.0]])
    masked = torch.tensor([[0.5, float("-inf")]])
    finite("model", logits=masked, boxes=ok, masked=["logits"])
    for name, bad in [
        ("boxes", torch.tensor([float("nan")])),
        ("boxes", torch.tensor([float("inf")])),
        ("boxes", torch.tensor([float("-inf")])),
        ("logits", torch.tensor([float("nan")])),
    ]:
        with pytest.raises(Rejection, match=name) as error:
            finite("model", masked=["logits"], **{"logits": ok, "boxes": ok, name: bad})
        assert error.value.reason == "non_finite_output"


def test_best_mask_rejects_unrated_and_full_masks() -> None:
    from nearid_data.errors import Rejection

    masks = np.zeros((2, 4, 4), bool)
    masks[0, 1:3, 1:3] = True
    masks[1] = True
    with pytest.raises(Rejection, match="not finite"):
        best_mask(masks, np.array([np.nan, 0.1]))
    with pytest.raises(Rejection, match="every pixel") as error:
        best_mask(masks, np.array([0.1, 0.9]))
    assert error.value.reason == "flat_output"
    assert best_mask(masks, np.array([0.9, 0.1])).mask.sum() == 4
