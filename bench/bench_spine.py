"""Benchmark of the spine on the demo source (CPU): samples/s per stage at two sizes, export write
throughput against a plain copy of the same bytes, and peak RSS at N and 4N identities.

    python bench/bench_spine.py --identities 48 --workers 1
    python bench/bench_spine.py --identities 48 --workers 2

Each size is built in a fresh subprocess so its peak RSS is its own. Prints a Markdown table and
writes JSON to bench/results/spine.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build_once(n_identities: int, workers: int, out: Path) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "nearid_data",
            "build",
            "--pipeline",
            "pipelines/demo.yaml",
            "--out",
            str(out),
            "--workers",
            str(workers),
            "--set",
            f"source.n_identities={n_identities}",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    wall = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    stages = {}
    for stage in ("ingest", "segment", "distractors", "splits", "export"):
        summary = json.loads((out / stage / "_summary.json").read_text())
        stages[stage] = {
            "samples": summary["n_in"],
            "wall_s": summary["wall_s"],
            "samples_per_s": round(summary["n_in"] / summary["wall_s"], 1),
            "bytes": summary["bytes"],
        }
    # ru_maxrss of children is the max over all children so far; each size runs largest-last.
    return {
        "identities": n_identities,
        "workers": workers,
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(max(peak_kb, before) / 1024, 1),
        "stages": stages,
    }


def copy_throughput(export_dir: Path, scratch: Path) -> float:
    """MB/s of copying the export's tars (same bytes, same disk), with fsync like the writer."""
    tars = sorted(export_dir.rglob("*.tar"))
    total = sum(t.stat().st_size for t in tars)
    started = time.perf_counter()
    for index, tar in enumerate(tars):
        target = scratch / f"{index}.tar"
        shutil.copyfile(tar, target)
        with open(target, "rb+") as handle:
            os.fsync(handle.fileno())
    return total / 1e6 / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identities", type=int, default=48, help="N; also runs 4N")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (args.identities, 4 * args.identities):
            out = Path(tmp) / f"n{n}"
            result = build_once(n, args.workers, out)
            export = result["stages"]["export"]
            export_mb_s = export["bytes"] / 1e6 / export["wall_s"]
            scratch = Path(tmp) / f"copy{n}"
            scratch.mkdir()
            result["export_mb_per_s"] = round(export_mb_s, 1)
            result["copy_mb_per_s"] = round(copy_throughput(out / "export", scratch), 1)
            result["export_to_copy_ratio"] = round(export_mb_s / result["copy_mb_per_s"], 3)
            results.append(result)
    print(
        f"| identities | workers | wall s | peak RSS MB | {' | '.join(results[0]['stages'])} (samples/s) | export MB/s | copy MB/s | ratio |"
    )
    print("|" + "---|" * (9 + len(results[0]["stages"]) - 5))
    for r in results:
        rates = " | ".join(str(s["samples_per_s"]) for s in r["stages"].values())
        print(
            f"| {r['identities']} | {r['workers']} | {r['wall_s']} | {r['peak_rss_mb']} | {rates} | "
            f"{r['export_mb_per_s']} | {r['copy_mb_per_s']} | {r['export_to_copy_ratio']} |"
        )
    growth = results[1]["peak_rss_mb"] / results[0]["peak_rss_mb"] - 1
    print(f"\npeak RSS growth from N to 4N: {growth:+.1%}")
    (ROOT / "bench/results").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench/results/spine.json").write_text(
        json.dumps({"runs": results, "rss_growth": growth}, indent=1)
    )


if __name__ == "__main__":
    main()
