"""Image fields stored as the region where they differ from another field of the same sample.

A distractor is its sample's image with one region repainted; stored whole, every background
pixel would be written twice. A stage names, for such a field, the field it was painted over
(``Stage.patch_base``); the executor then stores only the bounding box of the pixels that differ,
as a PNG crop, and the manifest row records the box (``SampleRow.patches``). Readers rebuild the
field's exact bytes: the crop is pasted into the decoded base and encoded with the toolkit's one
PNG encoder. The executor checks that round trip before it stores a patch (else the field is
stored whole), and readers check the rebuilt bytes against the field's recorded sha256, so a
reader whose PNG encoder writes other bytes (another OpenCV or zlib build) fails loudly.
"""

from __future__ import annotations

import numpy as np

PATCH_SUFFIX = ".patch.png"
Box = tuple[int, int, int, int]
"""x0, y0, x1, y1 (exclusive) of the stored region, in pixels of the base."""


def patchable(name: str) -> bool:
    return name.endswith(".png") and not name.endswith(PATCH_SUFFIX)


def patch_member(name: str) -> str:
    """The member name of the stored region of field ``name`` (``distractor_x.png`` ->
    ``distractor_x.patch.png``): a PNG any tar reader can open, named apart from the field."""
    return name.removesuffix(".png") + PATCH_SUFFIX


def make_patch(base: bytes, data: bytes) -> tuple[Box, bytes] | None:
    """The region of ``data`` that differs from ``base`` and its PNG, when storing that region
    instead of ``data`` saves bytes and rebuilds ``data`` exactly; None otherwise (other sizes or
    channels, a change spanning the image)."""
    from nearid_data.imageio import decode_png, encode_png  # OpenCV loads only for patches

    base_pixels, pixels = decode_png(base), decode_png(data)
    if base_pixels.shape != pixels.shape:
        return None
    changed = base_pixels != pixels
    if changed.ndim == 3:
        changed = changed.any(axis=2)
    rows, cols = np.nonzero(changed.any(axis=1))[0], np.nonzero(changed.any(axis=0))[0]
    if rows.size == 0:
        box: Box = (0, 0, 1, 1)
    else:
        box = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
    x0, y0, x1, y1 = box
    region = encode_png(np.ascontiguousarray(pixels[y0:y1, x0:x1]))
    # PNG is lossless, so the rebuilt pixels are ``pixels``: the rebuild gives ``data`` exactly
    # when the encoder gives ``data`` for them (it does for the toolkit's own fields).
    if len(region) >= len(data) or encode_png(pixels) != data:
        return None
    return box, region


def apply_patch(base: bytes, region: bytes, box: Box) -> bytes:
    """The field's bytes: ``region`` pasted into ``base`` at ``box``, encoded as PNG."""
    from nearid_data.imageio import decode_png, encode_png

    pixels = decode_png(base).copy()
    x0, y0, x1, y1 = box
    pixels[y0:y1, x0:x1] = decode_png(region)
    return encode_png(pixels)
