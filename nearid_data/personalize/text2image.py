"""A diffusers text-to-image model (SD 1.x/2.x or SDXL) for training adapters and generating.

One object holds the loaded pipeline and knows the two things that differ between the families:
how a prompt becomes UNet conditioning (SDXL adds a pooled embedding and size/crop time ids) and
which pipeline class loads the checkpoint. Loading goes through ``load_pretrained``, so a missing
model gives the same error as every other backend; generation draws each image's noise from its
own seeded CPU generator, so an image depends on its seed only, not on batching or device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from nearid_data.backend import load_pretrained
from nearid_data.engine import transfer
from nearid_data.engine.storage import Location
from nearid_data.errors import NearidError
from nearid_data.optional import import_optional

Family = Literal["auto", "sd", "sdxl"]
PIPELINES = {"sd": "StableDiffusionPipeline", "sdxl": "StableDiffusionXLPipeline"}


@dataclass(frozen=True)
class Conditioning:
    """UNet conditioning for a batch of one prompt: ``hidden`` (1, tokens, dim) and, for SDXL,
    ``added`` (``text_embeds``, ``time_ids``)."""

    hidden: Any
    added: dict[str, Any] | None

    def repeat(self, n: int) -> tuple[Any, dict[str, Any] | None]:
        added = None if self.added is None else {k: v.repeat(n, 1) for k, v in self.added.items()}
        return self.hidden.repeat(n, 1, 1), added


def resolve_dtype(torch: Any, name: str, device: str) -> Any:
    """``auto``: float16 on CUDA (the diffusers training recipes' mixed precision), else float32."""
    if name == "auto":
        name = "float16" if device.startswith("cuda") else "float32"
    return getattr(torch, name)


def detect_family(model: str, revision: str | None) -> str:
    """``sdxl`` when the checkpoint has a second text encoder, else ``sd``."""
    diffusers = import_optional("diffusers", extra="models")
    config = load_pretrained(diffusers.DiffusionPipeline.load_config, model, revision=revision)
    return "sdxl" if "text_encoder_2" in config else "sd"


class TextToImage:
    def __init__(
        self,
        model: str,
        *,
        family: Family = "auto",
        revision: str | None = None,
        dtype: str = "auto",
        device: str = "cpu",
    ) -> None:
        self.torch = import_optional("torch", extra="models")
        import_optional("transformers", extra="models")
        diffusers = import_optional("diffusers", extra="models")
        self.model, self.revision, self.device = model, revision, device
        self.family = detect_family(model, revision) if family == "auto" else family
        self.dtype = resolve_dtype(self.torch, dtype, device)
        extra = {"safety_checker": None, "requires_safety_checker": False}
        self.pipe = load_pretrained(
            getattr(diffusers, PIPELINES[self.family]).from_pretrained,
            model,
            torch_dtype=self.dtype,
            revision=revision,
            **(extra if self.family == "sd" else {}),
        )
        self.pipe.set_progress_bar_config(disable=True)
        self.pipe.to(device)
        self._base_unet: Any = None  # while a fully fine-tuned UNet stands in for it

    def describe(self) -> dict[str, Any]:
        import diffusers

        return {
            "model": self.model,
            "revision": self.revision,
            "family": self.family,
            "pipeline": PIPELINES[self.family],
            "dtype": str(self.dtype).removeprefix("torch."),
            "diffusers_version": diffusers.__version__,
        }

    @property
    def native_resolution(self) -> int:
        """The size the family was trained at: 512 for SD 1.x, 1024 for SDXL."""
        return 1024 if self.family == "sdxl" else 512

    @property
    def unet(self) -> Any:
        return self.pipe.unet

    def conditioning(self, prompt: str, resolution: int) -> Conditioning:
        """The frozen text encoders' conditioning for ``prompt`` (computed once, as the DreamBooth
        recipe's ``--pre_compute_text_embeddings``)."""
        with self.torch.no_grad():
            if self.family == "sd":
                hidden, _ = self.pipe.encode_prompt(prompt, self.device, 1, False)
                return Conditioning(hidden, None)
            hidden, _, pooled, _ = self.pipe.encode_prompt(
                prompt,
                device=self.device,
                num_images_per_prompt=1,
                do_classifier_free_guidance=False,
            )
        # SDXL micro-conditioning: original size, crop top-left, target size.
        time_ids = self.torch.tensor(
            [[resolution, resolution, 0, 0, resolution, resolution]],
            dtype=hidden.dtype,
            device=self.device,
        )
        return Conditioning(hidden, {"text_embeds": pooled, "time_ids": time_ids})

    def generate(
        self,
        prompts: Sequence[str],
        seeds: Sequence[int],
        *,
        steps: int,
        guidance: float,
        resolution: int,
        negative_prompt: str = "",
    ) -> list[np.ndarray]:
        """One RGB uint8 image per (prompt, seed), ``resolution`` square."""
        if len(prompts) != len(seeds):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        if not prompts:
            return []
        generators = [self.torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
        with self.torch.inference_mode():
            result = self.pipe(
                prompt=list(prompts),
                negative_prompt=[negative_prompt] * len(prompts) if guidance > 1.0 else None,
                num_inference_steps=steps,
                guidance_scale=guidance,
                height=resolution,
                width=resolution,
                generator=generators,
                output_type="np",
            )
        images = np.asarray(result.images, dtype=np.float32)
        return list(np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8))

    def load_adapter(self, directory: Location, name: str) -> None:
        """A LoRA (``pytorch_lora_weights.safetensors``) or a whole fine-tuned UNet (``unet/``);
        one at a URL is downloaded to a temporary folder first (both load into memory)."""
        try:
            with transfer.local_folder(directory) as local:
                if (local / "unet").is_dir():
                    from diffusers import UNet2DConditionModel

                    self._base_unet = self.pipe.unet
                    unet = UNet2DConditionModel.from_pretrained(
                        local / "unet", torch_dtype=self.dtype
                    )
                    self.pipe.unet = unet.to(self.device)
                else:
                    self.pipe.load_lora_weights(str(local), adapter_name=name)
        except (OSError, ValueError) as exc:
            raise NearidError(f"adapter {directory} could not be loaded: {exc}") from exc

    def unload_adapter(self) -> None:
        if self._base_unet is not None:
            self.pipe.unet, self._base_unet = self._base_unet, None
        else:
            self.pipe.unload_lora_weights()
