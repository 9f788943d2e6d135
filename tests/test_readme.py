"""Every Python snippet of the README runs as written, without warnings, against a demo build."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.build_helpers import ROOT
from tests.test_cli import run

README = ROOT / "README.md"
SNIPPET = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
# Each snippet runs in a fresh namespace, named so a traceback says which one failed.
RUNNER = """
import sys
for number, code in enumerate(sys.argv[1:]):
    exec(compile(code, f"README python snippet {number}", "exec"), {"__name__": "__main__"})
    print(f"snippet {number} ok", flush=True)
"""


def snippets() -> list[str]:
    return SNIPPET.findall(README.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding ``build/demo`` (a smaller demo: the snippets only read it)."""
    where = tmp_path_factory.mktemp("readme")
    result = run("build", "--set", "source.n_identities=12", cwd=where)
    assert result.returncode == 0, result.stderr
    return where


def test_readme_python_snippets_run_without_warnings(demo_dir: Path, tmp_path: Path) -> None:
    code = snippets()
    assert len(code) >= 4  # webdataset, wids, datasets, the training tuples
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HF_HOME": str(tmp_path / "hf"),
        "HF_DATASETS_CACHE": str(tmp_path / "hf_datasets"),
        "WIDS_CACHE": str(tmp_path / "wids"),
    }
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, *code],
        cwd=demo_dir,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(" ok\n") == len(code)
    output = result.stdout + result.stderr
    assert "Warning" not in output and "warn" not in output.lower(), output
