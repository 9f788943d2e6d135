"""``wids`` shard indexes: ``<split>.wids.json`` beside ``data/``, URLs relative to it."""

from __future__ import annotations

import hashlib

from nearid_data.engine import storage
from nearid_data.engine.atomic import dump_json
from nearid_data.engine.storage import Location
from nearid_data.export.shards import manifests_by_split


def write_wids_indexes(export_dir: Location) -> list[Location]:
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
        index = {
            "__kind__": "wids-shard-index-v1",
            "wids_version": 1,
            "name": split,
            "shardlist": shardlist,
        }
        storage.write_bytes(path, dump_json(index))
        written.append(path)
    return written


def _md5(path: Location) -> str:
    digest = hashlib.md5()
    with storage.open_read(path) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
