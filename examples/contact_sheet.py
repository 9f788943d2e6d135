"""A contact sheet of a build's distractors: each reference view (subject outlined) beside its
distractor, as one small PNG.

    python examples/contact_sheet.py build/demo sheet.png [--generator cut_paste] [--tile 120]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from nearid_data.engine.catalog import Catalog
from nearid_data.imageio import decode_mask_png, decode_png

OUTLINE = (255, 40, 40)
PAIRS_PER_ROW = 4
GAP = 4


def _fit(rgb: np.ndarray, height: int) -> np.ndarray:
    rgb = np.repeat(rgb[:, :, None], 3, axis=2) if rgb.ndim == 2 else rgb
    width = max(1, round(rgb.shape[1] * height / rgb.shape[0]))
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)


def _outlined(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    image = np.ascontiguousarray(np.repeat(image[:, :, None], 3, 2) if image.ndim == 2 else image)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return cv2.drawContours(image.copy(), contours, -1, OUTLINE, 2)


def contact_sheet(build_dir: Path, generator: str = "cut_paste", tile: int = 120) -> Image.Image:
    catalog = Catalog(build_dir / "distractors")
    pairs = []
    for row in sorted(catalog.rows, key=lambda r: (r.identity, r.view)):
        sample = catalog.fetch(row)
        image, mask = decode_png(sample["image.png"]), decode_mask_png(sample["mask.png"])
        distractor = decode_png(sample[f"distractor_{generator}.png"])
        gap = np.full((tile, GAP, 3), 255, np.uint8)
        pairs.append(np.hstack([_fit(_outlined(image, mask), tile), gap, _fit(distractor, tile)]))
    width = max(pair.shape[1] for pair in pairs)
    padded = [
        np.pad(p, ((0, 0), (0, width - p.shape[1]), (0, 0)), constant_values=255) for p in pairs
    ]
    rows = []
    for start in range(0, len(padded), PAIRS_PER_ROW):
        chunk = padded[start : start + PAIRS_PER_ROW]
        chunk += [np.full_like(padded[0], 255)] * (PAIRS_PER_ROW - len(chunk))
        spaced = [
            np.pad(p, ((GAP, GAP), (GAP * 2, GAP * 2), (0, 0)), constant_values=255) for p in chunk
        ]
        rows.append(np.hstack(spaced))
    return Image.fromarray(np.vstack(rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build_dir", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--generator", default="cut_paste")
    parser.add_argument("--tile", type=int, default=120)
    args = parser.parse_args()
    sheet = contact_sheet(args.build_dir, args.generator, args.tile)
    # A 256-colour palette keeps the sheet small enough for the repository.
    sheet.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(args.out, optimize=True)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")
