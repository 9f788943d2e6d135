"""Writers of tiny FLICKR-AES, POG and SER30K folders in their raw layouts, with or without the
benchmark's caption and style files, for the history sources and the ``windows`` stage.

Each writer returns the ``source:`` mapping and the sequences the adapter must read
(user -> item ids in order). Images are small distinct JPEGs (``tests.source_fixtures.jpeg``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.source_fixtures import jpeg


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


def write_flickr(
    root: Path,
    *,
    workers: int = 3,
    per_worker: int = 6,
    extras: bool = True,
    extra_rows: Sequence[str] = (),
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Worker ``w`` rates images ``img_{w}_{k}`` with score ``1 + k % 5``; the image files exist."""
    lines = ["worker, imagePair, score"]
    sequences: dict[str, list[str]] = {}
    scores = []
    for w in range(workers):
        worker = f"A{w:02d}W"
        for k in range(per_worker):
            name = f"img_{w}_{k}"
            lines.append(f"{worker}, {name}.jpg, {1 + k % 5}")
            sequences.setdefault(worker, []).append(name)
            scores.append(f"{name}.jpg {2.5 + k / 10:.2f}")
            _write(root / "40K" / f"{name}.jpg", jpeg(100 * w + k))
    lines += extra_rows
    _write(root / "FLICKR-AES_image_labeled_by_each_worker.csv", "\n".join(lines) + "\n")
    _write(root / "FLICKR-AES_image_score.txt", "\n".join(scores) + "\n")
    if extras:
        captions = {f"{n}.jpg": f"a photo {n}" for seq in sequences.values() for n in seq}
        _write(root / "FLICKR_captions.json", json.dumps(captions))
        styles = [{"worker": w, "style": f"style of {w}"} for w in sequences]
        _write(root / "FLICKR_styles.json", json.dumps(styles))
    return {"name": "flickr-aes", "root": str(root)}, sequences


def write_pog(
    root: Path,
    *,
    users: int = 3,
    per_user: int = 6,
    extras: bool = True,
    missing_images: Sequence[str] = (),
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """User ``u`` clicked items ``i{u}{k}``; items in ``missing_images`` have no image file; one
    extra item row (``unclicked``) is in no history."""
    sequences = {f"u{u}": [f"i{u}{k}" for k in range(per_user)] for u in range(users)}
    user_lines = [
        f"{user},{';'.join(items)},o{n}" for n, (user, items) in enumerate(sequences.items())
    ]
    item_ids = [i for seq in sequences.values() for i in seq] + ["unclicked"]
    item_lines = [f"{i},c1,http://x/{i}.jpg,title, with comma {i}" for i in item_ids]
    outfit_lines = [f"o{n},{';'.join(seq[:2])}" for n, seq in enumerate(sequences.values())]
    _write(root / "user_data.txt", "\n".join(user_lines) + "\n")
    _write(root / "item_data.txt", "\n".join(item_lines) + "\n")
    _write(root / "outfit_data.txt", "\n".join(outfit_lines) + "\n")
    for n, item in enumerate(item_ids):
        if item not in missing_images:
            _write(root / "images_sampled" / f"{item}.jpg", jpeg(500 + n))
    if extras:
        captions = [{"item_id": i, "caption": f"garment {i}"} for i in item_ids]
        _write(root / "captions_sampled.json", json.dumps(captions))
        _write(
            root / "user_styles.json",
            json.dumps([{"user": u, "style": f"{u} style"} for u in sequences]),
        )
    return {"name": "pog", "root": str(root)}, sequences


def write_ser(
    root: Path,
    *,
    topics: int = 2,
    per_topic: int = 6,
    extras: bool = True,
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Topic ``t{t}`` has stickers ``s{k}.png``, the first half in train.json, the rest in
    test.json (so the order crosses split files); id_map.csv names every sticker ``id-t-k``."""
    sequences: dict[str, list[str]] = {}
    splits: dict[str, list[dict[str, Any]]] = {"train": [], "test": []}
    id_rows = ["item_id,image_path"]
    for t in range(topics):
        topic = f"t{t}"
        for k in range(per_topic):
            split = "train" if k < per_topic // 2 else "test"
            splits[split].append({"topic": topic, "file_name": f"s{k}.png", "text": "", "anno": 1})
            id_rows.append(f"id-{t}-{k},{topic}/s{k}.png")
            sequences.setdefault(topic, []).append(f"id-{t}-{k}")
            _write(root / "Images" / topic / f"s{k}.png", jpeg(900 + 10 * t + k))
    for split, entries in splits.items():
        _write(
            root / "Annotations" / "image-level" / f"{split}.json",
            json.dumps({"annotations": entries}),
        )
    _write(root / "id_map.csv", "\n".join(id_rows) + "\n")
    if extras:
        captions = {i: f"sticker {i}" for seq in sequences.values() for i in seq}
        _write(root / "ser30k_captions.json", json.dumps(captions))
        preferences = {t: {"topic": t, "keywords": [f"{t}-a", f"{t}-b"]} for t in sequences}
        _write(root / "user_preferences.json", json.dumps(preferences))
    return {"name": "ser30k", "root": str(root)}, sequences
