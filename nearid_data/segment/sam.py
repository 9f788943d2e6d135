"""Segment Anything through Meta's ``segment_anything`` package and an official .pth checkpoint.

The image encoder (nearly all of SAM's work) runs on a whole batch at once; the light prompt encoder
and mask decoder then run per image with its box. Pre- and post-processing are ``SamPredictor``'s,
so a mask equals what ``SamPredictor.predict(box=...)`` gives for the same image and box.

``segment_anything`` imports torchvision, whose compiled operators exist only for the torch it was
built for; the ``sam`` extra pins a matching pair, and a mismatched pair is one error naming both.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from nearid_data.errors import NearidError
from nearid_data.optional import import_optional
from nearid_data.segment.base import Box, MaskPrediction, Segmenter
from nearid_data.segment.predictions import SamSettings, best_mask, prompt_box
from nearid_data.vision.inference import checkpoint_file, finite, in_batches, torch_dtype

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
        sdpa: bool = Field(
            False,
            description="image-encoder attention through torch's fused scaled_dot_product_attention",
        )

    config: Config

    def __init__(self, config: Config, *, device: str = "cpu") -> None:
        super().__init__(config, device=device)
        self._torch = torch = import_optional("torch", extra="models")
        segment_anything = _import_segment_anything()
        transforms = import_optional("segment_anything.utils.transforms", extra="models")
        url = OFFICIAL_CHECKPOINTS[config.kind]
        checkpoint = checkpoint_file(config.checkpoint or f"models/{Path(url).name}", url)
        sam = segment_anything.sam_model_registry[config.kind](checkpoint=str(checkpoint))
        self.dtype = torch_dtype(torch, config.dtype, device)
        self.sam = sam.to(device).eval()
        # The decoder's cost is small and its mask logits set the mask edges: keep it in float32.
        encoder = self.sam.image_encoder.to(self.dtype)
        self.resize = transforms.ResizeLongestSide(encoder.img_size)
        if config.sdpa:
            _use_sdpa(torch, encoder)
        if config.compile:
            self.sam.image_encoder = torch.compile(encoder)

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
                for embedding, box, image, small in zip(
                    embeddings, boxes, images, resized, strict=True
                )
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
        finite("SAM", mask_logits=low_res, iou_scores=iou)
        masks = sam.postprocess_masks(low_res, input_size=input_size, original_size=size)
        return best_mask((masks[0] > sam.mask_threshold).cpu().numpy(), iou[0].cpu().numpy())


def _import_segment_anything() -> Any:
    try:
        return import_optional("segment_anything", extra="models,sam")
    except RuntimeError as exc:
        # torchvision built for another torch fails at import: "operator torchvision::nms does
        # not exist"
        if "torchvision::" not in str(exc):
            raise
        raise NearidError(
            f"torchvision {_version('torchvision')} does not fit torch {_version('torch')} "
            f"({exc}); install a matching pair: pip install 'nearid-data[sam]'"
        ) from exc


def _version(distribution: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "(not installed)"


def _use_sdpa(torch: Any, encoder: Any) -> None:
    """Every block of SAM's image encoder attends through ``_sdpa_attention``."""
    module = import_optional("segment_anything.modeling.image_encoder", extra="models")
    attention = partial(_sdpa_attention, torch, module.add_decomposed_rel_pos)
    for block in encoder.blocks:
        block.attn.forward = types.MethodType(attention, block.attn)


def _sdpa_attention(torch: Any, add_rel_pos: Callable[..., Any], attn: Any, x: Any) -> Any:
    """segment_anything's ``Attention.forward`` with the attention in one fused call.

    SAM adds decomposed relative positions to the attention logits; here they become the additive
    mask of ``scaled_dot_product_attention`` (whose default scale is SAM's ``head_dim ** -0.5``).
    """
    batch, height, width, _ = x.shape
    tokens, heads = height * width, attn.num_heads
    q, k, v = attn.qkv(x).reshape(batch, tokens, 3, heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
    bias = None
    if attn.use_rel_pos:
        flat_q = q.reshape(batch * heads, tokens, -1)
        zeros = flat_q.new_zeros(batch * heads, tokens, tokens)
        size = (height, width)
        bias = add_rel_pos(zeros, flat_q, attn.rel_pos_h, attn.rel_pos_w, size, size)
        bias = bias.view(batch, heads, tokens, tokens)
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    out = out.view(batch, heads, height, width, -1).permute(0, 2, 3, 1, 4)
    return attn.proj(out.reshape(batch, height, width, -1))
