"""GPU benchmark of the segment stage's models at real sizes with random weights.

SAM ViT-H (segment_anything) at 1024x1024: the image encoder alone at batch 1 and 8, and the
backend's whole ``segment`` (resize, encoder, prompt encoder and mask decoder per box, upsampling)
at batch 8, in float16 and bfloat16, eager and with the encoder's attention through SDPA
(``sdpa: true``); ``--compile`` adds torch.compile'd rows. GroundingDINO (transformers) with a
Swin-T and a Swin-B backbone at 800x1333: the model's forward alone and the backend's whole
``detect`` (processor, forward, post-processing), float32 batch 1 and float16 batch 8.

Models are built from the published architectures (no downloads: the arithmetic of random weights
is the same), saved, and loaded back through the backends' real paths:
``sam_model_registry["vit_h"](checkpoint)`` and ``from_pretrained(local_dir)``.

FLOPs are counted once per model with ``torch.utils.flop_counter.FlopCounterMode`` over one
image's forward (SAM: the image encoder; GroundingDINO: the whole model), eager. Deformable
attention samples with ``grid_sample``, which has no FLOP formula, so GroundingDINO's count is a
slight lower bound. The fraction of peak is the FLOP floor at 800 TFLOP/s (H100 dense bf16/fp16)
over the measured time per image; end-to-end rows use the same count.

    python bench/bench_segment_gpu.py                      # H100: all models, eager
    python bench/bench_segment_gpu.py --models sam --compile
    python bench/bench_segment_gpu.py --smoke              # CPU, tiny models, checks the harness

Prints one JSON line and a Markdown table; ``--out`` also writes the JSON to a file.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpu_harness import MET, PEAK_FLOPS, emit, pick_device, quiet_libraries  # noqa: E402

from nearid_data.segment.base import Box  # noqa: E402
from nearid_data.segment.gdino import GdinoDetector  # noqa: E402
from nearid_data.segment.sam import SamSegmenter  # noqa: E402
from nearid_data.vision.inference import model_inputs  # noqa: E402
from tests import tiny_models  # noqa: E402

TARGET_MS = {"sam-vit-h": 12.0, "gdino-swin-t": 12.0}  # per image on one H100, issue's goals
SWIN = {  # transformers SwinConfig of GroundingDINO's two published backbones
    "swin-t": dict(embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24], window_size=7),
    "swin-b": dict(embed_dim=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32], window_size=12),
}


def timed(run: Callable[[], Any], repeats: int, device: str) -> float:
    """Median seconds of ``run`` after one warm-up call (which also compiles for the shape)."""
    import torch

    def once() -> float:
        started = time.perf_counter()
        run()
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - started

    once()
    return statistics.median(once() for _ in range(repeats))


def count_flops(run: Callable[[], Any]) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        run()
    return float(counter.get_total_flops())


def significant(value: float) -> float:
    return float(f"{value:.4g}")


def row(
    model: str, part: str, size: tuple[int, int], batch: int, seconds: float, flops: float,
    smoke: bool, **settings: Any,
) -> dict[str, Any]:  # fmt: skip
    ms = 1000 * seconds / batch
    floor_ms = 1000 * flops / PEAK_FLOPS
    target = None if smoke else TARGET_MS.get(model)
    return {
        "model": model, "part": part, "input": f"{size[0]}x{size[1]}", "batch": batch, **settings,
        "ms_per_image": significant(ms), "images_per_s": significant(1000 / ms),
        "tflop_per_image": significant(flops / 1e12), "flop_floor_ms": significant(floor_ms),
        "fraction_of_peak": significant(floor_ms / ms), "target_ms": target,
        "meets_target": None if target is None else ms <= target,
    }  # fmt: skip


def release(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.empty_cache()


def sam_checkpoint(directory: Path, smoke: bool, device: str) -> Path:
    import torch

    segment_anything = tiny_models.import_segment_anything()
    path = directory / "sam_vit_h.pth"
    if smoke:
        # The registry's vit_h entry builds the tiny SAM (1024 px would take minutes on a CPU).
        segment_anything.sam_model_registry["vit_h"] = tiny_models.build_tiny_sam
        return tiny_models.save_tiny_sam_checkpoint(path)
    with torch.device(device):  # initialise 636 M parameters on the GPU: seconds, not a minute
        torch.save(segment_anything.sam_model_registry["vit_h"]().state_dict(), path)
    return path


def encode(segmenter: SamSegmenter, pixels: Any) -> Any:
    import torch

    with torch.inference_mode():
        return segmenter.sam.image_encoder(pixels)


def sam_variant(
    config: SamSegmenter.Config, args: argparse.Namespace, device: str, flops: list[float]
) -> list[dict[str, Any]]:
    """One SAM setting's rows; counts the encoder's FLOPs into ``flops`` on the first call."""
    import torch

    with torch.device(device):  # the registry builds on the GPU too
        segmenter = SamSegmenter(config, device=device)
    side = segmenter.resize.target_length
    pixels = torch.randn(8, 3, side, side, device=device, dtype=segmenter.dtype)
    if not flops:
        flops.append(count_flops(partial(encode, segmenter, pixels[:1])))
    settings = {"dtype": config.dtype, "sdpa": config.sdpa, "compile": config.compile}
    rows = [
        row("sam-vit-h", "image encoder", (side, side), batch,
            timed(partial(encode, segmenter, pixels[:batch]), args.repeats, device), flops[0],
            args.smoke, **settings)
        for batch in (1, 8)
    ]  # fmt: skip
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (side, side, 3), dtype=np.uint8) for _ in range(8)]
    boxes = [Box((side / 4, side / 4, 3 * side / 4, 3 * side / 4), 1.0)] * 8
    seconds = timed(partial(segmenter.segment, images, boxes), args.repeats, device)
    rows.append(row("sam-vit-h", "segment (end to end)", (side, side), 8, seconds, flops[0],
                    args.smoke, **settings))  # fmt: skip
    return rows


def bench_sam(args: argparse.Namespace, device: str, workdir: Path) -> list[dict[str, Any]]:
    checkpoint = sam_checkpoint(workdir, args.smoke, device)
    variants = [(False, False), (True, False)] + ([(True, True)] if args.compile else [])
    rows: list[dict[str, Any]] = []
    flops: list[float] = []
    for dtype in args.dtypes.split(","):
        for sdpa, compiled in variants:
            config = SamSegmenter.Config(
                kind="vit_h", checkpoint=str(checkpoint), dtype=dtype, batch_size=8,
                sdpa=sdpa, compile=compiled,
            )  # fmt: skip
            rows += sam_variant(config, args, device, flops)
            release(device)
    return rows


def gdino_model(backbone: str, directory: Path, smoke: bool, device: str) -> Path:
    import torch
    from transformers import (
        BertTokenizer,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
        SwinConfig,
    )

    if smoke:
        return tiny_models.save_tiny_gdino(directory)
    config = GroundingDinoConfig(
        backbone_config=SwinConfig(out_indices=[2, 3, 4], **SWIN[backbone])
    )
    torch.manual_seed(0)
    with torch.device(device):
        GroundingDinoForObjectDetection(config).save_pretrained(directory)
    tokenizer = BertTokenizer.from_pretrained(tiny_models.save_bert_tokenizer(directory))
    processor = GroundingDinoProcessor(GroundingDinoImageProcessor(), tokenizer)
    processor.save_pretrained(directory)
    return directory


def forward(
    detector: GdinoDetector, images: list[np.ndarray], prompts: list[str]
) -> Callable[[], Any]:
    """The model's forward alone, on inputs the processor prepared beforehand."""
    import torch

    encoded = detector.processor(images=images, text=prompts, padding=True, return_tensors="pt")
    inputs = model_inputs(encoded, detector.device, detector.dtype)

    def run() -> Any:
        with torch.inference_mode():
            return detector.model(**inputs)

    return run


