"""A wheel of the package, installed in a fresh venv, runs the demo from another directory.

Offline: the wheel is built without build isolation, installed without its dependencies, and the
fresh venv sees this interpreter's packages (numpy, OpenCV, ...) through a ``.pth`` file; only
``nearid_data`` itself comes from the wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.build_helpers import ROOT

pytest.importorskip("setuptools")


def _run(*command: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    # Without PYTHONPATH: the checkout must not shadow what the wheel installed.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result


def test_the_wheel_runs_the_demo_from_another_directory(tmp_path: Path) -> None:
    # Build from a copy of the sources, so the checkout gets no build/ or egg-info.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "nearid_data", source / "nearid_data",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    wheels = tmp_path / "wheels"
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", wheels, source, cwd=tmp_path)  # fmt: skip
    (wheel,) = wheels.glob("nearid_data-*.whl")

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    purelib = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                        cwd=tmp_path).stdout.strip())  # fmt: skip
    (purelib / "outer.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
         "-q", wheel, cwd=tmp_path)  # fmt: skip

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = _run(python, "-c", "import nearid_data; print(nearid_data.__file__)", cwd=elsewhere)
    assert Path(where.stdout.strip()).is_relative_to(venv)  # the wheel, not the checkout
    listing = _run(python, "-m", "nearid_data", "pipelines", cwd=elsewhere).stdout
    assert "demo " in listing and "fpr-cub" in listing
    built = _run(python, "-m", "nearid_data", "build", "--set", "source.n_identities=4",
                 cwd=elsewhere)  # fmt: skip
    assert "verify ok" in built.stderr
    assert (elsewhere / "build/demo/export/README.md").is_file()
