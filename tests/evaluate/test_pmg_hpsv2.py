"""HPSv2's open_clip checkpoint moved into a transformers CLIP: the same features as open_clip
computes (tiny random-weight models), and clear errors for checkpoints that do not fit."""

from __future__ import annotations

from pathlib import Path

import pytest

from nearid_data.errors import NearidError
from nearid_data.evaluate.pmg_hpsv2 import convert, open_clip_to_transformers
from tests.tiny_models import save_bert_tokenizer

WIDTH, EMBED, VOCAB_SIZE, CONTEXT = 32, 16, 64, 16


def save_tiny_base(directory: Path) -> Path:
    """A transformers CLIP shaped like the tiny open_clip model below (exact GELU; text pooled at
    the highest token id, as open_clip pools)."""
    import torch
    import transformers as t

    torch.manual_seed(5)
    common = dict(hidden_size=WIDTH, num_attention_heads=2, hidden_act="gelu")
    config = t.CLIPConfig(
        vision_config={
            **common,
            "num_hidden_layers": 2,
            "intermediate_size": 64,
            "image_size": 32,
            "patch_size": 8,
        },
        text_config={
            **common,
            "num_hidden_layers": 1,
            "intermediate_size": 128,
            "vocab_size": VOCAB_SIZE,
            "max_position_embeddings": CONTEXT,
            "eos_token_id": 2,
        },
        projection_dim=EMBED,
    )
    t.CLIPModel(config).save_pretrained(directory)
    t.CLIPImageProcessorPil(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    ).save_pretrained(directory)
    save_bert_tokenizer(directory)
    return directory


def test_converted_weights_give_open_clip_features(tmp_path: Path) -> None:
    open_clip = pytest.importorskip("open_clip")
    import torch
    import transformers as t

    torch.manual_seed(0)
    reference = open_clip.CLIP(
        embed_dim=EMBED,
        vision_cfg=dict(
            image_size=32, layers=2, width=WIDTH, patch_size=8, head_width=16, mlp_ratio=2.0
        ),
        text_cfg=dict(
            context_length=CONTEXT, vocab_size=VOCAB_SIZE, width=WIDTH, heads=2, layers=1
        ),
    ).eval()
    with torch.no_grad():
        for parameter in reference.parameters():  # nothing left at its (often zero) initial value
            parameter.add_(torch.randn_like(parameter) * 0.02)
    checkpoint = tmp_path / "HPS_v2_compressed.pt"
    torch.save({"state_dict": reference.state_dict()}, checkpoint)
    out = convert(checkpoint, str(save_tiny_base(tmp_path / "base")), tmp_path / "hpsv2")
    model = t.CLIPModel.from_pretrained(out).eval()
    pixels = torch.randn(2, 3, 32, 32)
    tokens = torch.tensor([[3, 7, 9, 63, 0, 0], [3, 12, 63, 0, 0, 0]])  # 63: open_clip's end token
    with torch.no_grad():
        ours_image = model.get_image_features(pixel_values=pixels)
        ours_text = model.get_text_features(input_ids=tokens)
        theirs_image = reference.encode_image(pixels)
        padded = torch.zeros(2, CONTEXT, dtype=torch.long)
        padded[:, : tokens.shape[1]] = tokens
        theirs_text = reference.encode_text(padded)
    image = ours_image if isinstance(ours_image, torch.Tensor) else ours_image.pooler_output
    text = ours_text if isinstance(ours_text, torch.Tensor) else ours_text.pooler_output
    torch.testing.assert_close(image, theirs_image, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(text, theirs_text, atol=1e-5, rtol=1e-4)
    assert (out / "tokenizer_config.json").is_file() and (
        out / "preprocessor_config.json"
    ).is_file()


def test_checkpoints_that_do_not_fit_are_named(tmp_path: Path) -> None:
    import torch

    with pytest.raises(
        NearidError, match=r"'visual\.head\.weight' has no transformers counterpart"
    ):
        open_clip_to_transformers({"visual.head.weight": torch.zeros(1)})
    with pytest.raises(NearidError, match=r"hf download xswu/HPSv2 absent\.pt"):
        convert(tmp_path / "absent.pt", "unused", tmp_path / "out")
    base = save_tiny_base(tmp_path / "base")
    checkpoint = tmp_path / "partial.pt"
    torch.save({"state_dict": {"visual.proj": torch.zeros(WIDTH, EMBED + 1)}}, checkpoint)
    with pytest.raises(
        NearidError,
        match=r"does not fit.*missing \['logit_scale'.*shape mismatch \['visual_projection.weight'\]",
    ):
        convert(checkpoint, str(base), tmp_path / "out")
