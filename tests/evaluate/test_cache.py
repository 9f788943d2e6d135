"""The embedding cache: hits skip decoding and embedding, keys follow content, writes are atomic."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from nearid_data.evaluate.cache import EmbeddingCache
from nearid_data.evaluate.images import ImageRef, png_ref
from nearid_data.imageio import encode_png
from nearid_data.vision.embedders.colorhist import ColorHistEmbedder


def _pngs(n: int, seed: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    return [encode_png(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)) for _ in range(n)]


def _spied(
    monkeypatch: pytest.MonkeyPatch, batch_size: int = 2
) -> tuple[ColorHistEmbedder, list[int]]:
    """A colorhist embedder that records how many images each batch held."""
    embedder = ColorHistEmbedder(
        ColorHistEmbedder.Config.model_validate({"batch_size": batch_size})
    )
    batches: list[int] = []
    real = embedder._embed_batch

    def spy(images: Sequence[np.ndarray]) -> np.ndarray:
        batches.append(len(images))
        return real(images)

    monkeypatch.setattr(embedder, "_embed_batch", spy)
    return embedder, batches


def _refs(pngs: list[bytes]) -> list[ImageRef]:
    return [png_ref(f"k{i}", "image.png", data) for i, data in enumerate(pngs)]


def test_a_hit_avoids_recomputation(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    embedder, batches = _spied(monkeypatch)
    refs = _refs(_pngs(5))
    first = EmbeddingCache(embedder, tmp_path).embed(refs, "shard-0")
    assert batches == [2, 2, 1]  # misses go through in batches of batch_size
    batches.clear()
    # A new cache object over the same directory: read from disk, nothing embedded or decoded.
    undecodable = [ImageRef(r.key, r.field, r.digest, lambda: pytest.fail("decoded")) for r in refs]
    again = EmbeddingCache(embedder, tmp_path).embed(undecodable, "shard-0")
    assert batches == [] and np.array_equal(first, again)
    assert np.array_equal(first, embedder.embed([r.load() for r in refs]))


def test_changed_content_and_new_items_are_embedded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    embedder, batches = _spied(monkeypatch, batch_size=8)
    pngs = _pngs(3)
    EmbeddingCache(embedder, tmp_path).embed(_refs(pngs), "b")
    batches.clear()
    changed = [pngs[0], _pngs(1, seed=9)[0], pngs[2], _pngs(1, seed=10)[0]]  # k1 changed, k3 new
    vectors = EmbeddingCache(embedder, tmp_path).embed(_refs(changed), "b")
    assert batches == [2]
    assert np.array_equal(vectors, embedder.embed([r.load() for r in _refs(changed)]))


def test_order_duplicates_and_no_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    embedder, batches = _spied(monkeypatch, batch_size=8)
    refs = _refs(_pngs(2))
    vectors = EmbeddingCache(embedder, None).embed([refs[1], refs[0], refs[1]], "b")
    assert batches == [2]  # the duplicate is embedded once
    assert np.array_equal(vectors[0], vectors[2]) and not np.array_equal(vectors[0], vectors[1])
    EmbeddingCache(embedder, None).embed(refs, "b")
    assert batches == [2, 2] and not any(tmp_path.iterdir())
    assert EmbeddingCache(embedder, tmp_path).embed([], "b").shape == (0, 0)


def test_layout_is_one_npz_per_bucket_under_the_fingerprint(tmp_path: Path) -> None:
    embedder = ColorHistEmbedder(ColorHistEmbedder.Config.model_validate({}))
    EmbeddingCache(embedder, tmp_path).embed(_refs(_pngs(2)), "data/train/train-00000")
    files = [p.relative_to(tmp_path).parts for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) == 1 and files[0][0] == embedder.fingerprint()
    assert files[0][1].startswith("data-train-train-00000") and files[0][1].endswith(".npz")
    other = ColorHistEmbedder(ColorHistEmbedder.Config.model_validate({"grid": 3}))
    assert other.fingerprint() != embedder.fingerprint()
