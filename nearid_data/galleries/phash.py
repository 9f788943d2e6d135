"""Perceptual hashes for the near-duplicate guard between references and galleries.

dHash (difference hash): the image shrunk to 9 x 8 grey pixels, one bit per horizontal neighbour
pair (is the right one brighter?). Rescaling, recompression and small colour shifts keep most
bits; a different photo flips about half of the 64. It misses crops and flips, which a learned
embedding would catch, but it is cheap and needs no model.
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

HASH_BITS = 64


def dhash(rgb: np.ndarray) -> int:
    """The 64-bit difference hash of an RGB (H, W, 3) or grey (H, W) uint8 image."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    # INTER_AREA averages every source pixel, so the hash does not depend on sampling phase.
    small = cv2.resize(gray, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = small[:, 1:] > small[:, :-1]
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def near_duplicate_pairs(
    ref_hashes: Mapping[str, int], gallery_hashes: Mapping[str, int], max_distance: int
) -> list[tuple[str, str, int]]:
    """Every (gallery key, reference key, distance) within ``max_distance``, closest first."""
    pairs = [
        (gallery_key, ref_key, distance)
        for gallery_key, gallery_hash in gallery_hashes.items()
        for ref_key, ref_hash in ref_hashes.items()
        if (distance := hamming(gallery_hash, ref_hash)) <= max_distance
    ]
    return sorted(pairs, key=lambda pair: (pair[2], pair[0], pair[1]))
