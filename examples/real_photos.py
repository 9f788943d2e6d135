"""Write a small folder of real photographs in the ``imagefolder`` layout, from scikit-image's data.

scikit-image ships a few photographs inside its package (no download), so this is a real-photo
input that works offline: one identity per photograph, two or three views each. The stereo
motorcycle pair gives two genuine viewpoints; the other views are crops and mirror images.
``metadata.jsonl`` gives each identity a category, so cut-and-paste draws its donor from the
same kind of subject (the cat, alone in its category, has no sibling and is rejected so).

    pip install scikit-image
    python examples/real_photos.py my_photos
    python -m nearid_data build --set source.name=imagefolder --set source.root=my_photos
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

# identity (the scikit-image loader of its photograph) -> its category
CATEGORIES = {
    "astronaut": "person",
    "camera": "person",
    "chelsea": "animal",
    "coffee": "object",
    "clock": "object",
    "rocket": "vehicle",
    "motorcycle": "vehicle",
}
LONG_SIDE = 256


def _crop(image: np.ndarray, fraction: float, anchor: tuple[float, float]) -> np.ndarray:
    """The ``fraction``-sized window of ``image`` placed at ``anchor`` (0..1 in x and y)."""
    height, width = image.shape[:2]
    h, w = round(height * fraction), round(width * fraction)
    top, left = round((height - h) * anchor[1]), round((width - w) * anchor[0])
    return image[top : top + h, left : left + w]


def views_of(name: str) -> list[np.ndarray]:
    from skimage import data

    if name == "motorcycle":
        left, right, _ = data.stereo_motorcycle()
        return [left, right, left[:, ::-1]]
    photo = getattr(data, name)()
    return [photo, _crop(photo, 0.85, (0.2, 0.3))[:, ::-1], _crop(photo, 0.9, (0.8, 0.6))]


def write_photo_folder(root: Path, long_side: int = LONG_SIDE) -> list[Path]:
    """``root/<identity>/view-<n>.png`` for every photograph and ``root/metadata.jsonl`` with
    their categories; returns the images written."""
    written = []
    for name in CATEGORIES:
        for number, pixels in enumerate(views_of(name)):
            image = Image.fromarray(np.ascontiguousarray(pixels))
            image.thumbnail((long_side, long_side), Image.Resampling.LANCZOS)
            path = root / name / f"view-{number}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            image.save(path)
            written.append(path)
    lines = [json.dumps({"identity": name, "category": c}) for name, c in CATEGORIES.items()]
    (root / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "my_photos")
    print(f"wrote {len(write_photo_folder(target))} photos to {target}")
