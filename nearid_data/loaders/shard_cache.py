"""A local copy of one split of an export at a URL, for readers that need files on disk (wids).

``wids`` memory-maps each shard from a local file and fetches remote ones with command-line tools
(``aws s3 cp``...) into a cache keyed by the URL alone, so a rebuilt export would be read from a
stale copy. :func:`local_split` instead copies the split's index, tars and shard manifests through
the storage seam (the same credentials and endpoints as every other read) into a folder of its own
and keeps, per file, the (size, ETag) it was copied at: a file that changed at the URL is copied
again, one that did not is reused, so a second run reads nothing but the files' metadata.

Each file appears by rename once whole (``storage.atomic_writer``), so processes that share the
folder (ranks on one machine) see whole files only; two of them may both copy a changed file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from pathlib import Path

from nearid_data.engine import storage
from nearid_data.engine.manifest import MANIFEST_SUFFIX, read_manifest
from nearid_data.engine.storage import ObjectPath
from nearid_data.engine.tario import ShardError, file_sha256
from nearid_data.errors import NearidError

log = logging.getLogger("nearid_data")

VERSIONS = ".versions.json"


def default_cache_dir(index: ObjectPath) -> Path:
    """Where the copy of ``index``'s split goes unless a folder is given: one per index URL."""
    digest = hashlib.sha256(str(index).encode("utf-8")).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / "nearid-shards" / digest


def local_split(index: ObjectPath, cache_dir: Path | None = None) -> Path:
    """The local copy of the ``<split>.wids.json`` at ``index`` and of every shard and manifest
    it lists (paths relative to it, as in the export); returns the copy's index."""
    folder = cache_dir or default_cache_dir(index)
    folder.mkdir(parents=True, exist_ok=True)
    versions_file = folder / VERSIONS
    versions = json.loads(versions_file.read_text()) if versions_file.exists() else {}
    shardlist = json.loads(storage.read_bytes(index))["shardlist"]
    names = [
        name
        for shard in shardlist
        for name in (shard["url"], shard["url"].removesuffix(".tar") + MANIFEST_SUFFIX)
    ]
    copied = []
    for name in [*names, index.name]:  # the index last: it names the rest
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise NearidError(f"{index}: shard {name!r} points outside the export")
        remote = index.parent / name
        version = list(storage.version(remote))
        if versions.get(name) == version and storage.size(folder / name) == version[0]:
            continue
        _copy(remote, folder / name)
        versions[name] = version
        copied.append(name)
    for name in copied:
        if name.endswith(".tar"):
            manifest = read_manifest(folder / (name.removesuffix(".tar") + MANIFEST_SUFFIX))
            if file_sha256(folder / name) != manifest.sha256:
                del versions[name]
                storage.write_json(versions_file, versions)
                raise ShardError(
                    f"{index.parent / name}: the copy differs from its manifest's sha256 (the "
                    "export changed while it was copied, or is corrupt); load it again"
                )
    storage.write_json(versions_file, versions)
    log.info("%s: %d of %d files copied to %s", index, len(copied), len(names) + 1, folder)
    return folder / index.name


def _copy(remote: ObjectPath, local: Path) -> None:
    local.parent.mkdir(parents=True, exist_ok=True)
    with storage.open_read(remote) as source, storage.atomic_writer(local) as target:
        shutil.copyfileobj(source, target, storage.CHUNK)
