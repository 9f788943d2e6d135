"""Segment Anything (SAM or SAM 2) through transformers, from a hub id or a local model directory.

The model's config picks the family: ``sam`` loads ``SamModel``/``SamProcessor``, ``sam2``
``Sam2Model``/``Sam2Processor``. A batch's images go through the model in one forward pass, each
with its own box.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from nearid_data.backend import checked_model_type
from nearid_data.segment.base import Box, MaskPrediction, Segmenter
from nearid_data.segment.predictions import SamSettings, best_mask, prompt_box
from nearid_data.vision.inference import finite, in_batches, load_transformers_model, model_inputs

FAMILIES = {"sam": ("SamModel", "SamProcessor"), "sam2": ("Sam2Model", "Sam2Processor")}


class SamHfSegmenter(Segmenter):
    """transformers' SAM: one forward pass per batch, the best-rated of its masks per image."""

    class Config(SamSettings):
        model: str = "facebook/sam-vit-huge"
        revision: str | None = None

    config: Config

    def __init__(self, config: Config, *, device: str = "cpu") -> None:
        super().__init__(config, device=device)
        loaded = load_transformers_model(
            config.model,
            revision=config.revision,
            dtype=config.dtype,
            device=device,
            classes=self._classes,
        )
        self._torch, self.dtype, self.processor = loaded.torch, loaded.dtype, loaded.processor
        self.model = loaded.model
        if config.compile:
            self.model = self._torch.compile(self.model)

    def _classes(self, transformers: ModuleType) -> tuple[Any, Any]:
        """The model and processor classes of the model's family (``model_type``)."""
        family = checked_model_type(
            transformers,
            self.config.model,
            list(FAMILIES),
            revision=self.config.revision,
            taker="this backend",
        )
        model_class, processor_class = FAMILIES[family]
        return getattr(transformers, model_class), getattr(transformers, processor_class)

    def segment(
        self, images: Sequence[np.ndarray], boxes: Sequence[Box | None]
    ) -> list[MaskPrediction]:
        return in_batches(self._segment_batch, images, boxes, self.config.batch_size)

    def _segment_batch(
        self, images: Sequence[np.ndarray], boxes: Sequence[Box | None]
    ) -> list[MaskPrediction]:
        sizes = [image.shape[:2] for image in images]
        batch = self.processor(
            images=list(images),
            input_boxes=[[prompt_box(box, size)] for box, size in zip(boxes, sizes, strict=True)],
            return_tensors="pt",
        )
        inputs = model_inputs(batch, self.device, self.dtype)
        with self._torch.inference_mode():
            outputs = self.model(
                pixel_values=inputs["pixel_values"],
                input_boxes=inputs["input_boxes"],
                multimask_output=self.config.multimask,
            )
        finite("SAM", pred_masks=outputs.pred_masks, iou_scores=outputs.iou_scores)
        # SAM pads, and crops the padding off with the resized sizes; SAM 2 resizes without padding.
        padded = "reshaped_input_sizes" in batch
        crop = {"reshaped_input_sizes": batch["reshaped_input_sizes"]} if padded else {}
        masks = self.processor.post_process_masks(
            outputs.pred_masks.float().cpu(), batch["original_sizes"], **crop
        )
        scores = outputs.iou_scores.float().cpu().numpy()
        # One box per image: index 0 of the prompt axis holds its masks and their ratings.
        return [
            best_mask(image_masks[0].numpy(), image_scores[0])
            for image_masks, image_scores in zip(masks, scores, strict=True)
        ]
