"""All image decoding and encoding of the toolkit.

Untrusted dataset files go through :func:`decode_image` / :func:`decode_mask`: every input either
becomes a normalised RGB ``uint8`` array (with notes saying what was normalised) or raises
:class:`~nearid_data.errors.Rejection` with a reason code. No other exception escapes for any
bytes input, except ``MemoryError``: running out of memory is a machine problem, and recording
it as a bad sample would silently drop good data.

The toolkit's own intermediates are PNG, written by :func:`encode_png` and read back by the
fast :func:`decode_png` / :func:`decode_mask_png`, which trust their input.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from nearid_data.errors import Rejection

DEFAULT_MAX_PIXELS = 64_000_000
"""Largest ``width * height`` decoded (8000 x 8000). Above every real camera photo we ingest
(a 50 MP sensor is 8192 x 6144), yet it bounds one decode to well under 1 GB. It is also below
PIL's own global bomb limit (~89.5 MP), so with the default our check decides, not PIL's."""

PNG_COMPRESSION = 1
"""zlib level for intermediates: level 3 was 30-40% slower on 256-1024 px photos for 1-3% less."""

# Raster formats seen in image datasets (the JPEG opener also yields multi-picture "MPO" files).
# Restricting Image.open keeps exotic decoders (EPS runs Ghostscript) away from untrusted bytes;
# anything else is "not_an_image".
_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "PPM", "AVIF")
# Lossy codecs ring around edges, so a mask stored in them has faint non-zero background pixels.
_LOSSY_FORMATS = frozenset({"JPEG", "MPO"})
# Raw modes with 16 bits per channel; PIL keeps only the high byte when it loads them as RGB(A)/LA.
_16BIT_RAWMODE_SUFFIXES = (";16B", ";16L", ";16N")
_ALPHA_MODES = frozenset({"LA", "La", "PA", "RGBA", "RGBa"})
_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class DecodedImage:
    """A decoded dataset image and what was done to normalise it."""

    rgb: np.ndarray  # (H, W, 3) uint8, C-contiguous, writeable
    notes: tuple[str, ...]  # normalisations applied, in order: ("exif_transpose", "cmyk_to_rgb")
    alpha: np.ndarray | None  # (H, W) bool, alpha > 127; None when the input was fully opaque
    source_format: str  # PIL's format name: "JPEG", "PNG", "MPO", ...


def decode_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Decode untrusted image bytes to RGB uint8, or raise ``Rejection``.

    ``max_pixels`` is checked against the size in the header before any pixel data is decoded.
    PIL's global limit still applies above it: more than twice ``Image.MAX_IMAGE_PIXELS`` is
    rejected as ``too_many_pixels`` whatever ``max_pixels`` says.
    """
    img, source_format, notes = _load(data, max_pixels)
    rgb, alpha = _to_rgb(img, notes)
    rgb = np.require(rgb, np.uint8, ("C_CONTIGUOUS", "WRITEABLE"))
    return DecodedImage(rgb, tuple(dict.fromkeys(notes)), alpha, source_format)


