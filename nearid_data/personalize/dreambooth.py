"""DreamBooth training of one identity, as diffusers' ``train_dreambooth_lora`` recipe does it.

The recipe: frozen VAE and text encoders, LoRA (peft ``LoraConfig``, gaussian init, rank = alpha)
on the UNet attention projections, AdamW, constant learning rate, noise-prediction MSE; with prior
preservation each step also denoises a class image under the class prompt and adds its loss times
``prior_loss_weight`` (both batches go through the UNet in one call). Text embeddings are computed
once (``--pre_compute_text_embeddings``), and so is each image's latent distribution (its per-step
sample is still drawn fresh). ``method: full`` trains every UNet weight instead (in float32, as
``train_dreambooth.py`` keeps trainable weights), returns the whole UNet state in the model's
dtype, and restores the base weights afterwards; it needs about 16 bytes per UNet parameter of
accelerator memory (SD1.5 ~14 GB, SDXL ~42 GB) and a UNet-sized checkpoint.

Determinism and resume: everything random in step ``s`` (which images, the latent sample, noise,
timesteps) comes from a CPU generator seeded by ``(seed, s)``, and the LoRA init from ``(seed,
"init")``. A checkpoint (trained weights, optimizer state, loss log) is written atomically every
``checkpoint_every`` steps, through the storage seam (a local file or one object at a URL);
training resumed from it continues exactly as an uninterrupted run, so the final adapter has the
same bytes on CPU either way.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nearid_data.engine import storage
from nearid_data.engine.storage import Location
from nearid_data.personalize.text2image import Conditioning, TextToImage
from nearid_data.seeding import derive_seed

ADAPTER = "identity"
ENCODE_BATCH = 8
# diffusers' DreamBooth-LoRA script targets these (add_* only exist in some UNets).
TARGET_MODULES = ["to_k", "to_q", "to_v", "to_out.0", "add_k_proj", "add_v_proj"]


@dataclass(frozen=True)
class Recipe:
    steps: int
    learning_rate: float
    rank: int
    batch_size: int
    resolution: int
    prior_loss_weight: float
    max_grad_norm: float
    checkpoint_every: int
    method: str = "lora"
    """``lora`` (an adapter on the attention projections) or ``full`` (every UNet weight)."""


@dataclass(frozen=True)
class Example:
    """Images (RGB uint8) and the prompt they are trained under."""

    images: Sequence[np.ndarray]
    conditioning: Conditioning


@dataclass
class TrainResult:
    state: dict[str, Any]
    """``lora``: the LoRA weights in diffusers' format (what ``save_lora_weights`` takes);
    ``full``: the UNet's whole state dict."""
    losses: list[float] = field(default_factory=list)
    resumed_from: int = 0


class Diverged(Exception):
    def __init__(self, step: int, loss: float) -> None:
        super().__init__(f"loss {loss} at step {step}")
        self.step, self.loss = step, loss


