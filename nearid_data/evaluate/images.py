"""Images to embed, by reference: what identifies them for the cache, and how to decode them.

An ``ImageRef`` is cheap: its digest is the sha256 of the bytes its pixels come from (the image,
and in foreground-only mode its mask too), and decoding waits until the cache misses.

Foreground-only ("masked") mode is NearID's: every pixel outside the subject mask is set to black
before embedding (their ``apply_mask_to_image_pil``, ``fill="black"``), the image keeps its size
and framing. A distractor is masked with the mask of the view it was painted into, as NearID
masks ``nimgJ`` with ``masksJ``, so a view and its distractor keep the same visible support.

With ``clean`` (NearID's released evaluation code, ``--convention release``), a mask is first
cleaned as that code cleans it (``clean_mask``), then binarised at > 0 and, when its size differs
from the image's, resized to it by nearest neighbour (their ``apply_mask_to_image_pil``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from nearid_data.errors import NearidError, Rejection
from nearid_data.imageio import decode_image, decode_mask, decode_mask_png, decode_png

BACKGROUND_FILL = 0
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"})


@dataclass(frozen=True)
class ImageRef:
    key: str
    """The sample key, or the file's path relative to the directory it was found in."""
    field: str
    """The sample field (``image.png``, ``distractor_<id>.png``), or ``file`` for image files."""
    digest: str
    load: Callable[[], np.ndarray]
    """Decodes the RGB uint8 (H, W, 3) pixels to embed, background blacked out when masked."""

    def cache_id(self) -> str:
        return hashlib.sha256(f"{self.key}\0{self.field}\0{self.digest}".encode()).hexdigest()


def foreground_only(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A copy of ``rgb`` with every pixel outside the bool ``mask`` set to ``BACKGROUND_FILL``."""
    if mask.shape != rgb.shape[:2]:
        raise NearidError(f"mask of shape {mask.shape} for an image of shape {rgb.shape}")
    out = rgb.copy()
    out[~mask] = BACKGROUND_FILL
    return out


def clean_mask(gray: np.ndarray) -> np.ndarray:
    """NearID's ``_clean_mask_pil`` then ``binarize_mask`` (``evaluation/sim_test.py``) on a
    grayscale uint8 (H, W) mask: 5x5 Gaussian blur, threshold > 10, 5x5 closing then opening, and
    only the largest outer contour, filled. Returns bool (H, W)."""
    blurred = cv2.GaussianBlur(np.ascontiguousarray(gray, np.uint8), (5, 5), 0)
    _, mask = cv2.threshold(blurred, 10, 255, cv2.THRESH_BINARY)
    kernel = np.ones((5, 5), np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if contours:
        # their sorted(..., reverse=True)[0]: the first contour of the largest area
        largest = max(contours, key=cv2.contourArea)
        mask = np.zeros_like(mask)
        cv2.drawContours(mask, [largest], -1, 255, thickness=cv2.FILLED)
    return mask > 0  # type: ignore[no-any-return]


def _fitted(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if mask.shape == shape[:2]:
        return mask
    resized = cv2.resize(mask.astype(np.uint8), shape[1::-1], interpolation=cv2.INTER_NEAREST)
    return resized > 0  # type: ignore[no-any-return]


def _digest(image: bytes, mask: bytes | None, clean: bool = False) -> str:
    if mask is None:
        return hashlib.sha256(image).hexdigest()
    both = hashlib.sha256(image).digest() + hashlib.sha256(mask).digest()
    return hashlib.sha256(both + (b"clean" if clean else b"")).hexdigest()


def png_ref(
    key: str, field: str, image: bytes, mask: bytes | None = None, *, clean: bool = False
) -> ImageRef:
    """A field of one of the toolkit's own samples (trusted PNG bytes), masked if ``mask``."""

    def load() -> np.ndarray:
        rgb = decode_png(image)
        if mask is None:
            return rgb
        if clean:
            return foreground_only(rgb, _fitted(clean_mask(decode_png(mask)), rgb.shape))
        return foreground_only(rgb, decode_mask_png(mask))

    return ImageRef(key, field, _digest(image, mask, clean), load)


def encoded_ref(
    key: str, field: str, image: bytes, mask: bytes | None = None, *, clean: bool = False
) -> ImageRef:
    """An image cell of a dataset (untrusted bytes, any format ``decode_image`` takes), masked if
    ``mask``; ``key`` names its row for the cache and for errors."""

    def load() -> np.ndarray:
        try:
            rgb = decode_image(image).rgb
            if mask is None:
                return rgb
            if clean:
                gray = cv2.cvtColor(decode_image(mask).rgb, cv2.COLOR_RGB2GRAY)
                return foreground_only(rgb, _fitted(clean_mask(gray), rgb.shape))
            return foreground_only(rgb, decode_mask(mask, shape=rgb.shape[:2]))
        except Rejection as exc:
            raise NearidError(f"{key} {field}: cannot be decoded ({exc})") from None

    return ImageRef(key, field, _digest(image, mask, clean), load)


def file_ref(key: str, path: Path, mask: Path | None = None) -> ImageRef:
    """An image file (untrusted: any format ``decode_image`` takes), masked if ``mask``; ``key``
    names it for the cache. Bytes are read now for the digest and again on a cache miss."""
    image_bytes = _read(path)
    mask_bytes = None if mask is None else _read(mask)

    def load() -> np.ndarray:
        try:
            rgb = decode_image(_read(path)).rgb
            return rgb if mask is None else foreground_only(rgb, decode_mask(_read(mask)))
        except Rejection as exc:
            raise NearidError(f"{path}: cannot be decoded ({exc})") from None

    return ImageRef(key, "file", _digest(image_bytes, mask_bytes), load)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise NearidError(f"cannot read {path}: {exc}") from None


def image_files(folder: Path) -> list[Path]:
    """The image files directly in ``folder`` (by suffix, any case), sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
