"""Errors about models: a missing local path is named as such, before any hub lookup."""

from __future__ import annotations

from pathlib import Path

import pytest

from nearid_data.backend import load_pretrained, missing_model_message
from nearid_data.errors import NearidError
from tests.test_cli import run


@pytest.mark.parametrize(
    "model", ["models/dinov2-large", "./weights/sam", "/nonexistent/dir", "a/b/c", "~/nope/x"]
)
def test_a_missing_local_path_is_reported_without_asking_the_hub(model: str) -> None:
    calls = []
    with pytest.raises(NearidError, match="no such local path") as error:
        load_pretrained(lambda *a, **k: calls.append(a), model)
    assert not calls
    assert "hf download" not in str(error.value)


def test_a_hub_id_and_an_existing_path_go_to_the_loader(tmp_path: Path) -> None:
    calls: list[str] = []
    for model in ("facebook/dinov2-small", str(tmp_path)):
        load_pretrained(lambda name, **_: calls.append(name), model)
    assert calls == ["facebook/dinov2-small", str(tmp_path)]


def test_the_download_hint_names_both_commands() -> None:
    message = missing_model_message("facebook/dinov2-small", OSError("offline"))
    assert "hf download facebook/dinov2-small" in message
    assert "--model models/dinov2-small for eval" in message
    assert "model: models/dinov2-small in the pipeline YAML for build" in message


def test_eval_checks_its_directory_before_loading_a_model(tmp_path: Path) -> None:
    result = run(
        "eval", "build/nope/export", "--protocol", "nearid", "--embedder", "dinov2",
        "--model", "facebook/dinov2-small", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert "build/nope/export is not a directory" in result.stderr
    assert "python -m nearid_data build" in result.stderr
    assert "huggingface" not in result.stderr.lower()
