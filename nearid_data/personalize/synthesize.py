"""The synthesize stage: per identity, synthetic positives, category negatives and cut-and-paste
positives, from the adapter ``personalize`` trained (the data side of PODS).

For each identity of the upstream ``personalize`` output:

- ``real``: its reference views, as they are. Its other views (PODS test images) are recorded as
  ``held_out`` and left out, so no test image enters training data.
- ``synthetic_positive``: ``positives`` images with the identity's adapter, prompts from the
  template list (``{subject}`` becomes ``sks mug``), classifier-free guidance 5.0 (PODS's best);
  each is scored against the reference crops by an embedder and rejected below
  ``min_similarity`` (``below_similarity``).
- ``synthetic_negative``: ``negatives`` images of the category without the adapter (``{subject}``
  becomes ``mug``).
- ``cut_paste``: a reference view's subject, cut by its mask, pasted with the distractors'
  ``CutPasteGenerator`` onto a generated background (``background_prompts``, no adapter) or a real
  one (images in ``background_dir``), at a seeded scale and position that are recorded.

Every image records model, adapter (path and sha256), prompt, negative prompt, seed, CFG, steps
and resolution. Synthetic samples get keys ``<identity>_pos000``, ``_neg000``, ``_cut000`` and
views 1000 + i, 2000 + i, 3000 + i (real views keep theirs); json ``kind`` says which set a
sample belongs to. ``similarity.json`` in the stage directory holds the score distributions of
kept and rejected positives.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from nearid_data.backend import build_backend, resolve_backend
from nearid_data.engine import storage
from nearid_data.engine.manifest import manifest_path, read_manifest
from nearid_data.engine.stage import (
    Kept,
    Outcome,
    Rejected,
    Resources,
    Stage,
    StageConfig,
    StageContext,
    WorkUnit,
)
from nearid_data.engine.storage import Location
from nearid_data.errors import NearidError, Rejection
from nearid_data.imageio import decode_image, decode_mask_png, decode_png, encode_png
from nearid_data.personalize.paste import paste_reference
from nearid_data.personalize.similarity import distribution, similarity_scores, subject_crop
from nearid_data.personalize.stage import PersonalizeConfig, subject_words
from nearid_data.sample import JSON_FIELD, KEY_FIELD, Sample, meta, slug
from nearid_data.seeding import derive_seed, rng_for
from nearid_data.vision.embedders import EMBEDDERS

_TAGS = {
    "synthetic_positive": ("pos", 1000),
    "synthetic_negative": ("neg", 2000),
    "cut_paste": ("cut", 3000),
}
_ADAPTER_NAME = "identity"
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")

DEFAULT_PROMPTS = [
    "a photo of {subject}",
    "a photo of {subject} on a wooden table",
    "a photo of {subject} in a kitchen",
    "a photo of {subject} on the grass outdoors",
    "a close-up photo of {subject}",
    "a photo of {subject} on a shelf",
    "a photo of {subject} on a desk next to a laptop",
    "a photo of {subject} on the beach",
]
DEFAULT_SCENES = [
    "an empty wooden table, photo",
    "an empty kitchen counter, photo",
    "a grassy lawn, photo",
    "an empty office desk, photo",
    "a living room floor, photo",
]


class SynthesizeConfig(StageConfig):
    positives: int = Field(8, ge=0, lt=1000)
    negatives: int = Field(8, ge=0, lt=1000)
    cut_paste: int = Field(8, ge=0, lt=1000)
    prompts: list[str] = Field(default_factory=lambda: list(DEFAULT_PROMPTS))
    """Templates with ``{subject}``; used in turn."""
    prompt_file: str | None = Field(None, description="one template per line; replaces prompts")
    guidance: float = Field(5.0, ge=0)
    steps: int = Field(50, ge=1)
    negative_prompt: str = ""
    backgrounds: Literal["generated", "real"] = "generated"
    background_prompts: list[str] = Field(default_factory=lambda: list(DEFAULT_SCENES))
    background_dir: str | None = None
    paste_scale: tuple[float, float] = (0.35, 0.75)
    """The pasted subject's longer side as a fraction of the background's shorter side, drawn
    uniformly from this range."""
    embedder: dict[str, Any] | None = Field(default_factory=lambda: {"name": "colorhist"})
    """Scores positives against the reference crops (``{name: dinov2, model: ...}``); null: no
    scores, no filter."""
    min_similarity: float | None = Field(0.6, ge=-1, le=1)

    @model_validator(mode="after")
    def _consistent(self) -> SynthesizeConfig:
        low, high = self.paste_scale
        if not 0 < low <= high <= 1:
            raise ValueError(
                f"paste_scale must satisfy 0 < low <= high <= 1, got {self.paste_scale}"
            )
        if self.backgrounds == "real" and not self.background_dir:
            raise ValueError("backgrounds: real needs background_dir")
        if self.min_similarity is not None and self.embedder is None:
            raise ValueError("min_similarity needs an embedder (or set min_similarity: null)")
        return self


class SynthesizeStage(Stage):
    name = "synthesize"
    Config = SynthesizeConfig
    config: SynthesizeConfig
    needs = frozenset({"image.png"})

    def __init__(self, config: SynthesizeConfig, ctx: StageContext) -> None:
        super().__init__(config, ctx)
        upstream = ctx.upstream and ctx.pipeline.stage_config(ctx.upstream)
        if not isinstance(upstream, PersonalizeConfig):
            raise NearidError(
                f"stages.{self.name}: must come right after 'personalize' (got {ctx.upstream!r})"
            )
        self.personalize = upstream
        if config.embedder is not None:
            resolve_backend(EMBEDDERS, config.embedder, where=f"stages.{self.name}.embedder")
        self.templates = self._templates()
        self.background_files = self._background_files()

    def declared_resources(self) -> Resources:
        return Resources.for_device(self.ctx.device)

    def _templates(self) -> list[str]:
        templates = self.config.prompts
        if self.config.prompt_file:
            path = Path(self.config.prompt_file)
            if not path.is_file():
                raise NearidError(f"stages.{self.name}.prompt_file: {path} not found")
            templates = [
                line.strip() for line in path.read_text("utf-8").splitlines() if line.strip()
            ]
        bad = [t for t in templates if "{subject}" not in t]
        if not templates or bad:
            raise NearidError(
                f"stages.{self.name}: prompt templates must each contain {{subject}} (bad: {bad})"
            )
        return templates

    def _background_files(self) -> list[Path]:
        if self.config.backgrounds != "real":
            return []
        directory = Path(self.config.background_dir or "")
        files = sorted(p for p in directory.glob("*") if p.suffix.lower() in _IMAGE_SUFFIXES)
        if not files:
            raise NearidError(f"stages.{self.name}.background_dir: no images in {directory}")
        return files

    def fingerprint_inputs(self) -> dict[str, Any]:
        backgrounds = [
            [p.name, hashlib.sha256(p.read_bytes()).hexdigest()] for p in self.background_files
        ]
        return {
            **super().fingerprint_inputs(),
            "templates": self.templates,
            "backgrounds": backgrounds,
        }

    def describe(self) -> dict[str, Any]:
        return {"model": self.personalize.model, "embedder": self.config.embedder}

    def setup(self) -> None:
        personalize = self.personalize
        self.model = personalize.load_model(self.ctx.device)
        self.resolution = personalize.resolution or self.model.native_resolution
        self.embedder = None
        if self.config.embedder is not None:
            self.embedder = build_backend(
                EMBEDDERS,
                self.config.embedder,
                where=f"stages.{self.name}.embedder",
                device=self.ctx.device,
            )

    def run(self, unit: WorkUnit) -> Iterator[Outcome]:
        by_identity: dict[str, list[Sample]] = {}
        for sample in self.upstream_samples(unit):
            by_identity.setdefault(meta(sample)["identity"], []).append(sample)
        for identity, samples in sorted(by_identity.items()):
            yield from self._identity(identity, samples)

    # -- one identity ----------------------------------------------------------------------------
    def _identity(self, identity: str, samples: list[Sample]) -> Iterator[Outcome]:
        references = [s for s in samples if meta(s)["personalize"]["reference"]]
        for sample in samples:
            if meta(sample)["personalize"]["reference"]:
                yield Kept(_real(sample))
            else:
                yield Rejected.of(sample, _held_out())
        if not references:  # personalize keeps only identities with references; guard anyway
            return
        record = meta(references[0])["personalize"]
        category = meta(references[0])["category"]
        inherited: dict[str, Any] = {
            k: meta(references[0])[k] for k in ("split", "class_split") if k in meta(references[0])
        }
        words = subject_words(category)
        adapter = {
            "path": f"{self.ctx.upstream}/{record['adapter']}",
            "sha256": record["weights_sha256"],
        }
        base: dict[str, Any] = {"identity": identity, "category": category, **inherited}

        positive_plan = self._prompts(identity, "synthetic_positive", f"{record['token']} {words}")
        self.model.load_adapter(self.ctx.build_dir / adapter["path"], _ADAPTER_NAME)
        try:
            positives = self._generate(positive_plan)
        finally:
            self.model.unload_adapter()
        yield from self._filtered(base, references, positive_plan, positives, adapter)

        negative_plan = self._prompts(identity, "synthetic_negative", words)
        for index, ((prompt, seed), image) in enumerate(
            zip(negative_plan, self._generate(negative_plan), strict=True)
        ):
            generation = self._generation(prompt, seed, None)
            yield Kept(_synthetic(base, "synthetic_negative", index, image, generation=generation))
        yield from self._cut_paste(base, references)

    def _prompts(self, identity: str, kind: str, subject: str) -> list[tuple[str, int]]:
        count = self.config.positives if kind == "synthetic_positive" else self.config.negatives
        seed = self.ctx.pipeline.seed
        return [
            (
                self.templates[i % len(self.templates)].format(subject=subject),
                derive_seed(seed, self.name, identity, kind, i),
            )
            for i in range(count)
        ]

    def _generate(self, plan: Sequence[tuple[str, int]]) -> list[np.ndarray]:
        images: list[np.ndarray] = []
        size = self.config.batch_size  # images per pipeline call
        for start in range(0, len(plan), size):
            chunk = plan[start : start + size]
            images += self.model.generate(
                [p for p, _ in chunk],
                [s for _, s in chunk],
                steps=self.config.steps,
                guidance=self.config.guidance,
                resolution=self.resolution,
                negative_prompt=self.config.negative_prompt,
            )
        return images

    def _generation(self, prompt: str, seed: int, adapter: dict[str, str] | None) -> dict[str, Any]:
        return {
            "model": self.model.describe(),
            "adapter": adapter,
            "prompt": prompt,
            "negative_prompt": self.config.negative_prompt,
            "seed": seed,
            "guidance": self.config.guidance,
            "steps": self.config.steps,
            "resolution": self.resolution,
        }

    def _filtered(
        self,
        base: dict[str, Any],
        references: list[Sample],
        plan: list[tuple[str, int]],
        images: list[np.ndarray],
        adapter: dict[str, str],
    ) -> Iterator[Outcome]:
        scores: list[float | None] = [None] * len(images)
        if self.embedder is not None:
            crops = [subject_crop(decode_png(s["image.png"]), _mask(s)) for s in references]
            scores = list(similarity_scores(self.embedder, crops, images))
        floor = self.config.min_similarity
        for index, ((prompt, seed), image, score) in enumerate(
            zip(plan, images, scores, strict=True)
        ):
            generation = self._generation(prompt, seed, adapter)
            qa = {} if score is None else {"similarity": round(score, 6)}
            sample = _synthetic(
                base, "synthetic_positive", index, image, generation=generation, **qa
            )
            if floor is not None and score is not None and score < floor:
                info = meta(sample)
                yield Rejected(
                    sample[KEY_FIELD],
                    info["identity"],
                    info["category"],
                    info["view"],
                    "below_similarity",
                    f"similarity {score:.3f} < {floor}",
                    qa,
                )
            else:
                yield Kept(sample, qa)

    def _cut_paste(self, base: dict[str, Any], references: list[Sample]) -> Iterator[Outcome]:
        masked = [s for s in references if "mask.png" in s]
        identity = base["identity"]
        for index in range(self.config.cut_paste):
            tag, offset = _TAGS["cut_paste"]
            if not masked:
                yield Rejected(
                    f"{slug(identity)}_{tag}{index:03d}",
                    identity,
                    base["category"],
                    offset + index,
                    "no_subject_mask",
                    "cut-and-paste needs reference views with mask.png (run segment first)",
                )
                continue
            rng = rng_for(self.ctx.pipeline.seed, self.name, identity, "cut_paste", index)
            reference = masked[int(rng.integers(len(masked)))]
            background, source = self._background(identity, index, rng)
            pasted, record = paste_reference(background, reference, self.config.paste_scale, rng)
            record["background"] = source
            yield Kept(_synthetic(base, "cut_paste", index, pasted, cut_paste=record))

    def _background(
        self, identity: str, index: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if self.config.backgrounds == "real":
            path = self.background_files[int(rng.integers(len(self.background_files)))]
            return decode_image(path.read_bytes()).rgb, {"kind": "real", "file": path.name}
        prompts = self.config.background_prompts
        prompt = prompts[index % len(prompts)]
        seed = derive_seed(self.ctx.pipeline.seed, self.name, identity, "background", index)
        image = self._generate([(prompt, seed)])[0]
        return image, {"kind": "generated", **self._generation(prompt, seed, None)}

    def finalize(self, build_dir: Location) -> None:
        stage_dir = self.ctx.stage_dir(self.name)
        kept: list[float] = []
        rejected: list[float] = []
        for unit in self.plan():
            for row in read_manifest(manifest_path(stage_dir, unit.name)).rows:
                if "similarity" in row.qa:
                    (kept if row.status == "kept" else rejected).append(row.qa["similarity"])
        storage.write_json(
            stage_dir / "similarity.json",
            {
                "embedder": self.config.embedder,
                "min_similarity": self.config.min_similarity,
                "kept": distribution(kept),
                "rejected": distribution(rejected),
                "all": distribution(kept + rejected),
            },
        )


def _mask(sample: Sample) -> np.ndarray | None:
    return decode_mask_png(sample["mask.png"]) if "mask.png" in sample else None


def _held_out() -> Rejection:
    return Rejection("held_out", "not a reference view: kept out of the training data")


def _real(sample: Sample) -> Sample:
    info = {k: v for k, v in meta(sample).items() if k != "personalize"}
    return {
        KEY_FIELD: sample[KEY_FIELD],
        "image.png": sample["image.png"],
        JSON_FIELD: {**info, "kind": "real"},
    }


def _synthetic(
    base: dict[str, Any], kind: str, index: int, image: np.ndarray, **record: Any
) -> Sample:
    tag, offset = _TAGS[kind]
    key = f"{slug(base['identity'])}_{tag}{index:03d}"
    info = {**base, "view": offset + index, "kind": kind, "index": index, **record}
    return {
        KEY_FIELD: key,
        "image.png": encode_png(image),
        JSON_FIELD: json.loads(json.dumps(info)),
    }
