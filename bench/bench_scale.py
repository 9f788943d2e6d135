"""Benchmark of the executors on the demo (CPU): samples/s of a whole build with the local
executor at 1 and 2 workers and the Ray executor at 1 and 2 actors, and Ray's overhead against
local at the same parallelism, and the bytes all stages write per byte of the export
(bench_bytes.py breaks them down by stage). Every run must give the same shard bytes; the script
checks it. The GPU case, the distractors stage on one Ray actor holding a GPU, is
``bench_stages_gpu.py --executor ray``.

    python bench/bench_scale.py --identities 48

Ray runs on a local instance started once (``ray.init(num_cpus=...)``) and shared by the Ray
runs, as a cluster would be; its start-up is reported apart. Each build is timed in-process
around ``build()`` (no interpreter start, no final verify). Prints a Markdown table and writes
JSON to bench/results/scale.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nearid_data.build import build  # noqa: E402
from nearid_data.config import PipelineConfig  # noqa: E402

RUNS = (("local", 1), ("local", 2), ("ray", 1), ("ray", 2))


def pipeline(identities: int, executor: str) -> PipelineConfig:
    overrides = [f"source.n_identities={identities}", f"executor.name={executor}"]
    return PipelineConfig.load(ROOT / "pipelines" / "demo.yaml", overrides)


def shards_digest(out: Path) -> str:
    digest = hashlib.sha256()
    for tar in sorted(out.rglob("*.tar")):
        digest.update(tar.relative_to(out).as_posix().encode())
        digest.update(tar.read_bytes())
    return digest.hexdigest()


def run(identities: int, executor: str, workers: int, scratch: Path) -> dict:
    out = scratch / f"{executor}-{workers}"
    started = time.perf_counter()
    summaries = build(pipeline(identities, executor), out=out, workers=workers)
    wall = time.perf_counter() - started
    samples = sum(s.n_in for s in summaries)
    result = {
        "executor": executor,
        "workers": workers,
        "wall_s": round(wall, 2),
        "samples": samples,
        "samples_per_s": round(samples / wall, 1),
        "stage_samples_per_s": {s.stage: round(s.n_in / s.wall_s, 1) for s in summaries},
        "bytes_per_export_byte": round(
            sum(s.bytes for s in summaries)
            / next(s.bytes for s in summaries if s.stage == "export"),
            3,
        ),
        "shards_sha256": shards_digest(out),
    }
    shutil.rmtree(out)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--identities", type=int, default=48)
    parser.add_argument("--ray-cpus", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--json", type=Path, default=ROOT / "bench/results/scale.json")
    args = parser.parse_args()

    import ray

    started = time.perf_counter()
    ray.init(num_cpus=args.ray_cpus, log_to_driver=False, include_dashboard=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})  # fmt: skip
    ray_start_s = round(time.perf_counter() - started, 2)
    with tempfile.TemporaryDirectory() as scratch:
        results = [run(args.identities, e, w, Path(scratch)) for e, w in RUNS]
    ray.shutdown()

    digests = {r["shards_sha256"] for r in results}
    local = {r["workers"]: r["wall_s"] for r in results if r["executor"] == "local"}
    for result in results:
        if result["executor"] == "ray":
            result["overhead_vs_local"] = round(result["wall_s"] / local[result["workers"]], 2)
    print(f"demo, {args.identities} identities; Ray start-up {ray_start_s} s (not in the table)")
    print("| executor | workers | wall s | samples/s | Ray / local | " + " | ".join(
        results[0]["stage_samples_per_s"]) + " |")  # fmt: skip
    print("|---" * (5 + len(results[0]["stage_samples_per_s"])) + "|")
    for r in results:
        stages = " | ".join(str(v) for v in r["stage_samples_per_s"].values())
        ratio = r.get("overhead_vs_local", "")
        print(f"| {r['executor']} | {r['workers']} | {r['wall_s']} | {r['samples_per_s']} | "
              f"{ratio} | {stages} |")  # fmt: skip
    print(f"shards identical across all runs: {len(digests) == 1}; bytes written by all stages "
          f"per export byte: {results[0]['bytes_per_export_byte']}")  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    report = {"identities": args.identities, "ray_start_s": ray_start_s, "runs": results}
    args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0 if len(digests) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
