"""Embedded default dataset: procedurally drawn object identities, so pipelines run offline.

An identity is one object instance ("mug-0003"): its category's silhouette with its own colours,
surface pattern, small mark and proportions. Identities of one category share the silhouette family,
which makes them near-identity distractors of each other. Each view re-draws the identity under a
new pose, scale, position, lighting and background. The subject is drawn once into an RGBA sprite
(premultiplied colour, anti-aliased coverage) and warped into the frame; the mask is the warped
coverage thresholded at one half, so it is exactly the pixels that are mostly subject. Views are
never mirrored: a mirrored object is a different (chiral) instance.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from nearid_data.errors import NearidError
from nearid_data.seeding import derive_seed, rng_for
from nearid_data.sources.backdrops import background as _background

RGB = tuple[int, int, int]
_Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in subject units
# A part of a subject: its contours (several make holes, even-odd) and colour; None is the body,
# which wears the identity's pattern.
_Part = tuple[tuple[np.ndarray, ...], RGB | None]

CATEGORIES: tuple[str, ...] = ("mug", "bottle", "shoe", "lamp")
_DESCRIPTIONS = {
    "mug": "a mug: a cylindrical drinking cup with a side handle",
    "bottle": "a bottle: a tall container with shoulders, a narrow neck and a screw cap",
    "shoe": "a shoe: a low sneaker seen from the side, with laces and a thick sole",
    "lamp": "a table lamp: a flared shade on a thin stem and a round base",
}
_ACCENT_PART = {"mug": "handle", "bottle": "cap", "shoe": "sole", "lamp": "base"}
_SHAPE_RANGES = {  # each identity draws its proportions uniformly from these ranges
    "mug": {"width": (0.62, 0.95), "taper": (0, 0.16), "handle": (0.36, 0.6), "reach": (0.2, 0.32)},
    "bottle": {"width": (0.32, 0.46), "neck": (0.08, 0.22), "shoulder": (0.06, 0.16),
               "cap": (0.06, 0.1)},
    "shoe": {"height": (0.34, 0.46), "sole": (0.05, 0.1), "toe": (0.3, 0.6), "collar": (0, 0.12)},
    "lamp": {"shade": (0.36, 0.52), "width": (0.55, 0.8), "flare": (0.45, 0.8), "base": (0.3, 0.5)},
}  # fmt: skip
# Colour and pattern words are the ones distractors.concepts.ATTRIBUTES knows, so captions can be
# perturbed word by word.
_PALETTE: dict[str, RGB] = {
    "red": (200, 40, 40), "orange": (235, 125, 35), "yellow": (240, 205, 50),
    "green": (60, 150, 70), "turquoise": (30, 150, 150), "blue": (45, 90, 200),
    "navy": (30, 45, 100), "purple": (120, 60, 160), "pink": (235, 130, 170),
    "brown": (120, 75, 40), "black": (35, 35, 35), "white": (240, 240, 235),
    "grey": (140, 140, 140), "beige": (215, 195, 160),
}  # fmt: skip
_PATTERNS = {
    "plain": "", "hstripes": "horizontal striped", "vstripes": "vertical striped",
    "diagonal": "diagonal striped", "dots": "polka-dot", "checker": "checkered", "zigzag": "zigzag",
}  # fmt: skip
_MARKS = ("star", "heart", "diamond", "triangle", "ring", "cross", "bolt")


@dataclass(frozen=True)
class IdentitySpec:
    """One object instance. ``shape`` holds the category's proportions (see _SHAPE_RANGES)."""

    identity: str
    category: str
    caption: str  # this identity's distinctive details, in words taken from the fields below
    description: str  # what the category is, shared by its identities
    body_colour: str
    body_rgb: RGB
    pattern: str  # a key of _PATTERNS
    pattern_colour: str
    pattern_rgb: RGB
    pattern_period: float  # in subject units (the subject's larger side is about 1)
    accent_colour: str  # the handle / cap / sole / base
    accent_rgb: RGB
    mark: str
    mark_colour: str
    mark_rgb: RGB
    mark_at: tuple[float, float]  # position inside the category's mark area, 0..1 each
    mark_size: float  # fraction of the largest mark that fits the mark area
    shape: tuple[tuple[str, float], ...]


