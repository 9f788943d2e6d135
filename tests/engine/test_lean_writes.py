"""Lean writes: a stage's shard holds ``json`` and only the fields it added or changed; every
reader joins the rest by key, and the export still writes whole samples."""

from __future__ import annotations

import hashlib
import io
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from nearid_data.build import build
from nearid_data.engine.catalog import Catalog
from nearid_data.engine.manifest import (
    MANIFEST_SUFFIX,
    manifest_path,
    read_manifest,
    read_summary,
    tar_path,
    write_model,
)
from nearid_data.engine.tario import ShardError, ShardWriter, iter_raw
from nearid_data.sample import JSON_FIELD
from nearid_data.verify import verify
from tests.conftest import tiny_pipeline

CHAIN = ("ingest", "segment", "distractors", "splits")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lean")
    build(tiny_pipeline(), out=out)
    return out


def _stored(stage_dir: Path) -> dict[str, dict[str, bytes]]:
    """key -> {field: bytes} as the stage's shards hold them, read without manifests or joins."""
    return {
        key: fields for tar in sorted(stage_dir.rglob("*.tar")) for key, fields in iter_raw(tar)
    }


def test_no_field_is_written_twice_before_the_export(built: Path) -> None:
    writes: Counter[tuple[str, str]] = Counter()
    for stage in CHAIN:
        for key, fields in _stored(built / stage).items():
            writes.update((key, name) for name in fields if name != JSON_FIELD)
    assert writes and max(writes.values()) == 1, writes.most_common(3)
    # Whole-sample stages wrote about 4 bytes per exported byte; each image now lands on disk at
    # most once before the export (a distractor only as its region) and once in it, plus json,
    # tar headers and rejected inputs, which weigh most on these tiny images.
    written = sum(summary.bytes for s in (*CHAIN, "export") if (summary := read_summary(built / s)))
    exported = read_summary(built / "export")
    assert exported is not None and written / exported.bytes < 2.3


def test_the_export_holds_the_samples_an_independent_join_assembles(built: Path) -> None:
    """Each exported sample equals the one assembled by walking the stage chain back from the
    export's upstream and taking each field from the latest stage whose shard holds it; a field
    stored as a patch is the image with the region pasted at the box its manifest row records
    (pasted and compared here with PIL, not the toolkit's codec)."""
    stored = {stage: _stored(built / stage) for stage in CHAIN}
    boxes = {
        (row.key, name): patch.box
        for stage in CHAIN
        for tar in (built / stage).rglob("*.tar")
        for row in read_manifest(built / stage / tar.name.replace(".tar", MANIFEST_SUFFIX)).rows
        for name, patch in row.patches.items()
    }
    exported = _stored(built / "export")
    assert exported and boxes
    for key, fields in exported.items():
        assembled: dict[str, bytes] = {}
        for stage in reversed(CHAIN):
            for name, data in stored[stage].get(key, {}).items():
                assembled.setdefault(name, data)
        for member in [m for m in assembled if m.endswith(".patch.png")]:
            name = member.removesuffix(".patch.png") + ".png"
            region = assembled.pop(member)
            pasted = _pixels(assembled["image.png"])
            x0, y0, x1, y1 = boxes[key, name]
            pasted[y0:y1, x0:x1] = _pixels(region)
            assert np.array_equal(_pixels(fields[name]), pasted), (key, name)
            assembled[name] = fields[name]
        assert fields == assembled, key


def _pixels(png: bytes) -> np.ndarray:
    return np.array(Image.open(io.BytesIO(png)))


def test_distractors_store_only_the_repainted_region(built: Path) -> None:
    """The distractor shares its background with the image pixel for pixel: the distractors
    stage stores the region inside the recorded box, smaller than the whole field."""
    patched = 0
    for tar in sorted((built / "distractors").rglob("*.tar")):
        manifest = read_manifest(tar.with_name(tar.name.replace(".tar", MANIFEST_SUFFIX)))
        held = dict(iter_raw(tar))
        for row in manifest.rows:
            for name, patch in row.patches.items():
                assert patch.base == "image.png" and name.startswith("distractor_")
                region = held[row.key][name.removesuffix(".png") + ".patch.png"]
                x0, y0, x1, y1 = patch.box
                assert _pixels(region).shape[:2] == (y1 - y0, x1 - x0)
                assert name not in held[row.key]
                patched += 1
    assert patched > 0
    assert verify(built).problems == []


