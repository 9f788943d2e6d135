"""Tiny random-weight models for tests, saved where a test says and loaded back by the real code,
and the two environment helpers they need: ``offline_hub`` and ``import_segment_anything``.

Each builder seeds torch, so the same call gives the same weights. Tokenizers come from a vocabulary
written here; nothing touches a hub. Heavy imports happen inside the functions, so importing this
module costs nothing and works in either test venv.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


def offline_hub(monkeypatch: pytest.MonkeyPatch, directory: Path) -> None:
    """Hugging Face caches and token files inside ``directory``, and no hub requests at all.

    huggingface_hub reads its environment once, when imported, so its constants are set too.
    """
    settings = {
        "HF_HOME": directory,
        "HF_HUB_CACHE": directory / "hub",
        "HF_TOKEN_PATH": directory / "token",
    }
    constants = importlib.import_module("huggingface_hub.constants")
    for name, value in settings.items():
        monkeypatch.setenv(name, str(value))
        monkeypatch.setattr(constants, name, str(value))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.delenv("HF_TOKEN", raising=False)


# Enough words for the prompts the tests use; [CLS] [SEP] . ? are GroundingDINO's special tokens.
VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "?", ",",
    "a", "an", "the", "of", "on", "photo", "dog", "cat", "red", "car", "bird", "person", "toy",
]  # fmt: skip


def save_bert_tokenizer(directory: Path) -> Path:
    """A WordPiece tokenizer over ``VOCAB``, saved with ``save_pretrained`` into ``directory``."""
    from transformers import BertTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    vocab = directory / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n")
    tokenizer = BertTokenizer(str(vocab))
    tokenizer.save_pretrained(directory)
    return directory


def tiny_bert_config(**overrides: Any) -> Any:
    from transformers import BertConfig

    settings = dict(
        vocab_size=len(VOCAB),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=300,
    )
    return BertConfig(**{**settings, **overrides})


def save_tiny_gdino(directory: Path, *, shortest_edge: int = 64, longest_edge: int = 96) -> Path:
    """transformers GroundingDINO (tiny Swin, one encoder layer) and its processor in ``directory``.

    The processor resizes to ``shortest_edge``/``longest_edge`` instead of 800/1333.
    """
    import torch
    from transformers import (
        BertTokenizer,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessorPil,
        GroundingDinoProcessor,
        SwinConfig,
    )

    save_bert_tokenizer(directory)
    config = GroundingDinoConfig(
        backbone_config=SwinConfig(
            embed_dim=16,
            depths=[1, 1, 1, 1],
            num_heads=[1, 1, 2, 2],
            window_size=4,
            image_size=64,
            out_features=["stage2", "stage3", "stage4"],
        ),
        text_config=tiny_bert_config(),
        d_model=32,
        encoder_layers=1,
        decoder_layers=2,  # transformers ties decoder box heads across layers: needs at least 2
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_n_points=2,
        decoder_n_points=2,
        num_queries=30,
        max_text_len=32,
    )
    torch.manual_seed(0)
    model = GroundingDinoForObjectDetection(config).eval()
    # Random weights saturate the box scores at 1.0, and ties would make "best first" and the
    # thresholds untestable; a smaller decoder output norm spreads them over about (0.25, 1).
    with torch.no_grad():
        model.model.decoder.layer_norm.weight.mul_(0.3)
    model.save_pretrained(directory)
    image_processor = GroundingDinoImageProcessorPil(
        size={"shortest_edge": shortest_edge, "longest_edge": longest_edge}
    )
    tokenizer = BertTokenizer.from_pretrained(directory)
    GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(
        directory
    )
    return directory


def save_tiny_groundingdino_py(directory: Path) -> dict[str, str]:
    """groundingdino-py's own builder at small settings; the config keys of its backend.

    The package names its Swin sizes (Swin-T is the smallest), so the backbone is a real Swin-T
    (28 M parameters); the transformer, queries and BERT are tiny. Returns ``checkpoint`` (a .pth
    with the official ``{"model": state_dict}`` layout), ``config_file`` and ``text_encoder``.
    """
    import groundingdino
    import torch
    from groundingdino.models import build_model
    from groundingdino.util.slconfig import SLConfig
    from transformers import BertModel

    directory.mkdir(parents=True, exist_ok=True)
    text_encoder = save_bert_tokenizer(directory / "bert")
    torch.manual_seed(0)
    BertModel(tiny_bert_config()).save_pretrained(text_encoder)

    # The package's own Swin-T config with smaller settings appended (later assignments win).
    # hidden_dim stays 256: the package hard-codes it in its text position embeddings.
    official = Path(groundingdino.__file__).parent / "config" / "GroundingDINO_SwinT_OGC.py"
    small = dict(enc_layers=1, dec_layers=2, dim_feedforward=128, nheads=4, num_queries=30)
    small.update(enc_n_points=2, dec_n_points=2)
    model_config = directory / "GroundingDINO_tiny.py"
    lines = [f"{key} = {value!r}" for key, value in small.items()]
    model_config.write_text(official.read_text() + "\n" + "\n".join(lines) + "\n")

    args = SLConfig.fromfile(str(model_config))
    args.text_encoder_type = str(text_encoder)
    torch.manual_seed(0)
    model = build_model(args).eval()
    with torch.no_grad():  # spread the saturated random scores, as in save_tiny_gdino
        model.transformer.decoder.norm.weight.mul_(0.1)
    checkpoint = directory / "groundingdino_tiny.pth"
    torch.save({"model": model.state_dict()}, checkpoint)
    return {
        "checkpoint": str(checkpoint),
        "config_file": str(model_config),
        "text_encoder": str(text_encoder),
    }


TINY_SAM_IMAGE_SIZE = 128


def import_segment_anything() -> ModuleType:
    """``segment_anything``, imported even where torchvision is missing.

    segment_anything imports torchvision when it is imported, but SAM's resizing uses only its PIL
    path. This repository's CPU test venv has no torchvision (PyPI has none matching its local
    torch build), so during that one import a stand-in makes the PIL calls torchvision makes for
    a PIL image; the box functions of SAM's automatic mask generator, which no backend uses,
    refuse. The stand-in leaves ``sys.modules`` right after, so nothing else (transformers checks
    for torchvision) ever sees it.
    """
    if "segment_anything" in sys.modules or importlib.util.find_spec("torchvision") is not None:
        return importlib.import_module("segment_anything")
    from PIL import Image

    def unused(*args: object, **kwargs: object) -> None:
        raise NotImplementedError("torchvision stand-in: only resize and to_pil_image exist")

    modules = {
        "torchvision": {},
        "torchvision.transforms": {},
        "torchvision.transforms.functional": {
            "to_pil_image": Image.fromarray,
            "resize": lambda image, size: image.resize((size[1], size[0]), Image.BILINEAR),
        },
        "torchvision.ops": {},
        "torchvision.ops.boxes": {"batched_nms": unused, "box_area": unused},
    }
    for name, attributes in modules.items():
        sys.modules[name] = types.ModuleType(name)
        sys.modules[name].__dict__.update(attributes)
    try:
        return importlib.import_module("segment_anything")
    finally:
        for name in modules:
            del sys.modules[name]


def build_tiny_sam(checkpoint: str | None = None) -> Any:
    """A tiny ``Sam`` from segment_anything's own blocks, built and loaded as its registry does.

    Same call shape as ``sam_model_registry[kind]`` so a test can put it there: the backend's
    registry path runs unchanged. The input side is 128 instead of 1024; SAM's resizing follows
    ``image_encoder.img_size``.
    """
    from functools import partial

    import torch

    modeling = import_segment_anything().modeling

    size, patch, dim = TINY_SAM_IMAGE_SIZE, 16, 32
    torch.manual_seed(0)
    sam = modeling.Sam(
        image_encoder=modeling.ImageEncoderViT(
            img_size=size,
            patch_size=patch,
            embed_dim=32,
            depth=2,
            num_heads=2,
            mlp_ratio=2,
            out_chans=dim,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            use_rel_pos=True,
            window_size=4,
            global_attn_indexes=(1,),
        ),
        prompt_encoder=modeling.PromptEncoder(
            embed_dim=dim,
            image_embedding_size=(size // patch, size // patch),
            input_image_size=(size, size),
            mask_in_chans=4,
        ),
        mask_decoder=modeling.MaskDecoder(
            transformer_dim=dim,
            transformer=modeling.TwoWayTransformer(
                depth=2, embedding_dim=dim, mlp_dim=64, num_heads=2
            ),
            iou_head_depth=2,
            iou_head_hidden_dim=32,
        ),
    )
    with torch.no_grad():  # SAM starts them at zero; random values make tests exercise them
        for name, parameter in sam.image_encoder.named_parameters():
            if "rel_pos" in name:
                parameter.normal_(std=0.5)
    sam.eval()
    if checkpoint is not None:
        with open(checkpoint, "rb") as f:
            sam.load_state_dict(torch.load(f))
    return sam


def save_tiny_sam_checkpoint(path: Path) -> Path:
    """The state dict of ``build_tiny_sam()`` saved at ``path``, as SAM's official .pth files are."""
    import torch

    torch.save(build_tiny_sam().state_dict(), path)
    return path


