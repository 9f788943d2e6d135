"""GPU benchmark of the diffusers inpainting generators at real model sizes with random weights.

SD1.5-inpaint at 512 (batch 1 and 8) and SDXL-inpaint at 1024 (batch 1 and 4), 30 steps with CFG,
fp16, SDPA; optionally torch.compile and channels_last. The pipelines are built from the published
architectures (no downloads: the arithmetic of random weights is the same), saved, and loaded back
through the generators' real path; prompts come from a dummy tokenizer and are cached after warm-up,
as repeated sibling captions are in a real run. Strength 1.0, so exactly ``--steps`` denoiser steps
run and no extra VAE encode of the image happens.

FLOPs are counted once per model with ``torch.utils.flop_counter.FlopCounterMode`` over one whole
``generate`` of one image (denoiser steps x 2 for CFG + VAE encode and decode), uncompiled. The
fraction of peak is the FLOP floor at 800 TFLOP/s over the measured seconds per image. (On CPU,
as in ``--smoke``, attention is not counted: torch has no FLOP formula for its CPU SDPA kernel.)

    python bench/bench_distractors_gpu.py                  # H100: eager, then --compile adds rows
    python bench/bench_distractors_gpu.py --compile --channels-last --models sdxl
    python bench/bench_distractors_gpu.py --smoke          # CPU, tiny models, checks the harness

Building, saving and loading SDXL takes about a minute and compiling it several more: run one
model per invocation (``--models sdxl``) where a command has a time limit.

Prints one JSON line and a Markdown table; ``--out`` also writes the JSON to a file.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpu_harness import MET, PEAK_FLOPS, emit, pick_device, quiet_libraries  # noqa: E402

from nearid_data.distractors.base import InpaintRequest  # noqa: E402
from nearid_data.distractors.diffusers_inpaint import DiffusersInpaintGenerator  # noqa: E402
from nearid_data.distractors.sd_inpaint import SdInpaintGenerator  # noqa: E402
from nearid_data.distractors.sdxl_inpaint import SdxlInpaintGenerator  # noqa: E402

PROMPTS = ["a red ceramic mug", "a blue glass mug", "a striped metal mug", "a plain paper mug"]


@dataclass(frozen=True)
class Case:
    name: str
    generator: type[DiffusersInpaintGenerator]
    resolution: int
    batches: tuple[int, ...]
    guidance: float
    target_s: float  # s/image on an H100 at the largest batch


CASES = {
    "sd": Case("sd-inpaint", SdInpaintGenerator, 512, (1, 8), 7.5, 0.10),
    "sdxl": Case("sdxl-inpaint", SdxlInpaintGenerator, 1024, (1, 4), 8.0, 0.70),
}


def _clip(hidden: int, layers: int, heads: int, act: str, projection: bool = False) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=49408, hidden_size=hidden, intermediate_size=4 * hidden, num_hidden_layers=layers,
        num_attention_heads=heads, max_position_embeddings=77, hidden_act=act, projection_dim=hidden,
    )  # fmt: skip
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config)


def _vae(**extra: Any) -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4, **extra,
    )  # fmt: skip


def sd15_parts(in_channels: int, vae_upcast: bool = True) -> dict[str, Any]:
    """SD1.5 at real size (UNet, SD VAE, CLIP ViT-L/14 text encoder): ``in_channels`` 9 for
    stable-diffusion-inpainting, 4 for stable-diffusion-v1-5."""
    from diffusers import PNDMScheduler, UNet2DConditionModel

    from tests.tiny_pipelines import clip_tokenizer

    return dict(
        unet=UNet2DConditionModel(sample_size=64, in_channels=in_channels, cross_attention_dim=768),
        vae=_vae(sample_size=512, force_upcast=vae_upcast),
        text_encoder=_clip(768, 12, 12, "quick_gelu"),
        tokenizer=clip_tokenizer(),
        scheduler=PNDMScheduler(
            beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
            skip_prk_steps=True, steps_offset=1,
        ),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )  # fmt: skip


def sdxl_parts(in_channels: int, vae_upcast: bool = True) -> dict[str, Any]:
    """SDXL at real size (UNet, CLIP-L + OpenCLIP bigG): ``in_channels`` 9 for
    stable-diffusion-xl-1.0-inpainting-0.1, 4 for stable-diffusion-xl-base-1.0."""
    from diffusers import EulerDiscreteScheduler, UNet2DConditionModel

    from tests.tiny_pipelines import clip_tokenizer

    unet = UNet2DConditionModel(
        sample_size=128, in_channels=in_channels, block_out_channels=(320, 640, 1280),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20),
        cross_attention_dim=2048, use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816,
    )  # fmt: skip
    return dict(
        unet=unet,
        vae=_vae(sample_size=1024, scaling_factor=0.13025, force_upcast=vae_upcast),
        text_encoder=_clip(768, 12, 12, "quick_gelu"),
        tokenizer=clip_tokenizer(),
        text_encoder_2=_clip(1280, 32, 20, "gelu", projection=True),
        tokenizer_2=clip_tokenizer(),
        scheduler=EulerDiscreteScheduler(
            beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
            steps_offset=1, timestep_spacing="leading",
        ),
    )  # fmt: skip


def sd15_inpaint(vae_upcast: bool) -> Any:
    from diffusers import StableDiffusionInpaintPipeline

    return StableDiffusionInpaintPipeline(**sd15_parts(9, vae_upcast))


def sdxl_inpaint(vae_upcast: bool) -> Any:
    from diffusers import StableDiffusionXLInpaintPipeline

    return StableDiffusionXLInpaintPipeline(
        **sdxl_parts(9, vae_upcast), requires_aesthetics_score=False
    )


def save_pipeline(key: str, directory: Path, *, smoke: bool, vae_upcast: bool) -> Path:
    import torch

    from tests import tiny_pipelines

    if smoke:
        builder = {
            "sd": tiny_pipelines.save_tiny_sd_inpaint,
            "sdxl": tiny_pipelines.save_tiny_sdxl_inpaint,
        }
        return builder[key](directory)
    torch.manual_seed(0)
    # Initialise on the GPU (seconds instead of minutes for 2.6B parameters), save in fp16.
    with torch.device("cuda"):
        pipe = {"sd": sd15_inpaint, "sdxl": sdxl_inpaint}[key](vae_upcast)
    pipe.to(torch.float16).save_pretrained(directory)
    del pipe
    torch.cuda.empty_cache()  # the generator loads its own copy
    return directory


def requests_for(size: int, count: int) -> list[InpaintRequest]:
    rng = np.random.default_rng(0)
    mask = np.zeros((size, size), bool)
    mask[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = True
    return [
        InpaintRequest(
            key=f"bench{i}",
            image=rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
            mask=mask,
            subject_mask=mask,
            prompt=PROMPTS[i % len(PROMPTS)],
            negative_prompt="text, watermark, low resolution",
            seed=i,
        )
        for i in range(count)
    ]


def count_flops(generator: DiffusersInpaintGenerator, request: InpaintRequest) -> dict[str, float]:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        generator.generate([request])
    per_module = {
        name: sum(ops.values())
        for name, ops in counter.get_flop_counts().items()
        if name != "Global" and "." not in name
    }
    return {"total": counter.get_total_flops(), **per_module}


def seconds_per_batch(
    generator: DiffusersInpaintGenerator, batch: list[InpaintRequest], repeats: int
) -> float:
    generator.generate(batch)  # warm-up: compile for this shape, cache the prompts
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        generator.generate(batch)  # returns numpy: the GPU work is finished when it returns
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run_case(
    key: str, args: argparse.Namespace, device: str, workdir: Path
) -> list[dict[str, Any]]:
    import torch

    case = CASES[key]
    resolution = 32 if args.smoke else case.resolution
    target = None if args.smoke else case.target_s  # targets are for real sizes on an H100
    model_dir = save_pipeline(
        key, workdir / key, smoke=args.smoke, vae_upcast=not args.no_vae_upcast
    )
    requests = requests_for(resolution, max(case.batches))
    rows = []
    flops: dict[str, float] = {}
    for compiled in [False, True] if args.compile else [False]:
        config = case.generator.Config(
            model=str(model_dir), resolution=resolution, steps=args.steps, guidance=case.guidance,
            strength=1.0, batch_size=max(case.batches), compile=compiled,
            channels_last=args.channels_last, crop="full",
        )  # fmt: skip
        generator = case.generator(config, device=device)
        if not flops:
            generator.generate(requests[:1])
            flops = count_flops(generator, requests[0])
        for batch in case.batches:
            seconds = seconds_per_batch(generator, requests[:batch], args.repeats) / batch
            floor = flops["total"] / PEAK_FLOPS
            rows.append({
                "model": case.name, "resolution": resolution, "batch": batch, "steps": args.steps,
                "dtype": str(generator.dtype).removeprefix("torch."), "compile": compiled,
                "channels_last": args.channels_last, "vae_upcast": not args.no_vae_upcast,
                "s_per_image": round(seconds, 4), "tflop_per_image": round(flops["total"] / 1e12, 3),
                "flop_floor_s": round(floor, 4), "fraction_of_peak": round(floor / seconds, 3),
                "target_s": target, "meets_target": None if target is None else seconds <= target,
                "tflop_by_module": {k: round(v / 1e12, 3) for k, v in flops.items() if k != "total"},
            })  # fmt: skip
        del generator
        if device == "cuda":
            torch.cuda.empty_cache()
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| model | res | batch | compile | s/image | TFLOP/image | floor s | of peak | target s | met |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['resolution']} | {r['batch']} | {r['compile']} | "
            f"{r['s_per_image']:.4f} | {r['tflop_per_image']:.1f} | {r['flop_floor_s']:.4f} | "
            f"{r['fraction_of_peak']:.1%} | {r['target_s'] or '-'} | {MET[r['meets_target']]} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny models, 32 px")
    parser.add_argument("--models", default="sd,sdxl", help="comma list of: sd, sdxl")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile'd")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument(
        "--no-vae-upcast",
        action="store_true",
        help="fp16 VAE like sdxl-vae-fp16-fix instead of SDXL's fp32 upcast",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    quiet_libraries()
    device = pick_device(args.smoke)
    with tempfile.TemporaryDirectory(prefix="bench_distractors_") as tmp:
        rows = [
            row for key in args.models.split(",") for row in run_case(key, args, device, Path(tmp))
        ]
    emit("distractors_gpu", device, args.smoke, rows, markdown(rows), args.out)


if __name__ == "__main__":
    main()
