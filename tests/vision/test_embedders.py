"""Embedders: the colour-histogram baseline, and tiny random-weight CLIP / SigLIP / SigLIP 2 /
DINOv2 models saved to a temp dir and loaded back through the real ``from_pretrained`` path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nearid_data.backend import build_backend
from nearid_data.errors import NearidError
from nearid_data.vision.embedders import EMBEDDERS
from nearid_data.vision.embedders.base import Embedder
from tests.evaluate.tiny_embedders import save_tiny

# The registry name each tiny model is loaded through.
KINDS = {"clip": "clip", "siglip": "siglip", "siglip2": "siglip", "dinov2": "dinov2"}


def _images(n: int = 5) -> list[np.ndarray]:
    """Random RGB images of different sizes (processors resize them)."""
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (30 + 7 * i, 40 + 3 * i, 3), dtype=np.uint8) for i in range(n)]


def _embedder(name: str, **settings: object) -> Embedder:
    return build_backend(EMBEDDERS, {"name": name, **settings}, where="embedder")  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("embedders")
    return {kind: save_tiny(kind, root / kind) for kind in KINDS}


def _check_unit_rows(vectors: np.ndarray, n: int) -> None:
    assert vectors.dtype == np.float32 and vectors.shape[0] == n
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)


def test_colorhist_is_deterministic_unit_and_batch_independent() -> None:
    images = _images()
    one_by_one = _embedder("colorhist", batch_size=1).embed(images)
    together = _embedder("colorhist", batch_size=64).embed(images)
    _check_unit_rows(one_by_one, len(images))
    assert one_by_one.shape[1] == 5 * 8 * 4 * 4  # the whole image + a 2 x 2 grid, 128 bins each
    assert np.array_equal(one_by_one, together)
    same = _embedder("colorhist").embed([images[0], images[0].copy()])
    assert float(same[0] @ same[1]) == pytest.approx(1.0)
    assert _embedder("colorhist").embed([]).shape == (0, 0)


@pytest.mark.parametrize("kind", list(KINDS))
def test_tiny_models_embed_batched_as_unbatched(models: dict[str, Path], kind: str) -> None:
    images = _images()
    name, model = KINDS[kind], str(models[kind])
    one_by_one = _embedder(name, model=model, batch_size=1).embed(images)
    batched = _embedder(name, model=model, batch_size=4).embed(images)
    _check_unit_rows(one_by_one, len(images))
    assert np.allclose(one_by_one, batched, atol=1e-5)
    assert not np.allclose(one_by_one[0], one_by_one[1])


def test_dinov2_pooling_and_fingerprints(models: dict[str, Path], tmp_path: Path) -> None:
    model = str(models["dinov2"])
    cls, mean = _embedder("dinov2", model=model), _embedder("dinov2", model=model, pooling="mean")
    assert not np.allclose(cls.embed(_images(2)), mean.embed(_images(2)))
    assert cls.fingerprint() != mean.fingerprint()
    # Batch size changes speed, not vectors; other weights in any directory change the vectors.
    assert cls.fingerprint() == _embedder("dinov2", model=model, batch_size=3).fingerprint()
    reseeded = str(save_tiny("dinov2", tmp_path / "other", seed=1))
    assert _embedder("dinov2", model=reseeded).fingerprint() != cls.fingerprint()


def test_a_model_of_another_family_is_refused(models: dict[str, Path]) -> None:
    with pytest.raises(NearidError, match="is a 'dinov2' model; this embedder takes clip"):
        _embedder("clip", model=str(models["dinov2"]))


def test_a_missing_hub_model_fails_offline_with_a_hint() -> None:
    # The suite-wide fixture (tests/conftest.py) makes the hub offline with an empty cache.
    with pytest.raises(NearidError, match="HF_HUB_OFFLINE is set"):
        _embedder("siglip", model="nobody/no-such-siglip")


def test_unknown_embedder_and_setting_are_named() -> None:
    with pytest.raises(NearidError, match="unknown embedder 'clipp'"):
        _embedder("clipp")
    with pytest.raises(NearidError, match=r"embedder\.grid"):
        _embedder("colorhist", grid=0)
