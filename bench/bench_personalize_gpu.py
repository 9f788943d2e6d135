"""GPU benchmark of the personalize stage's DreamBooth-LoRA training and of generation.

SD1.5 at 512 and SDXL at 1024, built from the published architectures with random weights (no
downloads: the arithmetic is the same), fp16, saved and loaded back through ``TextToImage``. Per
model:

- ``train_dreambooth`` (the stage's loop: precomputed text embeddings and latent distributions, instance
  and class batch in one UNet call, LoRA rank 4 on the attention projections): steps/s after
  warm-up and peak GPU memory;
- the same step written as diffusers' ``train_dreambooth_lora.py`` loop does it (VAE encode and
  text encoder every step, instance and class images concatenated, same LoRA, same optimizer):
  steps/s and peak memory on the same machine;
- generation through ``TextToImage.generate`` (30 steps, CFG 5.0): images/s at batch 1 and at
  the larger batch.

    python bench/bench_personalize_gpu.py                 # H100/H200
    python bench/bench_personalize_gpu.py --models sdxl   # one model per invocation under a limit
    python bench/bench_personalize_gpu.py --smoke         # CPU, tiny models, checks the harness

Prints one JSON line and a Markdown table; ``--out`` also writes the JSON to a file.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_distractors_gpu import sd15_parts, sdxl_parts  # noqa: E402
from gpu_harness import emit, pick_device, quiet_libraries  # noqa: E402

from nearid_data.personalize.dreambooth import Example, Recipe, train_dreambooth  # noqa: E402
from nearid_data.personalize.text2image import TextToImage  # noqa: E402


@dataclass(frozen=True)
class Case:
    name: str
    resolution: int
    generation_batch: int


CASES = {"sd": Case("sd15", 512, 8), "sdxl": Case("sdxl", 1024, 4)}


def sd15() -> Any:
    """stable-diffusion-v1-5 at real size."""
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(**sd15_parts(4))


def sdxl() -> Any:
    """stable-diffusion-xl-base-1.0 at real size."""
    from diffusers import StableDiffusionXLPipeline

    return StableDiffusionXLPipeline(**sdxl_parts(4))


def save_pipeline(key: str, directory: Path, smoke: bool) -> Path:
    import torch

    from tests.personalize.tiny_text2image import save_tiny_sd, save_tiny_sdxl

    if smoke:
        return {"sd": save_tiny_sd, "sdxl": save_tiny_sdxl}[key](directory)
    torch.manual_seed(0)
    with torch.device("cuda"):
        pipe = {"sd": sd15, "sdxl": sdxl}[key]()
    pipe.to(torch.float16).save_pretrained(directory)
    del pipe
    torch.cuda.empty_cache()
    return directory


def _peak_reset(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _peak_gib(device: str) -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if device == "cuda" else None


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def stage_loop(
    model: TextToImage,
    recipe: Recipe,
    images: list[np.ndarray],
    warmup: int,
    device: str,
    workdir: Path,
) -> dict[str, Any]:
    stamps: list[float] = []

    def on_step(step: int) -> None:
        _sync(device)
        stamps.append(time.perf_counter())

    instance = Example(images[:3], model.conditioning("a photo of sks mug", recipe.resolution))
    prior = Example(images[3:], model.conditioning("A photo of mug", recipe.resolution))
    _peak_reset(device)
    train_dreambooth(
        model,
        recipe,
        instance,
        prior,
        seed=0,
        checkpoint=workdir / "c.pt",
        fingerprint="b",
        on_step=on_step,
    )
    _sync(device)
    stamps.append(time.perf_counter())
    measured = stamps[warmup:]
    return {
        "steps_per_s": round((len(measured) - 1) / (measured[-1] - measured[0]), 3),
        "peak_gib": _peak_gib(device),
    }


def plain_loop(
    model: TextToImage, recipe: Recipe, images: list[np.ndarray], warmup: int, device: str
) -> dict[str, Any]:
    """The step of diffusers' train_dreambooth_lora.py: encode images and prompts every step."""
    import torch
    import torch.nn.functional as F
    from diffusers import DDPMScheduler
    from peft import LoraConfig

    from nearid_data.personalize.dreambooth import TARGET_MODULES, pixels

    pipe, unet = model.pipe, model.unet
    unet.requires_grad_(False)
    names = {n.rsplit(".", 1)[-1] for n, _ in unet.named_modules()} | {
        n for n, _ in unet.named_modules()
    }
    targets = [t for t in TARGET_MODULES if any(n.endswith(t) for n in names)]
    unet.add_adapter(
        LoraConfig(
            r=recipe.rank,
            lora_alpha=recipe.rank,
            init_lora_weights="gaussian",
            target_modules=targets,
        ),
        adapter_name="plain",
    )
    params = [p for p in unet.parameters() if p.requires_grad]
    for p in params:
        p.data = p.data.float()
    optimizer = torch.optim.AdamW(params, lr=recipe.learning_rate)
    scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    batch = torch.from_numpy(
        np.stack([pixels(images[0], recipe.resolution), pixels(images[3], recipe.resolution)])
    )
    prompts = ["a photo of sks mug", "A photo of mug"]
    _peak_reset(device)
    stamps = []
    for _ in range(recipe.steps):
        _sync(device)
        stamps.append(time.perf_counter())
        with torch.no_grad():
            latents = pipe.vae.encode(batch.to(device, pipe.vae.dtype)).latent_dist.sample()
            latents = latents * pipe.vae.config.scaling_factor
            if model.family == "sd":
                hidden, _ = pipe.encode_prompt(prompts, device, 1, False)
                added = None
            else:
                hidden, _, pooled, _ = pipe.encode_prompt(
                    prompts,
                    device=device,
                    num_images_per_prompt=1,
                    do_classifier_free_guidance=False,
                )
                r = recipe.resolution
                added = {
                    "text_embeds": pooled,
                    "time_ids": torch.tensor(
                        [[r, r, 0, 0, r, r]] * 2, device=device, dtype=hidden.dtype
                    ),
                }
        noise = torch.randn_like(latents)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (2,), device=device)
        noisy = scheduler.add_noise(latents, noise, t)
        prediction = unet(noisy, t, hidden, added_cond_kwargs=added).sample
        instance, prior = prediction.float().chunk(2)
        target, target_prior = noise.float().chunk(2)
        loss = F.mse_loss(instance, target) + recipe.prior_loss_weight * F.mse_loss(
            prior, target_prior
        )
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, recipe.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    _sync(device)
    stamps.append(time.perf_counter())
    unet.delete_adapters("plain")
    measured = stamps[warmup:]
    return {
        "steps_per_s": round((len(measured) - 1) / (measured[-1] - measured[0]), 3),
        "peak_gib": _peak_gib(device),
    }


