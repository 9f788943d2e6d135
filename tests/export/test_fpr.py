"""export-fpr: Finer-Personalization Rank's folders and CSVs from a demo build."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from nearid_data.build import build
from nearid_data.config import PipelineConfig
from nearid_data.engine.manifest import read_summary
from nearid_data.engine.tario import read_samples
from nearid_data.errors import NearidError
from nearid_data.export.fpr import CSV_COLUMNS, CSV_NAMES, LAYOUT_DIRS

GALLERIES = {"references_per_subject": 3, "gallery_per_subject": 4, "subjects_per_group": 1}


def _pipeline(galleries: dict | None = None, with_galleries: bool = True) -> PipelineConfig:
    stages: dict = {"ingest": {"shard_size": 16}}
    if with_galleries:
        stages["galleries"] = galleries or GALLERIES
    stages["export-fpr"] = {}
    source = {"name": "demo", "n_identities": 8, "views": 10, "image_size": 64}
    return PipelineConfig.from_dict({"name": "f", "seed": 11, "source": source, "stages": stages})


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fpr")
    build(_pipeline(), out=out)
    return out


def _csv(out: Path, name: str) -> list[dict[str, str]]:
    with open(out / "export-fpr" / name, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        return list(reader)


def _layout(out: Path) -> dict[str, bytes]:
    root = out / "export-fpr"
    files = [p for top in (*LAYOUT_DIRS, *CSV_NAMES.values()) for p in sorted(root.glob(f"{top}*"))]
    paths = [q for p in files for q in ([p] if p.is_file() else sorted(p.rglob("*")))]
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in paths if p.is_file()}


def test_csvs_list_existing_files_in_fpr_layout(built: Path) -> None:
    train, gallery, extra = (_csv(built, CSV_NAMES[r]) for r in ("reference", "gallery", "extra"))
    assert (len(train), len(gallery), len(extra)) == (4 * 3, 4 * 4, 4 * 10)
    for row in train:
        assert row["file_path"].startswith(f"data/{row['species']}/{row['name']}/train/")
    for row in gallery:
        assert row["file_path"].startswith(f"data/{row['species']}/{row['name']}/gallery/")
    for row in extra:
        assert row["file_path"].startswith(f"extra/{row['name']}/")
    listed = {row["file_path"] for row in [*train, *gallery, *extra]}
    on_disk = {p for p in _layout(built) if p.endswith(".png")}
    assert listed == on_disk and len(listed) == len(train) + len(gallery) + len(extra)
    assert {row["name"] for row in train} == {row["name"] for row in gallery}
    assert not {row["name"] for row in train} & {row["name"] for row in extra}


def test_reference_and_gallery_are_disjoint_images(built: Path) -> None:
    samples = [s for t in sorted((built / "export-fpr").rglob("*.tar")) for s in read_samples(t)]
    keys = [s["__key__"] for s in samples]
    assert len(keys) == len(set(keys))
    by_role: dict[str, set[bytes]] = {}
    for sample in samples:
        by_role.setdefault(sample["json"]["role"], set()).add(sample["image.png"])
        path = built / "export-fpr" / sample["json"]["fpr_path"]
        assert path.read_bytes() == sample["image.png"]
    assert not by_role["reference"] & by_role["gallery"]


def test_every_input_is_accounted_for(built: Path) -> None:
    ingest, galleries, export = (
        read_summary(built / s) for s in ("ingest", "galleries", "export-fpr")
    )
    assert ingest is not None and galleries is not None and export is not None
    assert galleries.n_in == ingest.n_kept == 80
    assert galleries.n_kept + galleries.n_rejected == galleries.n_in
    assert galleries.rejected_by_reason == {"unused": 4 * 3}
    assert export.n_in == export.n_kept == galleries.n_kept
    assert sum(len(_csv(built, name)) for name in CSV_NAMES.values()) == export.n_kept
    assert [s.unit for s in export.shards] == [
        f"shards/{g}" for g in ("bottle", "lamp", "mug", "shoe")
    ]


def test_deterministic_and_rerun_rewrites_the_same_layout(built: Path, tmp_path: Path) -> None:
    build(_pipeline(), out=tmp_path, workers=2)
    assert _layout(tmp_path) == _layout(built)
    build(_pipeline({**GALLERIES, "gallery_per_subject": 2}), out=tmp_path)
    smaller = _layout(tmp_path)
    assert len(_csv(tmp_path, "gallery_data.csv")) == 4 * 2
    assert {p for p in smaller if p.endswith(".png")} == {
        row["file_path"] for name in CSV_NAMES.values() for row in _csv(tmp_path, name)
    }
    build(_pipeline(), out=tmp_path)
    assert _layout(tmp_path) == _layout(built)
    assert not [
        p for p in (tmp_path / "export-fpr").rglob("*") if p.is_dir() and not any(p.iterdir())
    ]


def test_needs_the_galleries_roles(tmp_path: Path) -> None:
    with pytest.raises(NearidError, match="put export-fpr right after galleries"):
        build(_pipeline(with_galleries=False), out=tmp_path)