@dataclass(frozen=True, eq=False)  # arrays: identity equality, not an ambiguous element-wise one
class RenderedView:
    image: np.ndarray  # (size, size, 3) uint8 RGB
    mask: np.ndarray  # (size, size) bool, exact subject mask
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 of the mask (x1, y1 exclusive)


def _a(word: str) -> str:
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def _pick(rng: np.random.Generator, avoid: Sequence[str], min_dist: float) -> str:
    # A detail painted in a colour close to what it sits on would be invisible.
    far = [
        n for n in _PALETTE if min(math.dist(_PALETTE[n], _PALETTE[a]) for a in avoid) >= min_dist
    ]
    return far[rng.integers(len(far))]


def _jitter(rng: np.random.Generator, name: str) -> RGB:
    # Same colour word, different paint: siblings that are both "red" are still different reds.
    r, g, b = np.clip(np.add(_PALETTE[name], rng.integers(-14, 15, 3)), 0, 255).tolist()
    return r, g, b


def make_identity(index: int, *, seed: int, categories: Sequence[str] = CATEGORIES) -> IdentitySpec:
    unknown = [c for c in categories if c not in _SHAPE_RANGES]
    if unknown:
        raise NearidError(f"unknown procedural categories {unknown}; known: {list(CATEGORIES)}")
    if not categories or len(set(categories)) < len(categories):  # names would collide
        raise NearidError(f"procedural categories must be distinct and non-empty: {categories}")
    if index < 0:
        raise NearidError(f"identity index must be >= 0, got {index}")
    category = categories[index % len(categories)]
    rng = np.random.default_rng(derive_seed(seed, "identity", index))
    body = list(_PALETTE)[rng.integers(len(_PALETTE))]
    pattern = list(_PATTERNS)[rng.integers(len(_PATTERNS))]
    pattern_colour, accent = _pick(rng, [body], 130), _pick(rng, [body], 80)
    mark_colour = _pick(rng, [body] if pattern == "plain" else [body, pattern_colour], 140)
    mark = _MARKS[rng.integers(len(_MARKS))]
    details = f"{_a(accent)} {_ACCENT_PART[category]} and {_a(mark_colour)} {mark} mark"
    if pattern == "plain":
        caption = f"a plain {body} {category} with {details}"
    else:
        look = f"{_a(pattern_colour)} {_PATTERNS[pattern]} pattern"
        caption = f"{_a(body)} {category} with {look}, {details}"
    return IdentitySpec(
        identity=f"{category}-{index // len(categories):04d}",
        category=category,
        caption=caption,
        description=_DESCRIPTIONS[category],
        body_colour=body,
        body_rgb=_jitter(rng, body),
        pattern=pattern,
        pattern_colour=pattern_colour,
        pattern_rgb=_jitter(rng, pattern_colour),
        pattern_period=round(float(rng.uniform(0.07, 0.14)), 4),
        accent_colour=accent,
        accent_rgb=_jitter(rng, accent),
        mark=mark,
        mark_colour=mark_colour,
        mark_rgb=_jitter(rng, mark_colour),
        mark_at=(round(float(rng.random()), 4), round(float(rng.random()), 4)),
        mark_size=round(float(rng.uniform(0.55, 0.9)), 4),
        shape=tuple(
            (k, round(float(rng.uniform(lo, hi)), 4))
            for k, (lo, hi) in _SHAPE_RANGES[category].items()
        ),
    )


# Subject geometry, in units where the subject's larger side is about 1; y points down.


def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 24):
    t = np.deg2rad(np.linspace(a0, a1, n))
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1)


def _rect(x0: float, y0: float, x1: float, y1: float, r: float) -> np.ndarray:
    corners = [(x1 - r, y0 + r), (x1 - r, y1 - r), (x0 + r, y1 - r), (x0 + r, y0 + r)]
    return np.concatenate(
        [_arc(x, y, r, r, 90 * i - 90, 90 * i, 6) for i, (x, y) in enumerate(corners)]
    )


