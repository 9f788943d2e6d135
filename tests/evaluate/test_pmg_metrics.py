"""The benchmark's metrics against hand-computed cases: SSIM of constant images, LPIPS identities
with a random-weight network, the aesthetic head's arithmetic, CLIP and verifier scores with tiny
random-weight models, mean and standard deviation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from nearid_data.errors import NearidError
from nearid_data.evaluate.pmg_metrics import lpips_distances, resized, ssim, summary
from nearid_data.evaluate.pmg_models import AestheticHead, ClipScorer, Verifier, load_lpips
from tests.badimages import valid_image
from tests.evaluate.tiny_embedders import SIZE, TEXT, VISION, save_tiny
from tests.tiny_models import VOCAB, save_bert_tokenizer

C1 = (0.01 * 255) ** 2


def constant(value: int, size: int = 32) -> np.ndarray:
    return np.full((size, size, 3), value, np.uint8)


def test_ssim_identical_and_constant_images() -> None:
    image = valid_image(1, (40, 48))
    assert ssim(image, image, 32) == pytest.approx(1.0)
    # Two flat images: no variance, so SSIM is the luminance term (2 mx my + C1) / (mx^2 + my^2 + C1).
    expected = (2 * 100 * 50 + C1) / (100**2 + 50**2 + C1)
    assert ssim(constant(100), constant(50), 32) == pytest.approx(expected)
    # An image against a resized copy of itself compares at one size.
    assert ssim(image, resized(image, 80), 40) > 0.9


def test_summary_is_mean_and_population_std_over_present_values() -> None:
    assert summary([1.0, 2.0, 3.0, None, math.nan]) == {
        "mean": 2.0,
        "std": pytest.approx(math.sqrt(2 / 3)),
        "n": 3,
    }
    assert summary([None]) == {"mean": None, "std": None, "n": 0}


def test_lpips_random_network_identities() -> None:
    lpips = pytest.importorskip("lpips")
    import torch

    torch.manual_seed(0)
    net = lpips.LPIPS(net="alex", pretrained=False, pnet_rand=True, verbose=False).eval()
    a, b, c = (valid_image(seed, (40, 48)) for seed in (1, 2, 3))
    assert lpips_distances(net, a, [a], 32) == [pytest.approx(0.0, abs=1e-7)]
    ab, ac = lpips_distances(net, a, [b, c], 32)
    assert ab != 0 and ac != ab
    assert lpips_distances(net, b, [a], 32)[0] == pytest.approx(ab, rel=1e-5)
    assert lpips_distances(net, a, [c], 32)[0] == pytest.approx(ac, rel=1e-5)  # batch == single


def test_lpips_loads_backbone_weights_from_the_torch_hub_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("lpips")
    import torch
    from torchvision import models

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cached = tmp_path / "torch" / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    cached.parent.mkdir(parents=True)
    torch.manual_seed(1)
    backbone = models.alexnet().state_dict()
    torch.save(backbone, cached)
    net = load_lpips("alex", "cpu")
    first_conv = net.net.slice1[0].weight
    assert torch.equal(first_conv, backbone["features.0.weight"])
    a, b = valid_image(1, (40, 48)), valid_image(2, (40, 48))
    assert lpips_distances(net, a, [a], 32)[0] == pytest.approx(0.0, abs=1e-7)
    assert lpips_distances(net, a, [b], 32)[0] > 0  # learned linear layers are non-negative


def test_lpips_without_backbone_weights_says_how_to_fetch_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("lpips")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(NearidError, match=r"vgg16-397923af.pth.*curl -L .*download.pytorch.org"):
        load_lpips("vgg", "cpu")


def test_aesthetic_head_linear_and_chained_layers(tmp_path: Path) -> None:
    import torch

    linear = tmp_path / "linear.pth"
    torch.save({"weight": torch.tensor([[1.0, 2.0, 3.0]]), "bias": torch.tensor([0.5])}, linear)
    head = AestheticHead(str(linear))
    unit = np.array([[0.6, 0.8, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(head(unit), [0.6 + 1.6 + 0.5, 3.5])
    # The improved predictor's layout: layers.0 ... layers.10 applied in numeric order.
    chained = tmp_path / "mlp.pth"
    torch.save(
        {
            "layers.0.weight": torch.eye(3) * 2,
            "layers.0.bias": torch.zeros(3),
            "layers.10.weight": torch.tensor([[1.0, 1.0, 1.0]]),
            "layers.10.bias": torch.tensor([1.0]),
            "layers.2.weight": torch.eye(3),
            "layers.2.bias": torch.ones(3),
        },
        chained,
    )
    np.testing.assert_allclose(
        AestheticHead(str(chained))(unit), [(1.2 + 1.6 + 3) + 1, (2 + 3) + 1]
    )
    with pytest.raises(NearidError, match="takes 3-d CLIP embeddings, the CLIP model gives 2-d"):
        head(np.ones((1, 2)))
    with pytest.raises(NearidError, match=r"curl -L --create-dirs .*aesthetic-predictor"):
        AestheticHead(str(tmp_path / "absent.pth"))
    torch.save({"weight": torch.ones(2, 3), "bias": torch.ones(2)}, linear)
    with pytest.raises(NearidError, match="must give one score"):
        AestheticHead(str(linear))


def tiny_clip(directory: Path, seed: int = 0) -> Path:
    """The tiny CLIP of the embedder tests with a text tower that pools at the tokenizer's [SEP]
    (CLIP pools at its end-of-text token), and that tokenizer."""
    import torch
    import transformers as t

    save_tiny("clip", directory, seed=seed)
    torch.manual_seed(seed)
    config = t.CLIPConfig(
        text_config={**TEXT, "vocab_size": len(VOCAB), "eos_token_id": VOCAB.index("[SEP]")},
        vision_config={**VISION, "image_size": SIZE},
        projection_dim=16,
    )
    t.CLIPModel(config).save_pretrained(directory)
    save_bert_tokenizer(directory)
    return directory


def test_clip_scorer_gives_unit_image_and_text_vectors(tmp_path: Path) -> None:
    scorer = ClipScorer(str(tiny_clip(tmp_path / "clip")), device="cpu", batch_size=2)
    images = [valid_image(s, (40, 48)) for s in (1, 2, 1)]
    vectors = scorer.images(images)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(vectors[0], vectors[2], atol=1e-6)
    texts = scorer.texts(["a red car", "a photo of a dog on the toy", "a red car"])
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(texts[0], texts[2], atol=1e-6)
    assert not np.allclose(texts[0], texts[1])
    # Batched texts equal one at a time (padding must not change a text's vector).
    np.testing.assert_allclose(
        scorer.texts(["a photo of a dog on the toy"])[0], texts[1], atol=1e-5
    )


def test_clip_scorer_missing_model_says_how_to_fetch_it(tmp_path: Path) -> None:
    with pytest.raises(NearidError, match="no such local path"):
        ClipScorer(str(tmp_path / "nope"), device="cpu", batch_size=2)


def save_tiny_verifier(directory: Path, workers: list[str]) -> Path:
    import torch
    import transformers as t

    torch.manual_seed(0)
    config = t.ViTConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        image_size=32,
        patch_size=8,
        id2label=dict(enumerate(workers)),
        label2id={w: i for i, w in enumerate(workers)},
    )
    t.ViTForImageClassification(config).save_pretrained(directory)
    t.ViTImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(directory)
    return directory


def test_verifier_is_the_sigmoid_of_the_worker_logit(tmp_path: Path) -> None:
    import torch
    import transformers as t

    path = save_tiny_verifier(tmp_path / "verifier", ["A00W", "A01W"])
    verifier = Verifier(str(path), device="cpu")
    image = valid_image(4, (40, 48))
    model = t.ViTForImageClassification.from_pretrained(path).eval()
    # The processor the verifier loads (with torchvision installed, transformers picks its fast one).
    pixels = t.AutoImageProcessor.from_pretrained(path)(images=[image], return_tensors="pt")
    with torch.inference_mode():
        logits = model(**pixels).logits[0]
    assert verifier.score(image, "A01W") == pytest.approx(
        1 / (1 + math.exp(-float(logits[1]))), rel=1e-5
    )
    assert verifier.score(image, "unknown") is None
