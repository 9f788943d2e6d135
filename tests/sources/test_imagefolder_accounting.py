"""imagefolder accounts for every file under its root, reads nothing outside it, gives every
input its own key and categories from the config, metadata or a category folder level."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from nearid_data.build import build
from nearid_data.config import PipelineConfig
from nearid_data.engine.manifest import SampleRow, read_summary
from nearid_data.errors import NearidError
from nearid_data.sample import make_key, slug
from nearid_data.sources.base import SourceItem
from nearid_data.sources.ingest import check_unique_keys
from tests.badimages import valid_image
from tests.source_fixtures import ingest, source_of


def _image(path: Path, seed: int = 0, size: tuple[int, int] = (40, 48)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), valid_image(seed, size)[..., ::-1])


def _by_locator(rows: list[SampleRow]) -> dict[str | None, tuple[str, str | None]]:
    return {row.locator: (row.status, row.reason) for row in rows}


def test_every_file_under_the_root_is_a_row(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    _image(root / "alice" / "a.png")
    _image(root / "alice" / "b.png", 1)
    cv2.imwrite(str(root / "alice" / "a.mask.png"), np.full((40, 48), 255, np.uint8))
    cv2.imwrite(str(root / "alice" / "lost.mask.png"), np.full((40, 48), 255, np.uint8))
    _image(root / "alice" / "sub" / "c.png", 2)
    (root / "alice" / ".DS_Store").write_bytes(b"\0")
    (root / "alice" / "notes.txt").write_text("not an image")
    _image(root / ".trash" / "d.png", 3)
    _image(root / "stray.png", 4)
    (root / "metadata.jsonl").write_text(json.dumps({"identity": "alice", "category": "cat"}))
    rows = ingest({"name": "imagefolder", "root": str(root)}, tmp_path / "build")
    assert _by_locator(rows) == {
        "alice/a.png": ("kept", None),
        "alice/b.png": ("kept", None),
        "alice/notes.txt": ("rejected", "unsupported_extension"),
        "alice/lost.mask.png": ("rejected", "mask_without_image"),
        "alice/sub/c.png": ("rejected", "in_subfolder"),
        "alice/.DS_Store": ("rejected", "hidden"),
        ".trash/d.png": ("rejected", "hidden"),
        "stray.png": ("rejected", "not_in_identity_folder"),
    }
    assert len({row.key for row in rows}) == len(rows)
    kept_views = sorted(row.view for row in rows if row.status == "kept")
    assert kept_views == [0, 1]


def test_a_root_without_identity_folders_is_an_error_naming_the_layout(tmp_path: Path) -> None:
    _image(tmp_path / "only.png")
    with pytest.raises(NearidError, match=r"no identity folders.*<root>/<identity>/<image>"):
        source_of({"name": "imagefolder", "root": str(tmp_path)}).items()


def test_rejected_rows_carry_their_file(tmp_path: Path) -> None:
    (tmp_path / "photos" / "bob").mkdir(parents=True)
    (tmp_path / "photos" / "bob" / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    rows = ingest({"name": "imagefolder", "root": str(tmp_path / "photos")}, tmp_path / "b")
    assert [(r.status, r.locator) for r in rows] == [("rejected", "bob/broken.jpg")]


def test_images_below_min_side_are_rejected_too_small(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    _image(root / "bob" / "big.png")
    _image(root / "bob" / "small.png", size=(10, 12))
    source = {"name": "imagefolder", "root": str(root)}
    rows = ingest(source, tmp_path / "b")
    assert _by_locator(rows)["bob/small.png"] == ("rejected", "too_small")
    raw = {"name": "p", "source": source, "stages": {"ingest": {"min_side": 8}}}
    build(PipelineConfig.from_dict(raw), out=tmp_path / "c")
    summary = read_summary(tmp_path / "c" / "ingest")
    assert summary is not None and summary.n_kept == 2


def test_a_loader_error_on_one_file_rejects_that_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nearid_data.sources import imagefolder

    def choking_decoder(data: bytes, **options: object) -> object:
        if data.endswith(b"CHOKE"):
            raise ValueError("decoder state corrupted")
        return decode_image(data, **options)

    decode_image = imagefolder.decode_image
    monkeypatch.setattr(imagefolder, "decode_image", choking_decoder)
    root = tmp_path / "photos"
    _image(root / "bob" / "good.png")
    _image(root / "bob" / "odd.png", 1)
    with (root / "bob" / "odd.png").open("ab") as handle:
        handle.write(b"CHOKE")
    rows = ingest({"name": "imagefolder", "root": str(root)}, tmp_path / "b")
    assert _by_locator(rows) == {
        "bob/good.png": ("kept", None),
        "bob/odd.png": ("rejected", "load_failed"),
    }


def test_a_folder_that_cannot_be_listed_is_an_error_not_a_loss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _image(tmp_path / "bob" / "0.png")
    _image(tmp_path / "ann" / "0.png")
    scandir = os.scandir

    def unlistable_ann(path: str) -> object:  # as a folder without read permission behaves
        if str(path).endswith("ann"):
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", unlistable_ann)
    with pytest.raises(NearidError, match=r"cannot list .*ann: Permission denied"):
        source_of({"name": "imagefolder", "root": str(tmp_path)}).items()


# --- identities never share a key ---------------------------------------------------------------


def test_names_that_used_to_share_a_key_get_their_own() -> None:
    assert slug("a b") == "a-b-c8687a08"
    assert slug("a-b-c8687a08") != "a-b-c8687a08"
    assert make_key("a b", 0) != make_key("a-b-c8687a08", 0)
    assert slug("x" * 300) != slug("x" * 301) and len(slug("x" * 300)) < 80


def test_folders_a_b_and_its_old_key_are_two_identities(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    _image(root / "a b" / "0.png")
    _image(root / "a-b-c8687a08" / "0.png", 1)
    rows = ingest({"name": "imagefolder", "root": str(root)}, tmp_path / "b")
    assert len({r.key for r in rows}) == 2 and {r.identity for r in rows} == {"a b", "a-b-c8687a08"}


def test_a_duplicate_key_is_refused_at_plan_time_naming_both_inputs() -> None:
    first = SourceItem("mug", "object", 0, {"path": "one/mug.png"})
    second = SourceItem("mug", "object", 0, {"path": "two/mug.png"})
    with pytest.raises(NearidError, match=r"mug_v000.*one/mug.png.*two/mug.png"):
        check_unique_keys([first, second])


# --- nothing is read outside the root -----------------------------------------------------------


@pytest.fixture
def linked(tmp_path: Path) -> Path:
    outside = tmp_path / "elsewhere"
    _image(outside / "secret.png", 5)
    root = tmp_path / "photos"
    _image(root / "alice" / "a.png")
    os.symlink(outside / "secret.png", root / "alice" / "b.png")
    os.symlink(root / "alice" / "a.png", root / "alice" / "c.png")
    os.symlink(outside, root / "outsider")
    return root


def test_links_out_of_the_root_are_not_followed_by_default(linked: Path, tmp_path: Path) -> None:
    rows = ingest({"name": "imagefolder", "root": str(linked)}, tmp_path / "b")
    assert _by_locator(rows) == {
        "alice/a.png": ("kept", None),
        "alice/b.png": ("rejected", "outside_root"),
        "alice/c.png": ("kept", None),
        "outsider": ("rejected", "linked_folder"),
    }


def test_follow_symlinks_reads_them_and_the_summary_says_so(linked: Path, tmp_path: Path) -> None:
    source = {"name": "imagefolder", "root": str(linked), "follow_symlinks": True}
    rows = ingest(source, tmp_path / "b")
    assert _by_locator(rows) == {
        "alice/a.png": ("kept", None),
        "alice/b.png": ("kept", None),
        "alice/c.png": ("kept", None),
        "outsider/secret.png": ("kept", None),
    }
    summary = read_summary(tmp_path / "b" / "ingest")
    assert summary is not None and summary.models["source"]["follow_symlinks"] is True


def test_annotation_paths_cannot_climb_out_of_the_root(tmp_path: Path) -> None:
    from nearid_data.errors import Rejection
    from nearid_data.sources.formats import read_inside

    _image(tmp_path / "secret.png")
    (tmp_path / "root").mkdir()
    for follow in (False, True):
        with pytest.raises(Rejection, match="outside"):
            read_inside(tmp_path / "root", "../secret.png", follow_symlinks=follow)


def test_a_parquet_file_linked_from_outside_is_refused(tmp_path: Path) -> None:
    from tests.source_fixtures import write_cars_hf

    written = write_cars_hf(tmp_path / "elsewhere", n_classes=2, per_split=1)
    root = tmp_path / "cars"
    (root / "data").mkdir(parents=True)
    for path in (tmp_path / "elsewhere" / "data").iterdir():
        os.symlink(path, root / "data" / path.name)
    source = {**written.source, "root": str(root)}
    with pytest.raises(NearidError, match="outside the source root"):
        source_of(source).items()
    assert source_of({**source, "follow_symlinks": True}).items()


# --- categories ----------------------------------------------------------------------------------


def test_categories_from_a_folder_level_the_config_and_metadata(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    for category, identity in [("cats", "tom"), ("cats", "1"), ("dogs", "1")]:
        _image(root / category / identity / "0.png")
    _image(root / "cats" / "stray.png")
    source = {"name": "imagefolder", "root": str(root), "layout": "category/identity"}
    rows = ingest(source, tmp_path / "b")
    kept = {(r.identity, r.category) for r in rows if r.status == "kept"}
    assert kept == {("cats/tom", "cats"), ("cats/1", "cats"), ("dogs/1", "dogs")}
    assert _by_locator(rows)["cats/stray.png"] == ("rejected", "not_in_identity_folder")
    mapped = {**source, "categories": {"cats/tom": "tabby"}}
    items = source_of(mapped).items()
    assert {i.identity: i.category for i in items if i.rejection is None}["cats/tom"] == "tabby"
    with pytest.raises(NearidError, match="'nobody'"):
        source_of({**source, "categories": {"nobody": "x"}}).items()


def test_no_categories_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for identity in ("a", "b"):
        _image(tmp_path / identity / "0.png")
    with caplog.at_level(logging.WARNING, logger="nearid_data"):
        items = source_of({"name": "imagefolder", "root": str(tmp_path)}).items()
    assert {i.category for i in items} == {"object"}
    warnings = [r for r in caplog.records if "siblings are drawn across all" in r.message]
    assert len(warnings) == 1
    (tmp_path / "metadata.jsonl").write_text(
        "\n".join(json.dumps({"identity": i, "category": "mug"}) for i in ("a", "b"))
    )
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="nearid_data"):
        source_of({"name": "imagefolder", "root": str(tmp_path)}).items()
    assert not [r for r in caplog.records if "siblings" in r.message]
