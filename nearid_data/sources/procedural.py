"""Embedded default dataset: procedurally drawn object identities, so pipelines run offline.

An identity is one object instance ("mug-0003"): its category's silhouette with its own colours,
surface pattern, small mark and proportions. Identities of one category share the silhouette family,
which makes them near-identity distractors of each other. Each view re-draws the identity under a
new pose, scale, position, lighting and background. The subject is drawn once into an RGBA sprite
(premultiplied colour, anti-aliased coverage) and warped into the frame; the mask is the warped
coverage thresholded at one half, so it is exactly the pixels that are mostly subject.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from nearid_data.errors import NearidError
from nearid_data.seeding import derive_seed, rng_for

RGB = tuple[int, int, int]
# A part of a drawn subject: its contours (several = holes, even-odd) and colour; None = the body,
# painted with the identity's pattern.
_Part = tuple[tuple[np.ndarray, ...], RGB | None]

CATEGORIES: tuple[str, ...] = ("mug", "bottle", "shoe", "lamp")
_DESCRIPTIONS = {
    "mug": "a mug: a cylindrical drinking cup with a side handle",
    "bottle": "a bottle: a tall container with shoulders, a narrow neck and a screw cap",
    "shoe": "a shoe: a low sneaker seen from the side, with laces and a thick sole",
    "lamp": "a table lamp: a flared shade on a thin stem and a round base",
}
_ACCENT_PART = {"mug": "handle", "bottle": "cap", "shoe": "sole", "lamp": "base"}
_SHAPE_RANGES = {
    "mug": {"width": (0.62, 0.95), "taper": (0.0, 0.16), "handle": (0.36, 0.6), "reach": (0.2, 0.32)},
    "bottle": {"width": (0.3, 0.44), "neck": (0.08, 0.22), "shoulder": (0.06, 0.16), "cap": (0.06, 0.1)},
    "shoe": {"height": (0.34, 0.46), "sole": (0.05, 0.1), "toe": (0.3, 0.6), "collar": (0.0, 0.12)},
    "lamp": {"shade": (0.36, 0.52), "width": (0.55, 0.8), "flare": (0.45, 0.8), "base": (0.3, 0.55)},
}
_PALETTE: dict[str, RGB] = {
    "red": (200, 40, 40), "orange": (235, 125, 35), "yellow": (240, 205, 50),
    "green": (60, 150, 70), "teal": (30, 140, 140), "blue": (45, 90, 200), "navy": (30, 45, 100),
    "purple": (120, 60, 160), "pink": (235, 130, 170), "brown": (120, 75, 40),
    "black": (35, 35, 35), "white": (240, 240, 235), "grey": (140, 140, 140),
    "beige": (215, 195, 160),
}  # fmt: skip
_PATTERNS = {
    "plain": "", "hstripes": "horizontal stripes", "vstripes": "vertical stripes",
    "diagonal": "diagonal stripes", "dots": "dots", "checker": "checks", "zigzag": "zigzags",
}  # fmt: skip
_MARKS = ("star", "heart", "diamond", "triangle", "ring", "cross", "bolt")


@dataclass(frozen=True)
class IdentitySpec:
    """One object instance. Colours are RGB; ``shape`` holds the category's proportions."""

    identity: str
    category: str
    caption: str  # this identity's distinctive details, words taken from the fields below
    description: str  # what the category is, shared by its identities
    body_colour: str
    body_rgb: RGB
    pattern: str  # a key of _PATTERNS
    pattern_colour: str
    pattern_rgb: RGB
    pattern_period: float  # in subject units (the subject's larger side is about 1)
    accent_colour: str  # the colour of the handle / cap / sole / base
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


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _pick(rng: np.random.Generator, avoid: Sequence[str], min_dist: float) -> str:
    # Colours too close to the ones they sit on would make the detail invisible.
    far = [
        name for name, rgb in _PALETTE.items()
        if all(np.linalg.norm(np.subtract(rgb, _PALETTE[a])) >= min_dist for a in avoid)
    ]  # fmt: skip
    return far[rng.integers(len(far))]


