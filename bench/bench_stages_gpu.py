"""Whole-stage throughput against the bare models, on one GPU, at real sizes with random weights.

The segment stage (decode, GroundingDINO Swin-T, SAM ViT-H, mask clean-up and QA, PNG encoding,
shard writing) and the distractors stage (decode, SD-inpaint at 512, compositing, QA, encoding,
writing) run through the runner on demo images; the same backends are then called directly on
the same decoded images. The ratio is stage images/s over bare images/s (goals: segment >= 0.8,
distractors >= 0.9). Stage time is the sum of the units' own wall time on a second, warm run
(model loading excluded, as for the bare calls, which get one warm-up batch).

    python bench/bench_stages_gpu.py                 # CUDA machine
    python bench/bench_stages_gpu.py --executor ray  # the same stages on one Ray GPU actor
    python bench/bench_stages_gpu.py --smoke         # CPU, tiny models: checks the harness

With ``--executor ray`` a local Ray instance is started with the machine's GPUs and the
distractors stage's units run on one Ray actor that takes one GPU (segment stays local); the table
gives each stage's whole wall time (actor start and model loading included) beside the units' own.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_distractors_gpu  # noqa: E402
import bench_segment_gpu  # noqa: E402
from gpu_harness import emit, pick_device, quiet_libraries  # noqa: E402

from nearid_data.backend import build_backend  # noqa: E402
from nearid_data.build import build  # noqa: E402
from nearid_data.config import PipelineConfig  # noqa: E402
from nearid_data.distractors.base import InpaintRequest  # noqa: E402
from nearid_data.distractors.registry import GENERATORS  # noqa: E402
from nearid_data.engine.catalog import Catalog  # noqa: E402
from nearid_data.engine.manifest import manifest_path, read_manifest, read_summary  # noqa: E402
from nearid_data.imageio import decode_mask_png, decode_png  # noqa: E402
from nearid_data.segment.boxes import select_box  # noqa: E402
from nearid_data.segment.registry import DETECTORS, SEGMENTERS  # noqa: E402


def pipeline(models: dict[str, Path], args: argparse.Namespace, executor: str) -> PipelineConfig:
    return PipelineConfig.from_dict({
        "name": "bench-stages",
        "executor": {"name": executor},
        "source": {"name": "demo", "n_identities": args.identities, "views": 3,
                   "image_size": 256 if args.smoke else 1024},
        "stages": {
            "ingest": {"shard_size": 48},
            "segment": {
                "detector": {"name": "gdino", "model": str(models["gdino"]), "box_threshold": 0.0,
                             "text_threshold": 0.0},
                "segmenter": {"name": "sam", "kind": "vit_h", "checkpoint": str(models["sam"])},
                "source_masks": "replace", "batch_size": 8,
            },
            "distractors": {
                "generators": [{"name": "sd-inpaint", "model": str(models["sd"]), "batch_size": 8,
                                "steps": 2 if args.smoke else 30,
                                "resolution": 64 if args.smoke else 512}],
                "concept": "perturb", "min_inside_changed": 0.0, "batch_size": 8,
            },
        },
    })  # fmt: skip


def stage_seconds(build_dir: Path, stage: str) -> tuple[float, int]:
    """Sum of the units' own wall time (setup excluded) and the number of inputs."""
    summary = read_summary(build_dir / stage)
    assert summary is not None
    manifests = [read_manifest(manifest_path(build_dir / stage, s.unit)) for s in summary.shards]
    return sum(m.wall_s for m in manifests), summary.n_in


