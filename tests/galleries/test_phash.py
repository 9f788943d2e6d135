"""dHash: a rescaled, recompressed copy stays near; another image is far."""

from __future__ import annotations

import cv2
import numpy as np

from nearid_data.galleries.phash import dhash, hamming, near_duplicate_pairs
from nearid_data.sources.procedural import make_identity, render_view


def _view(identity: int, view: int, size: int = 128) -> np.ndarray:
    return render_view(make_identity(identity, seed=1), view, size=size, seed=1).image


def _recompressed(rgb: np.ndarray) -> np.ndarray:
    small = cv2.resize(rgb, (80, 80), interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(".jpg", small[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 60])
    assert ok
    return cv2.imdecode(jpeg, cv2.IMREAD_COLOR)[..., ::-1]


def test_hash_is_64_bits_and_deterministic() -> None:
    image = _view(0, 0)
    assert dhash(image) == dhash(image.copy()) < 2**64
    assert dhash(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)) == dhash(image)


def test_recompressed_copy_is_near_and_other_images_are_far() -> None:
    original = _view(0, 0)
    assert hamming(dhash(original), dhash(_recompressed(original))) <= 2
    brighter = np.clip(original.astype(np.int16) + 20, 0, 255).astype(np.uint8)
    assert hamming(dhash(original), dhash(brighter)) <= 6
    assert hamming(dhash(original), dhash(_view(1, 0))) > 16
    assert hamming(dhash(original), dhash(_view(0, 1))) > 16


def test_near_duplicate_pairs_lists_pairs_within_the_distance_closest_first() -> None:
    original, other = _view(0, 0), _view(1, 0)
    refs = {"ref-a": dhash(original), "ref-b": dhash(other)}
    gallery = {"copy": dhash(_recompressed(original)), "new": dhash(_view(2, 0))}
    pairs = near_duplicate_pairs(refs, gallery, max_distance=6)
    assert [(g, r) for g, r, _ in pairs] == [("copy", "ref-a")]
    assert near_duplicate_pairs(refs, gallery, max_distance=64)[0][:2] == ("copy", "ref-a")
    assert len(near_duplicate_pairs(refs, gallery, max_distance=64)) == 4
    assert hamming(0, 2**64 - 1) == 64
