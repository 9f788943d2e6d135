"""The committed shards of an export directory, grouped by split (read from their manifests)."""

from __future__ import annotations

from nearid_data.engine.manifest import MANIFEST_SUFFIX, ShardManifest, read_manifest
from nearid_data.engine.storage import Location, glob


def manifests_by_split(export_dir: Location) -> dict[str, list[ShardManifest]]:
    by_split: dict[str, list[ShardManifest]] = {}
    for path in glob(export_dir / "data", f"*/*{MANIFEST_SUFFIX}"):
        by_split.setdefault(path.parent.name, []).append(read_manifest(path))
    return by_split