def save_tiny_sam_hf(directory: Path) -> Path:
    """transformers ``SamModel`` (tiny ViT, 128 px input) and its ``SamProcessor`` in ``directory``."""
    import torch
    from transformers import (
        SamConfig,
        SamImageProcessorPil,
        SamMaskDecoderConfig,
        SamModel,
        SamProcessor,
        SamPromptEncoderConfig,
        SamVisionConfig,
    )

    size, patch, dim = TINY_SAM_IMAGE_SIZE, 16, 32
    config = SamConfig(
        vision_config=SamVisionConfig(
            hidden_size=32,
            output_channels=dim,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=size,
            patch_size=patch,
            window_size=4,
            global_attn_indexes=[1],
            mlp_dim=64,
            num_pos_feats=dim // 2,  # sine and cosine of each: the prompt embedding width
        ),
        prompt_encoder_config=SamPromptEncoderConfig(
            hidden_size=dim, image_size=size, patch_size=patch, mask_input_channels=4
        ),
        mask_decoder_config=SamMaskDecoderConfig(
            hidden_size=dim, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=32
        ),
    )
    torch.manual_seed(0)
    SamModel(config).eval().save_pretrained(directory)
    image_processor = SamImageProcessorPil(
        size={"longest_edge": size}, pad_size={"height": size, "width": size}
    )
    SamProcessor(image_processor=image_processor).save_pretrained(directory)
    return directory


