"""Tiny random-weight text-to-image pipelines (SD and SDXL) saved to a directory.

The same tiny VAE, CLIP text encoder and tokenizer as the inpainting pipelines in
``tests/tiny_pipelines.py``, with a 4-channel UNet, so a 2-step 32 px call takes milliseconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.tiny_pipelines import _clip_config, _vae, clip_tokenizer


def _unet(**extra: Any) -> Any:
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        block_out_channels=(16, 32),
        layers_per_block=1,
        sample_size=16,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
        **extra,
    )


def save_tiny_sd(directory: Path) -> Path:
    import torch
    from diffusers import PNDMScheduler, StableDiffusionPipeline
    from transformers import CLIPTextModel

    torch.manual_seed(0)
    pipe = StableDiffusionPipeline(
        unet=_unet(cross_attention_dim=32, attention_head_dim=4),
        scheduler=PNDMScheduler(skip_prk_steps=True, steps_offset=1),
        vae=_vae(),
        text_encoder=CLIPTextModel(_clip_config()),
        tokenizer=clip_tokenizer(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(directory)
    return directory


def save_tiny_sdxl(directory: Path) -> Path:
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    pipe = StableDiffusionXLPipeline(
        unet=_unet(
            cross_attention_dim=64,
            attention_head_dim=(2, 4),
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=8,
            transformer_layers_per_block=(1, 2),
            projection_class_embeddings_input_dim=6 * 8 + 32,
        ),
        scheduler=EulerDiscreteScheduler(
            beta_start=0.00085, beta_end=0.012, steps_offset=1, beta_schedule="scaled_linear"
        ),
        vae=_vae(),
        text_encoder=CLIPTextModel(_clip_config()),
        tokenizer=clip_tokenizer(),
        text_encoder_2=CLIPTextModelWithProjection(_clip_config(projection_dim=32)),
        tokenizer_2=clip_tokenizer(),
    )
    pipe.save_pretrained(directory)
    return directory
