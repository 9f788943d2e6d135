"""Writers of bad and odd image files, for tests of everything that reads raw datasets.

:func:`write_bad_images` writes one small file per case and says what decoding it must give.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

EXIF_ORIENTATION = 0x0112


def valid_image(seed: int, size: tuple[int, int] = (40, 48)) -> np.ndarray:
    """A deterministic RGB uint8 image of ``size`` (height, width): gradients, blocks and noise.

    It has structure in both directions, so a wrong rotation or channel order shows.
    """
    height, width = size
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width]
    image = np.stack(
        [rows * 255 / max(height - 1, 1), cols * 255 / max(width - 1, 1), (rows + cols) % 64 * 4],
        axis=2,
    )
    for _ in range(3):
        top, left = rng.integers(0, height // 2), rng.integers(0, width // 2)
        image[top : top + height // 3, left : left + width // 3] = rng.integers(0, 256, 3)
    image += rng.normal(0, 6, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def image_bytes(image: Image.Image, fmt: str, **options: object) -> bytes:
    """``image`` saved in format ``fmt`` (PIL's name), as bytes."""
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_header_only(width: int, height: int, bit_depth: int = 1, color_type: int = 0) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` but whose data is one zero row.

    A few hundred bytes on disk, but a decoder that trusts the header allocates the full size.
    """
    bits_per_pixel = bit_depth * {0: 1, 2: 3, 4: 2, 6: 4}[color_type]
    row = b"\x00" * (1 + (width * bits_per_pixel + 7) // 8)  # filter byte + packed pixels
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(row))
        + _png_chunk(b"IEND", b"")
    )


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload)
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _encode_cv2(pixels: np.ndarray, extension: str) -> bytes:
    ok, buffer = cv2.imencode(extension, pixels)
    assert ok, f"cv2 could not write {extension}"
    return buffer.tobytes()


def write_bad_images(directory: Path) -> dict[str, str]:
    """Write one file per case into ``directory``; return {file name: expected outcome}.

    An outcome is a rejection reason (``"truncated_image"``), or ``"ok:"`` followed by the exact
    comma-separated notes ``decode_image`` must report (``"ok:"`` alone: no normalisation).
    """
    rgb = valid_image(0)
    pil_rgb = Image.fromarray(rgb)
    jpeg = image_bytes(pil_rgb, "JPEG", quality=90)
    png = image_bytes(pil_rgb, "PNG")
    rng = np.random.default_rng(1)

    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    rgba[10:30, 12:36, 3] = 0  # a transparent hole
    rgba[0:4, :, 3] = 128  # and a half-transparent band
    palette = pil_rgb.quantize(colors=16)
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # "rotate 90 degrees clockwise to display"
    frames = [Image.fromarray(valid_image(seed)).quantize(colors=32) for seed in (2, 3)]

    cases: dict[str, tuple[bytes, str]] = {
        "empty.jpg": (b"", "empty_file"),
        "notes.jpg": (b"this is a text file, not a JPEG\n" * 4, "not_an_image"),
        "truncated.jpg": (jpeg[: len(jpeg) // 2], "truncated_image"),
        "truncated.png": (png[: len(png) // 2], "truncated_image"),
        "cmyk.jpg": (image_bytes(pil_rgb.convert("CMYK"), "JPEG", quality=90), "ok:cmyk_to_rgb"),
        "gray16.png": (
            _encode_cv2(rng.integers(0, 65536, rgb.shape[:2], dtype=np.uint16), ".png"),
            "ok:16bit_to_8bit,grayscale_to_rgb",
        ),
        "rgb16.png": (
            _encode_cv2(rng.integers(0, 65536, rgb.shape, dtype=np.uint16), ".png"),
            "ok:16bit_to_8bit",
        ),
        "rgba_transparent.png": (image_bytes(Image.fromarray(rgba), "PNG"), "ok:rgba_composited"),
        "gray.jpg": (image_bytes(pil_rgb.convert("L"), "JPEG"), "ok:grayscale_to_rgb"),
        "palette.png": (image_bytes(palette, "PNG"), "ok:palette_to_rgb"),
        "palette_transparent.png": (
            image_bytes(palette, "PNG", transparency=int(np.asarray(palette)[20, 20])),
            "ok:palette_to_rgb,rgba_composited",
        ),
        "animated.gif": (
            image_bytes(frames[0], "GIF", save_all=True, append_images=frames[1:]),
            "ok:first_frame,palette_to_rgb",
        ),
        "exif_rotated.jpg": (image_bytes(pil_rgb, "JPEG", exif=exif), "ok:exif_transpose"),
        # 10^10 pixels: beyond PIL's own hard limit.
        "bomb.png": (png_header_only(100_000, 100_000), "too_many_pixels"),
        # 72 MP of RGB: under PIL's limits, so only our header check stands in the way.
        "bomb_72mp.png": (png_header_only(9_000, 8_000, 8, 2), "too_many_pixels"),
        "bjørn mug 1.jpg": (jpeg, "ok:"),
    }
    for name, (data, _outcome) in cases.items():
        (directory / name).write_bytes(data)
    return {name: outcome for name, (_data, outcome) in cases.items()}
