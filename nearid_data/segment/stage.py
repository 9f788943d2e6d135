"""The segment stage: an exact subject mask and a dilated inpainting mask per view, with QA.

Source masks are kept by default. Otherwise a detector (optional) finds the subject's box from a
text prompt and a segmenter cuts the mask inside it; with no detector the source's box (or the
segmenter's own prior) prompts the segmenter. Model masks are cleaned (holes filled, largest
component); every view gets figures and, below the thresholds, a recorded rejection.

An exception from a backend on one input becomes that input's rejection (``segment_failed``): a
batch that fails is split until the input that fails alone is found, so the rest of the batch
keeps its masks. Failures of the backend itself (see ``errors.is_backend_failure``) stop the
stage.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import Field

from nearid_data.backend import build_backend, resolve_backend
from nearid_data.engine.stage import (
    Kept,
    Outcome,
    Rejected,
    Resources,
    Stage,
    StageConfig,
    StageContext,
)
from nearid_data.errors import Rejection, input_failure
from nearid_data.imageio import decode_mask_png, decode_png, encode_png
from nearid_data.registry import Registry
from nearid_data.sample import Sample, meta, with_fields
from nearid_data.segment.base import Box, Detector, MaskPrediction, Segmenter
from nearid_data.segment.boxes import build_prompt, select_box
from nearid_data.segment.registry import DETECTORS, SEGMENTERS
from nearid_data.vision import masks


class SegmentConfig(StageConfig):
    detector: dict[str, Any] | None = None
    segmenter: dict[str, Any] = Field(default_factory=lambda: {"name": "classical"})
    source_masks: Literal["keep", "compare", "replace"] = "keep"
    """keep: use a source mask when present; compare: keep it but also segment and record the
    IoU; replace: segment and use the model mask, recording the IoU with the source's."""
    prompt: str | None = None
    prompt_from: Literal["category", "caption"] = "category"
    box_policy: Literal["best", "largest", "union"] = "best"
    dilate_px: int = Field(7, ge=0)
    min_area: float = Field(0.005, ge=0, le=1)
    max_area: float = Field(0.95, ge=0, le=1)
    reject_border: bool = False
    """Reject subjects whose mask touches the image border (likely cut off)."""


@dataclass
class _View:
    sample: Sample
    image: np.ndarray
    source_mask: np.ndarray | None


