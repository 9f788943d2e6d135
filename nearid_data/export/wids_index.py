"""``wids`` shard indexes: ``<split>.wids.json`` beside ``data/``, URLs relative to it."""

from __future__ import annotations

import hashlib
from pathlib import Path

from nearid_data.engine.atomic import write_json_atomic
from nearid_data.export.shards import manifests_by_split


def write_wids_indexes(export_dir: Path) -> list[Path]:
    written = []
    for split, manifests in manifests_by_split(export_dir).items():
        shardlist = []
        for manifest in manifests:
            if manifest.n_kept == 0:
                continue
            url = manifest.tar or ""
            shardlist.append(
                {
                    "url": url,
                    "md5sum": _md5(export_dir / url),
                    "nsamples": manifest.n_kept,
                    "filesize": manifest.bytes,
                }
            )
        path = export_dir / f"{split}.wids.json"
        write_json_atomic(
            path,
            {
                "__kind__": "wids-shard-index-v1",
                "wids_version": 1,
                "name": split,
                "shardlist": shardlist,
            },
        )
        written.append(path)
    return written


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
