"""Tiny random-weight CLIP, SigLIP, SigLIP 2 and DINOv2 models with their image processors, saved
to a directory and loadable with ``from_pretrained``; no tokenizer (the embedders load only the
image processor). Each builder seeds torch, so the same call gives the same weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SIZE, PATCH = 32, 8
VISION = dict(
    hidden_size=32,
    intermediate_size=37,
    num_hidden_layers=2,
    num_attention_heads=2,
    patch_size=PATCH,
)
# CLIP and SigLIP models hold a text tower too; the smallest that builds, never run.
TEXT = dict(
    hidden_size=32,
    intermediate_size=37,
    num_hidden_layers=1,
    num_attention_heads=2,
    vocab_size=64,
    max_position_embeddings=16,
    bos_token_id=0,
    eos_token_id=1,
    pad_token_id=1,
)


def save_tiny(kind: str, directory: Path, seed: int = 0) -> Path:
    """Save the tiny ``kind`` (clip, siglip, siglip2, dinov2) model and processor in ``directory``."""
    import torch

    model, processor = _builders()[kind]
    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model().save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


def _builders() -> dict[str, Any]:
    import transformers as t

    square = {"height": SIZE, "width": SIZE}
    return {
        "clip": (
            lambda: t.CLIPModel(
                t.CLIPConfig(
                    text_config=TEXT,
                    vision_config={**VISION, "image_size": SIZE},
                    projection_dim=16,
                )
            ),
            t.CLIPImageProcessorPil(size={"shortest_edge": SIZE}, crop_size=square),
        ),
        "siglip": (
            lambda: t.SiglipModel(
                t.SiglipConfig(text_config=TEXT, vision_config={**VISION, "image_size": SIZE})
            ),
            t.SiglipImageProcessorPil(size=square),
        ),
        "siglip2": (
            lambda: t.Siglip2Model(
                t.Siglip2Config(text_config=TEXT, vision_config={**VISION, "num_patches": 16})
            ),
            t.Siglip2ImageProcessorPil(patch_size=PATCH, max_num_patches=16),
        ),
        "dinov2": (
            lambda: t.Dinov2Model(
                t.Dinov2Config(
                    hidden_size=32,
                    num_hidden_layers=2,
                    num_attention_heads=2,
                    mlp_ratio=2,
                    image_size=SIZE,
                    patch_size=PATCH,
                )
            ),
            t.BitImageProcessorPil(size={"shortest_edge": SIZE}, crop_size=square),
        ),
    }
