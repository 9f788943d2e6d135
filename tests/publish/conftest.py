"""A finished tiny demo build, shared by the publish tests (which copy it before breaking it)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nearid_data.build import build
from tests.conftest import tiny_pipeline


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("publish_build")
    build(tiny_pipeline(), out=out)
    return out


@pytest.fixture
def export_copy(built: Path, tmp_path: Path) -> Path:
    """A private copy of the build, so a test may delete or resize its files."""
    shutil.copytree(built, tmp_path / "build")
    return tmp_path / "build" / "export"
