"""GroundingDINO through transformers: text-prompted boxes from a hub id or a local model directory."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nearid_data.segment.base import Box, Detector
from nearid_data.segment.boxes import grounding_text
from nearid_data.segment.predictions import GroundingSettings, to_boxes
from nearid_data.vision.inference import finite, in_batches, load_transformers_model, model_inputs


class GdinoDetector(Detector):
    """``GroundingDinoForObjectDetection``; a batch's images are padded to one size by its processor."""

    class Config(GroundingSettings):
        model: str = "IDEA-Research/grounding-dino-tiny"
        revision: str | None = None

    config: Config

    def __init__(self, config: Config, *, device: str = "cpu") -> None:
        super().__init__(config, device=device)
        loaded = load_transformers_model(
            config.model,
            revision=config.revision,
            dtype=config.dtype,
            device=device,
            classes=lambda t: (t.GroundingDinoForObjectDetection, t.AutoProcessor),
        )
        self._torch, self.dtype, self.processor = loaded.torch, loaded.dtype, loaded.processor
        self.model = loaded.model
        if config.compile:
            self.model = self._torch.compile(self.model)

    def detect(self, images: Sequence[np.ndarray], prompts: Sequence[str]) -> list[list[Box]]:
        return in_batches(self._detect_batch, images, prompts, self.config.batch_size)

    def _detect_batch(
        self, images: Sequence[np.ndarray], prompts: Sequence[str]
    ) -> list[list[Box]]:
        sizes = [image.shape[:2] for image in images]
        batch = self.processor(
            images=list(images),
            text=[grounding_text(prompt) for prompt in prompts],
            padding=True,
            return_tensors="pt",
        )
        inputs = model_inputs(batch, self.device, self.dtype)
        with self._torch.inference_mode():
            outputs = self.model(**inputs)
        finite(
            "GroundingDINO", masked=["logits"], logits=outputs.logits, pred_boxes=outputs.pred_boxes
        )
        # Post-process in float32: half precision cannot hold pixel coordinates past 2048 exactly.
        outputs.logits = outputs.logits.float()
        outputs.pred_boxes = outputs.pred_boxes.float()
        found = self.processor.post_process_grounded_object_detection(
            outputs,
            inputs["input_ids"],
            threshold=self.config.box_threshold,
            text_threshold=self.config.text_threshold,
            target_sizes=sizes,
        )
        return [
            to_boxes(
                result["scores"].tolist(), result["boxes"].tolist(), result["text_labels"], size
            )
            for result, size in zip(found, sizes, strict=True)
        ]
