"""``inspect``: what a build holds, per stage: counts, rejections by reason, sizes, timings.
Reads the stage summaries only, locally or at a URL (through the storage seam)."""

from __future__ import annotations

from nearid_data.engine.manifest import read_summary
from nearid_data.engine.storage import Location
from nearid_data.verify import stage_dirs


def inspect_text(directory: Location) -> str:
    lines = [
        f"{'stage':<12} {'in':>7} {'kept':>7} {'rejected':>8} {'shards':>6} {'MB':>9} {'wall s':>7}"
    ]
    reasons: list[str] = []
    for stage_dir in stage_dirs(directory):
        summary = read_summary(stage_dir)
        assert summary is not None
        lines.append(
            f"{summary.stage:<12} {summary.n_in:>7} {summary.n_kept:>7} {summary.n_rejected:>8} "
            f"{len(summary.shards):>6} {summary.bytes / 1e6:>9.2f} {summary.wall_s:>7.1f}"
        )
        reasons.extend(
            f"  {summary.stage}: {r} x{n}" for r, n in summary.rejected_by_reason.items()
        )
    if reasons:
        lines += ["", "rejections by reason:", *reasons]
    return "\n".join(lines)