def _jitter(rng: np.random.Generator, name: str) -> RGB:
    # Same colour word, slightly different paint: siblings named "red" are still different reds.
    rgb = np.clip(np.add(_PALETTE[name], rng.integers(-14, 15, 3)), 0, 255)
    return (int(rgb[0]), int(rgb[1]), int(rgb[2]))


def make_identity(
    index: int, *, seed: int, categories: Sequence[str] = CATEGORIES
) -> IdentitySpec:
    unknown = [c for c in categories if c not in _SHAPE_RANGES]
    if unknown or not categories:
        raise NearidError(
            f"unknown procedural categories {unknown or list(categories)}; known: {CATEGORIES}"
        )
    if index < 0:
        raise NearidError(f"identity index must be >= 0, got {index}")
    category = categories[index % len(categories)]
    rng = np.random.default_rng(derive_seed(seed, "identity", index))
    body = list(_PALETTE)[rng.integers(len(_PALETTE))]
    pattern = list(_PATTERNS)[rng.integers(len(_PATTERNS))]
    pattern_colour = _pick(rng, [body], 130)
    accent = _pick(rng, [body], 80)
    mark_colour = _pick(rng, [body] if pattern == "plain" else [body, pattern_colour], 110)
    mark = _MARKS[rng.integers(len(_MARKS))]
    ranges = _SHAPE_RANGES[category]
    shape = tuple((k, round(float(rng.uniform(lo, hi)), 4)) for k, (lo, hi) in ranges.items())
    part = f"{_article(accent)} {accent} {_ACCENT_PART[category]}"
    mark_words = f"{_article(mark_colour)} {mark_colour} {mark} mark"
    if pattern == "plain":
        caption = f"a plain {body} {category} with {part} and {mark_words}"
    else:
        details = f"{pattern_colour} {_PATTERNS[pattern]}"
        caption = f"{_article(body)} {body} {category} with {details}, {part} and {mark_words}"
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
        pattern_period=float(rng.uniform(0.07, 0.14)),
        accent_colour=accent,
        accent_rgb=_jitter(rng, accent),
        mark=mark,
        mark_colour=mark_colour,
        mark_rgb=_jitter(rng, mark_colour),
        mark_at=(float(rng.uniform()), float(rng.uniform())),
        mark_size=float(rng.uniform(0.5, 0.85)),
        shape=shape,
    )


# Geometry, in subject units with y pointing down (as in images).


def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 24):
    t = np.deg2rad(np.linspace(a0, a1, n))
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1)


def _rect(x0: float, y0: float, x1: float, y1: float, r: float = 0.0) -> np.ndarray:
    return np.concatenate([
        _arc(x1 - r, y0 + r, r, r, 270, 360, 6), _arc(x1 - r, y1 - r, r, r, 0, 90, 6),
        _arc(x0 + r, y1 - r, r, r, 90, 180, 6), _arc(x0 + r, y0 + r, r, r, 180, 270, 6),
    ])  # fmt: skip


def _chaikin(points: np.ndarray, rounds: int = 3) -> np.ndarray:
    # Corner cutting turns a coarse control polygon into a smooth outline.
    for _ in range(rounds):
        nxt = np.roll(points, -1, 0)
        points = np.stack([0.75 * points + 0.25 * nxt, 0.25 * points + 0.75 * nxt], 1)
        points = points.reshape(-1, 2)
    return points


def _dark(rgb: RGB, f: float) -> RGB:
    return (int(rgb[0] * f), int(rgb[1] * f), int(rgb[2] * f))


Box = tuple[float, float, float, float]