def pixels(image: np.ndarray, resolution: int) -> np.ndarray:
    """Resize the short side to ``resolution`` and centre-crop a square; float32 CHW in [-1, 1]
    (the recipe's Resize, CenterCrop, Normalize([0.5], [0.5]))."""
    import cv2

    height, width = image.shape[:2]
    scale = resolution / min(height, width)
    size = (max(resolution, round(width * scale)), max(resolution, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, size, interpolation=interpolation)
    top, left = (size[1] - resolution) // 2, (size[0] - resolution) // 2
    crop = resized[top : top + resolution, left : left + resolution]
    return (crop.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)


def diffusion_loss(prediction: Any, target: Any) -> Any:
    import torch.nn.functional as functional

    return functional.mse_loss(prediction.float(), target.float(), reduction="mean")


def train_dreambooth(
    model: TextToImage,
    recipe: Recipe,
    instance: Example,
    prior: Example | None,
    *,
    seed: int,
    checkpoint: Location,
    fingerprint: str,
    on_step: Callable[[int], None] | None = None,
) -> TrainResult:
    """Train ``model.unet`` on the examples and return the trained weights; the UNet is left as it
    was.

    ``checkpoint`` is resumed from when it holds ``fingerprint`` (the identity, its images and the
    settings), and removed when training ends. Raises ``Diverged`` on a non-finite loss.
    """
    import torch
    from diffusers import DDPMScheduler

    unet = model.unet
    trainable = _LoraWeights(unet, recipe, seed) if recipe.method == "lora" else _FullWeights(unet)
    try:
        params = [p for p in unet.parameters() if p.requires_grad]
        for param in params:  # trainable weights in float32 even when the model is half
            param.data = param.data.float()
        optimizer = torch.optim.AdamW(
            params, lr=recipe.learning_rate, betas=(0.9, 0.999), weight_decay=1e-2, eps=1e-8
        )
        scheduler = DDPMScheduler.from_config(model.pipe.scheduler.config)
        result = TrainResult(state={})
        start = _resume(checkpoint, fingerprint, trainable, optimizer, result)
        parts = [
            (example, _latent_distribution(model, example.images, recipe.resolution))
            for example in ([instance, prior] if prior else [instance])
        ]
        unet.train()
        for step in range(start, recipe.steps):
            if on_step is not None:
                on_step(step)
            generator = torch.Generator("cpu").manual_seed(derive_seed(seed, "step", step))
            loss = _step_loss(model, scheduler, recipe, parts, generator)
            value = float(loss.detach())
            if not math.isfinite(value):
                raise Diverged(step, value)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, recipe.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            result.losses.append(round(value, 6))
            done = step + 1
            if done % recipe.checkpoint_every == 0 and done < recipe.steps:
                _save_checkpoint(checkpoint, fingerprint, done, trainable, optimizer, result)
        unet.eval()
        result.state = trainable.result()
        storage.delete(checkpoint)
        return result
    finally:
        trainable.restore()


class _LoraWeights:
    """A fresh LoRA adapter on the UNet's attention projections."""

    def __init__(self, unet: Any, recipe: Recipe, seed: int) -> None:
        import torch
        from peft import LoraConfig

        self.unet = unet
        unet.requires_grad_(False)
        torch.manual_seed(derive_seed(seed, "init"))
        unet.add_adapter(
            LoraConfig(
                r=recipe.rank,
                lora_alpha=recipe.rank,
                init_lora_weights="gaussian",
                target_modules=[t for t in TARGET_MODULES if _has_module(unet, t)],
            ),
            adapter_name=ADAPTER,
        )

    def state(self) -> dict[str, Any]:
        from peft.utils import get_peft_model_state_dict

        return get_peft_model_state_dict(self.unet, adapter_name=ADAPTER)  # type: ignore[no-any-return]

    def load(self, state: dict[str, Any]) -> None:
        from peft.utils import set_peft_model_state_dict

        set_peft_model_state_dict(self.unet, state, adapter_name=ADAPTER)

    def result(self) -> dict[str, Any]:
        import torch
        from diffusers.utils import convert_state_dict_to_diffusers

        return {
            k: v.detach().to("cpu", torch.float32).contiguous()
            for k, v in convert_state_dict_to_diffusers(self.state()).items()
        }

    def restore(self) -> None:
        self.unet.delete_adapters(ADAPTER)


class _FullWeights:
    """Every UNet weight, trained in float32; the base weights wait on the CPU to be restored."""

    def __init__(self, unet: Any) -> None:
        self.unet, self.dtype = unet, unet.dtype
        self.base = {k: v.detach().to("cpu", copy=True) for k, v in unet.state_dict().items()}
        unet.requires_grad_(True)

    def state(self) -> dict[str, Any]:
        return dict(self.unet.state_dict())

    def load(self, state: dict[str, Any]) -> None:
        self.unet.load_state_dict(state)

    def result(self) -> dict[str, Any]:
        # copies: restore() overwrites the live tensors in place
        return {k: v.detach().to("cpu", self.dtype, copy=True) for k, v in self.state().items()}

    def restore(self) -> None:
        self.unet.requires_grad_(False)
        self.unet.to(self.dtype)
        self.unet.load_state_dict(self.base)


_Trainable = _LoraWeights | _FullWeights


def _has_module(unet: Any, suffix: str) -> bool:
    return any(name.endswith(suffix) for name, _ in unet.named_modules())


def _latent_distribution(model: TextToImage, images: Sequence[np.ndarray], resolution: int) -> Any:
    """Mean and std of each image's VAE posterior, (N, C, h, w) each, on the CPU (encoded a few
    images at a time: a set of 200 class images at once would not fit next to the UNet)."""
    import torch

    vae = model.pipe.vae
    means, stds = [], []
    for start in range(0, len(images), ENCODE_BATCH):
        chunk = [pixels(image, resolution) for image in images[start : start + ENCODE_BATCH]]
        batch = torch.from_numpy(np.stack(chunk)).to(model.device, vae.dtype)
        with torch.no_grad():
            posterior = vae.encode(batch).latent_dist
        means.append(posterior.mean.float().cpu())
        stds.append(posterior.std.float().cpu())
    return torch.cat(means), torch.cat(stds)


def _step_loss(
    model: TextToImage,
    scheduler: Any,
    recipe: Recipe,
    parts: list[tuple[Example, Any]],
    generator: Any,
) -> Any:
    """The instance loss plus ``prior_loss_weight`` x the prior loss, from one UNet call on the
    instance and class batches concatenated (as the recipe does with prior preservation)."""
    import torch

    noisy, timesteps, targets, hidden = [], [], [], []
    added: list[dict[str, Any]] = []  # SDXL's pooled text and time ids; none for SD
    size = recipe.batch_size
    for example, (mean, std) in parts:
        picks = torch.randint(0, mean.shape[0], (size,), generator=generator)
        eps = torch.randn(mean[picks].shape, generator=generator)
        sample = (mean[picks] + std[picks] * eps) * model.pipe.vae.config.scaling_factor
        noise = torch.randn(sample.shape, generator=generator)
        steps = torch.randint(0, scheduler.config.num_train_timesteps, (size,), generator=generator)
        noisy.append(scheduler.add_noise(sample, noise, steps))
        timesteps.append(steps)
        if scheduler.config.prediction_type == "v_prediction":
            targets.append(scheduler.get_velocity(sample, noise, steps))
        else:
            targets.append(noise)
        example_hidden, example_added = example.conditioning.repeat(size)
        hidden.append(example_hidden)
        if example_added is not None:
            added.append(example_added)
    unet = model.unet
    conditions = None
    if added:
        conditions = {k: torch.cat([a[k] for a in added]).to(model.device) for k in added[0]}
    prediction = unet(
        torch.cat(noisy).to(model.device, unet.dtype),
        torch.cat(timesteps).to(model.device),
        torch.cat(hidden).to(model.device, unet.dtype),
        added_cond_kwargs=conditions,
    ).sample
    losses = [
        diffusion_loss(part, target.to(model.device))
        for part, target in zip(prediction.split(size), targets, strict=True)
    ]
    return losses[0] if len(losses) == 1 else losses[0] + recipe.prior_loss_weight * losses[1]


def _resume(
    checkpoint: Location,
    fingerprint: str,
    trainable: _Trainable,
    optimizer: Any,
    result: TrainResult,
) -> int:
    """The step to start from: 0, or the checkpoint's when it belongs to this training."""
    import torch

    if not checkpoint.exists():
        return 0
    saved = torch.load(io.BytesIO(storage.read_bytes(checkpoint)), weights_only=True)
    if saved.get("fingerprint") != fingerprint:
        return 0
    trainable.load(saved["weights"])
    optimizer.load_state_dict(saved["optimizer"])
    result.losses = list(saved["losses"])
    result.resumed_from = int(saved["step"])
    return result.resumed_from


def _save_checkpoint(
    checkpoint: Location,
    fingerprint: str,
    step: int,
    trainable: _Trainable,
    optimizer: Any,
    result: TrainResult,
) -> None:
    import torch

    buffer = io.BytesIO()
    torch.save(
        {
            "fingerprint": fingerprint,
            "step": step,
            "weights": trainable.state(),
            "optimizer": optimizer.state_dict(),
            "losses": result.losses,
        },
        buffer,
    )
    storage.write_bytes(checkpoint, buffer.getvalue())
