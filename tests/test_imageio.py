"""Tests for nearid_data.imageio: every bad file gets its outcome, normalisations are exact."""

from __future__ import annotations

import io
import resource
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile

from nearid_data.errors import Rejection
from nearid_data.imageio import (
    DecodedImage,
    decode_image,
    decode_mask,
    decode_mask_png,
    decode_png,
    encode_png,
)
from tests.badimages import (
    EXIF_ORIENTATION,
    image_bytes,
    png_header_only,
    valid_image,
    write_bad_images,
)


def _encode_cv2(pixels: np.ndarray, extension: str = ".png") -> bytes:
    ok, buffer = cv2.imencode(extension, pixels)
    assert ok
    return buffer.tobytes()


def _outcome(data: bytes) -> str:
    """``"ok:<notes>"`` or the rejection reason, checking the decoded array on success."""
    try:
        decoded = decode_image(data)
    except Rejection as rejection:
        return rejection.reason
    _assert_normalised(decoded)
    return "ok:" + ",".join(decoded.notes)


def _assert_normalised(decoded: DecodedImage) -> None:
    rgb = decoded.rgb
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
    assert rgb.flags.c_contiguous
    if decoded.alpha is not None:
        assert decoded.alpha.dtype == np.bool_ and decoded.alpha.shape == rgb.shape[:2]


def test_every_bad_image_gets_its_expected_outcome(tmp_path: Path) -> None:
    expected = write_bad_images(tmp_path)
    actual = {name: _outcome((tmp_path / name).read_bytes()) for name in expected}
    assert actual == expected


def test_plain_png_and_jpeg_decode_to_their_pixels() -> None:
    rgb = valid_image(5)
    decoded = decode_image(image_bytes(Image.fromarray(rgb), "PNG"))
    assert decoded.notes == () and decoded.alpha is None and decoded.source_format == "PNG"
    np.testing.assert_array_equal(decoded.rgb, rgb)
    decoded = decode_image(image_bytes(Image.fromarray(rgb), "JPEG", quality=95, subsampling=0))
    assert decoded.source_format == "JPEG"
    assert np.abs(decoded.rgb.astype(int) - rgb).mean() < 5


def test_exif_orientation_6_rotates_clockwise() -> None:
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    data = image_bytes(Image.fromarray(valid_image(1)), "JPEG", exif=exif)
    stored = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))  # as stored, not rotated
    decoded = decode_image(data)
    assert decoded.notes == ("exif_transpose",)
    assert stored.shape == (40, 48, 3) and decoded.rgb.shape == (48, 40, 3)
    np.testing.assert_array_equal(decoded.rgb, np.rot90(stored, k=-1))  # k=-1: clockwise


def test_cmyk_jpeg_keeps_its_colours() -> None:
    rgb = valid_image(2)
    decoded = decode_image(image_bytes(Image.fromarray(rgb).convert("CMYK"), "JPEG", quality=95))
    assert decoded.notes == ("cmyk_to_rgb",)
    assert np.abs(decoded.rgb.astype(int) - rgb).mean() < 6  # not inverted, not channel-swapped


def test_16bit_grayscale_keeps_the_high_byte() -> None:
    gray = np.random.default_rng(0).integers(0, 65536, (40, 48), dtype=np.uint16)
    decoded = decode_image(_encode_cv2(gray))
    assert decoded.notes == ("16bit_to_8bit", "grayscale_to_rgb")
    np.testing.assert_array_equal(decoded.rgb, np.repeat((gray >> 8)[:, :, None], 3, axis=2))


def test_16bit_rgb_keeps_the_high_byte() -> None:
    bgr = np.random.default_rng(1).integers(0, 65536, (40, 48, 3), dtype=np.uint16)
    decoded = decode_image(_encode_cv2(bgr))
    assert decoded.notes == ("16bit_to_8bit",)
    np.testing.assert_array_equal(decoded.rgb, (bgr[:, :, ::-1] >> 8).astype(np.uint8))


def test_32bit_integer_image_is_clipped_to_16_bits_then_scaled() -> None:
    values = np.array([[-5, 0, 256 * 100], [70_000, 65_535, 255]], dtype=np.int32)
    decoded = decode_image(image_bytes(Image.fromarray(values, mode="I"), "TIFF"))
    assert decoded.notes == ("16bit_to_8bit", "grayscale_to_rgb")
    np.testing.assert_array_equal(decoded.rgb[:, :, 0], [[0, 0, 100], [255, 255, 0]])


@pytest.mark.parametrize(
    ("values", "expected"),
    [([0.0, 0.5, 1.0, np.nan], [0, 128, 255, 0]), ([-3.0, 100.4, 300.0, 1.0], [0, 100, 255, 1])],
)
def test_float_image_is_scaled_from_unit_range_or_clipped(
    values: list[float], expected: list[int]
) -> None:
    image = Image.fromarray(np.array([values], dtype=np.float32), mode="F")
    decoded = decode_image(image_bytes(image, "TIFF"))
    assert decoded.notes == ("float_to_8bit", "grayscale_to_rgb")
    np.testing.assert_array_equal(decoded.rgb[0, :, 1], expected)