def decode_mask(data: bytes, *, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Decode untrusted mask bytes to a bool (H, W) array, or raise ``Rejection``.

    The image is converted to grayscale (alpha is ignored) after EXIF orientation. Foreground is
    ``> 127`` for JPEG masks, whose compression noise would otherwise turn the background into
    speckle, and ``> 0`` for lossless formats, so 0/1 label masks work. ``shape`` is (H, W);
    a different size raises ``Rejection("mask_size_mismatch")``.
    """
    img, source_format, _notes = _load(data, DEFAULT_MAX_PIXELS)
    if img.mode in ("1", "L", "I", "F") or img.mode.startswith("I;16"):
        values = np.asarray(img)  # keep the raw values: converting would clip or rescale them
    else:
        values = np.asarray(_convert(img, "L"))
    mask = values > (127 if source_format in _LOSSY_FORMATS else 0)
    if shape is not None and mask.shape != tuple(shape):
        raise Rejection("mask_size_mismatch", f"mask is {mask.shape}, expected {tuple(shape)}")
    return np.ascontiguousarray(mask)


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes for an RGB uint8 (H, W, 3) image or a bool/uint8 (H, W) mask (bool -> 0/255).

    The same array always gives the same bytes with the same OpenCV build; across builds
    (zlib versions) the bytes may differ, so compare decoded pixels, not file hashes.
    """
    pixels: np.ndarray
    if array.ndim == 2 and array.dtype == np.bool_:
        pixels = array.astype(np.uint8) * 255
    elif array.ndim == 2 and array.dtype == np.uint8:
        pixels = np.ascontiguousarray(array)
    elif array.ndim == 3 and array.shape[2] == 3 and array.dtype == np.uint8:
        pixels = cv2.cvtColor(np.ascontiguousarray(array), cv2.COLOR_RGB2BGR)  # cv2 writes BGR
    else:
        raise ValueError(f"cannot encode {array.dtype} array of shape {array.shape} as PNG")
    ok, buffer = cv2.imencode(".png", pixels, [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
    if not ok:
        raise ValueError(f"OpenCV failed to encode an array of shape {array.shape} as PNG")
    return buffer.tobytes()


def decode_png(data: bytes) -> np.ndarray:
    """Decode one of the toolkit's own PNGs: RGB (H, W, 3) or single-channel (H, W) uint8."""
    try:
        pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as error:  # e.g. an empty buffer fails an assertion instead of returning None
        raise Rejection("not_an_image", str(error)) from None
    if pixels is None:
        raise Rejection("not_an_image", "OpenCV could not decode the PNG")
    if pixels.dtype != np.uint8 or (pixels.ndim == 3 and pixels.shape[2] != 3):
        raise Rejection("unsupported_mode", f"{pixels.dtype} PNG of shape {pixels.shape}")
    return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB) if pixels.ndim == 3 else pixels


def decode_mask_png(data: bytes) -> np.ndarray:
    """Decode one of the toolkit's own mask PNGs to a bool (H, W) array."""
    pixels = decode_png(data)
    if pixels.ndim != 2:
        raise Rejection("unsupported_mode", f"mask PNG has shape {pixels.shape}")
    return pixels > 0


def _load(data: bytes, max_pixels: int) -> tuple[Image.Image, str, list[str]]:
    """Open, check the declared size, fully decode the first frame, apply EXIF orientation.

    Returns the image, its format name (the transposed copy no longer carries it) and notes.
    """
    if not data:
        raise Rejection("empty_file")
    notes: list[str] = []
    try:
        # Scoped, not global: our max_pixels check is the authority, so PIL's bomb *warning* is
        # noise; its bomb *error* (beyond twice its global limit) still arrives as an exception.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=_FORMATS)
            source_format = img.format or ""
            width, height = img.size
            if width * height > max_pixels:
                raise Rejection("too_many_pixels", f"{width}x{height} > {max_pixels} pixels")
            if width * height == 0:
                raise Rejection("corrupt_image", f"empty image: {width}x{height}")
            if getattr(img, "n_frames", 1) > 1:
                notes.append("first_frame")  # Image.open is positioned on frame 0
            if any(_rawmode(tile.args).endswith(_16BIT_RAWMODE_SUFFIXES) for tile in img.tile):
                notes.append("16bit_to_8bit")
            img.load()  # decode everything now: a truncated file must fail here, not later
            upright = _apply_exif_orientation(img, notes)
    except Rejection:
        raise
    except Image.DecompressionBombError as error:
        raise Rejection("too_many_pixels", str(error)) from None
    except UnidentifiedImageError:
        raise Rejection("not_an_image", f"not one of {', '.join(_FORMATS)}") from None
    except MemoryError:
        raise
    # Blind on purpose: PIL's decoders raise OSError, SyntaxError, ValueError, struct.error, ...
    except Exception as error:
        reason = "truncated_image" if "truncated" in str(error).lower() else "corrupt_image"
        raise Rejection(reason, f"{type(error).__name__}: {error}") from None
    return upright, source_format, notes


def _apply_exif_orientation(img: Image.Image, notes: list[str]) -> Image.Image:
    """Rotate or flip as the EXIF orientation tag says, so pixels are upright as viewers show."""
    if img.getexif().get(_EXIF_ORIENTATION, 1) not in range(2, 9):
        return img
    notes.append("exif_transpose")
    return ImageOps.exif_transpose(img)


def _rawmode(args: object) -> str:
    """The raw mode in a PIL tile's decoder arguments (a string, or first in a tuple)."""
    if isinstance(args, tuple) and args:
        args = args[0]
    return args if isinstance(args, str) else ""


def _to_rgb(img: Image.Image, notes: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """Any decoded PIL image as RGB uint8 plus an optional alpha mask, noting what changed."""
    mode = img.mode
    if mode in ("I", "F") or mode.startswith("I;16"):
        values = np.asarray(img)
        if mode == "F":
            notes.append("float_to_8bit")
            gray = _float_to_uint8(values)
        else:
            notes.append("16bit_to_8bit")
            # The full 16-bit range maps onto 8 bits; "I" values outside it are clipped first.
            gray = (np.clip(values, 0, 65535) >> 8).astype(np.uint8)
        notes.append("grayscale_to_rgb")
        return np.repeat(gray[:, :, None], 3, axis=2), None
    if mode in ("P", "PA"):
        notes.append("palette_to_rgb")
    elif mode in ("1", "L", "LA", "La"):
        notes.append("grayscale_to_rgb")
    elif mode not in ("RGB", "RGBA", "RGBa", "RGBX"):
        notes.append(f"{mode.lower()}_to_rgb")  # cmyk_to_rgb, ycbcr_to_rgb, lab_to_rgb, ...
    # "transparency" is a palette alpha table or a colour key (PNG tRNS, GIF) in P, 1, L or RGB.
    has_alpha = mode in _ALPHA_MODES or "transparency" in img.info
    pixels = np.asarray(_convert(img, "RGBA" if has_alpha else "RGB"))
    if not has_alpha:
        return pixels, None
    return _composite_on_white(pixels, notes)


def _convert(img: Image.Image, mode: str) -> Image.Image:
    """``img.convert(mode)``, with conversions PIL cannot do rejected as ``unsupported_mode``."""
    if img.mode == mode:
        return img
    try:
        return img.convert(mode)
    except ValueError as error:
        raise Rejection("unsupported_mode", f"{img.mode} -> {mode}: {error}") from None


def _float_to_uint8(values: np.ndarray) -> np.ndarray:
    """Float pixels to uint8: data within [0, 1] is scaled to 0..255, anything else clipped."""
    values = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=255.0, neginf=0.0)
    scale = 255.0 if values.max(initial=0.0) <= 1.0 else 1.0
    return np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)


def _composite_on_white(rgba: np.ndarray, notes: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """Composite RGBA onto white; the alpha mask is returned only if some pixel is not opaque.

    White, because transparent inputs are mostly product cut-outs, conventionally shown on white,
    and black would darken their anti-aliased edges.
    """
    alpha = rgba[:, :, 3]
    if alpha.min() == 255:
        return rgba[:, :, :3], None
    notes.append("rgba_composited")
    weight = alpha[:, :, None].astype(np.uint32)
    # Integer blend with rounding: exact and identical on every machine.
    rgb = (rgba[:, :, :3] * weight + 255 * (255 - weight) + 127) // 255
    return rgb.astype(np.uint8), alpha > 127