def _mug(spec: IdentitySpec, p: dict[str, float]) -> tuple[list[_Part], Box]:
    w, e = p["width"], 0.12 * p["width"]
    wb = w * (1 - p["taper"])
    body = np.concatenate([_arc(0, 0, w / 2, e, 180, 360), _arc(0, 1 - e, wb / 2, e, 0, 180)])
    hx, hr = w / 2 * (1 - 0.45 * p["taper"]), p["handle"] / 2
    handle = (_arc(hx, 0.5, p["reach"], hr, 0, 360, 48),
              _arc(hx, 0.5, p["reach"] - 0.08, hr - 0.08, 0, 360, 48))  # fmt: skip
    inside = _arc(0, 0, w / 2 * 0.88, e * 0.7, 0, 360, 32)
    parts = [(handle, spec.accent_rgb), ((body,), None), ((inside,), _dark(spec.body_rgb, 0.4))]
    return parts, (-wb * 0.34, 2 * e + 0.04, wb * 0.34, 1 - 1.5 * e)


def _bottle(spec: IdentitySpec, p: dict[str, float]) -> tuple[list[_Part], Box]:
    w, cap, sh = p["width"], p["cap"], p["shoulder"]
    nw, y1, r = w * 0.42, p["cap"] + p["neck"] + sh, 0.05
    body = np.concatenate([
        [(-nw / 2, cap - 0.01), (nw / 2, cap - 0.01)], _arc(nw / 2, y1, (w - nw) / 2, sh, 270, 360),
        _arc(w / 2 - r, 1 - r, r, r, 0, 90, 8), _arc(r - w / 2, 1 - r, r, r, 90, 180, 8),
        _arc(-nw / 2, y1, (w - nw) / 2, sh, 180, 270),
    ])  # fmt: skip
    parts = [((body,), None), ((_rect(-nw * 0.62, 0, nw * 0.62, cap, 0.012),), spec.accent_rgb)]
    return parts, (-w * 0.34, y1 + 0.05, w * 0.34, 0.93)


def _shoe(spec: IdentitySpec, p: dict[str, float]) -> tuple[list[_Part], Box]:
    h, k = p["height"], p["collar"]
    top = h - p["sole"]  # y of the sole's upper face
    ctrl = [(0.05, 1.08), (0.0, 0.55), (0.03, 0.1), (0.15, 0.22 + k), (0.27, 0.28 + k),
            (0.36, 0.0), (0.45, 0.04), (0.64, 0.36), (0.86, 0.98 - p["toe"]), (1.0, 0.78),
            (1.0, 1.08)]  # fmt: skip
    upper = _chaikin(np.array(ctrl) * (1, top))
    a, b = np.array([0.4, 0.1 * top]), np.array([0.62, 0.42 * top])
    out = np.array([b[1] - a[1], a[0] - b[0]]) / np.linalg.norm(b - a)  # outward normal of the vamp
    laces = []
    for t in (0.15, 0.45, 0.75):
        c = a + (b - a) * t
        tip, root = c + out * 0.0, c - out * 0.09
        along = (b - a) / np.linalg.norm(b - a) * 0.013
        laces.append(np.array([tip - along, tip + along, root + along, root - along]))
    sole = _rect(-0.01, top - 0.01, 1.01, h, p["sole"] * 0.45)
    parts = [((upper,), None), (tuple(laces), spec.accent_rgb), ((sole,), spec.accent_rgb)]
    return parts, (0.12, 0.42 * top, 0.58, 0.94 * top)


def _lamp(spec: IdentitySpec, p: dict[str, float]) -> tuple[list[_Part], Box]:
    sh, wb, bw = p["shade"], p["width"], p["base"]
    wt = wb * p["flare"]
    shade = np.concatenate([[(-wt / 2, 0), (wt / 2, 0)], _arc(0, sh, wb / 2, 0.035, 0, 180)])
    stem = _rect(-0.022, sh, 0.022, 0.97)
    base = _arc(0, 1, bw / 2, 0.08, 180, 360)
    parts = [((stem,), spec.accent_rgb), ((base,), spec.accent_rgb), ((shade,), None)]
    return parts, (-wt * 0.42, sh * 0.12, wt * 0.42, sh * 0.9)