def generation(
    model: TextToImage, batch: int, resolution: int, steps: int, repeats: int, device: str
) -> float:
    prompts, seeds = ["a photo of a mug on a table"] * batch, list(range(batch))
    model.generate(prompts, seeds, steps=steps, guidance=5.0, resolution=resolution)  # warm-up
    _sync(device)
    started = time.perf_counter()
    for _ in range(repeats):
        model.generate(prompts, seeds, steps=steps, guidance=5.0, resolution=resolution)
    _sync(device)
    return round(batch * repeats / (time.perf_counter() - started), 3)


def run_case(key: str, args: argparse.Namespace, device: str, workdir: Path) -> dict[str, Any]:
    case = CASES[key]
    resolution = 32 if args.smoke else case.resolution
    steps = 3 if args.smoke else args.train_steps
    warmup = 1 if args.smoke else 5
    model = TextToImage(
        str(save_pipeline(key, workdir / key, args.smoke)), dtype="auto", device=device
    )
    recipe = Recipe(steps=steps + warmup, learning_rate=1e-4, rank=4, batch_size=1, resolution=resolution,
                    prior_loss_weight=1.0, max_grad_norm=1.0, checkpoint_every=10**9)  # fmt: skip
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (resolution, resolution, 3), dtype=np.uint8) for _ in range(8)]
    ours = stage_loop(model, recipe, images, warmup, device, workdir)
    plain = plain_loop(model, recipe, images, warmup, device)
    generate_steps = 2 if args.smoke else 30
    return {
        "model": case.name,
        "resolution": resolution,
        "dtype": str(model.dtype).removeprefix("torch."),
        "train_steps_per_s": ours["steps_per_s"],
        "train_peak_gib": ours["peak_gib"],
        "plain_steps_per_s": plain["steps_per_s"],
        "plain_peak_gib": plain["peak_gib"],
        "generate_images_per_s_batch1": generation(
            model, 1, resolution, generate_steps, 1 if args.smoke else 3, device
        ),
        f"generate_images_per_s_batch{case.generation_batch}": generation(
            model, case.generation_batch, resolution, generate_steps, 1 if args.smoke else 2, device
        ),
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| model | res | train steps/s (stage) | peak GiB | train steps/s (plain loop) | peak GiB | gen img/s b1 | gen img/s batched |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        batched = next(
            v
            for k, v in row.items()
            if k.startswith("generate_images_per_s_batch") and not k.endswith("batch1")
        )
        lines.append(
            f"| {row['model']} | {row['resolution']} | {row['train_steps_per_s']} | {row['train_peak_gib']} | "
            f"{row['plain_steps_per_s']} | {row['plain_peak_gib']} | {row['generate_images_per_s_batch1']} | {batched} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny models, 32 px")
    parser.add_argument("--models", nargs="+", choices=sorted(CASES), default=sorted(CASES))
    parser.add_argument("--train-steps", type=int, default=30, help="measured steps after warm-up")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    quiet_libraries()
    device = pick_device(args.smoke)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run_case(key, args, device, Path(tmp)) for key in args.models]
    emit("personalize_gpu", device, args.smoke, rows, markdown(rows), args.out)


if __name__ == "__main__":
    main()