def gdino_variant(
    name: str, config: GdinoDetector.Config, args: argparse.Namespace, device: str,
    flops: list[float],
) -> list[dict[str, Any]]:  # fmt: skip
    """One GroundingDINO setting's rows; counts the model's FLOPs into ``flops`` on the first call."""
    detector = GdinoDetector(config, device=device)
    size = (64, 96) if args.smoke else (800, 1333)  # the processor's own input size: no resizing
    rng = np.random.default_rng(0)
    batch = config.batch_size
    images = [rng.integers(0, 256, (*size, 3), dtype=np.uint8) for _ in range(batch)]
    prompts = ["a dog."] * batch
    if not flops:
        flops.append(count_flops(forward(detector, images[:1], prompts[:1])))
    settings = {"dtype": config.dtype, "compile": config.compile}
    seconds = timed(forward(detector, images, prompts), args.repeats, device)
    rows = [row(name, "model forward", size, batch, seconds, flops[0], args.smoke, **settings)]
    seconds = timed(partial(detector.detect, images, prompts), args.repeats, device)
    rows.append(row(name, "detect (end to end)", size, batch, seconds, flops[0], args.smoke,
                    **settings))  # fmt: skip
    return rows


def bench_gdino(
    backbone: str, args: argparse.Namespace, device: str, workdir: Path
) -> list[dict[str, Any]]:
    model_dir = gdino_model(backbone, workdir / backbone, args.smoke, device)
    runs = [("float32", 1, False), ("float16", 8, False)]
    runs += [("float16", 8, True)] if args.compile else []
    rows: list[dict[str, Any]] = []
    flops: list[float] = []
    for dtype, batch, compiled in runs:
        config = GdinoDetector.Config(
            model=str(model_dir), dtype=dtype, batch_size=batch, compile=compiled
        )
        rows += gdino_variant(f"gdino-{backbone}", config, args, device, flops)
        release(device)
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| model | part | input | batch | dtype | sdpa | compile | ms/image | images/s | TFLOP/image "
        "| floor ms | of peak | target ms | met |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['part']} | {r['input']} | {r['batch']} | {r['dtype']} | "
            f"{r.get('sdpa', '-')} | {r['compile']} | {r['ms_per_image']:.4g} | "
            f"{r['images_per_s']:.4g} | {r['tflop_per_image']:.4g} | {r['flop_floor_ms']:.4g} | "
            f"{r['fraction_of_peak']:.1%} | {r['target_ms'] or '-'} | {MET[r['meets_target']]} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny models and sizes")
    parser.add_argument(
        "--models", default="sam,swin-t,swin-b", help="comma list of: sam, swin-t, swin-b"
    )
    parser.add_argument("--dtypes", default="bfloat16,float16", help="SAM's encoder dtypes")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile'd")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    quiet_libraries()
    device = pick_device(args.smoke)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_segment_") as tmp:
        for key in args.models.split(","):
            if key == "sam":
                rows += bench_sam(args, device, Path(tmp))
            else:
                rows += bench_gdino(key, args, device, Path(tmp))
    emit("segment_gpu", device, args.smoke, rows, markdown(rows), args.out)


if __name__ == "__main__":
    main()