def save_tiny_sam2_hf(directory: Path) -> Path:
    """transformers ``Sam2Model`` (tiny Hiera, 128 px input) and its ``Sam2Processor``.

    Sam2's image processor needs torchvision.
    """
    import torch
    from transformers import (
        Sam2Config,
        Sam2HieraDetConfig,
        Sam2ImageProcessor,
        Sam2MaskDecoderConfig,
        Sam2Model,
        Sam2Processor,
        Sam2PromptEncoderConfig,
        Sam2VisionConfig,
    )

    size, dim = TINY_SAM_IMAGE_SIZE, 32
    widths = [16, 32, 64, 128]
    # Hiera's stages run at strides 4, 8, 16, 32; the decoder uses the first three.
    config = Sam2Config(
        vision_config=Sam2VisionConfig(
            backbone_config=Sam2HieraDetConfig(
                hidden_size=widths[0],
                image_size=[size, size],
                blocks_per_stage=[1, 1, 2, 1],
                embed_dim_per_stage=widths,
                num_attention_heads_per_stage=[1, 1, 2, 2],
                window_size_per_stage=[4, 4, 4, 4],
                global_attention_blocks=[3],  # not a stage's first block: those pool queries
                window_positional_embedding_background_size=[4, 4],
            ),
            backbone_channel_list=widths[::-1],
            backbone_feature_sizes=[[size // stride] * 2 for stride in (4, 8, 16)],
            fpn_hidden_size=dim,
        ),
        prompt_encoder_config=Sam2PromptEncoderConfig(
            hidden_size=dim, image_size=size, patch_size=16, mask_input_channels=4
        ),
        mask_decoder_config=Sam2MaskDecoderConfig(
            hidden_size=dim, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=32
        ),
    )
    torch.manual_seed(0)
    Sam2Model(config).eval().save_pretrained(directory)
    image_processor = Sam2ImageProcessor(size={"height": size, "width": size})
    Sam2Processor(image_processor=image_processor).save_pretrained(directory)
    return directory