def _dark(rgb: RGB, f: float = 0.45) -> RGB:
    return int(rgb[0] * f), int(rgb[1] * f), int(rgb[2] * f)


def _mug(s: IdentitySpec, p: dict[str, float]) -> tuple[list[_Part], _Box]:
    w, e = p["width"], 0.12 * p["width"]
    wb = w * (1 - p["taper"])
    body = np.concatenate([_arc(0, 0, w / 2, e, 180, 360), _arc(0, 1 - e, wb / 2, e, 0, 180)])
    hx, hr, reach = w / 2 * (1 - 0.45 * p["taper"]), p["handle"] / 2, p["reach"]
    ring = _arc(hx, 0.5, reach, hr, 0, 360, 48), _arc(hx, 0.5, reach - 0.08, hr - 0.08, 0, 360, 48)
    inside = _arc(0, 0, w / 2 * 0.88, e * 0.7, 0, 360, 32)
    parts: list[_Part] = [
        (ring, s.accent_rgb),
        ((body,), None),
        ((inside,), _dark(s.body_rgb, 0.4)),
    ]
    return parts, (-wb * 0.36, 2 * e + 0.04, wb * 0.36, 1 - 1.5 * e)


def _bottle(s: IdentitySpec, p: dict[str, float]) -> tuple[list[_Part], _Box]:
    w, cap, sh, r = p["width"], p["cap"], p["shoulder"], 0.05
    nw, y1 = w * 0.42, p["cap"] + p["neck"] + sh
    body = np.concatenate([
        [(-nw / 2, cap - 0.01), (nw / 2, cap - 0.01)], _arc(nw / 2, y1, (w - nw) / 2, sh, 270, 360),
        _arc(w / 2 - r, 1 - r, r, r, 0, 90, 8), _arc(r - w / 2, 1 - r, r, r, 90, 180, 8),
        _arc(-nw / 2, y1, (w - nw) / 2, sh, 180, 270),
    ])  # fmt: skip
    cap_outline = _rect(-nw * 0.62, 0, nw * 0.62, cap, 0.012)
    parts: list[_Part] = [((body,), None), ((cap_outline,), s.accent_rgb)]
    return parts, (-w * 0.4, y1 + 0.04, w * 0.4, 0.94)


def _shoe(s: IdentitySpec, p: dict[str, float]) -> tuple[list[_Part], _Box]:
    h, k = p["height"], p["collar"]
    top = h - p["sole"]  # y of the sole's upper face
    sunk = 1 + p["sole"] / 2 / top  # the heel ends inside the sole: no crevice where they meet
    ctrl = [(-0.01, sunk), (0.0, 0.55), (0.03, 0.1), (0.15, 0.22 + k), (0.27, 0.28 + k), (0.36, 0),
            (0.45, 0.04), (0.64, 0.36), (0.86, 0.98 - p["toe"]), (1, 0.78), (1, 1.08),
            (0.1, sunk)]  # fmt: skip
    upper = np.array(ctrl) * (1, top)
    for _ in range(3):  # corner cutting turns the control polygon into a smooth outline
        nxt = np.roll(upper, -1, 0)
        upper = np.stack([0.75 * upper + 0.25 * nxt, 0.25 * upper + 0.75 * nxt], 1).reshape(-1, 2)
    a, b = np.array([0.4, 0.1 * top]), np.array([0.62, 0.42 * top])
    step = (b - a) / np.linalg.norm(b - a) * 0.013
    inward = np.array([-step[1], step[0]]) * 7  # laces run from the vamp into the shoe
    laces = tuple(np.array([c - step, c + step, c + inward + step, c + inward - step])
                  for c in (a + (b - a) * t for t in (0.15, 0.45, 0.75)))  # fmt: skip
    r = p["sole"] * 0.45  # square top corners: rounded ones would leave crevices at the upper
    heel, toe = _arc(r - 0.01, h - r, r, r, 90, 180, 6), _arc(1.01 - r, h - r, r, r, 0, 90, 6)
    sole = np.concatenate([[(-0.01, top - 0.01), (1.01, top - 0.01)], toe, heel])
    parts: list[_Part] = [((upper,), None), (laces, s.accent_rgb), ((sole,), s.accent_rgb)]
    return parts, (0.14, 0.38 * top, 0.5, 0.95 * top)


