"""The cut-and-paste generator: a blue donor replaces a red reference subject."""

from __future__ import annotations

import numpy as np
import pytest

from nearid_data.distractors.base import Donor, InpaintRequest
from nearid_data.distractors.compositing import composite, measure
from nearid_data.distractors.cut_paste import CutPasteGenerator, placement
from nearid_data.errors import Rejection
from nearid_data.vision.masks import bbox, dilate

RED, BLUE = (210, 40, 40), (40, 60, 210)


def ellipse(shape: tuple[int, int], centre: tuple[float, float], axes: tuple[float, float]):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return ((xx - centre[0]) / axes[0]) ** 2 + ((yy - centre[1]) / axes[1]) ** 2 <= 1


def textured(shape: tuple[int, int], seed: int) -> np.ndarray:
    """A smooth greenish-grey gradient with mild noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    base = np.stack([60 + xx // 4, 110 + yy // 6, 70 + (xx + yy) // 8], axis=-1)
    return np.clip(base + rng.integers(-8, 9, (*shape, 3)), 0, 255).astype(np.uint8)


def painted(shape: tuple[int, int], mask: np.ndarray, colour: tuple[int, int, int], seed: int):
    image = textured(shape, seed)
    image[mask] = colour
    return image


def request(donor_mask: np.ndarray | None = None, seed: int = 11) -> InpaintRequest:
    shape = (120, 160)
    subject = ellipse(shape, (80, 62), (40, 24))  # wide
    donor = None
    if donor_mask is not None:
        donor_image = painted(donor_mask.shape, donor_mask, BLUE, seed=3)
        donor = Donor(identity="sibling", key="sibling/0", image=donor_image, mask=donor_mask)
    return InpaintRequest(
        key="ref/0",
        image=painted(shape, subject, RED, seed=1),
        mask=dilate(subject, 6),
        subject_mask=subject,
        prompt="",
        negative_prompt="",
        seed=seed,
        donor=donor,
    )


def small_wide_donor() -> np.ndarray:
    return ellipse((90, 100), (40, 50), (20, 12))


def boxy_donor() -> np.ndarray:
    mask = np.zeros((100, 120), bool)
    mask[20:80, 10:110] = True  # a wide rectangle: its corners stick out of an elliptic region
    return mask


def generate(req: InpaintRequest, **config: object) -> np.ndarray:
    generator = CutPasteGenerator(CutPasteGenerator.Config.model_validate(config))
    (raw,) = generator.generate([req])
    assert raw.dtype == np.uint8 and raw.shape == req.image.shape
    return composite(req.image, raw, req.mask)


def test_the_donor_takes_the_reference_subjects_place() -> None:
    req = request(small_wide_donor())
    result = generate(req)
    x0, y0, x1, y1 = bbox(req.subject_mask)  # type: ignore[misc]
    inside = result[y0:y1, x0:x1].reshape(-1, 3).astype(int)
    blue = (inside[:, 2] > 150) & (inside[:, 0] < 100)
    red = (inside[:, 0] > 150) & (inside[:, 2] < 100)
    assert blue.mean() > 0.6
    assert red.mean() < 0.02  # the old subject was filled in, not left peeking out


def test_the_background_outside_the_mask_is_unchanged() -> None:
    req = request(small_wide_donor())
    result = generate(req, fill="ns")
    assert np.array_equal(result[~req.mask], req.image[~req.mask])
    qa = measure(req.image, result, req.mask)
    assert qa.outside_equal and qa.inside_changed_fraction > 0.5


def test_a_same_shape_donor_covers_the_subject_unclipped() -> None:
    req = request(small_wide_donor())
    where = placement(req.subject_mask, req.donor.mask, req.mask)  # type: ignore[union-attr]
    assert where.clipped_fraction == 0.0
    assert where.covered_fraction > 0.98
    assert where.scale == pytest.approx(2.0, rel=0.1)  # 41-wide donor over an 81-wide subject


def test_a_small_donor_is_scaled_up_to_cover_the_subject() -> None:
    req = request(ellipse((90, 100), (40, 50), (10, 12)))  # narrower than the wide subject
    where = placement(req.subject_mask, req.donor.mask, req.mask)  # type: ignore[union-attr]
    fitted = min(81 / 21, 49 / 25)  # donor box just inside the subject box: leaves its sides bare
    assert where.scale > fitted * 1.1
    assert where.covered_fraction > 0.85
    assert where.clipped_fraction <= 0.2
    assert where.size[0] / where.size[1] == pytest.approx(21 / 25, rel=0.1)  # aspect kept


def test_a_differently_shaped_donor_covers_with_little_clipped() -> None:
    req = request(boxy_donor())
    where = placement(req.subject_mask, boxy_donor(), req.mask)
    assert where.covered_fraction > 0.95
    assert 0.0 < where.clipped_fraction <= 0.2
    result = generate(req)
    assert np.array_equal(result[~req.mask], req.image[~req.mask])  # the corners were cut away


def test_a_donor_that_cannot_cover_is_rejected_with_a_reason() -> None:
    bar = np.zeros((100, 100), bool)
    bar[10:90, 45:55] = True  # tall and thin: covering the wide subject would clip most of it
    req = request(bar)
    generator = CutPasteGenerator(CutPasteGenerator.Config())
    figures = generator.request_figures(req)
    assert figures["subject_covered"] < 0.85
    with pytest.raises(Rejection, match="subject_uncovered"):
        generator.check(figures)
    generator.check(generator.request_figures(request(small_wide_donor())))  # a good one passes


def test_a_donor_pushed_off_the_image_counts_as_clipped() -> None:
    req, everywhere = request(small_wide_donor()), np.ones((120, 160), bool)
    assert placement(req.subject_mask, small_wide_donor(), everywhere).clipped_fraction == 0.0
    bigger = placement(req.subject_mask, small_wide_donor(), everywhere, scale_factor=3)
    assert bigger.size[0] > 160 and bigger.clipped_fraction > 0.2


def test_generation_is_deterministic() -> None:
    req = request(small_wide_donor())
    assert np.array_equal(generate(req), generate(req))
    jittered = {"scale_jitter": 0.3}
    assert np.array_equal(generate(req, **jittered), generate(req, **jittered))


def test_jitter_draws_from_the_request_seed() -> None:
    generator = CutPasteGenerator(CutPasteGenerator.Config(scale_jitter=0.3))
    scales = {generator.placement_for(request(small_wide_donor(), seed=s)).scale for s in range(6)}
    base = CutPasteGenerator(CutPasteGenerator.Config()).placement_for(request(small_wide_donor()))
    assert len(scales) == 6 and all(0.7 * base.scale < s < 1.3 * base.scale for s in scales)
    plain = CutPasteGenerator(CutPasteGenerator.Config())
    assert plain.placement_for(request(small_wide_donor(), seed=1)).scale == pytest.approx(
        plain.placement_for(request(small_wide_donor(), seed=2)).scale
    )


def test_a_request_without_donor_is_an_error() -> None:
    generator = CutPasteGenerator(CutPasteGenerator.Config())
    assert CutPasteGenerator.needs_donor
    with pytest.raises(ValueError, match="donor"):
        generator.generate([request(None)])


def test_empty_masks_are_an_error() -> None:
    with pytest.raises(ValueError):
        placement(np.zeros((10, 10), bool), boxy_donor(), np.ones((10, 10), bool))
