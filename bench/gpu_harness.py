"""What the GPU benchmarks share: the peak they are measured against, device choice, quiet
library logs, and how a result is printed and saved."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

# Dense bf16/fp16 tensor-core peak of one H100 SXM, rounded; the FLOP floor is FLOPs / this.
PEAK_FLOPS = 800e12
MET = {True: "yes", False: "no", None: "-"}


def pick_device(smoke: bool) -> str:
    """``cpu`` for a smoke run (one thread: tiny ops on a shared CPU only spin against each
    other), else ``cuda``; exits when there is no CUDA device."""
    import torch

    if smoke:
        torch.set_num_threads(1)
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    sys.exit("no CUDA device: run with --smoke to check the harness on CPU")


def quiet_libraries() -> None:
    warnings.filterwarnings("ignore")
    from transformers.utils import logging as transformers_logging

    modules: list[Any] = [transformers_logging]
    try:
        from diffusers.utils import logging as diffusers_logging

        modules.append(diffusers_logging)
    except ImportError:
        pass
    for logging in modules:
        logging.set_verbosity_error()
        logging.disable_progress_bar()


def emit(
    bench: str, device: str, smoke: bool, rows: list[dict[str, Any]], table: str, out: Path | None
) -> None:
    """Print the result as one JSON line and a Markdown table; write the JSON to ``out``."""
    import torch

    result = {
        "bench": bench,
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "torch": torch.__version__,
        "peak_tflops": PEAK_FLOPS / 1e12,
        "smoke": smoke,
        "rows": rows,
    }
    print(json.dumps(result))
    print(table)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))