def test_catalog_fetch_and_unit_reads_give_whole_samples(built: Path) -> None:
    catalog = Catalog(built / "splits")
    row = catalog.rows[0]
    sample = catalog.fetch(row)
    assert {"image.png", "mask.png", "inpaint_mask.png", JSON_FIELD} <= set(sample)
    assert {n: hashlib.sha256(_bytes(sample, n)).hexdigest() for n in row.fields} == row.fields
    assert "image.png" not in catalog.read(row)  # held by ingest, joined on fetch


def _bytes(sample: dict[str, Any], name: str) -> bytes:
    from nearid_data.engine.tario import encode_field

    return encode_field(name, sample[name])


def _drop_sample(stage_dir: Path, key: str) -> None:
    """Rewrite the stage's shard holding ``key`` without it, manifests and summary consistent, as
    a rebuild of that stage with one input fewer would leave it."""
    summary = read_summary(stage_dir)
    assert summary is not None
    for index, entry in enumerate(summary.shards):
        manifest = read_manifest(manifest_path(stage_dir, entry.unit))
        if not any(row.key == key for row in manifest.rows):
            continue
        tar = tar_path(stage_dir, entry.unit)
        samples = [(k, f) for k, f in iter_raw(tar) if k != key]
        with ShardWriter(tar) as writer:
            for k, fields in samples:
                writer.write_fields(k, fields)
        rows = [row for row in manifest.rows if row.key != key]
        manifest = manifest.model_copy(
            update={"rows": rows, "n_in": manifest.n_in - 1, "n_kept": manifest.n_kept - 1,
                    "bytes": writer.result.bytes, "sha256": writer.result.sha256}
        )  # fmt: skip
        write_model(manifest_path(stage_dir, entry.unit), manifest)
        shards = list(summary.shards)
        shards[index] = entry.model_copy(
            update={"sha256": manifest.sha256, "bytes": manifest.bytes, "n_kept": manifest.n_kept}
        )
        summary = summary.model_copy(
            update={"shards": shards, "n_in": summary.n_in - 1, "n_kept": summary.n_kept - 1}
        )
        write_model(stage_dir / "_summary.json", summary)
        return
    raise AssertionError(f"no sample {key!r} in {stage_dir}")


def test_verify_and_readers_catch_a_missing_joined_key(tmp_path: Path) -> None:
    build(tiny_pipeline(), out=tmp_path)
    assert verify(tmp_path).problems == []
    row = Catalog(tmp_path / "segment").rows[0]
    assert row.inherited.get("image.png") == "ingest"
    _drop_sample(tmp_path / "ingest", row.key)

    problems = [str(p) for p in verify(tmp_path).problems]
    assert problems and all(f"sample {row.key!r} inherits" in p for p in problems), problems
    assert not any(p.startswith("ingest/") for p in problems)  # ingest itself is consistent
    with pytest.raises(ShardError, match=f"{row.key}.*from stage 'ingest'"):
        Catalog(tmp_path / "segment").fetch(row)


def test_a_change_in_the_first_stage_rebuilds_every_later_one(tmp_path: Path) -> None:
    """Samples of splits inherit their images from ingest: a change there must change every
    later fingerprint (no unit skipped), and the rebuilt joins verify."""
    build(tiny_pipeline(), out=tmp_path)
    before = {s: read_summary(tmp_path / s) for s in CHAIN}
    raw = tiny_pipeline().model_dump(mode="json")
    raw["stages"]["ingest"]["shard_size"] = 5
    build(type(tiny_pipeline()).from_dict(raw), out=tmp_path)
    for stage in CHAIN:
        old, new = before[stage], read_summary(tmp_path / stage)
        assert old is not None and new is not None and old.fingerprint != new.fingerprint, stage
        assert new.units_skipped == 0, stage
    assert verify(tmp_path).problems == []


