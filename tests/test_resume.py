"""A build killed with SIGKILL at any moment, then rerun, ends byte-identical to an uninterrupted one."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nearid_data.engine.manifest import read_manifest
from tests.build_helpers import ROOT, cli, shard_bytes
from tests.conftest import TINY_DEMO, write_pipeline

PIPELINE = {**TINY_DEMO, "source": {**TINY_DEMO["source"], "n_identities": 12}}


def _start(pipeline: Path, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nearid_data",
            "build",
            "--pipeline",
            str(pipeline),
            "--out",
            str(out),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.slow
def test_sigkill_at_any_moment_then_resume(tmp_path: Path) -> None:
    pipeline = write_pipeline(tmp_path / "p.yaml", PIPELINE)
    reference = tmp_path / "reference"
    started = time.perf_counter()
    assert _start(pipeline, reference).wait() == 0
    duration = time.perf_counter() - started
    expected = shard_bytes(reference)

    # Kill points spread over the whole build: startup, every stage, the final card.
    out = tmp_path / "killed"
    for fraction in (0.25, 0.45, 0.6, 0.75, 0.9):
        process = _start(pipeline, out)
        time.sleep(duration * fraction)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait()
        _assert_every_manifest_matches_its_shard(out)
    cli("build", "--pipeline", str(pipeline), "--out", str(out))
    assert shard_bytes(out) == expected
    assert not list(out.rglob("*.tmp-*"))
    assert "verify ok" in cli("verify", str(out)).stderr


def _assert_every_manifest_matches_its_shard(out: Path) -> None:
    """What a reader or a resumed run could take for whole is whole."""
    for path in out.rglob("*.manifest.json"):
        manifest = read_manifest(path)
        tar = path.parent / Path(manifest.tar or "").name
        assert hashlib.sha256(tar.read_bytes()).hexdigest() == manifest.sha256, tar
