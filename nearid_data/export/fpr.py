"""The ``export-fpr`` stage: Finer-Personalization Rank's folders and CSVs, after ``galleries``.

Layout in the stage directory, as the paper's loaders (OSU-MLB/Finer-Personalization-Rank) write
it; ``species`` is the group, ``file_path`` is relative to the stage directory (the loaders
write ``<out_path>/...``: run their evaluation from the export folder):

    data/<group>/<name>/train/<n>.png     references        -> train_data.csv
    data/<group>/<name>/gallery/<n>.png   gallery images    -> gallery_data.csv
    extra/<name>/<n>.png                  the extra pool    -> extra_data.csv

``name`` is what the source's loader writes (``fpr_draw.fpr_name``: ``Baird_Sparrow`` for CUB,
the class id for Stanford Cars, the identity for Re-ID), made folder-safe with ``slug`` in paths
only. ``<n>`` counts an identity's images of a role in the order ``galleries`` drew them
(``position``), else by view. CSV columns as the loader writes them (``CSV_LAYOUTS``): CUB
``,name,file_path,species`` and Stanford Cars ``,name,species,file_path`` (pandas' index first);
Re-ID, without index, the columns of the source's ``metadata.csv`` with ``identity``, ``path``
and ``orientation`` renamed to ``name``, ``file_path``, ``viewpoint``; other sources
``name,species,file_path``. Rows are by group, then name, then ``<n>``.

Units follow the runner's protocol: one tar per group (``shards/<group>``) holding that group's
images, each with its ``fpr_path`` in json, so manifests account for every input. ``finalize``
then materialises the folders and CSVs from the committed shards: deterministic, identical
files are left alone, files of an earlier layout are removed.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nearid_data.engine import storage
from nearid_data.engine.manifest import SampleRow, manifest_path, read_manifest, tar_path
from nearid_data.engine.stage import Kept, Outcome, Stage, WorkUnit
from nearid_data.engine.storage import Location
from nearid_data.engine.tario import read_samples
from nearid_data.errors import NearidError
from nearid_data.galleries.assign import EXTRA, GALLERY, REFERENCE
from nearid_data.galleries.fpr_draw import LOADERS, fpr_name
from nearid_data.sample import JSON_FIELD, KEY_FIELD, meta, slug

CSV_NAMES = {REFERENCE: "train_data.csv", GALLERY: "gallery_data.csv", EXTRA: "extra_data.csv"}
CSV_COLUMNS = ("name", "species", "file_path")
CSV_LAYOUTS: dict[str, tuple[tuple[str, ...], bool]] = {
    "cub": (("name", "file_path", "species"), True),  # load_cub_data.py: to_csv(path)
    "stanford-cars": (("name", "species", "file_path"), True),  # load_cars_data.py
}
"""source -> (columns, whether pandas' index column comes first), as the loader writes them."""
REID_RENAMES = {"identity": "name", "path": "file_path", "orientation": "viewpoint"}
"""load_data_reid.py renames these metadata.csv columns and writes the rest unchanged."""
LAYOUT_DIRS = ("data", "extra")
_ROLE_DIRS = {REFERENCE: "train", GALLERY: "gallery"}
_ROLE_ORDER = {role: i for i, role in enumerate(CSV_NAMES)}


def fpr_path(role: str, group: str, name: str, n: int) -> str:
    if role == EXTRA:
        return f"extra/{slug(name)}/{n}.png"
    return f"data/{slug(group)}/{slug(name)}/{_ROLE_DIRS[role]}/{n}.png"


class FprExportStage(Stage):
    name = "export-fpr"
    whole_samples = True
    needs = frozenset({"image.png"})

    def adds(self) -> frozenset[str]:
        return frozenset({"image.png", JSON_FIELD})

    def keeps(self) -> frozenset[str]:
        return self.adds()

    def plan(self) -> list[WorkUnit]:
        by_group: dict[str, list[tuple[str, SampleRow]]] = defaultdict(list)
        for unit, row in self._upstream_rows():
            by_group[row.qa["group"]].append((unit, row))
        units = []
        for group in sorted(by_group):
            rows = sorted(by_group[group], key=lambda unit_row: _layout_order(unit_row[1]))
            payload = {"group": group, "rows": [[unit, row.key] for unit, row in rows]}
            units.append(WorkUnit(f"shards/{slug(group)}", payload))
        return units

    def _upstream_rows(self) -> Iterator[tuple[str, SampleRow]]:
        """(unit, kept row) of the upstream stage, whose QA must carry the galleries roles."""
        catalog = self.upstream_catalog
        for entry in catalog.summary.shards:
            for row in read_manifest(manifest_path(catalog.stage_dir, entry.unit)).rows:
                if row.status != "kept":
                    continue
                if "role" not in row.qa or "group" not in row.qa:
                    raise NearidError(
                        f"export-fpr reads roles from the galleries stage, but {catalog.stage_dir.name!r} "
                        f"row {row.key!r} has none: put export-fpr right after galleries"
                    )
                yield entry.unit, row

    def run(self, unit: WorkUnit) -> Iterator[Outcome]:
        numbered: Counter[tuple[str, str]] = Counter()  # (identity, role) -> images so far
        source = self.ctx.pipeline.source["name"]
        for sample in self.upstream_catalog.stream(unit.payload["rows"]):
            key = sample[KEY_FIELD]
            info = meta(sample)
            slot = (info["identity"], info["role"])
            name = _name(source, info)
            path = fpr_path(info["role"], info["group"], name, info.get("position", numbered[slot]))
            numbered[slot] += 1
            exported = {
                KEY_FIELD: key,
                "image.png": sample["image.png"],
                JSON_FIELD: {**info, "fpr_path": path, "fpr_name": name},
            }
            yield Kept(exported, {"fpr_path": path})

    def finalize(self, build_dir: Location) -> None:
        out = self.ctx.stage_dir(self.name)
        source = self.ctx.pipeline.source["name"]
        listed: dict[str, list[dict[str, str]]] = {role: [] for role in CSV_NAMES}
        for unit in self.plan():
            for sample in read_samples(tar_path(out, unit.name)):
                info = meta(sample)
                _write_if_changed(out / info["fpr_path"], sample["image.png"])
                listed[info["role"]].append(_csv_row(source, info))
        for role, csv_name in CSV_NAMES.items():
            _write_if_changed(out / csv_name, _csv(source, listed[role]))
        _remove_unlisted(out, {row["file_path"] for rows in listed.values() for row in rows})


def _layout_order(row: SampleRow) -> tuple[str, int, int, str]:
    """Identity, then references, gallery, extra, each in drawn order (else by view): the order
    images are numbered."""
    return (row.identity, _ROLE_ORDER[row.qa["role"]], row.qa.get("position", row.view), row.key)


def _name(source: str, info: dict[str, Any]) -> str:
    if source in LOADERS:
        return fpr_name(source, info["identity"], info.get("source", {}))
    return str(info["identity"])


def _csv_row(source: str, info: dict[str, Any]) -> dict[str, str]:
    row = {"name": info["fpr_name"], "species": info["group"], "file_path": info["fpr_path"]}
    metadata = info.get("source", {}).get("metadata")
    if source == "wildlife" and isinstance(metadata, list):
        row = {REID_RENAMES.get(str(k), str(k)): str(v) for k, v in metadata} | row
    return row


def _csv(source: str, rows: list[dict[str, str]]) -> bytes:
    columns, index = CSV_LAYOUTS.get(source, (CSV_COLUMNS, False))
    if source == "wildlife" and rows:
        columns = tuple(rows[0])
    rows = sorted(rows, key=lambda r: (r["species"], r["name"], _number(r["file_path"])))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["", *columns] if index else columns)
    for number, row in enumerate(rows):
        values = [row.get(c, "") for c in columns]
        writer.writerow([number, *values] if index else values)
    return buffer.getvalue().encode("utf-8")


def _number(path: str) -> int:
    return int(Path(path).stem)


def _write_if_changed(path: Location, data: bytes) -> None:
    """Atomic write, skipped when the file already holds these bytes (cheap idempotent reruns)."""
    if not (path.is_file() and path.read_bytes() == data):
        storage.write_bytes(path, data)


def _remove_unlisted(out: Location, listed: set[str]) -> None:
    """Delete layout files a previous run wrote that this one did not, then empty folders."""
    for top in LAYOUT_DIRS:
        for path in storage.list_files(out / top):
            if storage.relative(path, out) not in listed:
                storage.delete(path)
        storage.prune_empty_dirs(out / top)
