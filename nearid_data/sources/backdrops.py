"""Backgrounds of the procedural demo views: studio gradients, cloudy noise, tiles, wood grain and
clutter, in muted room-like colours. A view's random draws decide the scene, whatever its size."""

from __future__ import annotations

import cv2
import numpy as np


def noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    grid = rng.random((cells + 1, cells + 1), dtype=np.float32)
    smooth = cv2.resize(grid, (4 * cells, 4 * cells), interpolation=cv2.INTER_CUBIC)
    return cv2.resize(smooth, (size, size), interpolation=cv2.INTER_LINEAR)  # cubic is slow at size


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    """(3, size, size) float32 RGB planes. The random draws do not depend on ``size``, so a view
    shows the same scene at every size."""
    kind = rng.integers(5)
    grey = rng.uniform(40, 215, (2, 1))  # muted colours, like real rooms
    c0, c1 = np.clip(grey + rng.uniform(-70, 70, (2, 3)) * rng.uniform(0.2, 1), 0, 255)
    x = np.linspace(0, 1, size, dtype=np.float32)[None]
    if kind == 0:  # studio gradient
        phi = rng.uniform(0, 2 * np.pi)
        t = x * float(np.cos(phi) / 1.5) + (x.T * float(np.sin(phi) / 1.5) + 0.5)
    elif kind == 1:  # cloudy noise
        t = 0.6 * noise(rng, size, 3) + 0.3 * noise(rng, size, 9) + 0.1 * noise(rng, size, 27)
    elif kind == 2:  # tiles and grout
        n = int(rng.integers(3, 9))
        tiles = rng.uniform(0, 0.6, (n, n)).astype(np.float32)
        t = cv2.resize(tiles, (size, size), interpolation=cv2.INTER_NEAREST)
        t[(x * n % 1 < 0.05) | (x.T * n % 1 < 0.05)] = 1
    elif kind == 3:  # wood-like grain
        along = x if rng.random() < 0.5 else x.T
        t = noise(rng, size, 4) * np.float32(1.5) + rng.uniform(4, 12) * along
        np.sin(t * np.float32(2 * np.pi), out=t)
        t = t * np.float32(0.4) + (0.5 + 0.1 * noise(rng, size, 40))
    else:  # clutter of flat triangles, squares and discs
        canvas = np.empty((size, size, 3), np.uint8)
        canvas[:] = c0
        for _ in range(int(rng.integers(8, 20))):
            corners, (sx, sy, sr, turn) = rng.choice([3, 4, 32]), rng.random(4)
            a = np.linspace(0, 2 * np.pi, corners, endpoint=False) + turn * np.pi
            radius = 0.04 + 0.2 * sr
            pts = np.stack([sx + np.cos(a) * radius, sy + np.sin(a) * radius], 1)
            colour = (c0 + (c1 - c0) * rng.uniform(0, 1.2)).tolist()
            cv2.fillPoly(canvas, [np.round(pts * size * 16).astype(np.int32)], colour, shift=4)
        return np.stack(cv2.split(canvas)).astype(np.float32)
    np.clip(t, 0, 1, out=t)
    planes = np.empty((3, size, size), np.float32)
    for plane, lo, hi in zip(planes, c0, c1, strict=True):  # in place: big temporaries are slow
        np.multiply(t, float(hi - lo), out=plane)
        plane += float(lo)
    return planes
