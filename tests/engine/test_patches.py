"""Fields stored as patches: the region where a field differs from its base, rebuilt exactly."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nearid_data import imageio
from nearid_data.build import build
from nearid_data.engine.catalog import Catalog, CatalogRow
from nearid_data.engine.manifest import manifest_path, read_manifest, read_summary, write_model
from nearid_data.engine.patches import apply_patch, make_patch, patch_member
from nearid_data.engine.storage import merged_spans
from nearid_data.engine.tario import ShardError
from nearid_data.imageio import encode_png
from nearid_data.verify import verify
from tests.conftest import tiny_pipeline


def _photo(seed: int, shape: tuple[int, ...] = (64, 80, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_a_repainted_region_is_stored_alone_and_rebuilds_the_same_bytes() -> None:
    image = _photo(0)
    painted = image.copy()
    painted[10:30, 20:50] = _photo(1, (20, 30, 3))
    base, data = encode_png(image), encode_png(painted)
    made = make_patch(base, data)
    assert made is not None
    box, region = made
    assert box == (20, 10, 50, 30) and len(region) < len(data) / 2
    assert apply_patch(base, region, box) == data


def test_masks_and_unchanged_fields_patch_too() -> None:
    mask = np.zeros((40, 40), dtype=bool)
    painted = mask.copy()
    painted[5:9, 7:8] = True
    base, data = encode_png(mask), encode_png(painted)
    made = make_patch(base, data)
    assert made is not None and made[0] == (7, 5, 8, 9)
    assert apply_patch(base, made[1], made[0]) == data
    same = make_patch(base, base)
    assert same is not None and apply_patch(base, same[1], same[0]) == base


@pytest.mark.parametrize(
    "other",
    [_photo(2, (64, 81, 3)), _photo(3, (64, 80))],  # another size, another channel count
    ids=["size", "channels"],
)
def test_fields_of_another_shape_are_stored_whole(other: np.ndarray) -> None:
    assert make_patch(encode_png(_photo(0)), encode_png(other)) is None


def test_bytes_another_encoder_wrote_are_stored_whole() -> None:
    """A patch rebuilds with the toolkit's encoder: a field it would not reproduce stays whole."""
    painted = _photo(0)
    painted[0:8, 0:8] = 0
    buffer = io.BytesIO()
    Image.fromarray(painted).save(buffer, format="PNG", compress_level=9)
    assert make_patch(encode_png(_photo(0)), buffer.getvalue()) is None


def test_a_change_spanning_the_image_is_stored_whole() -> None:
    assert make_patch(encode_png(_photo(0)), encode_png(_photo(4))) is None


def test_merged_spans_join_neighbours_and_keep_far_ranges_apart() -> None:
    assert merged_spans([(1024, 10), (0, 100), (50, 60), (10**7, 5)]) == [
        (0, 1034),
        (10**7, 10**7 + 5),
    ]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("patches")
    build(tiny_pipeline(), out=out)
    return out


def _patched_row(built: Path) -> tuple[Catalog, CatalogRow]:
    catalog = Catalog(built / "splits")
    row = next(r for r in catalog.rows if any(n.startswith("distractor_") for n in r.fields))
    return catalog, row


def test_readers_see_the_field_and_never_the_patch(built: Path) -> None:
    catalog, row = _patched_row(built)
    name = next(n for n in row.fields if n.startswith("distractor_"))
    assert row.inherited[name] == "distractors"
    sample = catalog.fetch(row)
    assert name in sample and patch_member(name) not in sample
    only = catalog.fetch(row, {name})
    assert set(only) == {"__key__", name}  # the base was read to rebuild it, then left out
    assert only[name] == sample[name]


def test_a_reader_whose_encoder_writes_other_bytes_fails_loudly(
    built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog, row = _patched_row(built)
    monkeypatch.setattr(imageio, "PNG_COMPRESSION", 9)
    with pytest.raises(ShardError, match="PNG encoder here"):
        catalog.fetch(row)


def test_verify_names_rows_whose_patches_or_sizes_disagree_with_their_fields(
    tmp_path: Path,
) -> None:
    build(tiny_pipeline(), out=tmp_path)
    stage_dir = tmp_path / "distractors"
    summary = read_summary(stage_dir)
    assert summary is not None
    path = manifest_path(stage_dir, summary.shards[0].unit)
    manifest = read_manifest(path)
    patched, sized = [r for r in manifest.rows if r.patches][:2]
    name = next(iter(patched.patches))
    patched.patches[name] = patched.patches[name].model_copy(update={"base": "missing.png"})
    sized.sizes["image.png"] += 1
    write_model(path, manifest)
    problems = [str(p) for p in verify(tmp_path).problems]
    assert any(f"patch of {name!r} over 'missing.png'" in p for p in problems), problems
    assert any(f"sample {sized.key!r}: its field sizes" in p for p in problems), problems


@pytest.mark.parametrize(
    ("shift", "message"),
    [((1, 0, 1, 0), "differs from the bytes recorded"), ((0, 0, 1, 0), "does not paste")],
    ids=["moved", "resized"],
)
def test_verify_rebuilds_every_patch(
    tmp_path: Path, shift: tuple[int, int, int, int], message: str
) -> None:
    """A box altered in a manifest reads back as other pixels: verify fails on it, as every
    reader would, instead of reporting a build whose export would fail."""
    build(tiny_pipeline(), out=tmp_path, stage="distractors")
    assert verify(tmp_path).problems == []
    stage_dir = tmp_path / "distractors"
    summary = read_summary(stage_dir)
    assert summary is not None
    path = manifest_path(stage_dir, summary.shards[0].unit)
    manifest = read_manifest(path)
    row = next(r for r in manifest.rows if r.patches and r.patches[next(iter(r.patches))].box[0])
    name = next(iter(row.patches))
    box = tuple(a - b for a, b in zip(row.patches[name].box, shift, strict=True))
    row.patches[name] = row.patches[name].model_copy(update={"box": box})
    write_model(path, manifest)
    problems = [str(p) for p in verify(tmp_path).problems]
    assert len(problems) == 1 and f"sample {row.key!r}" in problems[0], problems
    assert message in problems[0]
