"""The DreamSim embedder's wiring, with a stand-in ``dreamsim`` package (the real one downloads
its weights): arguments passed through, batches embedded in order, a clear error when loading fails."""

from __future__ import annotations

import sys
import types
from typing import Any

import numpy as np
import pytest

from nearid_data.backend import build_backend
from nearid_data.errors import NearidError
from nearid_data.vision.embedders import EMBEDDERS


def _fake_dreamsim(calls: list[dict[str, Any]], fail: bool = False) -> types.ModuleType:
    import torch

    class Model:
        def embed(self, batch: torch.Tensor) -> torch.Tensor:
            return batch.mean(dim=(2, 3))  # the mean colour: same images, same vector

    def preprocess(image: Any) -> torch.Tensor:
        array = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0)
        return array.permute(2, 0, 1)[None]

    def dreamsim(**kwargs: Any) -> tuple[Model, Any]:
        calls.append(kwargs)
        if fail:
            raise FileNotFoundError("no weights in cache_dir")
        return Model(), preprocess

    module = types.ModuleType("dreamsim")
    module.dreamsim = dreamsim  # type: ignore[attr-defined]
    return module


def test_dreamsim_embeds_through_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setitem(sys.modules, "dreamsim", _fake_dreamsim(calls))
    spec = {"name": "dreamsim", "cache_dir": "weights/ds", "batch_size": 2}
    embedder = build_backend(EMBEDDERS, spec, where="embedder")
    assert calls == [
        {
            "pretrained": True,
            "device": "cpu",
            "cache_dir": "weights/ds",
            "dreamsim_type": "ensemble",
        }
    ]
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255
    green = np.zeros((8, 8, 3), np.uint8)
    green[..., 1] = 255
    vectors = embedder.embed([red, green, red])  # two batches
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert vectors[0] @ vectors[2] == pytest.approx(1.0) and vectors[0] @ vectors[
        1
    ] == pytest.approx(0.0)


def test_dreamsim_load_failure_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dreamsim", _fake_dreamsim([], fail=True))
    with pytest.raises(NearidError, match="could not be loaded from 'models/dreamsim'"):
        build_backend(EMBEDDERS, {"name": "dreamsim"}, where="embedder")


def test_dreamsim_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dreamsim", None)  # import fails
    with pytest.raises(NearidError, match=r"nearid-data\[dreamsim\]"):
        build_backend(EMBEDDERS, {"name": "dreamsim"}, where="embedder")
