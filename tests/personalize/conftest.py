from __future__ import annotations

from pathlib import Path

import pytest

from tests.personalize.tiny_text2image import save_tiny_sd


@pytest.fixture(scope="session")
def tiny_sd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_sd(tmp_path_factory.mktemp("models") / "sd")
