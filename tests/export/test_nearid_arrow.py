"""The NearID Arrow export: index-aligned datasets that load as NearID's code loads them."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from nearid_data.build import build
from nearid_data.config import PipelineConfig
from nearid_data.engine.executor import UnitFailed
from nearid_data.engine.manifest import read_summary
from nearid_data.errors import NearidError
from nearid_data.sources.procedural import make_identity, render_view
from tests.build_helpers import stage_samples
from tests.conftest import tiny_pipeline
from tests.source_fixtures import write_syncd

# Views per identity, mug and bottle alternating: 2-view rows, 3-view rows, and 4-view identities
# whose fourth view is rejected.
VIEW_COUNTS = (2, 3, 4, 3, 3, 2, 4, 3)
# The released columns, in order: the dataset cards of NearID's
# scripts/upload_nearid_datasets.py (distractors) and evaluation/sim_test.py's
# SynCDSimilarityDataset._load_image_set (positives: images1..3, masks1..3).
_METADATA_HEAD = ["id", "category", "category_description"]
_METADATA_TAIL = ["n_images", "objaverse_id", "prompts1", "prompts2", "prompts3", "quality"]
POSITIVE_COLUMNS = [
    *_METADATA_HEAD,
    *(f"{c}{j}" for c in ("images", "masks") for j in (1, 2, 3)),
    *_METADATA_TAIL,
]
DISTRACTOR_COLUMNS = [*_METADATA_HEAD, "nimg1", "nimg2", "nimg3", *_METADATA_TAIL]


def _image_folder(root: Path) -> Path:
    """The demo's procedural identities written as an ``imagefolder`` (masks, captions), so that
    identities can have 2, 3 or 4 views: the demo source gives every identity the same count."""
    lines = []
    for index, views in enumerate(VIEW_COUNTS):
        spec = make_identity(index, seed=0, categories=("mug", "bottle"))
        folder = root / spec.identity
        folder.mkdir(parents=True)
        for view in range(views):
            rendered = render_view(spec, view, size=64, seed=0)
            cv2.imwrite(str(folder / f"{view}.png"), rendered.image[..., ::-1])
            cv2.imwrite(str(folder / f"{view}.mask.png"), rendered.mask.astype("uint8") * 255)
        record = {"identity": spec.identity, "category": spec.category, "caption": spec.caption}
        lines.append(json.dumps(record))
    (root / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return root


def _pipeline(raw: Path) -> PipelineConfig:
    return PipelineConfig.from_dict(
        {
            "name": "tiny-nearid",
            "seed": 3,
            "source": {"name": "imagefolder", "root": str(raw)},
            "stages": {
                "ingest": {"shard_size": 8},
                "segment": {"dilate_px": 3},
                "distractors": {
                    "generators": [{"name": "cut_paste"}, {"name": "cut_paste", "id": "again"}]
                },
                "splits": {"fractions": {"train": 0.5, "val": 0.25, "test": 0.25}},
                "export-nearid": {"identities_per_unit": 3},
            },
        }
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("nearid")
    build(_pipeline(_image_folder(root / "raw")), out=root / "build")
    return root / "build"


def _load(built: Path, name: str):
    """A dataset as NearID's sim_test.py (load_dataset_auto, then fast_combine_aligned) reads
    it: ``load_from_disk(path)`` is a DatasetDict, its rows are ``["train"]``."""
    import datasets

    loaded = datasets.load_from_disk(str(built / "export-nearid/nearid" / name))
    assert isinstance(loaded, datasets.DatasetDict) and list(loaded) == ["train"]
    return loaded["train"]


def _upstream(built: Path) -> dict[str, list[dict]]:
    """identity -> the splits stage's samples, sorted by view."""
    by_identity: dict[str, list[dict]] = {}
    for sample in stage_samples(built / "splits"):
        by_identity.setdefault(sample["json"]["identity"], []).append(sample)
    return {i: sorted(s, key=lambda x: x["json"]["view"]) for i, s in by_identity.items()}


