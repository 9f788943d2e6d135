"""The distractors stage: per reference view, one near-identity distractor per generator.

For each generator and view: choose the near-identity concept (a sibling identity of the same
category, a perturbed description, or a user prompt), paint it into the dilated subject mask,
composite the reference back outside that mask (the background stays bit-identical whatever the
generator did), measure, and retry with a new seed when QA fails or the generator rejects its own
output (``non_finite_output``, ``flat_output``); the record lists the failed attempts' reasons. A view is kept only when every
generator produced a passing distractor, so generator outputs stay index-aligned.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from nearid_data.backend import build_backend, resolve_backend
from nearid_data.distractors.base import Donor, Generator, InpaintRequest
from nearid_data.distractors.compositing import composite, measure
from nearid_data.distractors.concepts import Concept, IdentityInfo, choose_concept
from nearid_data.distractors.presets import GeneratorSpec
from nearid_data.distractors.registry import GENERATORS
from nearid_data.engine.stage import (
    Kept,
    Outcome,
    Rejected,
    Resources,
    Stage,
    StageConfig,
    StageContext,
)
from nearid_data.errors import NearidError, Rejection
from nearid_data.imageio import decode_mask_png, decode_png, encode_png
from nearid_data.sample import KEY_FIELD, Sample, distractor_field, meta, with_fields
from nearid_data.seeding import derive_seed, rng_for
from nearid_data.vision import masks
from nearid_data.vision.embedders import EMBEDDERS
from nearid_data.vision.embedders.base import Embedder

_GENERATOR_ID = re.compile(r"^[a-z0-9_]+$")


class DistractorsConfig(StageConfig):
    generators: list[GeneratorSpec] = Field(
        default_factory=lambda: [GeneratorSpec.model_validate({"name": "cut_paste"})]
    )
    """Each entry: ``name`` (backend), optional ``id`` (output field ``distractor_<id>.png``),
    optional ``preset``, and the backend's own settings."""
    concept: Literal["sibling", "perturb", "list"] = "sibling"
    prompts: list[str] = Field(default_factory=list)
    negative_prompt: str | None = None
    feather_px: int = Field(0, ge=0)
    min_inside_changed: float = Field(0.25, ge=0, le=1)
    max_donor_clipped: float = Field(0.35, ge=0, le=1)
    retries: int = Field(2, ge=0)
    embedder: dict[str, Any] | None = None
    """An image embedder (``{name: clip, model: ...}``, as ``eval`` takes): records the cosine
    similarity of the reference's and the distractor's subject crops (``crop_similarity``)."""
    sibling_by: Literal["random", "embedding"] = "random"
    """How a sibling identity is chosen: at random (seeded), or the most similar one by the
    embedder (first views' subject crops), so distractors are as near as the data allows."""
    min_crop_similarity: float | None = Field(None, ge=-1, le=1)
    """With an embedder: reject a distractor whose subject crop is less similar than this to the
    reference's (``not_same_category``: the generator painted something else)."""

    @field_validator("generators")
    @classmethod
    def _unique_ids(cls, generators: list[GeneratorSpec]) -> list[GeneratorSpec]:
        ids = [spec.id for spec in generators]
        if not generators or len(set(ids)) != len(ids):
            raise ValueError(f"need at least one generator, with distinct ids (got {ids})")
        bad = [i for i in ids if not _GENERATOR_ID.match(i)]
        if bad:
            raise ValueError(f"generator ids must match [a-z0-9_]+ (got {bad})")
        return generators


@dataclass
class _Pending:
    """One view on its way through a generator: decoded pixels and the attempt count."""

    sample: Sample
    image: np.ndarray
    region: np.ndarray
    subject: np.ndarray
    attempt: int = 0
    last: Rejection | None = None
    failures: list[str] = field(default_factory=list)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    pngs: dict[str, bytes] = field(default_factory=dict)


