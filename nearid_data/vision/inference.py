"""What the model backends (detectors, segmenters, embedders) share: common settings, dtype and
batching, loading a transformers model with its processor, checkpoint files, and refusing broken
outputs.

``finite`` raises a ``non_finite_output`` rejection for NaN or infinite logits, boxes or scores
(half-precision overflow) rather than passing them on. The rejections are raised from the backend's
batch call; the stage narrows a failing batch down to its input.

Nothing here imports torch: functions that need it take it (or its tensors) from the backend, which
imported it through ``import_optional``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, TypeVar

from pydantic import Field

from nearid_data.backend import BackendConfig, load_pretrained
from nearid_data.errors import NearidError, Rejection
from nearid_data.optional import import_optional

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


def torch_dtype(torch: ModuleType, name: DType, device: str) -> Any:
    """The ``torch.dtype`` a setting names; ``auto`` halves precision only where it pays (CUDA)."""
    if name == "auto":
        return torch.float16 if torch.device(device).type == "cuda" else torch.float32
    return getattr(torch, name)


@dataclass(frozen=True)
class LoadedModel:
    """A transformers model in eval mode on its device, its processor, and the torch it runs on."""

    torch: ModuleType
    dtype: Any
    processor: Any
    model: Any


def load_transformers_model(
    model: str,
    *,
    revision: str | None,
    dtype: DType,
    device: str,
    classes: Callable[[ModuleType], tuple[Any, Any]],
) -> LoadedModel:
    """Load ``model`` (hub id or local directory) and its processor with the (model class,
    processor class) that ``classes`` picks from transformers, which may first check the model's
    family; the model in ``dtype`` on ``device``."""
    torch = import_optional("torch", extra="models")
    transformers = import_optional("transformers", extra="models")
    weights_dtype = torch_dtype(torch, dtype, device)
    model_class, processor_class = classes(transformers)
    processor = load_pretrained(processor_class.from_pretrained, model, revision=revision)
    loaded = load_pretrained(
        model_class.from_pretrained, model, revision=revision, dtype=weights_dtype
    )
    return LoadedModel(torch, weights_dtype, processor, loaded.to(device).eval())


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


def checkpoint_file(path: str | Path, url: str) -> Path:
    """``path`` if it is a file, else the error that says where the official weights come from."""
    path = Path(path)
    if not path.is_file():
        raise NearidError(
            f"checkpoint {str(path)!r} not found. Fetch it on a machine with a network: "
            f"curl -L --create-dirs -o {path} {url}"
        )
    return path