def timed_batches(run: Any, items: list[Any], batch: int, device: str) -> float:
    import torch

    run(items[:batch])  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for start in range(0, len(items), batch):
        run(items[start : start + batch])
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def bare_segment(config: PipelineConfig, build_dir: Path, device: str) -> float:
    spec = config.stage_config("segment")
    detector = build_backend(DETECTORS, spec.detector, where="detector", device=device)  # type: ignore[attr-defined]
    segmenter = build_backend(SEGMENTERS, spec.segmenter, where="segmenter", device=device)  # type: ignore[attr-defined]
    catalog = Catalog(build_dir / "ingest")
    samples = [catalog.fetch(row) for row in catalog.rows]
    images = [decode_png(s["image.png"]) for s in samples]
    prompts = [f"{s['json']['category']}." for s in samples]

    def run(indexes: list[int]) -> None:
        found = detector.detect([images[i] for i in indexes], [prompts[i] for i in indexes])
        segmenter.segment([images[i] for i in indexes], [select_box(b, "best") for b in found])

    return timed_batches(run, list(range(len(images))), 8, device)


def bare_distractors(config: PipelineConfig, build_dir: Path, device: str) -> float:
    spec = config.stage_config("distractors").generators[0]  # type: ignore[attr-defined]
    generator = build_backend(GENERATORS, spec.backend(), where="generator", device=device)
    catalog = Catalog(build_dir / "segment")
    requests = []
    for index, row in enumerate(catalog.rows):
        sample = catalog.fetch(row)
        requests.append(InpaintRequest(
            key=row.key, image=decode_png(sample["image.png"]),
            mask=decode_mask_png(sample["inpaint_mask.png"]),
            subject_mask=decode_mask_png(sample["mask.png"]),
            prompt=row.caption, negative_prompt="", seed=index,
        ))  # fmt: skip
    return timed_batches(generator.generate, requests, 8, device)


def start_ray(device: str) -> None:
    """A local Ray instance with this machine's GPUs; workers import the checkout."""
    import os

    import ray
    import torch

    gpus = torch.cuda.device_count() if device == "cuda" else 0
    ray.init(num_cpus=os.cpu_count(), num_gpus=gpus, log_to_driver=False,
             include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny models and images")
    parser.add_argument("--identities", type=int, default=32, help="demo identities, 3 views each")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--executor", choices=("local", "ray"), default="local")
    args = parser.parse_args()
    quiet_libraries()
    device = pick_device(args.smoke)
    if args.executor == "ray":
        start_ray(device)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_stages_") as tmp:
        work = Path(tmp)
        models = {
            "gdino": bench_segment_gpu.gdino_model("swin-t", work / "gdino", args.smoke, device),
            "sam": bench_segment_gpu.sam_checkpoint(work, args.smoke, device),
            "sd": bench_distractors_gpu.save_pipeline("sd", work / "sd", smoke=args.smoke,
                                                      vae_upcast=False),
        }  # fmt: skip
        configs = {
            "segment": pipeline(models, args, "local"),
            "distractors": pipeline(models, args, args.executor),
        }
        out = work / "build"
        build(configs["segment"], out=out, stage="ingest")
        for stage, bare in (("segment", bare_segment), ("distractors", bare_distractors)):
            config = configs[stage]
            build(config, out=out, stage=stage, device=device)
            build(config, out=out, stage=stage, device=device, force=True)  # warm run
            seconds, count = stage_seconds(out, stage)
            bare_seconds = bare(config, out, device)
            summary = read_summary(out / stage)
            assert summary is not None
            rows.append({
                "stage": stage, "executor": config.executor["name"], "images": count,
                "stage_wall_s": summary.wall_s, "devices": summary.devices,
                "stage_images_per_s": round(count / seconds, 3),
                "bare_images_per_s": round(count / bare_seconds, 3),
                "ratio": round(bare_seconds / seconds, 3),
            })  # fmt: skip
    table = "\n".join(
        ["| stage | executor | images | stage images/s | bare images/s | stage / bare "
         "| stage wall s | ran on |", "|---|---|---|---|---|---|---|---|"]
        + [f"| {r['stage']} | {r['executor']} | {r['images']} | {r['stage_images_per_s']} | "
           f"{r['bare_images_per_s']} | {r['ratio']:.0%} | {r['stage_wall_s']} | "
           f"{', '.join(r['devices'])} |" for r in rows]
    )  # fmt: skip
    emit("stages_gpu", device, args.smoke, rows, table, args.out)


if __name__ == "__main__":
    main()
