"""Benchmark of reads on object storage (CPU): the demo at N identities built to an S3 API
(moto's server on 127.0.0.1, through s3fs, as the storage tests use), counting per stage the
GET requests made and the byte ranges the readers asked for. A ranged read per member and
sample would make one request per range; joins batch samples and merge neighbouring ranges.

    python bench/bench_s3_reads.py --identities 48

Needs the storage extra and moto[server] (both in the dev extra). Prints a Markdown table and
writes JSON to bench/results/s3_reads.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nearid_data.build import build  # noqa: E402
from nearid_data.config import PipelineConfig  # noqa: E402
from nearid_data.engine import storage  # noqa: E402


class Counting:
    """Counts, under the stage being built, GET requests and the ranges asked of read_range."""

    def __init__(self) -> None:
        self.stage = "plan"
        self.gets: Counter[str] = Counter()
        self.ranges: Counter[str] = Counter()

    def install(self) -> None:
        import s3fs

        call_s3 = s3fs.S3FileSystem._call_s3
        read_range = storage.read_range

        async def counted_call(fs: Any, method: str, *args: Any, **kwargs: Any) -> Any:
            if method == "get_object":
                self.gets[self.stage] += 1
            return await call_s3(fs, method, *args, **kwargs)

        def counted_range(where: Any, ranges: list[tuple[int, int]]) -> list[bytes]:
            self.ranges[self.stage] += len(ranges)
            return read_range(where, ranges)

        s3fs.S3FileSystem._call_s3 = counted_call
        storage.read_range = counted_range


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--identities", type=int, default=48)
    parser.add_argument("--json", type=Path, default=ROOT / "bench/results/s3_reads.json")
    args = parser.parse_args()

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=f"http://{host}:{port}",
    )
    bucket = f"nearid-{secrets.token_hex(4)}"
    storage.filesystem("s3").mkdir(bucket)

    counting = Counting()
    counting.install()
    config = PipelineConfig.load(
        ROOT / "pipelines" / "demo.yaml", [f"source.n_identities={args.identities}"]
    )
    out = f"s3://{bucket}/build"
    rows = []
    for stage in config.stages:
        counting.stage = stage
        started = time.perf_counter()
        (summary,) = build(config, out=storage.location(out), stage=stage, only=True)
        rows.append(
            {
                "stage": stage,
                "samples": summary.n_in,
                "get_requests": counting.gets[stage],
                "ranges_read": counting.ranges[stage],
                "wall_s": round(time.perf_counter() - started, 2),
            }
        )
    server.stop()

    print(f"demo, {args.identities} identities, built to s3:// (moto server on 127.0.0.1)")
    print("| stage | samples | ranges asked | GET requests | wall s |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['stage']} | {row['samples']} | {row['ranges_read']} | "
            f"{row['get_requests']} | {row['wall_s']} |"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps({"identities": args.identities, "stages": rows}, indent=2) + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