class SegmentStage(Stage):
    name = "segment"
    Config = SegmentConfig
    config: SegmentConfig
    needs = frozenset({"image.png"})

    def __init__(self, config: SegmentConfig, ctx: StageContext) -> None:
        super().__init__(config, ctx)
        for spec, registry, where in self._backend_specs():
            resolve_backend(registry, spec, where=where)

    def _backend_specs(self) -> list[tuple[dict[str, Any], Registry[Any], str]]:
        specs: list[tuple[dict[str, Any], Registry[Any], str]] = [
            (self.config.segmenter, SEGMENTERS, "stages.segment.segmenter")
        ]
        if self.config.detector is not None:
            specs.append((self.config.detector, DETECTORS, "stages.segment.detector"))
        return specs

    def declared_resources(self) -> Resources:
        return Resources.for_device(self.ctx.device)

    def adds(self) -> frozenset[str]:
        return frozenset({"mask.png", "inpaint_mask.png"})

    def describe(self) -> dict[str, Any]:
        return {"segmenter": self.config.segmenter, "detector": self.config.detector}

    def setup(self) -> None:
        backends = [
            build_backend(registry, spec, where=where, device=self.ctx.device)
            for spec, registry, where in self._backend_specs()
        ]
        self.segmenter: Segmenter = backends[0]
        self.detector: Detector | None = backends[1] if len(backends) > 1 else None

    def prepare(self, sample: Sample) -> _View:
        source_mask = decode_mask_png(sample["mask.png"]) if "mask.png" in sample else None
        return _View(sample, decode_png(sample["image.png"]), source_mask)

    def process(self, views: Sequence[_View]) -> Iterable[Outcome]:
        needs_model = [
            v for v in views if v.source_mask is None or self.config.source_masks != "keep"
        ]
        predictions = dict(
            zip(map(id, needs_model), self._predict_isolating(needs_model), strict=True)
        )
        for view in views:
            prediction = predictions.get(id(view))
            try:
                yield self._finish(view, prediction)
            except Rejection as rejection:
                yield Rejected.of(view.sample, rejection, _figures(view, prediction))
            except Exception as exc:
                yield Rejected.of(view.sample, input_failure(exc, "segment_failed"))

    def _predict_isolating(
        self, views: list[_View]
    ) -> list[tuple[MaskPrediction, Box | None, str] | Rejection]:
        """``_predict``; when a batch fails, its halves are retried until each failure is pinned on
        the one input that causes it."""
        try:
            return self._predict(views)
        except Exception as exc:
            failure = input_failure(exc, "segment_failed")
            if len(views) == 1:
                return [failure]
        middle = len(views) // 2
        return self._predict_isolating(views[:middle]) + self._predict_isolating(views[middle:])

    def _predict(
        self, views: list[_View]
    ) -> list[tuple[MaskPrediction, Box | None, str] | Rejection]:
        """Per view: (mask prediction, box used, prompt), or the rejection why there is none."""
        if not views:
            return []
        prompts = [self._prompt(v.sample) for v in views]
        if self.detector is not None:
            found = self.detector.detect([v.image for v in views], prompts)
            boxes = [select_box(b, self.config.box_policy) for b in found]
        else:
            boxes = [_source_box(v.sample) for v in views]
        results: list[Any] = [
            Rejection("no_box", f"no {p!r} above the detector's thresholds")
            if self.detector and b is None
            else None
            for p, b in zip(prompts, boxes, strict=True)
        ]
        todo = [i for i, r in enumerate(results) if r is None]
        predicted = self.segmenter.segment([views[i].image for i in todo], [boxes[i] for i in todo])
        for i, prediction in zip(todo, predicted, strict=True):
            results[i] = (prediction, boxes[i], prompts[i])
        return results

    def _prompt(self, sample: Sample) -> str:
        info = meta(sample)
        return build_prompt(
            info["category"],
            info.get("caption"),
            override=self.config.prompt,
            use=self.config.prompt_from,
        )

    def _finish(self, view: _View, prediction: Any) -> Kept:
        if isinstance(prediction, Rejection):
            raise prediction
        figures = _figures(view, prediction)
        use_model = view.source_mask is None or self.config.source_masks == "replace"
        mask = masks.clean(prediction[0].mask) if use_model else view.source_mask
        assert mask is not None
        figures.update(
            mask_source="model" if use_model else "source",
            area=round(masks.area_fraction(mask), 6),
            touches_border=masks.touches_border(mask),
        )
        if not mask.any():
            raise Rejection("empty_mask", "the segmenter found no subject")
        if figures["area"] < self.config.min_area:
            raise Rejection(
                "mask_too_small", f"area {figures['area']:.4f} < {self.config.min_area}"
            )
        if figures["area"] > self.config.max_area:
            raise Rejection(
                "mask_too_large", f"area {figures['area']:.4f} > {self.config.max_area}"
            )
        if self.config.reject_border and figures["touches_border"]:
            raise Rejection("subject_cut_by_border", "the mask touches the image border")
        inpaint = masks.dilate(mask, self.config.dilate_px)
        fields = {"mask.png": encode_png(mask), "inpaint_mask.png": encode_png(inpaint)}
        segment_meta = {
            **figures,
            "dilate_px": self.config.dilate_px,
            "bbox": list(masks.bbox(mask) or ()),
        }
        return Kept(with_fields(view.sample, fields, segment=segment_meta), figures)


def _figures(view: _View, prediction: Any) -> dict[str, Any]:
    if prediction is None or isinstance(prediction, Rejection):
        return {}
    mask_prediction, box, prompt = prediction
    figures: dict[str, Any] = {
        "mask_score": round(float(mask_prediction.score), 6),
        "prompt": prompt,
    }
    if box is not None:
        figures.update(box=[round(v, 2) for v in box.xyxy], box_score=round(float(box.score), 6))
    if view.source_mask is not None:
        figures["iou_vs_source"] = round(
            masks.iou(masks.clean(mask_prediction.mask), view.source_mask), 6
        )
    return figures


def _source_box(sample: Sample) -> Box | None:
    box = meta(sample).get("box")
    return Box(tuple(float(v) for v in box), 1.0, "source") if box else None  # type: ignore[arg-type]