def test_every_input_is_accounted_for(built: Path) -> None:
    splits, export = read_summary(built / "splits"), read_summary(built / "export-nearid")
    assert splits is not None and export is not None
    assert export.n_in == splits.n_kept
    four_views = sum(max(0, len(s) - 3) for s in _upstream(built).values())
    assert four_views > 0 and export.rejected_by_reason == {"view_beyond_3": four_views}
    assert export.n_kept + export.n_rejected == export.n_in


def test_datasets_are_index_aligned_with_nearids_columns(built: Path) -> None:
    positives = _load(built, "NearID")
    assert positives.column_names == [*POSITIVE_COLUMNS, "identity", "split"]  # + ours
    assert len(positives) == len(_upstream(built))
    assert positives["id"] == list(range(len(positives)))
    assert positives["identity"] == sorted(positives["identity"])
    metadata = ["category", "category_description", "objaverse_id", "quality", "n_images"]
    for gid in ("cut_paste", "again"):
        distractors = _load(built, f"NearID-{gid}")
        assert distractors.column_names == DISTRACTOR_COLUMNS
        assert distractors["id"] == positives["id"]
        for column in metadata:
            assert distractors[column] == positives[column]
    assert sorted(p.name for p in (built / "export-nearid/nearid").iterdir()) == [
        "NearID",
        "NearID-again",
        "NearID-cut_paste",
        "splits",
    ]


def test_split_files_hold_row_positions_of_the_split_column(built: Path) -> None:
    positives = _load(built, "NearID")
    covered = []
    for split in ("train", "val", "test"):
        rows = json.loads((built / f"export-nearid/nearid/splits/{split}.json").read_text())
        assert rows and set(positives.select(rows)["split"]) == {split}
        covered += rows
    assert sorted(covered) == list(range(len(positives)))


def test_rows_hold_the_views_their_distractors_and_none_past_the_last(built: Path) -> None:
    import datasets

    raw = datasets.Image(decode=False)
    positives = _load(built, "NearID")
    for column in ("images1", "images2", "images3", "masks1", "masks2", "masks3"):
        positives = positives.cast_column(column, raw)
    distractors = _load(built, "NearID-cut_paste")
    for column in ("nimg1", "nimg2", "nimg3"):
        distractors = distractors.cast_column(column, raw)
    upstream = _upstream(built)
    for row, negative in zip(positives, distractors, strict=True):
        views = upstream[row["identity"]][:3]
        # the imagefolder caption describes the object (no per-view scene prompt)
        assert row["n_images"] == len(views) and row["category_description"] == row["prompts1"]
        assert (row["objaverse_id"], row["quality"]) == ("", None)
        for j, view in enumerate(views, start=1):
            assert row[f"images{j}"]["bytes"] == view["image.png"]
            assert row[f"masks{j}"]["bytes"] == view["mask.png"]
            assert negative[f"nimg{j}"]["bytes"] == view["distractor_cut_paste.png"]
            assert negative[f"prompts{j}"] == view["json"]["distractors"]["cut_paste"]["prompt"]
        if len(views) == 2:
            assert row["images3"] is None and row["masks3"] is None and row["prompts3"] is None
            assert negative["nimg3"] is None and negative["prompts3"] is None
    assert 2 in positives["n_images"] and 3 in positives["n_images"]


def test_rerun_rebuilds_the_layout_in_place(built: Path) -> None:
    before = _load(built, "NearID")["identity"]
    summaries = build(_pipeline(built.parent / "raw"), out=built, stage="export-nearid")
    assert summaries[0].units_run == 0
    assert _load(built, "NearID")["identity"] == before
    assert not [p for p in (built / "export-nearid").iterdir() if p.name.startswith(".")]