def _lamp(s: IdentitySpec, p: dict[str, float]) -> tuple[list[_Part], _Box]:
    sh, wb, wt = p["shade"], p["width"], p["width"] * p["flare"]
    shade = np.concatenate([[(-wt / 2, 0), (wt / 2, 0)], _arc(0, sh, wb / 2, 0.035, 0, 180)])
    stem, base = _rect(-0.022, sh, 0.022, 0.97, 0.01), _arc(0, 1, p["base"] / 2, 0.08, 180, 360)
    parts: list[_Part] = [((stem,), s.accent_rgb), ((base,), s.accent_rgb), ((shade,), None)]
    return parts, (-wt * 0.42, sh * 0.12, wt * 0.42, sh * 0.9)


_SHAPES: dict[str, Callable[[IdentitySpec, dict[str, float]], tuple[list[_Part], _Box]]] = {
    "mug": _mug, "bottle": _bottle, "shoe": _shoe, "lamp": _lamp,
}  # fmt: skip
_MARK_POLYGONS = {
    "diamond": [(0, -1), (0.7, 0), (0, 1), (-0.7, 0)],
    "triangle": [(0, -1), (0.87, 0.5), (-0.87, 0.5)],
    "cross": [(-0.3, -1), (0.3, -1), (0.3, -0.3), (1, -0.3), (1, 0.3), (0.3, 0.3), (0.3, 1),
              (-0.3, 1), (-0.3, 0.3), (-1, 0.3), (-1, -0.3), (-0.3, -0.3)],
    "bolt": [(0.25, -1), (-0.55, 0.15), (-0.05, 0.15), (-0.25, 1), (0.55, -0.2), (0.05, -0.2)],
}  # fmt: skip


def _mark(kind: str, cx: float, cy: float, r: float) -> tuple[np.ndarray, ...]:
    if kind == "ring":
        return _arc(cx, cy, r, r, 0, 360, 40), _arc(cx, cy, 0.55 * r, 0.55 * r, 0, 360, 40)
    if kind == "star":
        t = np.arange(10) * (np.pi / 5) - np.pi / 2
        pts = np.stack([np.cos(t), np.sin(t)], 1) * np.where(np.arange(10) % 2, 0.45, 1)[:, None]
    elif kind == "heart":
        t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        y = -2.5 - 13 * np.cos(t) + 5 * np.cos(2 * t) + 2 * np.cos(3 * t) + np.cos(4 * t)
        pts = np.stack([16 * np.sin(t) ** 3, y], 1) / 17
    else:
        pts = np.array(_MARK_POLYGONS[kind], float)
    return (pts * r + (cx, cy),)


@lru_cache(maxsize=1024)
def _geometry(spec: IdentitySpec) -> tuple[list[_Part], _Box, np.ndarray, np.ndarray]:
    """Parts, mark area, and the subject's top-left corner and extent; shared by all views."""
    parts, box = _SHAPES[spec.category](spec, dict(spec.shape))
    points = np.concatenate([c for contours, _ in parts for c in contours])
    return parts, box, points.min(0), np.ptp(points, 0)


