"""What the segment stage's model backends share: common settings, dtype and batching, checkpoint
files, and turning raw model outputs into ``Box`` lists and ``MaskPrediction`` s.

Broken outputs are refused here, not passed on as masks: ``finite`` raises a ``non_finite_output``
rejection for NaN or infinite logits, boxes or scores (half-precision overflow), and ``best_mask``
a ``flat_output`` one for a mask of every pixel (saturated logits). An empty mask is left to the
stage (``empty_mask``): a subject may simply not be there. The rejections are raised from the
backend's batch call; the stage narrows a failing batch down to its input.

Nothing here imports torch: functions that need it take it (or its tensors) from the backend, which
imported it through ``import_optional``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, TypeVar

import numpy as np
from pydantic import Field

from nearid_data.backend import BackendConfig
from nearid_data.errors import NearidError, Rejection
from nearid_data.segment.base import Box, MaskPrediction

A = TypeVar("A")
B = TypeVar("B")
R = TypeVar("R")

DType = Literal["auto", "float32", "float16", "bfloat16"]


class ModelSettings(BackendConfig):
    batch_size: int = Field(8, ge=1, description="images per forward pass")
    dtype: DType = Field("auto", description="auto: float16 on CUDA, float32 elsewhere")
    compile: bool = Field(
        False, description="torch.compile the model: pays off over long runs of one input size"
    )


class GroundingSettings(ModelSettings):
    box_threshold: float = Field(0.35, ge=0.0, le=1.0, description="min box score to keep it")
    text_threshold: float = Field(0.25, ge=0.0, le=1.0, description="min token score in its label")


class SamSettings(ModelSettings):
    multimask: bool = Field(True, description="predict 3 masks and keep the best-rated one")


def torch_dtype(torch: ModuleType, name: DType, device: str) -> Any:
    """The ``torch.dtype`` a setting names; ``auto`` halves precision only where it pays (CUDA)."""
    if name == "auto":
        return torch.float16 if torch.device(device).type == "cuda" else torch.float32
    return getattr(torch, name)


def in_batches(
    run: Callable[[Sequence[A], Sequence[B]], list[R]],
    items: Sequence[A],
    prompts: Sequence[B],
    size: int,
    *,
    group_by: Callable[[B], Hashable] | None = None,
) -> list[R]:
    """``run`` over batches of at most ``size`` (item, prompt) pairs; results in input order.

    With ``group_by``, a batch only holds pairs whose prompts share that key.
    """
    if len(items) != len(prompts):
        raise ValueError(f"got {len(items)} images but {len(prompts)} prompts")
    groups: dict[Hashable, list[int]] = {}
    for index, prompt in enumerate(prompts):
        groups.setdefault(group_by(prompt) if group_by else None, []).append(index)
    results: dict[int, R] = {}
    for indices in groups.values():
        for start in range(0, len(indices), size):
            batch = indices[start : start + size]
            found = run([items[i] for i in batch], [prompts[i] for i in batch])
            results.update(zip(batch, found, strict=True))
    return [results[index] for index in range(len(items))]


def model_inputs(batch: Mapping[str, Any], device: str, dtype: Any) -> dict[str, Any]:
    """A processor's tensors on the model's device; floating ones (pixels, boxes) in its dtype."""
    return {
        key: value.to(device=device, dtype=dtype) if value.is_floating_point() else value.to(device)
        for key, value in batch.items()
        if hasattr(value, "is_floating_point")
    }


def to_boxes(
    scores: Sequence[float],
    xyxy: Sequence[Sequence[float]],
    labels: Sequence[str],
    size: tuple[int, int],
) -> list[Box]:
    """Detections in pixels as ``Box`` es clipped to the image (height, width), best first."""
    height, width = size
    boxes = [
        Box(
            xyxy=(
                min(max(float(x0), 0.0), width),
                min(max(float(y0), 0.0), height),
                min(max(float(x1), 0.0), width),
                min(max(float(y1), 0.0), height),
            ),
            score=float(score),
            label=label.strip(),
        )
        for score, (x0, y0, x1, y1), label in zip(scores, xyxy, labels, strict=True)
    ]
    return sorted(boxes, key=lambda box: -box.score)


def prompt_box(box: Box | None, size: tuple[int, int]) -> list[float]:
    """SAM's box prompt in pixels (x0, y0, x1, y1): the detection, or the whole image without one."""
    if box is None:
        height, width = size
        return [0.0, 0.0, float(width), float(height)]
    return [float(v) for v in box.xyxy]


def finite(model: str, *, masked: Sequence[str] = (), **outputs: Any) -> None:
    """Raise ``non_finite_output`` when an output tensor of ``model`` holds NaN or infinity.

    The outputs named in ``masked`` may hold -inf: the model writes it on purpose where a position
    does not exist (GroundingDINO's logits for text tokens past the caption).
    """
    broken = [
        name
        for name, tensor in outputs.items()
        if bool(tensor.isnan().any())
        or bool((tensor == float("inf")).any())
        or (name not in masked and bool((tensor == float("-inf")).any()))
    ]
    if broken:
        raise Rejection(
            "non_finite_output",
            f"{model} {', '.join(broken)} hold NaN or infinity (numeric overflow: "
            "dtype float32 or bfloat16 avoids float16's range)",
        )


def best_mask(masks: np.ndarray, scores: np.ndarray) -> MaskPrediction:
    """Of SAM's candidate masks (K, H, W) the one with the highest predicted IoU (K scores)."""
    if not np.isfinite(scores).all():
        raise Rejection("non_finite_output", f"mask ratings {scores.tolist()} are not finite")
    best = int(np.argmax(scores))
    mask = np.asarray(masks[best], dtype=bool)
    if mask.all():
        raise Rejection("flat_output", "the mask covers every pixel of the image")
    return MaskPrediction(mask=mask, score=float(scores[best]))


def checkpoint_file(path: str | Path, url: str) -> Path:
    """``path`` if it is a file, else the error that says where the official weights come from."""
    path = Path(path)
    if not path.is_file():
        raise NearidError(
            f"checkpoint {str(path)!r} not found. Fetch it on a machine with a network: "
            f"curl -L --create-dirs -o {path} {url}"
        )
    return path