def test_syncd_source_fills_objaverse_ids_and_view_prompts(tmp_path: Path) -> None:
    written = write_syncd(tmp_path / "raw", n_rigid=4, size=(64, 64))
    stages = {
        "ingest": {"shard_size": 8},
        "segment": {"dilate_px": 3},
        "distractors": {"generators": [{"name": "cut_paste"}]},
        "splits": {"fractions": {"train": 0.5, "val": 0.25, "test": 0.25}},
        "export-nearid": {},
    }
    out = tmp_path / "build"  # beside the source, not around it
    build(tiny_pipeline(source=written.source, stages=stages), out=out)
    positives = _load(out, "NearID")
    metadata = json.loads((written.root / "metadata.json").read_text())
    rigid = {entry["objaverse_id"]: entry for entry in metadata if entry["objaverse_id"]}
    assert positives["objaverse_id"] == sorted(rigid)
    for row in positives.select_columns(["objaverse_id", "prompts1", "prompts2", "prompts3"]):
        assert [row[f"prompts{j}"] for j in (1, 2, 3)] == rigid[row["objaverse_id"]]["prompts"]
    # SynCD's prompts describe the scene: the object description falls back to the category
    assert positives["category_description"] == positives["category"]


def _with_generators(generators: list[dict], stages: dict | None = None) -> PipelineConfig:
    return PipelineConfig.from_dict(
        {
            "name": "sets",
            "source": {"name": "demo"},
            "stages": stages
            or {
                "ingest": {},
                "segment": {},
                "distractors": {"generators": generators},
                "export-nearid": {},
            },
        }
    )


def test_preset_generators_get_the_release_folder_names() -> None:
    from nearid_data.export.nearid_arrow import distractor_sets

    sdxl = {"name": "sdxl-inpaint", "preset": "sdxl-inpaint-nearid", "id": "sdxl"}
    flux = {"name": "flux-fill", "preset": "flux-fill-nearid-512"}
    pipeline = _with_generators([{"name": "cut_paste"}, sdxl, flux])
    assert distractor_sets(pipeline) == {
        "cut_paste": "NearID-cut_paste",
        "sdxl": "NearID-SDXL_1024",
        "flux_fill": "NearID-Flux",
    }
    # refused when the pipeline is validated
    with pytest.raises(NearidError, match="would both be written to NearID-SDXL_1024"):
        _with_generators([sdxl, {**sdxl, "id": "sdxl_again"}])


def test_a_stage_after_one_that_drops_its_fields_is_refused() -> None:
    stages = {
        "ingest": {},
        "segment": {},
        "distractors": {"generators": [{"name": "cut_paste"}]},
        "export-nearid": {},
        "export": {},
    }
    with pytest.raises(NearidError, match=r"stage 'export' needs fields \['inpaint_mask.png'\]"):
        _with_generators([], stages)
    # the other order validates: export passes every field on
    reordered = {k: stages[k] for k in ("ingest", "segment", "distractors", "export")}
    assert (
        list(_with_generators([], {**reordered, "export-nearid": {}}).stages)[-1] == "export-nearid"
    )


PIPELINE = Path(__file__).resolve().parents[2] / "pipelines" / "nearid-syncd.yaml"


def test_the_nearid_syncd_pipeline_writes_both_exports(tmp_path: Path) -> None:
    """The shipped pipeline, its SDXL generator swapped for cut-and-paste (no weights in CI), on
    a SynCD copy as gen_rigid.py writes it, with too few identities for val 100 / test 500."""
    from nearid_data.export.nearid_arrow import distractor_sets

    shipped = PipelineConfig.load(PIPELINE)
    assert distractor_sets(shipped) == {"cut_paste": "NearID-cut_paste", "sdxl": "NearID-SDXL_1024"}
    written = write_syncd(tmp_path / "raw", n_rigid=5, size=(64, 64))
    (written.root / "metadata.json").rename(written.root / "metadata_0.json")
    overrides = [
        f"source.root={written.root}",
        "distractors.generators=[{name: cut_paste}]",
    ]
    with pytest.raises(UnitFailed, match="need 600 identities, but only 5 are available"):
        build(PipelineConfig.load(PIPELINE, overrides), out=tmp_path / "exact")
    capped = PipelineConfig.load(PIPELINE, [*overrides, "splits.sizes_mode=cap"])
    build(capped, out=tmp_path / "build")
    assert sorted(p.parent.name for p in (tmp_path / "build/export/data").glob("*/*.tar")) == [
        "test",
        "val",
    ]
    positives = _load(tmp_path / "build", "NearID")
    assert len(positives) == 5 and sorted(set(positives["split"])) == ["test", "val"]
    assert len(_load(tmp_path / "build", "NearID-cut_paste")) == 5
