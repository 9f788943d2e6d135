"""Tiny random-weight inpainting pipelines saved to a directory, loadable with ``from_pretrained``.

The component shapes follow diffusers' own fast tests (``get_dummy_components``), shrunk further
so a 2-step call at 32 px takes milliseconds. Tokenizers are built from locally written files:
a byte-level BPE vocabulary for CLIP and a unigram vocabulary for T5 (no sentencepiece needed).
Every builder seeds torch so the saved weights are the same on every run.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

CLIP_VOCAB_SIZE = 1000
T5_VOCAB_SIZE = 1000


def _byte_chars() -> list[str]:
    """The 256 printable stand-ins GPT-2/CLIP byte-level BPE uses for raw bytes."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += list(range(ord("®"), ord("ÿ") + 1))
    extra = 0
    chars = {}
    for byte in range(256):
        if byte in printable:
            chars[byte] = chr(byte)
        else:
            chars[byte] = chr(256 + extra)
            extra += 1
    return [chars[byte] for byte in range(256)]


def write_clip_tokenizer_files(directory: Path) -> Path:
    """``vocab.json`` + ``merges.txt`` of a byte-level BPE with a handful of merges."""
    directory.mkdir(parents=True, exist_ok=True)
    chars = _byte_chars()
    tokens = [*chars, *(c + "</w>" for c in chars)]
    merges = ["a t</w>", "c a", "ca t</w>", "r e", "re d</w>"]
    tokens += [m.replace(" ", "") for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    (directory / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (directory / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return directory


def clip_tokenizer() -> Any:
    """A CLIP tokenizer over the byte-level vocabulary (any model size: content does not matter)."""
    from transformers import CLIPTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        files = write_clip_tokenizer_files(Path(tmp))
        return CLIPTokenizer.from_pretrained(files, model_max_length=77)


def _t5_tokenizer() -> Any:
    from transformers import T5Tokenizer

    pieces = ["<pad>", "</s>", "<unk>", "▁"] + [f"▁{c}" for c in "abcdefghijklmnopqrstuvwxyz"]
    pieces += list("abcdefghijklmnopqrstuvwxyz0123456789")
    return T5Tokenizer(vocab=[(p, -float(i)) for i, p in enumerate(pieces)], extra_ids=0)


def _clip_config(**extra: Any) -> Any:
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        bos_token_id=0,
        eos_token_id=2,
        hidden_size=32,
        intermediate_size=37,
        layer_norm_eps=1e-05,
        num_attention_heads=4,
        num_hidden_layers=2,
        pad_token_id=1,
        vocab_size=CLIP_VOCAB_SIZE,
        hidden_act="gelu",
        **extra,
    )


def _vae(latent_channels: int = 4, **extra: Any) -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=(8, 16),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=latent_channels,
        norm_num_groups=8,
        layers_per_block=1,
        **extra,
    )


def _unet(in_channels: int, **extra: Any) -> Any:
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        block_out_channels=(16, 32),
        layers_per_block=1,
        sample_size=16,
        in_channels=in_channels,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
        **extra,
    )


def sd_components(in_channels: int) -> dict[str, Any]:
    """The tiny SD 1.5 parts; ``in_channels`` 9 for inpainting, 4 for text-to-image."""
    import torch
    from diffusers import PNDMScheduler
    from transformers import CLIPTextModel

    torch.manual_seed(0)
    return {
        "unet": _unet(in_channels, cross_attention_dim=32, attention_head_dim=4),
        "scheduler": PNDMScheduler(skip_prk_steps=True, steps_offset=1),
        "vae": _vae(),
        "text_encoder": CLIPTextModel(_clip_config()),
        "tokenizer": clip_tokenizer(),
        "safety_checker": None,
        "feature_extractor": None,
        "requires_safety_checker": False,
    }


def sdxl_components(in_channels: int) -> dict[str, Any]:
    """The tiny SDXL parts; ``in_channels`` 9 for inpainting, 4 for text-to-image."""
    import torch
    from diffusers import EulerDiscreteScheduler
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    return {
        # text_time conditioning: 6 time ids x 8 + the 32-dim pooled text embedding
        "unet": _unet(
            in_channels,
            cross_attention_dim=64,
            attention_head_dim=(2, 4),
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=8,
            transformer_layers_per_block=(1, 2),
            projection_class_embeddings_input_dim=6 * 8 + 32,
        ),
        "scheduler": EulerDiscreteScheduler(
            beta_start=0.00085, beta_end=0.012, steps_offset=1, beta_schedule="scaled_linear"
        ),
        "vae": _vae(),
        "text_encoder": CLIPTextModel(_clip_config()),
        "tokenizer": clip_tokenizer(),
        "text_encoder_2": CLIPTextModelWithProjection(_clip_config(projection_dim=32)),
        "tokenizer_2": clip_tokenizer(),
    }


def save_tiny_sd_inpaint(directory: Path) -> Path:
    from diffusers import StableDiffusionInpaintPipeline

    StableDiffusionInpaintPipeline(**sd_components(9)).save_pretrained(directory)
    return directory


def save_tiny_sdxl_inpaint(directory: Path) -> Path:
    from diffusers import StableDiffusionXLInpaintPipeline

    pipe = StableDiffusionXLInpaintPipeline(**sdxl_components(9), requires_aesthetics_score=False)
    pipe.save_pretrained(directory)
    return directory


def save_tiny_flux_fill(directory: Path) -> Path:
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxFillPipeline, FluxTransformer2DModel
    from transformers import CLIPTextModel, T5Config, T5EncoderModel

    torch.manual_seed(0)
    latent = 4
    scale = 2  # the tiny VAE's scale factor: two blocks
    packed = latent * 4  # 2x2 patches
    transformer = FluxTransformer2DModel(
        patch_size=1,
        # noisy latents + masked-image latents + the mask folded to scale*scale channels, all packed
        in_channels=packed + packed + scale * scale * 4,
        out_channels=packed,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        axes_dims_rope=(4, 4, 8),
        guidance_embeds=True,
    )
    t5 = T5EncoderModel(
        T5Config(
            d_model=32,
            d_kv=8,
            d_ff=37,
            num_layers=2,
            num_heads=4,
            vocab_size=T5_VOCAB_SIZE,
            relative_attention_num_buckets=8,
        )
    )
    pipe = FluxFillPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=_vae(
            latent,
            shift_factor=0.0609,
            scaling_factor=1.5035,
            use_quant_conv=False,
            use_post_quant_conv=False,
        ),
        text_encoder=CLIPTextModel(_clip_config(projection_dim=32)),
        tokenizer=clip_tokenizer(),
        text_encoder_2=t5,
        tokenizer_2=_t5_tokenizer(),
        transformer=transformer,
    )
    pipe.save_pretrained(directory)
    return directory