_SHAPES: dict[str, Callable[[IdentitySpec, dict[str, float]], tuple[list[_Part], Box]]] = {
    "mug": _mug, "bottle": _bottle, "shoe": _shoe, "lamp": _lamp,
}  # fmt: skip


def _mark(kind: str, cx: float, cy: float, r: float) -> tuple[np.ndarray, ...]:
    if kind == "star":
        t = np.deg2rad(np.arange(10) * 36 - 90)
        pts = np.stack([np.cos(t), np.sin(t)], 1) * np.where(np.arange(10) % 2, 0.45, 1)[:, None]
    elif kind == "heart":
        t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        pts = np.stack([16 * np.sin(t) ** 3, -2.5 - 13 * np.cos(t) + 5 * np.cos(2 * t)
                        + 2 * np.cos(3 * t) + np.cos(4 * t)], 1) / 17  # fmt: skip
    elif kind == "ring":
        return _arc(cx, cy, r, r, 0, 360, 40), _arc(cx, cy, 0.55 * r, 0.55 * r, 0, 360, 40)
    else:
        pts = np.array({
            "diamond": [(0, -1), (0.7, 0), (0, 1), (-0.7, 0)],
            "triangle": [(0, -1), (0.87, 0.5), (-0.87, 0.5)],
            "cross": [(-0.3, -1), (0.3, -1), (0.3, -0.3), (1, -0.3), (1, 0.3), (0.3, 0.3),
                      (0.3, 1), (-0.3, 1), (-0.3, 0.3), (-1, 0.3), (-1, -0.3), (-0.3, -0.3)],
            "bolt": [(0.25, -1), (-0.55, 0.15), (-0.05, 0.15), (-0.25, 1), (0.55, -0.2),
                     (0.05, -0.2)],
        }[kind], float)  # fmt: skip
    return (pts * r + (cx, cy),)


def _pattern(kind: str, u: np.ndarray, v: np.ndarray, period: float, px: float) -> np.ndarray:
    """Coverage (0..1) of the pattern colour at subject coordinates (u, v), edges ramped over
    one pixel (``px`` units) so the pattern is anti-aliased like the drawn outlines."""

    def stripe(t: np.ndarray, half: float) -> np.ndarray:  # signed distance into a stripe
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
    else:  # checker; the product of sines is ~ distance to the nearest edge near the edges
        d = np.sin(np.pi * u / period) * np.sin(np.pi * v / period) * (period / np.pi)
    return np.clip(0.5 + d / px, 0, 1)


