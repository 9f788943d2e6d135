"""The personalize stage: one DreamBooth-LoRA adapter per identity, from its reference views.

Defaults follow PODS (Sundaram, Chae et al.; their ``configs/run/train_dreambooth*.sh``): SD1.5 at
512, 400 steps, learning rate 2e-6, batch 1, prior preservation with 200 class images per category
under ``A photo of {category}``, instance prompt ``a photo of sks {category}``. PODS fine-tuned the
whole UNet and text encoder; here the same recipe trains a LoRA on the UNet (diffusers'
``train_dreambooth_lora``), so one adapter per identity is megabytes, not gigabytes;
``method: full`` fine-tunes the whole UNet where memory allows (see ``dreambooth``).

Work unit: one identity (``identities/<identity>``), so a killed build resumes from the last
finished identity; inside it, training resumes from the last checkpoint (see ``lora``). Reference
views are those with ``role: reference`` (after ``pods-splits``), or every view when no view has a
role. Output per identity, in the stage directory:

```
adapters/<identity>/pytorch_lora_weights.safetensors   diffusers LoRA format (load_lora_weights)
adapters/<identity>/unet/                              instead, with method: full (from_pretrained)
adapters/<identity>/training.json                      settings, seed, prompts, model, loss log
class_images/<category>/<n>.png, class_images.json     shared prior-preservation images
```

The stage directory may be a URL (``--out s3://...``): checkpoints are single objects written
whole, adapters and class-image sets are written into a local temporary folder by diffusers and
uploaded through the storage seam (``materialise``). An identity's files are complete once its
unit's manifest exists; a killed unit runs again and rewrites them.

Every view of the identity passes through with ``personalize`` added to its json (the adapter's
path, prompts, weights sha256, final loss). An identity with fewer reference views than
``min_views`` is rejected (``too_few_views``); a non-finite loss stops it (``diverged``) without
stopping the build.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from nearid_data.engine.atomic import dump_json
from nearid_data.engine.stage import (
    Kept,
    Outcome,
    Rejected,
    Resources,
    Stage,
    StageConfig,
    WorkUnit,
)
from nearid_data.engine.storage import Location
from nearid_data.errors import Rejection
from nearid_data.export.materialise import materialise
from nearid_data.imageio import decode_png
from nearid_data.personalize.class_images import class_images
from nearid_data.personalize.dreambooth import Diverged, Example, Recipe, train_dreambooth
from nearid_data.personalize.text2image import Family, TextToImage
from nearid_data.sample import JSON_FIELD, Sample, meta, slug, with_fields
from nearid_data.seeding import derive_seed

WEIGHTS = "pytorch_lora_weights.safetensors"
FULL_WEIGHTS = "unet/diffusion_pytorch_model.safetensors"
TRAINING = "training.json"


class PersonalizeConfig(StageConfig):
    model: str = Field(
        "stable-diffusion-v1-5/stable-diffusion-v1-5",
        description="hub id or local directory of a diffusers SD 1.x/2.x or SDXL pipeline",
    )
    family: Family = "auto"
    revision: str | None = None
    dtype: str = Field("auto", pattern="^(auto|float16|bfloat16|float32)$")
    method: Literal["lora", "full"] = Field("lora", description="a LoRA, or the whole UNet")
    token: str = Field("sks", description="the rare-token identifier")
    instance_prompt: str = "a photo of {token} {category}"
    class_prompt: str = "A photo of {category}"
    min_views: int = Field(3, ge=1, description="reference views an identity needs")
    steps: int = Field(400, ge=1)
    learning_rate: float = Field(2e-6, gt=0)
    rank: int = Field(4, ge=1)
    train_batch_size: int = Field(1, ge=1)
    resolution: int | None = Field(None, ge=16, description="default: 512 for SD, 1024 for SDXL")
    prior_preservation: bool = True
    prior_loss_weight: float = Field(1.0, ge=0)
    class_images: int = Field(200, ge=1)
    class_steps: int = Field(50, ge=1)
    class_guidance: float = Field(7.5, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    checkpoint_every: int = Field(100, ge=1)

    def load_model(self, device: str) -> TextToImage:
        """The base text-to-image pipeline these settings name, on ``device``."""
        return TextToImage(
            self.model, family=self.family, revision=self.revision, dtype=self.dtype, device=device
        )


def subject_words(category: str) -> str:
    return category.replace("_", " ").replace("-", " ")


class PersonalizeStage(Stage):
    name = "personalize"
    Config = PersonalizeConfig
    config: PersonalizeConfig
    needs = frozenset({"image.png"})

    def declared_resources(self) -> Resources:
        return Resources.for_device(self.ctx.device)

    def plan(self) -> list[WorkUnit]:
        units = []
        for identity, rows in sorted(self.upstream_catalog.by_identity.items()):
            ordered = sorted(rows, key=lambda r: (r.view, r.key))
            units.append(
                WorkUnit(
                    f"identities/{slug(identity)}",
                    {"identity": identity, "rows": [[r.unit, r.key] for r in ordered]},
                )
            )
        return units

    def describe(self) -> dict[str, Any]:
        return {"model": self.config.model, "revision": self.config.revision}

    def setup(self) -> None:
        config = self.config
        self.model = config.load_model(self.ctx.device)
        self.resolution = config.resolution or self.model.native_resolution

    def run(self, unit: WorkUnit) -> Iterator[Outcome]:
        samples = list(self.upstream_catalog.stream(unit.payload["rows"]))
        identity = unit.payload["identity"]
        references = reference_views(samples)
        if len(references) < self.config.min_views:
            rejection = Rejection(
                "too_few_views",
                f"{identity}: {len(references)} reference views < min_views {self.config.min_views}",
            )
            yield from (Rejected.of(sample, rejection) for sample in samples)
            return
        try:
            record = self._personalize(identity, meta(samples[0])["category"], references)
        except Diverged as diverged:
            rejection = Rejection("diverged", f"{identity}: {diverged}")
            qa = {"diverged_at_step": diverged.step}
            yield from (Rejected.of(sample, rejection, qa) for sample in samples)
            return
        referenced = {sample["__key__"] for sample in references}
        for sample in samples:
            own = {**record, "reference": sample["__key__"] in referenced}
            yield Kept(
                with_fields(sample, {}, personalize=own), {"final_loss": record["final_loss"]}
            )

    def _personalize(
        self, identity: str, category: str, references: list[Sample]
    ) -> dict[str, Any]:
        config, seed = self.config, self.ctx.pipeline.seed
        words = subject_words(category)
        instance_prompt = config.instance_prompt.format(token=config.token, category=words)
        class_prompt = config.class_prompt.format(category=words)
        stage_dir = self.ctx.stage_dir(self.name)
        images = [decode_png(sample["image.png"]) for sample in references]
        prior = None
        if config.prior_preservation:
            klass = class_images(
                self.model,
                stage_dir / "class_images" / slug(category),
                prompt=class_prompt,
                count=config.class_images,
                seed=seed,
                steps=config.class_steps,
                guidance=config.class_guidance,
                resolution=self.resolution,
                batch_size=config.batch_size,
            )
            prior = Example(klass, self.model.conditioning(class_prompt, self.resolution))
        instance = Example(images, self.model.conditioning(instance_prompt, self.resolution))
        training_seed = derive_seed(seed, self.name, identity)
        reference_hashes = [hashlib.sha256(s["image.png"]).hexdigest() for s in references]
        fingerprint = (
            f"{derive_seed(config.model_dump(mode='json'), training_seed, reference_hashes):016x}"
        )
        name = slug(identity)
        result = train_dreambooth(
            self.model,
            self.recipe(),
            instance,
            prior,
            seed=training_seed,
            checkpoint=stage_dir / "checkpoints" / f"{name}.pt",
            fingerprint=fingerprint,
        )
        training = {
            "identity": identity,
            "category": category,
            "token": config.token,
            "instance_prompt": instance_prompt,
            "class_prompt": class_prompt if prior else None,
            "seed": training_seed,
            "run_seed": seed,
            "settings": config.model_dump(mode="json"),
            "resolution": self.resolution,
            "model": self.model.describe(),
            "references": [s["__key__"] for s in references],
            "losses": result.losses,
            "resumed_from": result.resumed_from,
        }
        adapter = f"adapters/{name}"
        weights_sha256 = self._save(stage_dir / adapter, result.state, training)
        return {
            "adapter": adapter,
            "weights_sha256": weights_sha256,
            "method": config.method,
            "token": config.token,
            "instance_prompt": instance_prompt,
            "final_loss": result.losses[-1],
        }

    def recipe(self) -> Recipe:
        config = self.config
        return Recipe(
            steps=config.steps,
            learning_rate=config.learning_rate,
            rank=config.rank,
            batch_size=config.train_batch_size,
            resolution=self.resolution,
            prior_loss_weight=config.prior_loss_weight,
            max_grad_norm=config.max_grad_norm,
            checkpoint_every=config.checkpoint_every,
            method=config.method,
        )

    def _save(self, directory: Location, state: dict[str, Any], training: dict[str, Any]) -> str:
        """Write the adapter and its training record as one directory; the weights' sha256."""
        weights = WEIGHTS if self.config.method == "lora" else FULL_WEIGHTS
        digest = hashlib.sha256()

        def write(root: Path) -> None:
            if self.config.method == "lora":
                type(self.model.pipe).save_lora_weights(root, unet_lora_layers=state)
            else:  # what save_pretrained writes, so UNet2DConditionModel.from_pretrained reads it
                from safetensors.torch import save_file

                self.model.unet.save_config(root / "unet")
                save_file(state, str(root / FULL_WEIGHTS), metadata={"format": "pt"})
            (root / TRAINING).write_bytes(dump_json(training))
            digest.update((root / weights).read_bytes())  # here, not read back from a URL

        materialise(directory, write)
        return digest.hexdigest()


def reference_views(samples: list[Sample]) -> list[Sample]:
    """Views with ``role: reference``, or all views when none has a role."""
    if not any("role" in s[JSON_FIELD] for s in samples):
        return samples
    return [s for s in samples if s[JSON_FIELD].get("role") == "reference"]
