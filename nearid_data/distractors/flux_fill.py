"""FLUX.1 Fill (``FluxFillPipeline``): a flow-matching transformer with a fill-conditioned input.

Differences from the UNet pipelines: ``guidance`` is FLUX's distilled guidance embedding (NearID:
30), not classifier-free guidance, so there is one transformer pass per step and no negative prompt
(``negative_prompt`` must stay empty; requests' negative prompts are ignored). ``strength`` exists
but NearID used the default 1.0. Prompt embeddings (T5 sequence + pooled CLIP) are cached per
prompt like the others. Defaults to bfloat16 on CUDA, as FLUX is trained. FLUX counts steps its
own way: it skips ``int(steps - steps * strength)`` of them, so 30 steps at 0.99 run all 30.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, PositiveInt, field_validator

from nearid_data.distractors.diffusers_inpaint import DiffusersInpaintGenerator, DiffusionConfig


class FluxFillConfig(DiffusionConfig):
    model: str = "black-forest-labs/FLUX.1-Fill-dev"
    resolution: int = Field(1024, ge=16)
    steps: int = Field(50, ge=1)
    guidance: float = Field(30.0, ge=0.0)
    # FluxFillPipeline.check_inputs refuses more than 512 T5 tokens, but only at the first image.
    max_sequence_length: PositiveInt = Field(512, le=512)

    def steps_run(self) -> int:
        return self.steps - int(max(self.steps - self.steps * self.strength, 0))

    @field_validator("negative_prompt")
    @classmethod
    def _no_negative_prompt(cls, value: str) -> str:
        if value:
            raise ValueError("FLUX Fill takes no negative prompt (its guidance is distilled)")
        return value


class FluxFillGenerator(DiffusersInpaintGenerator):
    Config: ClassVar[type[DiffusionConfig]] = FluxFillConfig
    pipeline_class: ClassVar[str] = "FluxFillPipeline"
    denoiser: ClassVar[str] = "transformer"
    cuda_dtype: ClassVar[str] = "bfloat16"
    uses_negative_prompt: ClassVar[bool] = False
    attention_backends: ClassVar[bool] = True

    config: FluxFillConfig

    def encode(self, prompt: str, negative_prompt: str) -> dict[str, Any]:
        embeds, pooled, _text_ids = self.pipe.encode_prompt(
            prompt=prompt,
            prompt_2=None,
            device=self.pipe._execution_device,
            max_sequence_length=self.config.max_sequence_length,
        )
        return {"prompt_embeds": embeds, "pooled_prompt_embeds": pooled}

    def call_arguments(self) -> dict[str, Any]:
        return {**super().call_arguments(), "max_sequence_length": self.config.max_sequence_length}
