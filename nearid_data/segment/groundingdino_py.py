"""GroundingDINO through groundingdino-py: IDEA-Research's original code, a .pth checkpoint and the
Python config file it was trained with.

groundingdino-py 0.4.0 needs transformers < 5, so it lives in its own environment (the
``groundingdino`` extra), apart from the ``models`` extra's transformers backends.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from nearid_data.backend import load_pretrained
from nearid_data.errors import NearidError
from nearid_data.optional import import_optional
from nearid_data.segment.base import Box, Detector
from nearid_data.segment.boxes import grounding_text
from nearid_data.segment.predictions import GroundingSettings, to_boxes
from nearid_data.vision.inference import checkpoint_file, finite, in_batches, torch_dtype

OFFICIAL_CHECKPOINT = (
    "https://github.com/IDEA-Research/GroundingDINO/releases/download/"
    "v0.1.0-alpha/groundingdino_swint_ogc.pth"
)
# ImageNet statistics, as the package's own inference helpers normalize.
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def _import(module: str) -> Any:
    return import_optional(module, extra="groundingdino")


class GroundingDinoPyDetector(Detector):
    """The original GroundingDINO; a batch's images are zero-padded to one size with a pixel mask."""

    class Config(GroundingSettings):
        checkpoint: str = "models/groundingdino_swint_ogc.pth"
        # Not "model_config": pydantic reserves that name.
        config_file: str | None = Field(
            None,
            description="the model's .py config; None: the package's GroundingDINO_SwinT_OGC.py",
        )
        text_encoder: str = Field(
            "bert-base-uncased", description="local BERT directory (or hub id) for the text side"
        )
        resize: int = Field(800, ge=1, description="shorter image side fed to the model")
        max_size: int = Field(1333, ge=1, description="cap on the longer side")

    config: Config

    def __init__(self, config: Config, *, device: str = "cpu") -> None:
        super().__init__(config, device=device)
        self._torch = torch = _import("torch")
        groundingdino = _import("groundingdino")
        transforms = _import("groundingdino.datasets.transforms")
        self._misc = _import("groundingdino.util.misc")
        self._phrases = _import("groundingdino.util.utils").get_phrases_from_posmap
        self.dtype = torch_dtype(torch, config.dtype, device)

        checkpoint = checkpoint_file(config.checkpoint, OFFICIAL_CHECKPOINT)
        default_config = (
            Path(groundingdino.__file__).parent / "config" / "GroundingDINO_SwinT_OGC.py"
        )
        model_config = Path(config.config_file) if config.config_file else default_config
        if not model_config.is_file():
            raise NearidError(f"GroundingDINO model config {str(model_config)!r} not found")
        args = _import("groundingdino.util.slconfig").SLConfig.fromfile(str(model_config))
        args.device = device

        def build(text_encoder: str) -> Any:
            # The config names "bert-base-uncased", which the package would fetch from the hub.
            args.text_encoder_type = text_encoder
            return _import("groundingdino.models").build_model(args)

        model = load_pretrained(build, config.text_encoder)
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        state = self._misc.clean_state_dict(state.get("model", state))
        # Unexpected keys are fine (the official file carries training-only weights); missing ones
        # mean the checkpoint and the config describe different models.
        missing = model.load_state_dict(state, strict=False).missing_keys
        if missing:
            raise NearidError(
                f"checkpoint {str(checkpoint)!r} does not fit the model of {str(model_config)!r}: "
                f"{len(missing)} weights missing, e.g. {missing[:3]}"
            )
        self.model = model.to(device).eval()
        if config.compile:
            self.model = torch.compile(self.model)
        self.transform = transforms.Compose(
            [
                transforms.RandomResize([config.resize], max_size=config.max_size),
                transforms.ToTensor(),
                transforms.Normalize(MEAN, STD),
            ]
        )

    def detect(self, images: Sequence[np.ndarray], prompts: Sequence[str]) -> list[list[Box]]:
        # The package builds its text attention masks with state carried from one caption to the
        # next and no padding mask, so captions of different token counts in one batch change
        # each other's results: a batch holds captions of one token count.
        captions = [grounding_text(prompt) for prompt in prompts]
        return in_batches(
            self._detect_batch,
            images,
            captions,
            self.config.batch_size,
            group_by=lambda caption: len(self.model.tokenizer(caption)["input_ids"]),
        )

    def _detect_batch(
        self, images: Sequence[np.ndarray], captions: Sequence[str]
    ) -> list[list[Box]]:
        torch = self._torch
        pil = _import("PIL.Image")
        tensors = [self.transform(pil.fromarray(image), None)[0] for image in images]
        samples = self._misc.nested_tensor_from_tensor_list(tensors).to(self.device)
        device_type = torch.device(self.device).type
        half = self.dtype != torch.float32
        with torch.inference_mode(), torch.autocast(device_type, self.dtype, enabled=half):
            outputs = self.model(samples, captions=captions)
        finite(
            "GroundingDINO",
            masked=["logits"],
            logits=outputs["pred_logits"],
            pred_boxes=outputs["pred_boxes"],
        )
        probs = outputs["pred_logits"].float().sigmoid().cpu()
        boxes = outputs["pred_boxes"].float().cpu()
        return [
            self._boxes(image_probs, image_boxes, caption, image.shape[:2])
            for image_probs, image_boxes, caption, image in zip(
                probs, boxes, captions, images, strict=True
            )
        ]

    def _boxes(self, probs: Any, cxcywh: Any, caption: str, size: tuple[int, int]) -> list[Box]:
        """One image's queries above the box threshold, as the package's ``predict`` reads them."""
        scores = probs.max(dim=-1).values
        keep = scores > self.config.box_threshold
        tokenizer = self.model.tokenizer
        tokenized = tokenizer(caption)
        labels = [
            self._phrases(token_probs > self.config.text_threshold, tokenized, tokenizer).replace(
                ".", ""
            )
            for token_probs in probs[keep]
        ]
        height, width = size
        cx, cy, w, h = cxcywh[keep].unbind(-1)
        xyxy = self._torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)
        xyxy = xyxy * self._torch.tensor([width, height, width, height])
        return to_boxes(scores[keep].tolist(), xyxy.tolist(), labels, size)
