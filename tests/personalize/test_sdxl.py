"""The SDXL path: pooled text and time-id conditioning in training, the adapter in generation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nearid_data.personalize.dreambooth import Example, Recipe, train_dreambooth
from nearid_data.personalize.text2image import TextToImage
from tests.personalize.tiny_text2image import save_tiny_sdxl


def test_sdxl_adapter_trains_saves_and_changes_generation(tmp_path: Path) -> None:
    model = TextToImage(str(save_tiny_sdxl(tmp_path / "sdxl")))
    assert model.family == "sdxl"
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (40, 48, 3), dtype=np.uint8) for _ in range(3)]
    recipe = Recipe(
        steps=2,
        learning_rate=1e-2,
        rank=2,
        batch_size=1,
        resolution=32,
        prior_loss_weight=1.0,
        max_grad_norm=1.0,
        checkpoint_every=10,
    )
    conditioning = model.conditioning("a photo of sks mug", 32)
    prior = Example(images[:1], model.conditioning("A photo of mug", 32))
    result = train_dreambooth(
        model,
        recipe,
        Example(images, conditioning),
        prior,
        seed=3,
        checkpoint=tmp_path / "ckpt.pt",
        fingerprint="f",
    )
    assert len(result.losses) == 2 and result.state
    assert all("lora" in key for key in result.state)

    type(model.pipe).save_lora_weights(tmp_path / "adapter", unet_lora_layers=result.state)
    kwargs = {"steps": 2, "guidance": 5.0, "resolution": 32}
    plain = model.generate(["a photo of sks mug"], [4], **kwargs)[0]
    model.load_adapter(tmp_path / "adapter", "x")
    adapted = model.generate(["a photo of sks mug"], [4], **kwargs)[0]
    assert plain.shape == (32, 32, 3) and not np.array_equal(plain, adapted)
