"""collect: the report's model agrees with the manifests it was read from."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from nearid_data.engine.catalog import Catalog
from nearid_data.engine.manifest import manifest_path, read_manifest, read_summary
from nearid_data.report.collect import MAX_EXAMPLES, QA_FIGURES, collect
from nearid_data.verify import stage_dirs

GENERATORS = ["cut_paste", "cut_paste_ns"]  # as the rejecting_build fixture configures them


def _rows(stage_dir: Path) -> list:
    summary = read_summary(stage_dir)
    assert summary is not None
    return [
        row
        for entry in summary.shards
        for row in read_manifest(manifest_path(stage_dir, entry.unit)).rows
    ]


def test_stage_counts_equal_the_summaries(rejecting_build: Path) -> None:
    report = collect(rejecting_build)
    summaries = [read_summary(d) for d in stage_dirs(rejecting_build)]
    assert [s.name for s in report.stages] == [s.stage for s in summaries if s]
    for counts, summary in zip(report.stages, summaries, strict=True):
        assert summary is not None
        assert (counts.n_in, counts.n_kept, counts.n_rejected, counts.bytes) == (
            summary.n_in,
            summary.n_kept,
            summary.n_rejected,
            summary.bytes,
        )
        assert counts.shards == len(summary.shards)


def test_rejections_by_reason_equal_the_manifests(rejecting_build: Path) -> None:
    report = collect(rejecting_build)
    found = {(g.stage, g.reason): g.count for g in report.rejections}
    expected = {}
    for stage_dir in stage_dirs(rejecting_build):
        summary = read_summary(stage_dir)
        assert summary is not None
        rows = Counter(r.reason for r in _rows(stage_dir) if r.status == "rejected")
        assert dict(rows) == summary.rejected_by_reason
        expected.update({(summary.stage, reason): n for reason, n in rows.items()})
    assert found == expected
    assert {stage for stage, _ in found} == {"segment", "distractors", "splits"}
    assert ("distractors", "cut_paste:too_little_change") in found


def test_rejection_examples_have_their_upstream_pixels(rejecting_build: Path) -> None:
    for group in collect(rejecting_build).rejections:
        keys = [e.key for e in group.examples]
        assert keys == sorted(keys)
        assert len(keys) == min(group.count, MAX_EXAMPLES)
        stage_rows = {r.key: r for r in _rows(rejecting_build / group.stage)}
        for example in group.examples:
            assert stage_rows[example.key].reason == group.reason
            assert example.ref is not None, f"{group.stage}/{example.key} has no pixels"
            catalog = Catalog(example.ref.stage_dir)
            assert catalog.fetch(catalog.by_key[example.key])["image.png"][:4] == b"\x89PNG"


def test_one_stage_directory_finds_its_upstream(rejecting_build: Path) -> None:
    report = collect(rejecting_build / "splits")
    assert [s.name for s in report.stages] == ["splits"]
    assert {g.reason for g in report.rejections} == {"too_few_views"}
    assert all(e.ref is not None for g in report.rejections for e in g.examples)


def test_splits_count_identities_and_samples_of_the_export(rejecting_build: Path) -> None:
    report = collect(rejecting_build)
    rows = [r for r in _rows(rejecting_build / "export") if r.status == "kept"]
    assert sum(s.samples for s in report.splits.values()) == len(rows)
    for split, size in report.splits.items():
        in_split = [r for r in rows if r.split == split]
        assert size.samples == len(in_split)
        assert size.identities == len({r.identity for r in in_split})
        assert size.bytes == sum(r.bytes for r in in_split)


def test_sheets_pick_a_few_identities_per_category_deterministically(
    rejecting_build: Path,
) -> None:
    report = collect(rejecting_build, per_category=1)
    assert report.generators == GENERATORS
    export = [r for r in _rows(rejecting_build / "export") if r.status == "kept"]
    assert set(report.sheets) == {r.category for r in export}
    for category, rows in report.sheets.items():
        assert len(rows) == 1
        (row,) = rows
        assert row.category == category
        assert row.view == min(r.view for r in export if r.identity == row.identity)
        assert set(row.qa) == set(GENERATORS)
    again = collect(rejecting_build, per_category=1)
    assert again.sheets == report.sheets
    wider = collect(rejecting_build, per_category=10)
    assert sum(len(rows) for rows in wider.sheets.values()) == len({r.identity for r in export})


def test_qa_figures_and_mask_areas_cover_every_kept_view(rejecting_build: Path) -> None:
    report = collect(rejecting_build)
    distractors = read_summary(rejecting_build / "distractors")
    segment = read_summary(rejecting_build / "segment")
    assert distractors is not None and segment is not None
    for gid in GENERATORS:
        assert set(report.qa[gid]) == set(QA_FIGURES)
        assert all(len(v) == distractors.n_kept for v in report.qa[gid].values())
    assert len(report.mask_areas) == segment.n_kept
    assert all(0 < a <= 1 for a in report.mask_areas)