def _draw(spec: IdentitySpec, scale: float, pad: int, line: int) -> np.ndarray:
    """The subject as an RGBA sprite, colour premultiplied by coverage (cv2's anti-aliased fills
    blend onto a black canvas exactly as premultiplied "over" compositing)."""
    parts, (bx0, by0, bx1, by1) = _SHAPES[spec.category](spec, dict(spec.shape))
    points = np.concatenate([c for contours, _ in parts for c in contours])
    lo = points.min(0)
    w, h = (np.ceil(np.ptp(points, 0) * scale) + 2 * pad).astype(int)
    rgb, alpha = np.zeros((h, w, 3), np.uint8), np.zeros((h, w), np.uint8)

    def px(c: np.ndarray) -> np.ndarray:  # 4 fractional bits: cv2 `shift=4`
        return np.round(((c - lo) * scale + pad) * 16).astype(np.int32)

    for contours, colour in parts:
        pts = [px(c) for c in contours]
        if colour is None:
            span = (float(pts[0][:, 0].min()) / 16, float(pts[0][:, 0].max()) / 16)
            cov = np.zeros_like(alpha)
            cv2.fillPoly(cov, pts, 255, cv2.LINE_AA, shift=4)
            x, y, rw, rh = cv2.boundingRect(cov)
            roi = np.s_[y : y + rh, x : x + rw]
            paint = np.asarray(spec.body_rgb, np.float32)
            if spec.pattern != "plain":
                u = (np.arange(x, x + rw, dtype=np.float32) - pad) / scale + float(lo[0])
                v = (np.arange(y, y + rh, dtype=np.float32) - pad) / scale + float(lo[1])
                p = _pattern(spec.pattern, u[None], v[:, None], spec.pattern_period, 1 / scale)
                paint = paint + (np.float32(spec.pattern_rgb) - paint) * p[..., None]
            c = cov[roi].astype(np.float32)[..., None] / 255
            rgb[roi] = (paint * c + rgb[roi] * (1 - c) + 0.5).astype(np.uint8)
            alpha[roi] = (255 * c[..., 0] + alpha[roi] * (1 - c[..., 0]) + 0.5).astype(np.uint8)
        else:
            cv2.fillPoly(rgb, pts, colour, cv2.LINE_AA, shift=4)
            cv2.fillPoly(alpha, pts, 255, cv2.LINE_AA, shift=4)
        cv2.polylines(rgb, pts, True, _dark(colour or spec.body_rgb, 0.45), line, cv2.LINE_AA, 4)
        cv2.polylines(alpha, pts, True, 255, line, cv2.LINE_AA, 4)
    r = spec.mark_size * min(bx1 - bx0, by1 - by0) / 2
    cx = bx0 + r + spec.mark_at[0] * (bx1 - bx0 - 2 * r)
    cy = by0 + r + spec.mark_at[1] * (by1 - by0 - 2 * r)
    mark = [px(c) for c in _mark(spec.mark, cx, cy, r)]
    cv2.fillPoly(rgb, mark, spec.mark_rgb, cv2.LINE_AA, shift=4)

    # Shading gives volume: cylinders are lit across their width, shoes from above.
    out = rgb.astype(np.float32)
    if spec.category == "shoe":
        out *= (1.1 - 0.35 * np.linspace(0, 1, h, dtype=np.float32))[:, None, None]
    else:
        t = np.clip((np.arange(w, dtype=np.float32) - span[0]) / (span[1] - span[0]), 0, 1)
        out *= (0.62 + 0.45 * np.abs(np.sin(np.pi * t)) ** 0.6)[None, :, None]
        if spec.category in ("mug", "bottle"):  # glossy: a specular streak
            streak = 120 * np.exp(-(((t - 0.3) / 0.06) ** 2))
            out += (alpha.astype(np.float32) / 255)[..., None] * streak[None, :, None]
    np.minimum(out, alpha[..., None], out=out)  # premultiplied colour never exceeds coverage
    return np.dstack([out.astype(np.uint8), alpha])


