"""`init DIR` writes a commented nearid.yaml that describes the folder and builds as written."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from nearid_data.cli import main
from nearid_data.config import PipelineConfig
from tests.badimages import valid_image
from tests.build_helpers import cli


def _photos(root: Path, folders: list[str], views: int = 3) -> Path:
    for n, folder in enumerate(folders):
        (root / folder).mkdir(parents=True)
        for view in range(views):
            pixels = cv2.resize(valid_image(n * 10 + view), (64, 64))
            cv2.imwrite(str(root / folder / f"{view}.png"), pixels[..., ::-1])
    return root


def test_identity_folders_with_masks_and_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _photos(tmp_path / "my photos", ["red mug", "blue mug", "cat", "dog"])
    mask = np.zeros((64, 64), np.uint8)
    mask[16:48, 16:48] = 255
    cv2.imwrite(str(root / "red mug" / "0.mask.png"), mask)
    (root / "metadata.jsonl").write_text(
        "\n".join(
            json.dumps({"identity": i, "category": c})
            for i, c in [("red mug", "mug"), ("blue mug", "mug"), ("cat", "pet"), ("dog", "pet")]
        )
    )
    (root / "stray.jpg").write_bytes(b"")
    work = tmp_path / "project"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["init", str(root)]) == 0
    text = (work / "nearid.yaml").read_text()
    assert "layout: <root>/<identity>/<image>" in text
    assert "categories from metadata.jsonl: mug, pet" in text
    assert "masks beside images" in text and "not_in_identity_folder: 1" in text
    raw = yaml.safe_load(text)
    assert raw["name"] == "my-photos" and raw["source"]["root"] == str(root.resolve())
    pipeline = str(work / "nearid.yaml")
    result = cli("build", "--pipeline", pipeline, "--out", str(work / "build"), check=False)
    assert result.returncode == 0, result.stderr
    assert (work / "build" / "export").is_dir()


def test_a_category_level_is_detected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _photos(tmp_path / "shop", ["mugs/red", "mugs/blue", "shoes/boot"], views=2)
    monkeypatch.chdir(tmp_path)
    assert main(["init", str(root), "--file", "p.yaml"]) == 0
    text = Path("p.yaml").read_text()
    assert "categories from the category folders: mugs, shoes" in text
    pipeline = PipelineConfig.load(Path("p.yaml"))
    assert pipeline.source["layout"] == "category/identity"


def test_what_it_cannot_tell_is_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _photos(tmp_path / "pics", ["a", "b"])
    monkeypatch.chdir(root)  # inside the images: the build must go elsewhere
    assert main(["init", str(root)]) == 0
    text = Path("nearid.yaml").read_text()
    assert "Could not tell:" in text and "siblings are drawn across all" in text
    assert "no masks" in text
    pipeline = PipelineConfig.load(Path("nearid.yaml"))
    assert pipeline.out is not None
    pipeline.check_out(Path(pipeline.out))


def test_no_identity_folders_and_an_existing_file_are_clear_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "loose").mkdir()
    cv2.imwrite(str(tmp_path / "loose" / "x.png"), valid_image(0))
    monkeypatch.chdir(tmp_path)
    assert main(["init", str(tmp_path / "loose")]) == 2
    assert "no identity folders" in caplog.text
    Path("nearid.yaml").write_text("mine")
    _photos(tmp_path / "ok", ["a"])
    assert main(["init", str(tmp_path / "ok")]) == 2
    assert Path("nearid.yaml").read_text() == "mine"
    assert main(["init", str(tmp_path / "ok"), "--force"]) == 0