class DistractorsStage(Stage):
    name = "distractors"
    Config = DistractorsConfig
    config: DistractorsConfig
    needs = frozenset({"image.png", "mask.png", "inpaint_mask.png"})

    def __init__(self, config: DistractorsConfig, ctx: StageContext) -> None:
        super().__init__(config, ctx)
        self.identity_vectors: dict[str, np.ndarray] = {}  # set by use_shared
        for index, spec in enumerate(config.generators):
            resolve_backend(
                GENERATORS, spec.backend(), where=f"stages.distractors.generators.{index}"
            )
        if config.embedder is not None:
            resolve_backend(EMBEDDERS, config.embedder, where="stages.distractors.embedder")
        elif config.min_crop_similarity is not None or config.sibling_by == "embedding":
            raise NearidError(
                "stages.distractors: min_crop_similarity and sibling_by: embedding need an embedder"
            )

    def declared_resources(self) -> Resources:
        return Resources.for_device(self.ctx.device)

    def adds(self) -> frozenset[str]:
        return frozenset(distractor_field(s.id) for s in self.config.generators)

    def patch_base(self, name: str) -> str | None:
        # Every generator repaints the subject's region and keeps the background pixel for pixel.
        return "image.png" if name in self.adds() else None

    def describe(self) -> dict[str, Any]:
        return {s.id: s.backend() for s in self.config.generators}

    def setup(self) -> None:
        self.generators: dict[str, Generator] = {
            spec.id: build_backend(
                GENERATORS,
                spec.backend(),
                where="stages.distractors.generators",
                device=self.ctx.device,
            )
            for spec in self.config.generators
        }
        self.embedder = self._embedder()
        self.infos: dict[str, IdentityInfo] = {}
        self.by_category: dict[str, list[IdentityInfo]] = {}
        for identity, rows in sorted(self.upstream_catalog.by_identity.items()):
            info = IdentityInfo(identity, rows[0].category, rows[0].caption)
            self.infos[identity] = info
            self.by_category.setdefault(info.category, []).append(info)

    def prepare(self, sample: Sample) -> _Pending:
        return _Pending(
            sample,
            decode_png(sample["image.png"]),
            decode_mask_png(sample["inpaint_mask.png"]),
            decode_mask_png(sample["mask.png"]),
        )

    def process(self, views: Sequence[_Pending]) -> Iterable[Outcome]:
        failed: dict[int, Rejection] = {}
        for gid, generator in self.generators.items():
            pending = [v for v in views if id(v) not in failed]
            for view in pending:
                view.attempt, view.last, view.failures = 0, None, []
            while pending:
                pending = self._attempt(gid, generator, pending)
            for view in views:
                if id(view) not in failed and gid not in view.records:
                    assert view.last is not None
                    failed[id(view)] = Rejection(f"{gid}:{view.last.reason}", view.last.detail)
        for view in views:
            if id(view) in failed:
                yield Rejected.of(view.sample, failed[id(view)])
                continue
            fields = {distractor_field(g): png for g, png in view.pngs.items()}
            qa = {g: record["qa"] for g, record in view.records.items()}
            yield Kept(with_fields(view.sample, fields, distractors=view.records), qa)

    def _attempt(self, gid: str, generator: Generator, views: list[_Pending]) -> list[_Pending]:
        """One generator call for all views still pending; returns those to retry."""
        ready: list[tuple[_Pending, InpaintRequest, Concept]] = []
        for view in views:
            try:
                ready.append((view, *self._request(gid, generator, view)))
            except Rejection as rejection:
                view.last = rejection
        outputs = generator.generate([request for _, request, _ in ready]) if ready else []
        retry: list[_Pending] = []
        painted: list[tuple[tuple[_Pending, InpaintRequest, Concept], np.ndarray]] = []
        for item, output in zip(ready, outputs, strict=True):
            if not isinstance(output, Rejection):
                painted.append((item, output))
            elif self._failed(item[0], output):
                retry.append(item[0])
        ready = [item for item, _ in painted]
        distractors = [
            composite(view.image, output, view.region, feather_px=self.config.feather_px)
            for (view, _, _), output in painted
        ]
        similarities = self._crop_similarities([view for view, _, _ in ready], distractors)
        for (view, request, concept), distractor, similarity in zip(
            ready, distractors, similarities, strict=True
        ):
            figures = {
                **_rounded(measure(view.image, distractor, view.region).__dict__),
                **generator.request_figures(request),
            }
            if similarity is not None:
                figures["crop_similarity"] = round(similarity, 6)
            try:
                self._check(figures)
                generator.check(figures)
            except Rejection as rejection:
                if self._failed(view, rejection):
                    retry.append(view)
                continue
            view.pngs[gid] = encode_png(distractor)
            view.records[gid] = {
                **self._record(generator, request, concept, view, figures),
                **generator.request_record(request),
            }
        return retry

    def _failed(self, view: _Pending, rejection: Rejection) -> bool:
        """Count a failed attempt; whether the view gets another."""
        view.last = rejection
        view.failures.append(rejection.reason)
        view.attempt += 1
        return view.attempt <= self.config.retries

    def _request(
        self, gid: str, generator: Generator, view: _Pending
    ) -> tuple[InpaintRequest, Concept]:
        key = view.sample[KEY_FIELD]
        seed = self.ctx.pipeline.seed
        rng = rng_for(seed, self.name, gid, key, view.attempt)
        reference = self.infos[meta(view.sample)["identity"]]
        siblings = self.by_category[reference.category]
        strategy = "sibling" if generator.needs_donor else self.config.concept
        similarity = self._similarity if self.identity_vectors else None
        concept = choose_concept(
            strategy, reference, siblings, rng, prompts=self.config.prompts, similarity=similarity
        )
        donor = self._donor(concept, rng) if generator.needs_donor else None
        request = InpaintRequest(
            key=key,
            image=view.image,
            mask=view.region,
            subject_mask=view.subject,
            prompt=concept.prompt,
            negative_prompt=self.config.negative_prompt or "",
            seed=derive_seed(seed, gid, key, view.attempt),
            donor=donor,
        )
        return request, concept

    def _donor(self, concept: Concept, rng: np.random.Generator) -> Donor:
        rows = self.upstream_catalog.by_identity[concept.donor_identity or ""]
        row = rows[int(rng.integers(len(rows)))]
        sample = self.upstream_catalog.fetch(row, {"image.png", "mask.png"})
        return Donor(
            row.identity,
            row.key,
            decode_png(sample["image.png"]),
            decode_mask_png(sample["mask.png"]),
        )

    def prepare_shared(self) -> dict[str, Any] | None:
        """With ``sibling_by: embedding``, every identity's embedding: computed once here, not
        by every worker."""
        if self.config.sibling_by != "embedding":
            return None
        self.embedder = self._embedder()
        vectors = self._identity_vectors()
        dtype = next(iter(vectors.values())).dtype.name if vectors else "float32"
        return {"dtype": dtype, "vectors": {i: v.tolist() for i, v in vectors.items()}}

    def use_shared(self, shared: dict[str, Any]) -> None:
        self.identity_vectors = {
            identity: np.asarray(vector, dtype=shared["dtype"])
            for identity, vector in shared["vectors"].items()
        }

    def _embedder(self) -> Embedder | None:
        if self.config.embedder is None:
            return None
        return build_backend(
            EMBEDDERS,
            self.config.embedder,
            where="stages.distractors.embedder",
            device=self.ctx.device,
        )

    def _identity_vectors(self) -> dict[str, np.ndarray]:
        """One embedding per identity: its first view's subject crop."""
        assert self.embedder is not None
        catalog = self.upstream_catalog
        crops = []
        firsts = (min(rows, key=lambda r: r.view) for rows in catalog.by_identity.values())
        for sample in catalog.stream(((r.unit, r.key) for r in firsts), {"image.png", "mask.png"}):
            image, mask = decode_png(sample["image.png"]), decode_mask_png(sample["mask.png"])
            x0, y0, x1, y1 = masks.bbox(mask) or (0, 0, image.shape[1], image.shape[0])
            crops.append(image[y0:y1, x0:x1])
        vectors = self.embedder.embed(crops)
        return dict(zip(catalog.by_identity, vectors, strict=True))

    def _similarity(self, reference: IdentityInfo, candidate: IdentityInfo) -> float:
        vectors = self.identity_vectors
        return float(vectors[reference.identity] @ vectors[candidate.identity])

    def _crop_similarities(
        self, views: list[_Pending], distractors: list[np.ndarray]
    ) -> list[float | None]:
        """Cosine similarity of reference and distractor within the mask's box, in one batch."""
        if self.embedder is None or not views:
            return [None] * len(views)
        boxes = [
            masks.bbox(view.region) or (0, 0, view.image.shape[1], view.image.shape[0])
            for view in views
        ]
        crops = [
            image[y0:y1, x0:x1]
            for images in ([view.image for view in views], distractors)
            for image, (x0, y0, x1, y1) in zip(images, boxes, strict=True)
        ]
        vectors = self.embedder.embed(crops)
        half = len(views)
        return [float(vectors[i] @ vectors[half + i]) for i in range(half)]

    def _check(self, figures: dict[str, Any]) -> None:
        if not figures["outside_equal"]:
            raise Rejection("background_changed", "pixels outside the inpainting mask changed")
        if figures["inside_changed_fraction"] < self.config.min_inside_changed:
            raise Rejection(
                "too_little_change",
                f"{figures['inside_changed_fraction']:.3f} of the mask changed < {self.config.min_inside_changed}",
            )
        floor = self.config.min_crop_similarity
        if floor is not None and figures["crop_similarity"] < floor:
            raise Rejection(
                "not_same_category", f"crop similarity {figures['crop_similarity']:.3f} < {floor}"
            )
        if figures.get("donor_clipped", 0.0) > self.config.max_donor_clipped:
            raise Rejection(
                "donor_clipped",
                f"{figures['donor_clipped']:.3f} of the donor fell outside the mask",
            )

    def _record(
        self,
        generator: Generator,
        request: InpaintRequest,
        concept: Concept,
        view: _Pending,
        figures: dict[str, Any],
    ) -> dict[str, Any]:
        """What the manifest and the sample's json keep about one distractor."""
        return {
            "generator": generator.describe(),
            "concept": concept.strategy,
            "prompt": request.prompt,
            "negative_prompt": request.negative_prompt,
            "swaps": [list(s) for s in concept.swaps],
            "donor_identity": request.donor.identity if request.donor else concept.donor_identity,
            "donor_key": request.donor.key if request.donor else None,
            "seed": request.seed,
            "attempt": view.attempt,
            # One string, not a list: the Hub loader infers column types from the first samples, and
            # a list that is empty there cannot hold the reasons of later ones.
            "failed_attempts": ", ".join(view.failures),
            "feather_px": self.config.feather_px,
            "dilate_px": meta(view.sample).get("segment", {}).get("dilate_px"),
            "qa": figures,
        }


def _rounded(figures: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in figures.items()}
