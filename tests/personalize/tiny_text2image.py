"""Tiny random-weight text-to-image pipelines (SD and SDXL) saved to a directory.

The same tiny parts as the inpainting pipelines in ``tests/tiny_pipelines.py``, with a
4-channel UNet, so a 2-step 32 px call takes milliseconds.
"""

from __future__ import annotations

from pathlib import Path

from tests.tiny_pipelines import sd_components, sdxl_components


def save_tiny_sd(directory: Path) -> Path:
    from diffusers import StableDiffusionPipeline

    StableDiffusionPipeline(**sd_components(4)).save_pretrained(directory)
    return directory


def save_tiny_sdxl(directory: Path) -> Path:
    from diffusers import StableDiffusionXLPipeline

    StableDiffusionXLPipeline(**sdxl_components(4)).save_pretrained(directory)
    return directory
