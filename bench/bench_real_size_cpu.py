"""Real-size smoke run: each model backend at its published architecture, random weights, through
the stages, at real resolution, with 2-3 steps. Checks what a long GPU run relies on, not speed.

Per case the models are built from their published configs (tokenizers written locally, no
downloads), saved, and loaded back through the backends' own loading path by the build. Two demo
views at the model's resolution go through ingest, segment and, for generators, distractors, each
view in its own shard so that a stage that loaded its models per unit would show it. Checked:

- every input is accounted for (kept, or rejected with a reason) and kept rows carry QA figures;
- every kept distractor equals its reference, bit for bit, outside the inpainting mask;
- each stage built each of its backends exactly once.

Cases: ``sd`` (SD1.5-inpainting, 860M UNet with 9 input channels, at 512), ``gdino-sam``
(GroundingDINO Swin-T + SAM ViT-B at 1024), ``gdino-sam-hf`` (GroundingDINO Swin-T +
transformers' SamModel ViT-B), ``sdxl`` (SDXL-inpainting, 2.6B UNet and both text encoders, at
1024; on CPU in bfloat16 and about 12 GB of memory: run it last and alone). FLUX Fill (12B) does
not fit a CPU run.

    python bench/bench_real_size_cpu.py --cases sd                 # minutes on 2 CPU cores
    python bench/bench_real_size_cpu.py --cases gdino-sam,gdino-sam-hf
    python bench/bench_real_size_cpu.py --device cuda --cases sd,gdino-sam,gdino-sam-hf,sdxl

Prints one JSON line and a Markdown table; ``--out`` also writes the JSON to a file. Exits with
status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_distractors_gpu  # noqa: E402
import bench_segment_gpu  # noqa: E402
from gpu_harness import quiet_libraries  # noqa: E402

from nearid_data import backend  # noqa: E402
from nearid_data.build import build  # noqa: E402
from nearid_data.config import PipelineConfig  # noqa: E402
from nearid_data.engine.catalog import Catalog  # noqa: E402
from nearid_data.engine.manifest import manifest_path, read_manifest, read_summary  # noqa: E402
from nearid_data.imageio import decode_mask_png, decode_png  # noqa: E402
from tests import tiny_models  # noqa: E402

Builder = Callable[[Path, str, Any], dict[str, Any]]


def save_diffusers(key: str, directory: Path, device: str, dtype: Any) -> Path:
    """SD1.5- or SDXL-inpainting at real size, random weights, saved in ``dtype``."""
    import torch

    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    # Built in the target dtype directly: SDXL in float32 would need 14 GB before the cast.
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            build_pipe = {"sd": bench_distractors_gpu.sd15_inpaint}.get(
                key, bench_distractors_gpu.sdxl_inpaint
            )
            pipe = build_pipe(vae_upcast=False)
    finally:
        torch.set_default_dtype(previous)
    pipe.save_pretrained(directory)
    del pipe
    return directory


def sam_vit_b(directory: Path, device: str) -> Path:
    import torch

    segment_anything = tiny_models.import_segment_anything()
    torch.manual_seed(0)
    path = directory / "sam_vit_b.pth"
    with torch.device(device):
        torch.save(segment_anything.sam_model_registry["vit_b"]().state_dict(), path)
    return path


def sam_hf_vit_b(directory: Path, device: str) -> Path:
    """transformers' SamModel with its default config (the ViT-B image encoder)."""
    import torch
    from transformers import SamConfig, SamImageProcessor, SamModel, SamProcessor

    torch.manual_seed(0)
    with torch.device(device):
        SamModel(SamConfig()).save_pretrained(directory)
    SamProcessor(SamImageProcessor()).save_pretrained(directory)
    return directory


def diffusion_case(key: str, resolution: int) -> Builder:
    def stages(work: Path, device: str, args: Any) -> dict[str, Any]:
        import torch

        dtype = getattr(torch, args.dtype or ("bfloat16" if key == "sdxl" else "float32"))
        if device == "cuda" and args.dtype is None:
            dtype = torch.float16
        model = save_diffusers(key, work / key, device, dtype)
        generator = {
            "name": f"{key}-inpaint",
            "model": str(model),
            "steps": args.steps,
            "strength": 1.0,
            "resolution": resolution,
            "batch_size": 1,
            "dtype": str(dtype).removeprefix("torch."),
        }
        return {
            "segment": {"segmenter": {"name": "classical"}},
            "distractors": {
                "generators": [generator],
                "concept": "perturb",
                "min_inside_changed": 0.0,
                "retries": 0,
            },
        }

    return stages


def segment_case(segmenter: str) -> Builder:
    def stages(work: Path, device: str, args: Any) -> dict[str, Any]:
        gdino = bench_segment_gpu.gdino_model("swin-t", work / "gdino", False, device)
        if segmenter == "sam":
            spec = {"name": "sam", "kind": "vit_b", "checkpoint": str(sam_vit_b(work, device))}
        else:
            spec = {"name": "sam-hf", "model": str(sam_hf_vit_b(work / "sam_hf", device))}
        if args.dtype:
            spec["dtype"] = args.dtype
        detector = {"name": "gdino", "model": str(gdino), "box_threshold": 0.0}
        return {
            "segment": {
                "detector": {**detector, "text_threshold": 0.0},
                "segmenter": spec,
                "source_masks": "replace",
                "max_area": 1.0,
                "min_area": 0.0,
            }
        }

    return stages