def _build_splits_watching_reads(out: Path, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Build the splits stage alone; the stages whose shards it read by range, and whether it
    rebuilt a patch, as a set of names."""
    from nearid_data.engine import catalog, storage

    read: set[str] = set()
    read_range, apply_patch = storage.read_range, catalog.apply_patch

    def spying_read(where: Path, ranges: list[tuple[int, int]]) -> list[bytes]:
        read.add(where.parent.name)
        return read_range(where, ranges)

    def spying_apply(*args: Any) -> bytes:
        read.add("patch rebuilt")
        return apply_patch(*args)

    monkeypatch.setattr(storage, "read_range", spying_read)
    monkeypatch.setattr(catalog, "apply_patch", spying_apply)
    build(tiny_pipeline(), out=out, stage="splits", only=True)
    monkeypatch.undo()
    return read


def test_a_stage_reading_only_json_passes_pixels_on_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(tiny_pipeline(), out=tmp_path, stage="distractors")
    assert _build_splits_watching_reads(tmp_path, monkeypatch) == set()
    upstream = {r.key: r for r in Catalog(tmp_path / "distractors").rows}
    rows = Catalog(tmp_path / "splits").rows
    assert rows
    for row in rows:
        before = upstream[row.key]
        assert row.fields.keys() == before.fields.keys() == row.sizes.keys()
        assert {n: d for n, d in row.fields.items() if n != JSON_FIELD} == {
            n: d for n, d in before.fields.items() if n != JSON_FIELD
        }
        assert row.bytes == sum(row.sizes.values())
        assert row.inherited == {
            n: before.inherited.get(n, "distractors") for n in row.fields if n != JSON_FIELD
        }
    build(tiny_pipeline(), out=tmp_path)
    assert verify(tmp_path).problems == []


def test_upstream_rows_without_sizes_are_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows written before field sizes were recorded: the stage reads every field, so that
    whatever it passes on is accounted for, and writes rows with sizes."""
    build(tiny_pipeline(), out=tmp_path, stage="distractors")
    stage_dir = tmp_path / "distractors"
    for path in stage_dir.glob(f"*{MANIFEST_SUFFIX}"):
        manifest = read_manifest(path)
        rows = [row.model_copy(update={"sizes": {}}) for row in manifest.rows]
        write_model(path, manifest.model_copy(update={"rows": rows}))
    assert "patch rebuilt" in _build_splits_watching_reads(tmp_path, monkeypatch)
    for row in Catalog(tmp_path / "splits").rows:
        assert row.sizes.keys() == row.fields.keys() and row.bytes == sum(row.sizes.values())
    build(tiny_pipeline(), out=tmp_path)
    assert verify(tmp_path).problems == []


def test_a_reader_of_one_unit_loads_only_the_manifests_it_joins_from(built: Path) -> None:
    catalog = Catalog(built / "splits")
    unit = catalog.summary.shards[0].unit
    refs = [(unit, row.key) for row in read_manifest(manifest_path(built / "splits", unit)).rows
            if row.status == "kept"]  # fmt: skip
    samples = list(catalog.stream(refs))
    assert [s["__key__"] for s in samples] == [key for _, key in refs]
    assert all("image.png" in s for s in samples)
    holders = catalog.join._holders
    assert set(holders) == {"ingest", "segment", "distractors"}
    for holder in [catalog, *holders.values()]:
        assert "rows" not in holder.__dict__ and list(holder._units) == [unit]
    # A wrong guess falls back to every manifest of the stage.
    other = catalog.summary.shards[-1].unit
    assert other != unit and catalog.kept_row(refs[0][1], other).unit == unit
    with pytest.raises(ShardError, match="no kept sample 'missing'"):
        catalog.kept_row("missing", unit)
