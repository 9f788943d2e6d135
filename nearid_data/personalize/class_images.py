"""Prior-preservation class images: generated once per category and shared by its identities.

They live in ``class_images/<category>/`` in the personalize stage directory: ``<n>.png`` and
``class_images.json`` (prompt, seeds, sampler settings, model), written as a whole through
``materialise`` so a killed run never leaves a half set that a later one would take. A set whose
record differs from what is asked for (another prompt, count, model) is regenerated. Workers of
one machine take a file lock per category first, so one generates while the others wait and then
read its set (two writers would sweep each other's staging directory). For a stage directory at a
URL the lock file is a local one named after the URL; workers on other machines may then generate
the same (seeded) set again, and each file is uploaded whole.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from nearid_data.engine.atomic import dump_json
from nearid_data.engine.storage import Location
from nearid_data.export.materialise import materialise
from nearid_data.imageio import decode_png, encode_png
from nearid_data.personalize.text2image import TextToImage
from nearid_data.seeding import derive_seed

RECORD = "class_images.json"


def class_images(
    model: TextToImage,
    directory: Location,
    *,
    prompt: str,
    count: int,
    seed: int,
    steps: int,
    guidance: float,
    resolution: int,
    batch_size: int,
) -> list[np.ndarray]:
    """The ``count`` class images for ``prompt`` under ``directory``, generated if missing."""
    record: dict[str, Any] = {
        "prompt": prompt,
        "seeds": [derive_seed(seed, "class", prompt, i) for i in range(count)],
        "steps": steps,
        "guidance": guidance,
        "resolution": resolution,
        "model": model.describe(),
    }
    existing = directory / RECORD
    with _locked(_lock_path(directory)):
        if existing.exists() and json.loads(existing.read_bytes()) == json.loads(dump_json(record)):
            return _read(directory, count)

        def write(root: Path) -> None:
            seeds = record["seeds"]
            for start in range(0, count, batch_size):
                chunk = seeds[start : start + batch_size]
                images = model.generate(
                    [prompt] * len(chunk),
                    chunk,
                    steps=steps,
                    guidance=guidance,
                    resolution=resolution,
                )
                for offset, image in enumerate(images):
                    (root / f"{start + offset}.png").write_bytes(encode_png(image))
            (root / RECORD).write_bytes(dump_json(record))

        materialise(directory, write)
    return _read(directory, count)


def _read(directory: Location, count: int) -> list[np.ndarray]:
    return [decode_png((directory / f"{i}.png").read_bytes()) for i in range(count)]


def _lock_path(directory: Location) -> Path:
    if isinstance(directory, Path):
        return directory.parent / f"{directory.name}.lock"
    digest = hashlib.sha256(str(directory).encode("utf-8")).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / "nearid-locks" / f"{digest}.lock"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
