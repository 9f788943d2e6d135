"""HPSv2 weights for ``eval --protocol pmg``: its open_clip checkpoint moved into a transformers CLIP.

HPSv2 fine-tunes open_clip's ViT-H-14 (laion2B-s32B-b79K) and ships the result as an open_clip
state dict (``HPS_v2_compressed.pt``, under ``state_dict``). The transformers release of the same
base model (``laion/CLIP-ViT-H-14-laion2B-s32B-b79K``) has the architecture, tokenizer and image
processor; this module loads that directory, replaces its weights with HPSv2's (renamed, the fused
attention projections split into q, k, v, the projections transposed) and saves the result, which
the ``hpsv2`` setting then loads like any CLIP:

    hf download laion/CLIP-ViT-H-14-laion2B-s32B-b79K --local-dir models/CLIP-ViT-H-14
    hf download xswu/HPSv2 HPS_v2_compressed.pt --local-dir models
    python -m nearid_data.evaluate.pmg_hpsv2 models/HPS_v2_compressed.pt \\
        --base models/CLIP-ViT-H-14 --out models/hpsv2-clip
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from nearid_data.backend import load_pretrained
from nearid_data.errors import NearidError
from nearid_data.optional import import_optional

# open_clip name -> transformers name, outside the transformer blocks.
_RENAMED = {
    "visual.class_embedding": "vision_model.embeddings.class_embedding",
    "visual.positional_embedding": "vision_model.embeddings.position_embedding.weight",
    "visual.conv1.weight": "vision_model.embeddings.patch_embedding.weight",
    "visual.ln_pre.weight": "vision_model.pre_layrnorm.weight",
    "visual.ln_pre.bias": "vision_model.pre_layrnorm.bias",
    "visual.ln_post.weight": "vision_model.post_layernorm.weight",
    "visual.ln_post.bias": "vision_model.post_layernorm.bias",
    "token_embedding.weight": "text_model.embeddings.token_embedding.weight",
    "positional_embedding": "text_model.embeddings.position_embedding.weight",
    "ln_final.weight": "text_model.final_layer_norm.weight",
    "ln_final.bias": "text_model.final_layer_norm.bias",
    "logit_scale": "logit_scale",
}
# open_clip stores x @ proj; transformers' Linear computes x @ weight.T.
_TRANSPOSED = {
    "visual.proj": "visual_projection.weight",
    "text_projection": "text_projection.weight",
}
_BLOCK = re.compile(r"^(visual\.)?transformer\.resblocks\.(\d+)\.(.+)$")
_BLOCK_PARTS = {
    "ln_1": "layer_norm1",
    "ln_2": "layer_norm2",
    "attn.out_proj": "self_attn.out_proj",
    "mlp.c_fc": "mlp.fc1",
    "mlp.c_proj": "mlp.fc2",
}


def open_clip_to_transformers(state: dict[str, Any]) -> dict[str, Any]:
    """The transformers ``CLIPModel`` state dict holding an open_clip CLIP's weights."""
    converted: dict[str, Any] = {}
    for name, tensor in state.items():
        if name in _RENAMED:
            converted[_RENAMED[name]] = tensor
        elif name in _TRANSPOSED:
            converted[_TRANSPOSED[name]] = tensor.T.contiguous()
        elif match := _BLOCK.match(name):
            tower = "vision_model" if match.group(1) else "text_model"
            prefix = f"{tower}.encoder.layers.{match.group(2)}"
            part, _, kind = match.group(3).rpartition(".")
            if part == "attn" and kind in ("in_proj_weight", "in_proj_bias"):
                suffix = kind.removeprefix("in_proj_")
                for projection, chunk in zip("qkv", tensor.chunk(3, dim=0), strict=True):
                    converted[f"{prefix}.self_attn.{projection}_proj.{suffix}"] = chunk.contiguous()
            elif part in _BLOCK_PARTS:
                converted[f"{prefix}.{_BLOCK_PARTS[part]}.{kind}"] = tensor
            else:
                raise NearidError(f"open_clip weight {name!r} has no transformers counterpart")
        else:
            raise NearidError(f"open_clip weight {name!r} has no transformers counterpart")
    return converted


def convert(checkpoint: Path, base: str, out: Path) -> Path:
    """Save ``base`` (a transformers CLIP directory or hub id) with the weights of ``checkpoint``
    (an open_clip state dict, or a dict holding one under ``state_dict``) to ``out``."""
    torch = import_optional("torch", extra="models")
    transformers = import_optional("transformers", extra="models")
    if not checkpoint.is_file():
        raise NearidError(
            f"{checkpoint} not found; fetch it on a machine with a network: "
            f"hf download xswu/HPSv2 {checkpoint.name} --local-dir {checkpoint.parent}"
        )
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    if not isinstance(state, dict):
        raise NearidError(f"{checkpoint}: not an open_clip state dict")
    state = {name.removeprefix("module."): tensor for name, tensor in state.items()}
    model = load_pretrained(transformers.CLIPModel.from_pretrained, base)
    converted = open_clip_to_transformers(state)
    expected = model.state_dict()
    missing = sorted(k for k in expected if k not in converted and not k.endswith("position_ids"))
    unexpected = sorted(k for k in converted if k not in expected)
    wrong = sorted(
        k for k, v in converted.items() if k in expected and v.shape != expected[k].shape
    )
    if missing or unexpected or wrong:
        raise NearidError(
            f"{checkpoint} does not fit the CLIP in {base}: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}, shape mismatch {wrong[:5]}"
        )
    model.load_state_dict(converted, strict=False)
    model.save_pretrained(out)
    for loader in (transformers.AutoTokenizer, transformers.AutoImageProcessor):
        load_pretrained(loader.from_pretrained, base).save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="HPS_v2_compressed.pt (open_clip state dict)")
    parser.add_argument(
        "--base", required=True, help="transformers CLIP ViT-H-14 directory or hub id"
    )
    parser.add_argument("--out", type=Path, required=True, help="where to save the HPSv2 CLIP")
    args = parser.parse_args(argv)
    try:
        print(convert(args.checkpoint, args.base, args.out))
    except NearidError as exc:
        print(f"error: {exc}")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
