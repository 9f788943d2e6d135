"""Segment Anything through Meta's ``segment_anything`` package and an official .pth checkpoint.

The image encoder (nearly all of SAM's work) runs on a whole batch at once; the light prompt encoder
and mask decoder then run per image with its box. Pre- and post-processing are ``SamPredictor``'s,
so a mask equals what ``SamPredictor.predict(box=...)`` gives for the same image and box.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from nearid_data.backend import import_optional
from nearid_data.segment.base import Box, MaskPrediction, Segmenter
from nearid_data.segment.inference import (
    SamSettings,
    best_mask,
    checkpoint_file,
    in_batches,
    prompt_box,
    torch_dtype,
)

OFFICIAL_CHECKPOINTS = {
    "vit_h": "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth",
    "vit_l": "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_l_0b3195.pth",
    "vit_b": "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth",
}


class SamSegmenter(Segmenter):
    """``sam_model_registry[kind](checkpoint)``; the image encoder in ``dtype``, the rest float32."""

    class Config(SamSettings):
        kind: Literal["vit_h", "vit_l", "vit_b"] = "vit_h"
        checkpoint: str | None = Field(
            None, description="local .pth; None: models/<the official file name for kind>"
        )

    config: Config

    def __init__(self, config: Config, *, device: str = "cpu") -> None:
        super().__init__(config, device=device)
        self._torch = torch = import_optional("torch", extra="models")
        segment_anything = import_optional("segment_anything", extra="models")
        transforms = import_optional("segment_anything.utils.transforms", extra="models")
        url = OFFICIAL_CHECKPOINTS[config.kind]
        checkpoint = checkpoint_file(config.checkpoint or f"models/{Path(url).name}", url)
        sam = segment_anything.sam_model_registry[config.kind](checkpoint=str(checkpoint))
        self.dtype = torch_dtype(torch, config.dtype, device)
        self.sam = sam.to(device).eval()
        # The decoder's cost is small and its mask logits set the mask edges: keep it in float32.
        self.sam.image_encoder.to(self.dtype)
        self.resize = transforms.ResizeLongestSide(self.sam.image_encoder.img_size)

    def segment(
        self, images: Sequence[np.ndarray], boxes: Sequence[Box | None]
    ) -> list[MaskPrediction]:
        return in_batches(self._segment_batch, images, boxes, self.config.batch_size)

    def _segment_batch(
        self, images: Sequence[np.ndarray], boxes: Sequence[Box | None]
    ) -> list[MaskPrediction]:
        torch, sam = self._torch, self.sam
        resized = [self.resize.apply_image(image) for image in images]
        pixels = torch.stack(
            [
                sam.preprocess(torch.as_tensor(image, device=self.device).permute(2, 0, 1).float())
                for image in resized
            ]
        )
        with torch.inference_mode():
            embeddings = sam.image_encoder(pixels.to(self.dtype)).float()
            return [
                self._decode(embedding, box, image.shape[:2], small.shape[:2])
                for embedding, box, image, small in zip(embeddings, boxes, images, resized)
            ]

    def _decode(
        self,
        embedding: Any,
        box: Box | None,
        size: tuple[int, int],
        input_size: tuple[int, int],
    ) -> MaskPrediction:
        """One image's mask from its embedding (C, h, w) and box, at its original ``size``."""
        torch, sam = self._torch, self.sam
        xyxy = torch.tensor([prompt_box(box, size)], device=self.device)
        sparse, dense = sam.prompt_encoder(
            points=None, boxes=self.resize.apply_boxes_torch(xyxy, size), masks=None
        )
        low_res, iou = sam.mask_decoder(
            image_embeddings=embedding[None],
            image_pe=sam.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=self.config.multimask,
        )
        masks = sam.postprocess_masks(low_res, input_size=input_size, original_size=size)
        return best_mask((masks[0] > sam.mask_threshold).cpu().numpy(), iou[0].cpu().numpy())