def _pattern(kind: str, u: np.ndarray, v: np.ndarray, period: float, px: float) -> np.ndarray:
    """Coverage (0..1) of the pattern colour at subject coordinates (u, v), edges ramped over one
    pixel (``px`` units) so the pattern is anti-aliased like the drawn outlines."""

    def stripe(t: np.ndarray, half: float) -> np.ndarray:  # signed distance into the stripe
        return half - np.abs(t / period % 1 - 0.5) * period

    if kind == "hstripes":
        d = stripe(v, period / 4)
    elif kind == "vstripes":
        d = stripe(u, period / 4)
    elif kind == "diagonal":
        d = stripe((u + v) * np.float32(0.7071), period / 4)
    elif kind == "zigzag":
        d = stripe(v + np.abs(u / period % 1 - 0.5) * period, period / 5)
    elif kind == "dots":
        row = np.floor(v / period) % 2 * 0.5  # staggered rows
        d = 0.28 * period - np.hypot((u / period + row) % 1 - 0.5, v / period % 1 - 0.5) * period
    else:  # checker: near an edge, the product of sines is about the distance to it
        d = np.sin(np.pi * u / period) * np.sin(np.pi * v / period) * (period / np.pi)
    return np.clip(0.5 + d / px, 0, 1)


def _sprite(spec: IdentitySpec, scale: float, pad: int, line: int) -> np.ndarray:
    """The subject as an RGBA sprite, colour premultiplied by coverage: cv2's anti-aliased fills on
    a black canvas blend exactly like premultiplied "over" compositing."""
    parts, (bx0, by0, bx1, by1), lo, ext = _geometry(spec)
    w, h = (np.ceil(ext * scale) + 2 * pad).astype(int)
    rgb, alpha = np.zeros((h, w, 3), np.uint8), np.zeros((h, w), np.uint8)

    def px(c: np.ndarray) -> np.ndarray:  # 4 fractional bits, for cv2's shift=4
        return np.round(((c - lo) * scale + pad) * 16).astype(np.int32)

    for contours, colour in parts:
        pts = [px(c) for c in contours]
        if colour is None:
            span = float(pts[0][:, 0].min()) / 16, float(pts[0][:, 0].max()) / 16
            cov = np.zeros_like(alpha)
            cv2.fillPoly(cov, pts, 255, cv2.LINE_AA, shift=4)
            x, y, rw, rh = cv2.boundingRect(cov)
            roi = np.s_[y : y + rh, x : x + rw]
            c, p = cov[roi] / np.float32(255), np.zeros((1, 1), np.float32)
            if spec.pattern != "plain":
                u = (np.arange(x, x + rw, dtype=np.float32) - pad) / scale + float(lo[0])
                v = (np.arange(y, y + rh, dtype=np.float32) - pad) / scale + float(lo[1])
                p = _pattern(spec.pattern, u[None], v[:, None], spec.pattern_period, 1 / scale)
            for k, (body, pattern) in enumerate(zip(spec.body_rgb, spec.pattern_rgb, strict=True)):
                rgb[roi][..., k] = (body + (pattern - body) * p) * c + rgb[roi][..., k] * (1 - c)
            alpha[roi] = 255 * c + alpha[roi] * (1 - c) + 0.5
        else:
            cv2.fillPoly(rgb, pts, colour, cv2.LINE_AA, shift=4)
            cv2.fillPoly(alpha, pts, 255, cv2.LINE_AA, shift=4)
        cv2.polylines(rgb, pts, True, _dark(colour or spec.body_rgb), line, cv2.LINE_AA, 4)
        cv2.polylines(alpha, pts, True, 255, line, cv2.LINE_AA, 4)
    r = spec.mark_size * min(bx1 - bx0, by1 - by0) / 2
    free = (bx1 - bx0 - 2 * r, by1 - by0 - 2 * r)
    cx, cy = (np.add((bx0, by0), r) + np.multiply(spec.mark_at, free)).tolist()
    cv2.fillPoly(rgb, [px(c) for c in _mark(spec.mark, cx, cy, r)], spec.mark_rgb, cv2.LINE_AA, 4)

    # Shading gives volume: cylinders are lit across their width, shoes from above.
    gloss: np.ndarray | float = 0.0
    if spec.category == "shoe":
        shade = (1.1 - 0.35 * np.linspace(0, 1, h, dtype=np.float32))[:, None]
    else:
        t = np.clip((np.arange(w, dtype=np.float32) - span[0]) / (span[1] - span[0]), 0, 1)
        shade = (0.62 + 0.45 * np.abs(np.sin(np.pi * t)) ** 0.6)[None]
        if spec.category in ("mug", "bottle"):  # glossy: a specular streak
            gloss = alpha * (0.47 * np.exp(-(((t - 0.3) / 0.06) ** 2)))[None]
    cover = alpha.astype(np.float32)  # premultiplied colour never exceeds coverage
    planes = [np.minimum(plane * shade + gloss, cover).astype(np.uint8) for plane in cv2.split(rgb)]
    return cv2.merge([*planes, alpha])