def test_rgba_is_composited_on_white_with_an_alpha_mask() -> None:
    rgb = valid_image(3)
    alpha = np.full((40, 48), 255, np.uint8)
    alpha[:, :10] = 0
    alpha[:, 10:20] = 100
    decoded = decode_image(image_bytes(Image.fromarray(np.dstack([rgb, alpha])), "PNG"))
    assert decoded.notes == ("rgba_composited",)
    assert (decoded.rgb[:, :10] == 255).all()
    np.testing.assert_array_equal(decoded.rgb[:, 20:], rgb[:, 20:])
    blended = (rgb[:, 10:20].astype(int) * 100 + 255 * 155 + 127) // 255
    np.testing.assert_array_equal(decoded.rgb[:, 10:20], blended)
    np.testing.assert_array_equal(decoded.alpha, alpha > 127)


def test_opaque_alpha_is_dropped_without_a_mask() -> None:
    rgb = valid_image(4)
    rgba = np.dstack([rgb, np.full((40, 48), 255, np.uint8)])
    decoded = decode_image(image_bytes(Image.fromarray(rgba), "PNG"))
    assert decoded.notes == () and decoded.alpha is None
    np.testing.assert_array_equal(decoded.rgb, rgb)
    _assert_normalised(decoded)


def test_grayscale_with_alpha_is_composited() -> None:
    la = np.dstack([np.full((4, 6), 10, np.uint8), np.array([[0] * 6, [255] * 6] * 2, np.uint8)])
    decoded = decode_image(image_bytes(Image.fromarray(la, mode="LA"), "PNG"))
    assert decoded.notes == ("grayscale_to_rgb", "rgba_composited")
    assert (decoded.rgb[0] == 255).all() and (decoded.rgb[1] == 10).all()


@pytest.mark.parametrize(("mode", "key"), [("RGB", (1, 2, 3)), ("L", 7), ("1", 0)])
def test_colour_key_transparency_is_composited(mode: str, key: int | tuple[int, ...]) -> None:
    image = Image.new(mode, (4, 2), key)
    image.paste(Image.new(mode, (2, 2), 1 if mode == "1" else (9, 9, 9)[: len(mode)]), (0, 0))
    decoded = decode_image(image_bytes(image, "PNG", transparency=key))
    assert "rgba_composited" in decoded.notes
    np.testing.assert_array_equal(decoded.alpha, [[True, True, False, False]] * 2)
    assert (decoded.rgb[:, 2:] == 255).all()


def test_max_pixels_is_checked_from_the_header() -> None:
    data = image_bytes(Image.fromarray(valid_image(0)), "PNG")
    with pytest.raises(Rejection) as raised:
        decode_image(data, max_pixels=40 * 48 - 1)
    assert raised.value.reason == "too_many_pixels"
    assert decode_image(data, max_pixels=40 * 48).rgb.shape == (40, 48, 3)


@pytest.mark.parametrize(
    "data",
    [
        png_header_only(100_000, 100_000),  # beyond PIL's hard limit
        png_header_only(10_000, 10_000, 8, 6),  # between PIL's warning and error limits
        png_header_only(9_000, 8_000, 8, 2),  # under PIL's limits: our check alone
    ],
)
def test_bombs_are_rejected_before_allocating_pixels(data: bytes) -> None:
    peak_before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(Rejection) as raised:
            decode_image(data)
    assert raised.value.reason == "too_many_pixels"
    assert time.perf_counter() - started < 1.0
    peak_growth_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before_kib) / 1024
    assert peak_growth_mib < 200
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]


def test_pil_global_state_is_left_alone(tmp_path: Path) -> None:
    limit, filters = Image.MAX_IMAGE_PIXELS, list(warnings.filters)
    for name in write_bad_images(tmp_path):
        _outcome((tmp_path / name).read_bytes())
    assert limit == Image.MAX_IMAGE_PIXELS
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    assert warnings.filters == filters


def _fuzz_inputs() -> list[bytes]:
    """Random bytes, random truncations and random byte corruptions of valid JPEG and PNG."""
    rng = np.random.default_rng(2024)
    pil_rgb = Image.fromarray(valid_image(7))
    valid = [image_bytes(pil_rgb, "JPEG"), image_bytes(pil_rgb, "PNG")]
    inputs = [rng.bytes(int(n)) for n in rng.integers(0, 2000, 120)]
    inputs += [valid[i % 2][:4] + rng.bytes(int(n)) for i, n in enumerate(rng.integers(0, 500, 80))]
    for data in valid:
        inputs += [data[: int(cut)] for cut in rng.integers(1, len(data), 50)]
        for _ in range(50):
            corrupted = bytearray(data)
            for position in rng.integers(0, len(data), int(rng.integers(1, 4))):
                corrupted[position] = int(rng.integers(0, 256))
            inputs.append(bytes(corrupted))
    return inputs


