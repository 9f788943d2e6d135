"""Stable Diffusion 1.x/2.x inpainting (``StableDiffusionInpaintPipeline``, a 9-channel UNet).

Config defaults: 512, 30 steps, CFG 7.5, the checkpoint's own scheduler; the preset
``sd-inpaint-default`` switches to the sampler settings NearID ran PowerPaint (SD1.5) with. The
safety checker is not loaded: a flagged image comes back black, which would enter the dataset as a
"distractor"; the stage's QA decides what is kept.
"""

from __future__ import annotations

from typing import Any, ClassVar

from nearid_data.distractors.diffusers_inpaint import DiffusersInpaintGenerator, DiffusionConfig


class SdInpaintConfig(DiffusionConfig):
    model: str = "stable-diffusion-v1-5/stable-diffusion-inpainting"


class SdInpaintGenerator(DiffusersInpaintGenerator):
    Config: ClassVar[type[DiffusionConfig]] = SdInpaintConfig
    pipeline_class: ClassVar[str] = "StableDiffusionInpaintPipeline"
    load_arguments: ClassVar[dict[str, Any]] = {
        "safety_checker": None,
        "requires_safety_checker": False,
    }

    def encode(self, prompt: str, negative_prompt: str) -> dict[str, Any]:
        guided = self.config.guidance > 1.0
        embeds, negative = self.pipe.encode_prompt(
            prompt,
            self.pipe._execution_device,
            1,
            guided,
            negative_prompt or None,
        )
        return {"prompt_embeds": embeds, **({"negative_prompt_embeds": negative} if guided else {})}