def render_view(spec: IdentitySpec, view: int, *, size: int, seed: int) -> RenderedView:
    if not 32 <= size <= 4096:
        raise NearidError(f"procedural render size must be within 32..4096, got {size}")
    rng = rng_for(seed, "view", spec.identity, view)
    angle, fill, fx, fy = rng.uniform(-15, 15), rng.uniform(0.5, 0.8), rng.random(), rng.random()
    ext = _geometry(spec)[3]
    cos, sin = abs(math.cos(math.radians(angle))), abs(math.sin(math.radians(angle)))
    margin, line = max(2.0, 0.04 * size), max(1, round(size / 300))
    pad = line + 2
    # The sprite's padding turns too (2 * pad * sqrt(2) < 4 * pad), so it always fits in `room`.
    room = size - 2 * margin - 4 * pad
    fit = min(room / (ext[0] * cos + ext[1] * sin), room / (ext[0] * sin + ext[1] * cos))
    sprite = _sprite(spec, float(min(fill * size / ext.max(), fit)), pad, line)
    h, w = sprite.shape[:2]
    half = np.array([w * cos + h * sin, w * sin + h * cos]) / 2
    centre = margin + half + np.array([fx, fy]) * (size - 2 * margin - 2 * half)
    (x0, y0), (x1, y1) = np.floor(centre - half).astype(int), np.ceil(centre + half).astype(int)
    roi = np.s_[y0:y1, x0:x1]
    matrix = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, 1.0)
    matrix[:, 2] += centre - (x0, y0) - ((w - 1) / 2, (h - 1) / 2)
    *subject, alpha = cv2.split(cv2.warpAffine(sprite, matrix, (x1 - x0, y1 - y0)))
    cover = np.zeros((size, size), np.uint8)
    cover[roi] = alpha

    image = _background(rng, size)
    # A soft contact shadow, blurred at low resolution where blurring is cheap.
    dx, dy = (rng.uniform(-1, 1, 2) * 0.02 * size).astype(int)
    shifted = np.roll(cover, (dy, dx), (0, 1))
    small = cv2.resize(shifted, (size // 8, size // 8), interpolation=cv2.INTER_AREA)
    keep = cv2.resize(cv2.GaussianBlur(small, (0, 0), 1.0), (size, size)).astype(np.float32)
    keep *= -rng.uniform(0.2, 0.45) / 255
    keep += 1
    keep[roi] *= 1 - alpha / np.float32(255)  # the background's share of each pixel
    # Lighting acts on the whole photo, subject and background alike.
    contrast, bright = rng.uniform(0.8, 1.15), rng.uniform(-25, 25)
    phi, strength = rng.uniform(0, 2 * np.pi), rng.uniform(0, 0.45)
    ramp = np.linspace(-0.5, 0.5, size, dtype=np.float32)
    gain = ramp[None] * strength * math.cos(phi) + ramp[:, None] * strength * math.sin(phi)
    gain += 1
    gain *= contrast
    for plane, fg, tint in zip(image, subject, 1 + rng.uniform(-0.08, 0.08, 3), strict=True):
        plane *= keep
        plane[roi] += fg
        plane += (128 * (1 - contrast) + bright) / contrast
        plane *= gain
        plane *= tint
    image = cv2.merge(list(np.clip(image, 0, 255, out=image).astype(np.uint8)))

    mask = cover >= 128
    ys, xs = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return RenderedView(image, mask, (int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1))