def test_decoding_never_raises_anything_but_rejection() -> None:
    for data in _fuzz_inputs():
        for decode in (decode_image, decode_mask, decode_png, decode_mask_png):
            try:
                result = decode(data)
            except Rejection:
                continue
            if isinstance(result, DecodedImage):
                _assert_normalised(result)
            else:
                assert result.dtype in (np.bool_, np.uint8) and result.ndim in (2, 3)


def test_png_round_trips_rgb_and_masks_exactly() -> None:
    rgb = np.random.default_rng(3).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    np.testing.assert_array_equal(decode_png(encode_png(rgb)), rgb)
    np.testing.assert_array_equal(decode_image(encode_png(rgb)).rgb, rgb)  # channel order right
    mask = np.random.default_rng(4).random((37, 53)) > 0.5
    np.testing.assert_array_equal(decode_mask_png(encode_png(mask)), mask)
    np.testing.assert_array_equal(decode_png(encode_png(mask)), mask.astype(np.uint8) * 255)
    gray = np.arange(256, dtype=np.uint8).reshape(16, 16)
    np.testing.assert_array_equal(decode_png(encode_png(gray)), gray)


def test_encode_png_is_deterministic() -> None:
    rgb = valid_image(6, size=(64, 80))
    first = encode_png(rgb)
    assert first == encode_png(rgb.copy())
    assert encode_png(rgb[:, ::-1]) == encode_png(np.ascontiguousarray(rgb[:, ::-1]))
    assert first.startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize(
    "array",
    [np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4), np.float32), np.zeros(4, np.uint8)],
)
def test_encode_png_refuses_other_arrays(array: np.ndarray) -> None:
    with pytest.raises(ValueError):
        encode_png(array)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not_an_image"),
        (b"not a png at all", "not_an_image"),
        (_encode_cv2(np.zeros((4, 4), np.uint16)), "unsupported_mode"),
        (_encode_cv2(np.zeros((4, 4, 4), np.uint8)), "unsupported_mode"),
    ],
)
def test_decode_png_rejects_what_the_toolkit_never_writes(data: bytes, reason: str) -> None:
    with pytest.raises(Rejection) as raised:
        decode_png(data)
    assert raised.value.reason == reason


def test_decode_mask_png_rejects_colour() -> None:
    with pytest.raises(Rejection) as raised:
        decode_mask_png(encode_png(valid_image(0)))
    assert raised.value.reason == "unsupported_mode"


def _disc_mask(height: int = 40, width: int = 48) -> np.ndarray:
    rows, cols = np.mgrid[0:height, 0:width]
    return (rows - height / 2) ** 2 + (cols - width / 2) ** 2 < (height / 3) ** 2


def test_jpeg_mask_is_thresholded_at_half() -> None:
    mask = _disc_mask()
    data = image_bytes(Image.fromarray(mask.astype(np.uint8) * 255), "JPEG", quality=75)
    stored = np.asarray(Image.open(io.BytesIO(data)))
    assert ((stored > 0) & ~mask).any()  # compression noise that "> 0" would turn into mask
    decoded = decode_mask(data)
    np.testing.assert_array_equal(decoded, stored > 127)
    assert (decoded != mask).mean() < 0.01


def test_lossless_label_mask_counts_every_non_zero_value() -> None:
    labels = _disc_mask().astype(np.uint8)  # 0/1, as label masks often are
    np.testing.assert_array_equal(
        decode_mask(image_bytes(Image.fromarray(labels), "PNG")), labels > 0
    )
    rgb_mask = np.repeat(labels[:, :, None] * 200, 3, axis=2)
    np.testing.assert_array_equal(
        decode_mask(image_bytes(Image.fromarray(rgb_mask), "PNG")), labels > 0
    )


def test_mask_follows_exif_orientation_and_checks_shape() -> None:
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    mask = _disc_mask()
    mask[:5, :5] = True  # a top-left marker, to find after rotation
    data = image_bytes(Image.fromarray(mask.astype(np.uint8) * 255), "JPEG", exif=exif, quality=95)
    decoded = decode_mask(data, shape=(48, 40))
    np.testing.assert_array_equal(decoded[:5, -5:], np.ones((5, 5), bool))  # now top-right
    with pytest.raises(Rejection) as raised:
        decode_mask(data, shape=(40, 48))
    assert raised.value.reason == "mask_size_mismatch"


def test_decode_mask_rejects_like_decode_image(tmp_path: Path) -> None:
    for name, outcome in write_bad_images(tmp_path).items():
        if outcome.startswith("ok:"):
            continue
        with pytest.raises(Rejection) as raised:
            decode_mask((tmp_path / name).read_bytes())
        assert raised.value.reason == outcome, name
