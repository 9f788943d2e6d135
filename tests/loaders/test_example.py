"""examples/train_nearid.py trains for a few steps on a tiny build and ends with a finite loss."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_example_trains_with_a_finite_loss(export_dir: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the package, installed or not
    result = subprocess.run(
        [sys.executable, "examples/train_nearid.py", "--export", str(export_dir), "--steps", "6"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    final = result.stdout.strip().splitlines()[-1]
    assert final.startswith("final loss ")
    assert math.isfinite(float(final.split()[-1]))
    assert result.stdout.count(" loss ") == 7  # six steps, then the final line
