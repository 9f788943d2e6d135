"""The syncd source reads SynCD's metadata JSON: Objaverse assets as identities, rigid only by
default, each view captioned with its own prompt, JPEG masks binarised and fitted to the image."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nearid_data.engine.catalog import Catalog
from nearid_data.errors import NearidError
from tests.source_fixtures import ingest, soft_mask, source_of, write_syncd


def test_rigid_identities_by_default(tmp_path: Path) -> None:
    written = write_syncd(tmp_path / "syncd", n_rigid=2, n_deformable=1)
    items = source_of(written.source).items()
    assert items == source_of(written.source).items()
    assert {i.identity: i.category for i in items} == written.categories
    assert [i.view for i in items] == [0, 1, 2, 0, 1, 2]
    assert items[4].ref == {
        "path": "0001_1.jpg",
        "entry": 1,
        "prompt": "a photo of object 1 in scene 1",
        "objaverse_id": f"{1:032x}",
        "mask": "masks/0001_1.jpg",
    }
    everything = source_of({**written.source, "category": "all"}).items()
    assert {(i.identity, i.category) for i in everything[6:]} == {("entry-2", "deformable")}
    deformable = source_of({**written.source, "category": "deformable"}).items()
    assert len(deformable) == 3


def test_views_carry_their_prompt_and_binarised_mask(tmp_path: Path) -> None:
    written = write_syncd(tmp_path / "syncd")
    source = source_of(written.source)
    item = source.items()[2]
    record = source.load(item)
    assert record.caption == "a photo of object 0 in scene 2"
    assert record.mask is not None and record.notes == ()
    np.testing.assert_array_equal(record.mask, soft_mask() > 127)  # no JPEG speckle left


def test_masks_of_another_size_are_fitted(tmp_path: Path) -> None:
    written = write_syncd(tmp_path / "syncd", mask_size=(20, 24))
    source = source_of(written.source)
    record = source.load(source.items()[0])
    assert record.mask is not None and record.mask.shape == (40, 48)
    assert record.notes == ("mask_resized",)


def test_entries_of_one_asset_are_one_identity(tmp_path: Path) -> None:
    written = write_syncd(tmp_path / "syncd", n_rigid=2, n_deformable=0, views=2)
    metadata = written.root / "metadata.json"
    entries = json.loads(metadata.read_text())
    entries[1]["objaverse_id"] = entries[0]["objaverse_id"]
    del entries[1]["category"]  # an Objaverse id then means rigid
    metadata.write_text(json.dumps(entries))
    items = source_of(written.source).items()
    assert [(i.identity, i.view, i.ref["entry"]) for i in items] == [
        (entries[0]["objaverse_id"], view, entry) for view, entry in enumerate([0, 0, 1, 1])
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"filenames": []}, "expected a list of entries"),
        ([{"filenames": ["a.jpg"], "prompts": []}], "entry 0: 'prompts' must be a list with one"),
        ([{"filenames": "a.jpg", "prompts": ["p"]}], "'filenames' must be a list"),
        ([{"filenames": ["a.jpg"], "prompts": [None]}], "every prompt must be a string"),
        ([{"filenames": ["a.jpg"], "prompts": ["p"], "category": "soft"}], "category 'soft'"),
    ],
)
def test_malformed_metadata_is_a_clear_error(tmp_path: Path, content: object, message: str) -> None:
    source = {"name": "syncd", "root": str(tmp_path)}
    with pytest.raises(NearidError, match=r"no \*metadata\.json or metadata_<rank>\.json in"):
        source_of(source).items()
    (tmp_path / "a_metadata.json").write_text(json.dumps(content))
    with pytest.raises(NearidError, match=message):
        source_of(source).items()


def test_generation_output_and_release_names_are_discovered_score_files_not(
    tmp_path: Path,
) -> None:
    """dataset/gen_rigid.py writes metadata_<rank>.json, the release has *metadata.json,
    dataset/cal_scores.py writes metadata_with_scores.json (the same entries again)."""
    written = write_syncd(tmp_path / "syncd", n_rigid=4, n_deformable=0, views=2)
    entries = json.loads((written.root / "metadata.json").read_text())
    (written.root / "metadata.json").unlink()
    (written.root / "metadata_0.json").write_text(json.dumps(entries[:2]))
    (written.root / "metadata_1.json").write_text(json.dumps(entries[2:3]))
    (written.root / "rigid_metadata.json").write_text(json.dumps(entries[3:]))
    (written.root / "metadata_with_scores.json").write_text(json.dumps(entries))
    items = source_of(written.source).items()
    assert sorted({i.identity for i in items}) == sorted(e["objaverse_id"] for e in entries)
    assert len(items) == 8


def test_no_metadata_file_lists_the_json_files_found(tmp_path: Path) -> None:
    (tmp_path / "metadata_with_scores.json").write_text("[]")
    (tmp_path / "prompts.json").write_text("[]")
    source = {"name": "syncd", "root": str(tmp_path)}
    with pytest.raises(NearidError, match=r"JSON files there: metadata_with_scores\.json, prompts"):
        source_of(source).items()


def test_metadata_files_can_be_named(tmp_path: Path) -> None:
    written = write_syncd(tmp_path / "syncd")
    (written.root / "metadata.json").rename(written.root / "rigid.json")
    items = source_of({**written.source, "metadata": ["rigid.json"]}).items()
    assert len(items) == written.n_items
    with pytest.raises(NearidError, match=r"missing\.json is missing"):
        source_of({**written.source, "metadata": ["missing.json"]}).items()


def test_build_accounts_for_every_view(tmp_path: Path) -> None:
    written = write_syncd(tmp_path / "syncd")
    written.files[0].unlink()
    (written.root / "masks" / "0001_0.jpg").unlink()
    rows = ingest(written.source, tmp_path / "build")
    assert len(rows) == written.n_items
    assert [r.reason for r in rows if r.status == "rejected"] == ["missing_file"]
    assert {r.caption for r in rows if r.identity == f"{1:032x}"} == {
        f"a photo of object 1 in scene {k}" for k in range(3)
    }
    catalog = Catalog(tmp_path / "build" / "ingest")
    samples = [catalog.fetch(r) for r in catalog.by_identity[f"{1:032x}"]]
    assert ["mask.png" in s for s in samples] == [False, True, True]
    assert samples[1]["json"]["source"]["prompt"] == "a photo of object 1 in scene 1"