CASES: dict[str, tuple[int, Builder]] = {
    "sd": (512, diffusion_case("sd", 512)),
    "gdino-sam": (1024, segment_case("sam")),
    "gdino-sam-hf": (1024, segment_case("sam_hf")),
    "sdxl": (1024, diffusion_case("sdxl", 1024)),
}


@contextmanager
def counting_backends() -> Iterator[Counter[str]]:
    """Counts every backend constructed (``Backend.__init__``) by class name."""
    built: Counter[str] = Counter()
    original = backend.Backend.__init__

    def counted(self: Any, *args: Any, **kwargs: Any) -> None:
        built[type(self).__name__] += 1
        original(self, *args, **kwargs)

    backend.Backend.__init__ = counted  # type: ignore[method-assign]
    try:
        yield built
    finally:
        backend.Backend.__init__ = original  # type: ignore[method-assign]


def rows_of(stage_dir: Path) -> list[Any]:
    summary = read_summary(stage_dir)
    assert summary is not None
    return [r for s in summary.shards for r in read_manifest(manifest_path(stage_dir, s.unit)).rows]


def background_problems(stage_dir: Path) -> tuple[int, list[str]]:
    """(distractors checked, keys whose background differs from the reference)."""
    catalog = Catalog(stage_dir)
    checked, bad = 0, []
    for row in catalog.rows:
        sample = catalog.fetch(row)
        reference = decode_png(sample["image.png"])
        outside = ~decode_mask_png(sample["inpaint_mask.png"])
        for name in (f for f in sample if f.startswith("distractor_")):
            checked += 1
            if not np.array_equal(decode_png(sample[name])[outside], reference[outside]):
                bad.append(f"{row.key}:{name}")
    return checked, bad


def run_case(name: str, args: argparse.Namespace, device: str) -> dict[str, Any]:
    size, make_stages = CASES[name]
    with tempfile.TemporaryDirectory(prefix=f"real_size_{name}_") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        stages = make_stages(work, device, args)
        build_s = time.perf_counter() - started
        config = PipelineConfig.from_dict({
            "name": f"real-size-{name}",
            "source": {"name": "demo", "n_identities": args.images, "views": 1, "image_size": size},
            "stages": {"ingest": {"shard_size": 1}, **stages},
        })  # fmt: skip
        out, result = (
            work / "build",
            {"case": name, "device": device, "models_built_s": round(build_s, 1)},
        )
        problems: list[str] = []
        for stage in config.stages:
            with counting_backends() as built:
                started = time.perf_counter()
                build(config, out=out, stage=stage, device=device)
                seconds = time.perf_counter() - started
            rows = rows_of(out / stage)
            reasons = Counter(r.reason for r in rows if r.status == "rejected")
            result[stage] = {
                "wall_s": round(seconds, 1),
                "rows": len(rows),
                "kept": sum(r.status == "kept" for r in rows),
                "rejected": dict(reasons),
                "backends_built": dict(built),
            }
            if len(rows) != args.images:
                problems.append(f"{stage}: {len(rows)} rows for {args.images} inputs")
            if any(r.status == "rejected" and not r.reason for r in rows):
                problems.append(f"{stage}: a rejection without a reason")
            if stage != "ingest" and any(r.status == "kept" and not r.qa for r in rows):
                problems.append(f"{stage}: a kept row without QA figures")
            if any(count != 1 for count in built.values()):
                problems.append(f"{stage}: backends built {dict(built)} (want once each)")
        if "distractors" in config.stages:
            checked, bad = background_problems(out / "distractors")
            result["distractors"]["background_checked"] = checked
            problems += [f"background changed: {key}" for key in bad]
        summary = read_summary(out / list(config.stages)[-1])
        result["models"] = summary.models if summary else {}
    result["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 1)
    result["problems"] = problems
    return result


def markdown(results: list[dict[str, Any]]) -> str:
    lines = [
        "| case | device | stage | wall s | kept / rows | rejected | backends built | checks |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for stage in ("segment", "distractors"):
            if stage in r:
                s = r[stage]
                extra = (
                    f", {s['background_checked']} backgrounds equal"
                    if "background_checked" in s
                    else ""
                )
                lines.append(
                    f"| {r['case']} | {r['device']} | {stage} | {s['wall_s']} | {s['kept']} / {s['rows']} "
                    f"| {s['rejected'] or '-'} | {s['backends_built']} | "
                    f"{'; '.join(r['problems']) or 'ok'}{extra} |"
                )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="sd,gdino-sam,gdino-sam-hf", help=f"of {list(CASES)}")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--images", type=int, default=2, help="demo views, one per identity")
    parser.add_argument("--steps", type=int, default=2, help="denoising steps (generators)")
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default=None,
                        help="default: float32 on CPU (SDXL bfloat16), the backends' auto on CUDA")  # fmt: skip
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    import torch

    quiet_libraries()
    torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA device")
    results = [run_case(name, args, args.device) for name in args.cases.split(",")]
    print(json.dumps({"bench": "real_size", "torch": torch.__version__, "results": results}))
    print(markdown(results))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
    sys.exit(1 if any(r["problems"] for r in results) else 0)


if __name__ == "__main__":
    main()
