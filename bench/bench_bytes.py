"""Benchmark of bytes written (CPU): the demo at N identities, bytes of every stage's shards and
their total against the export's, and the sha256 of every export tar (to compare two builds).

    python bench/bench_bytes.py --identities 48

Prints a Markdown table and writes JSON to bench/results/bytes.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nearid_data.build import build  # noqa: E402
from nearid_data.config import PipelineConfig  # noqa: E402


def measure(identities: int, out: Path) -> dict:
    config = PipelineConfig.load(
        ROOT / "pipelines" / "demo.yaml", [f"source.n_identities={identities}"]
    )
    summaries = build(config, out=out, workers=1)
    by_stage = {s.stage: s.bytes for s in summaries}
    exported = by_stage["export"]
    export_dir = out / "export"
    return {
        "identities": identities,
        "bytes_by_stage": by_stage,
        "total_bytes": sum(by_stage.values()),
        "export_bytes": exported,
        "ratio": round(sum(by_stage.values()) / exported, 3),
        "export_sha256": {
            tar.relative_to(export_dir).as_posix(): hashlib.sha256(tar.read_bytes()).hexdigest()
            for tar in sorted(export_dir.rglob("*.tar"))
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--identities", type=int, default=48)
    parser.add_argument("--json", type=Path, default=ROOT / "bench/results/bytes.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        result = measure(args.identities, Path(scratch) / "build")
    print(f"demo, {args.identities} identities")
    print("| stage | bytes written | / export |")
    print("|---|---:|---:|")
    for stage, size in result["bytes_by_stage"].items():
        print(f"| {stage} | {size:,d} | {size / result['export_bytes']:.2f} |")
    print(f"| all stages | {result['total_bytes']:,d} | {result['ratio']:.2f} |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
