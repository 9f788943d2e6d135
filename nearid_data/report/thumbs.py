"""Thumbnails for the report: JPEG bytes of a sample's images, drawn once and cached on disk.

The cache (``<build>/.report-cache/``) is keyed by the sample's content (``SampleRef.sha256``),
key, kind and size: a sample whose fields changed is redrawn, and a re-run reads the rest. A build
at a URL keeps its cache there too, each thumbnail one object.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import cv2
import numpy as np

from nearid_data.engine import storage
from nearid_data.engine.atomic import temp_path_for
from nearid_data.engine.catalog import Catalog
from nearid_data.engine.storage import Location, ObjectPath
from nearid_data.imageio import decode_mask_png, decode_png
from nearid_data.report.collect import SampleRef
from nearid_data.sample import Sample

CACHE_DIR = ".report-cache"
IMAGE = "image.png"
OVERLAY = "overlay"
"""The reference with its subject mask in red and the rest of the inpainting region in cyan."""

# JPEG, not PNG: thumbnails are embedded in one HTML file, and hundreds of lossless ones make it
# tens of megabytes; at this quality the differences a reviewer looks for stay visible.
JPEG_QUALITY = 90
_MASK_TINT = np.array([230, 40, 40], np.float32)
_RING_TINT = np.array([40, 200, 230], np.float32)
_TINT_ALPHA = 0.45


class Thumbnailer:
    def __init__(self, cache_dir: Location, size: int) -> None:
        self.cache_dir = cache_dir
        self.size = size
        self.drawn = 0  # thumbnails drawn rather than read from the cache
        self._catalogs: dict[Location, Catalog] = {}

    def get(self, ref: SampleRef, kinds: Sequence[str]) -> dict[str, bytes]:
        """JPEG thumbnails of one sample, per kind: a field name (``image.png``,
        ``distractor_<id>.png``) or ``OVERLAY``. The sample is read at most once."""
        paths = {kind: self._path(ref, kind) for kind in kinds}
        thumbs = {kind: path.read_bytes() for kind, path in paths.items() if path.exists()}
        missing = [kind for kind in kinds if kind not in thumbs]
        if missing:
            sample = self._sample(ref)
            for kind in missing:
                thumbs[kind] = _encode(self._shrink(_draw(sample, kind)))
                _write(paths[kind], thumbs[kind])
                self.drawn += 1
        return {kind: thumbs[kind] for kind in kinds}

    def _sample(self, ref: SampleRef) -> Sample:
        if ref.stage_dir not in self._catalogs:
            self._catalogs[ref.stage_dir] = Catalog(ref.stage_dir)
        catalog = self._catalogs[ref.stage_dir]
        return catalog.fetch(catalog.by_key[ref.key])

    def _path(self, ref: SampleRef, kind: str) -> Location:
        name = f"{ref.sha256[:16]}-{ref.key}-{kind.removesuffix('.png')}-{self.size}.jpg"
        return self.cache_dir / name

    def _shrink(self, rgb: np.ndarray) -> np.ndarray:
        """At most ``size`` pixels on the longer side (never enlarged: the page scales up)."""
        height, width = rgb.shape[:2]
        scale = self.size / max(height, width)
        if scale >= 1:
            return rgb
        new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
        return cv2.resize(rgb, new_size, interpolation=cv2.INTER_AREA)


def _draw(sample: Sample, kind: str) -> np.ndarray:
    if kind != OVERLAY:
        return _as_rgb(decode_png(sample[kind]))
    image = _as_rgb(decode_png(sample[IMAGE])).astype(np.float32)
    # Samples rejected early (at ingest or segment) may lack one mask or both.
    mask = decode_mask_png(sample["mask.png"]) if "mask.png" in sample else None
    if "inpaint_mask.png" in sample:
        ring = decode_mask_png(sample["inpaint_mask.png"])
        if mask is not None:
            ring &= ~mask
        image[ring] = (1 - _TINT_ALPHA) * image[ring] + _TINT_ALPHA * _RING_TINT
    if mask is not None:
        image[mask] = (1 - _TINT_ALPHA) * image[mask] + _TINT_ALPHA * _MASK_TINT
    return np.rint(image).astype(np.uint8)


def _as_rgb(pixels: np.ndarray) -> np.ndarray:
    return np.repeat(pixels[:, :, None], 3, axis=2) if pixels.ndim == 2 else pixels


def _encode(rgb: np.ndarray) -> bytes:
    bgr = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
    ok, buffer = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError(f"OpenCV failed to encode a thumbnail of shape {rgb.shape}")
    return buffer.tobytes()


def _write(path: Location, data: bytes) -> None:
    """Temporary name, then rename: a killed run leaves no half-written thumbnail. No fsync: a
    cache lost to a crash is only redrawn. On object stores: one upload, visible when complete."""
    if isinstance(path, ObjectPath):
        storage.write_bytes(path, data)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(path)
    tmp.write_bytes(data)
    os.replace(tmp, path)