def _noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    grid = rng.random((cells + 1, cells + 1), dtype=np.float32)
    return cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A float32 RGB backdrop; the random draws do not depend on ``size``."""
    kind = rng.integers(5)
    c0, c1 = rng.uniform(20, 235, (2, 3)).astype(np.float32)
    ramp = np.linspace(0, 1, size, dtype=np.float32)
    x, y = ramp[None, :], ramp[:, None]
    if kind == 0:  # studio gradient
        phi = rng.uniform(0, 2 * np.pi)
        t = (x * np.float32(np.cos(phi)) + y * np.float32(np.sin(phi))) / np.float32(1.5) + 0.5
    elif kind == 1:  # cloudy noise
        t = 0.6 * _noise(rng, size, 3) + 0.3 * _noise(rng, size, 9) + 0.1 * _noise(rng, size, 27)
    elif kind == 2:  # tiles and grout
        n = int(rng.integers(3, 9))
        t = cv2.resize(rng.uniform(0, 0.6, (n, n)).astype(np.float32), (size, size),
                       interpolation=cv2.INTER_NEAREST)  # fmt: skip
        t[(x * n % 1 < 0.05) | (y * n % 1 < 0.05)] = 1
    elif kind == 3:  # wood-like grain
        along = x if rng.random() < 0.5 else y
        grain = np.sin(2 * np.pi * (rng.uniform(4, 12) * along + 1.5 * _noise(rng, size, 4)))
        t = 0.5 + 0.4 * grain + 0.1 * _noise(rng, size, 40)
    else:  # clutter of flat shapes
        canvas = np.empty((size, size, 3), np.float32)
        canvas[:] = c0
        for _ in range(int(rng.integers(8, 20))):
            (px, py, pr), colour = rng.uniform(0, 1, 3), c0 + (c1 - c0) * rng.uniform(0, 1.2)
            centre, r = (int(px * size), int(py * size)), int((0.04 + 0.2 * pr) * size)
            if rng.random() < 0.5:
                cv2.circle(canvas, centre, r, colour.tolist(), -1)
            else:
                cv2.rectangle(canvas, (centre[0] - r, centre[1] - r // 2),
                              (centre[0] + r, centre[1] + r // 2), colour.tolist(), -1)  # fmt: skip
        return canvas
    return c0 + (c1 - c0) * np.clip(t, 0, 1)[..., None]


def render_view(spec: IdentitySpec, view: int, *, size: int, seed: int) -> RenderedView:
    if not 32 <= size <= 4096:
        raise NearidError(f"procedural render size must be within 32..4096, got {size}")
    rng = rng_for(seed, "view", spec.identity, view)
    angle, fill, fx, fy = rng.uniform(-15, 15), rng.uniform(0.5, 0.8), rng.random(), rng.random()
    parts, _ = _SHAPES[spec.category](spec, dict(spec.shape))
    ext = np.ptp(np.concatenate([c for contours, _ in parts for c in contours]), 0)
    cos, sin = abs(np.cos(np.deg2rad(angle))), abs(np.sin(np.deg2rad(angle)))
    margin, line = max(2.0, 0.04 * size), max(1, round(size / 160))
    pad = line + 2
    room = size - 2 * margin - 4 * pad  # the sprite's padding rotates too: 2 * pad * sqrt(2) < 4
    rot = (ext[0] * cos + ext[1] * sin, ext[0] * sin + ext[1] * cos)
    scale = float(min(fill * size / ext.max(), room / rot[0], room / rot[1]))
    sprite = _draw(spec, scale, pad, line)
    h, w = sprite.shape[:2]
    half = np.array([w * cos + h * sin, w * sin + h * cos]) / 2
    centre = margin + half + np.array([fx, fy]) * np.maximum(size - 2 * margin - 2 * half, 0)
    matrix = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, 1.0)
    matrix[:, 2] += centre - ((w - 1) / 2, (h - 1) / 2)
    warped = cv2.warpAffine(sprite, matrix, (size, size), flags=cv2.INTER_LINEAR)

    background = _background(rng, size)
    a = warped[..., 3].astype(np.float32) / 255
    dx, dy = (rng.uniform(-1, 1, 2) * 0.02 * size).astype(int)
    shadow = cv2.GaussianBlur(np.roll(a, (dy, dx), (0, 1)), (0, 0), 0.015 * size)
    background *= (1 - rng.uniform(0.2, 0.45) * shadow)[..., None]
    image = warped[..., :3] + background * (1 - a[..., None])
    # Lighting acts on the whole photo, subject and background alike.
    contrast, bright = rng.uniform(0.8, 1.15), rng.uniform(-25, 25)
    phi, strength = rng.uniform(0, 2 * np.pi), rng.uniform(0, 0.45)
    tint = 1 + rng.uniform(-0.08, 0.08, 3).astype(np.float32)
    ramp = np.linspace(-0.5, 0.5, size, dtype=np.float32)
    gain = 1 + (ramp[None, :] * float(strength * np.cos(phi)) + ramp[:, None] * float(strength * np.sin(phi)))
    image = ((image - 128) * contrast + (128.5 + bright)) * (gain[..., None] * tint)
    image = np.clip(image, 0, 255, out=image).astype(np.uint8)

    mask = warped[..., 3] >= 128
    ys, xs = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return RenderedView(image, mask, (int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1))
