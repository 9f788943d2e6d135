"""The ``export-fpr`` stage: Finer-Personalization Rank's folders and CSVs, after ``galleries``.

Layout in the stage directory, as the paper's loaders (OSU-MLB/Finer-Personalization-Rank) write
it; ``species`` is the group, ``file_path`` is relative to the stage directory:

    data/<group>/<name>/train/<n>.png     references        -> train_data.csv
    data/<group>/<name>/gallery/<n>.png   gallery images    -> gallery_data.csv
    extra/<name>/<n>.png                  the extra pool    -> extra_data.csv

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

from nearid_data.engine.atomic import write_bytes_atomic
from nearid_data.engine.manifest import SampleRow, manifest_path, read_manifest, tar_path
from nearid_data.engine.stage import Kept, Outcome, Stage, WorkUnit
from nearid_data.engine.tario import read_samples
from nearid_data.errors import NearidError
from nearid_data.galleries.assign import EXTRA, GALLERY, REFERENCE
from nearid_data.sample import JSON_FIELD, KEY_FIELD, meta, slug

CSV_NAMES = {REFERENCE: "train_data.csv", GALLERY: "gallery_data.csv", EXTRA: "extra_data.csv"}
CSV_COLUMNS = ("name", "species", "file_path")
LAYOUT_DIRS = ("data", "extra")
_ROLE_DIRS = {REFERENCE: "train", GALLERY: "gallery"}
_ROLE_ORDER = {role: i for i, role in enumerate(CSV_NAMES)}


def fpr_path(role: str, group: str, name: str, n: int) -> str:
    if role == EXTRA:
        return f"extra/{slug(name)}/{n}.png"
    return f"data/{slug(group)}/{slug(name)}/{_ROLE_DIRS[role]}/{n}.png"


class FprExportStage(Stage):
    name = "export-fpr"
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

    def setup(self) -> None:
        self.rows_by_key = {row.key: row for row in self.upstream_catalog.rows}

    def run(self, unit: WorkUnit) -> Iterator[Outcome]:
        numbered: Counter[tuple[str, str]] = Counter()  # (identity, role) -> images so far
        for _, key in unit.payload["rows"]:
            sample = self.upstream_catalog.fetch(self.rows_by_key[key])
            info = meta(sample)
            slot = (info["identity"], info["role"])
            path = fpr_path(info["role"], info["group"], info["identity"], numbered[slot])
            numbered[slot] += 1
            exported = {
                KEY_FIELD: key,
                "image.png": sample["image.png"],
                JSON_FIELD: {**info, "fpr_path": path},
            }
            yield Kept(exported, {"fpr_path": path})

    def finalize(self, build_dir: Path) -> None:
        out = self.ctx.stage_dir(self.name)
        listed: dict[str, list[tuple[str, str, str]]] = {role: [] for role in CSV_NAMES}
        for unit in self.plan():
            for sample in read_samples(tar_path(out, unit.name)):
                info = meta(sample)
                _write_if_changed(out / info["fpr_path"], sample["image.png"])
                listed[info["role"]].append((info["identity"], info["group"], info["fpr_path"]))
        for role, csv_name in CSV_NAMES.items():
            _write_if_changed(out / csv_name, _csv(listed[role]))
        _remove_unlisted(out, {path for rows in listed.values() for _, _, path in rows})


def _layout_order(row: SampleRow) -> tuple[str, int, int, str]:
    """Identity, then references, gallery, extra, each by view: the order images are numbered."""
    return (row.identity, _ROLE_ORDER[row.qa["role"]], row.view, row.key)


def _csv(rows: list[tuple[str, str, str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _write_if_changed(path: Path, data: bytes) -> None:
    """Atomic write, skipped when the file already holds these bytes (cheap idempotent reruns)."""
    if not (path.is_file() and path.read_bytes() == data):
        write_bytes_atomic(path, data)


def _remove_unlisted(out: Path, listed: set[str]) -> None:
    """Delete layout files a previous run wrote that this one did not, then empty folders."""
    for top in LAYOUT_DIRS:
        paths = sorted((out / top).rglob("*"), key=lambda p: len(p.parts), reverse=True)
        for path in paths:
            if path.is_file() and path.relative_to(out).as_posix() not in listed:
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
