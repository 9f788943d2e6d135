"""Stable Diffusion XL inpainting (``StableDiffusionXLInpaintPipeline``).

Config defaults are NearID's settings (1024, 30 steps, CFG 8.0, strength 0.99; the model card
suggests the same with 20 steps); the preset ``sdxl-inpaint-nearid`` adds NearID's negative
prompt. Both text encoders' embeddings, pooled ones included, are cached per prompt. An empty
negative prompt is passed as none, so the pipeline's ``force_zeros_for_empty_prompt`` applies.

Aesthetic-score conditioning: a checkpoint whose pipeline config sets ``requires_aesthetics_score``
(the refiner-style UNets) takes ``aesthetic_score`` / ``negative_aesthetic_score`` as extra time ids.
They are passed explicitly (diffusers' defaults, 6.0 / 2.5, unless configured) and recorded when the
checkpoint uses them; other checkpoints ignore them and the record says so (null). When the VAE is
float16 and its config asks for ``force_upcast``, the pipeline decodes in float32 (``vae_upcast``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from nearid_data.distractors.diffusers_inpaint import DiffusersInpaintGenerator, DiffusionConfig


class SdxlInpaintConfig(DiffusionConfig):
    model: str = "diffusers/stable-diffusion-xl-1.0-inpainting-0.1"
    resolution: int = Field(1024, ge=16)
    steps: int = Field(30, ge=1)
    guidance: float = Field(8.0, ge=0.0)
    strength: float = Field(0.99, gt=0.0, le=1.0)
    # LAION aesthetic scores (0-10), used only by checkpoints that require them.
    aesthetic_score: float = Field(6.0, ge=0.0, le=10.0)
    negative_aesthetic_score: float = Field(2.5, ge=0.0, le=10.0)


class SdxlInpaintGenerator(DiffusersInpaintGenerator):
    Config: ClassVar[type[DiffusionConfig]] = SdxlInpaintConfig
    pipeline_class: ClassVar[str] = "StableDiffusionXLInpaintPipeline"
    upcasts_vae: ClassVar[bool] = True

    config: SdxlInpaintConfig

    def _aesthetic_scores(self) -> dict[str, float] | None:
        if not self.pipe.config.get("requires_aesthetics_score", False):
            return None
        return {
            "aesthetic_score": self.config.aesthetic_score,
            "negative_aesthetic_score": self.config.negative_aesthetic_score,
        }

    def call_arguments(self) -> dict[str, Any]:
        return {**super().call_arguments(), **(self._aesthetic_scores() or {})}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "aesthetic_conditioning": self._aesthetic_scores()}

    def encode(self, prompt: str, negative_prompt: str) -> dict[str, Any]:
        embeds, negative, pooled, negative_pooled = self.pipe.encode_prompt(
            prompt=prompt,
            device=self.pipe._execution_device,
            num_images_per_prompt=1,
            do_classifier_free_guidance=self.config.guidance > 1.0,
            negative_prompt=negative_prompt or None,
        )
        named = {
            "prompt_embeds": embeds,
            "pooled_prompt_embeds": pooled,
            "negative_prompt_embeds": negative,
            "negative_pooled_prompt_embeds": negative_pooled,
        }
        return {name: value for name, value in named.items() if value is not None}
