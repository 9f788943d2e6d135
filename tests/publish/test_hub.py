"""Publishing through a recording fake of HfApi: the calls, their order and arguments; no token leaks."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import pytest

from nearid_data.publish.command import add_arguments, run
from nearid_data.publish.hub import REPLACED_PATTERNS, publish
from nearid_data.publish.plan import plan_upload

FAKE_TOKEN = "hf_FAKEtoken0123456789abcdefghijklmnop"


class RecordingApi:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def create_repo(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("create_repo", args, kwargs))

    def create_branch(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("create_branch", args, kwargs))

    def upload_folder(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("upload_folder", args, kwargs))


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_creates_the_repo_then_uploads_the_planned_files(built: Path) -> None:
    export = built / "export"
    api = RecordingApi()
    publish(export, "me/tiny", private=True, api=api)
    assert [name for name, _, _ in api.calls] == ["create_repo", "upload_folder"]
    _, args, kwargs = api.calls[0]
    assert args == ("me/tiny",)
    assert kwargs == {"repo_type": "dataset", "private": True, "exist_ok": True}
    _, args, upload = api.calls[1]
    assert args == ()
    assert upload["folder_path"] == str(export)
    assert upload["repo_id"] == "me/tiny" and upload["repo_type"] == "dataset"
    assert upload["revision"] is None
    assert upload["allow_patterns"] == plan_upload(export).paths  # no glob characters to escape
    assert upload["delete_patterns"] == REPLACED_PATTERNS


def test_a_revision_is_created_as_a_branch_first(built: Path) -> None:
    api = RecordingApi()
    publish(built / "export", "me/tiny", revision="v2", api=api)
    assert [name for name, _, _ in api.calls] == ["create_repo", "create_branch", "upload_folder"]
    assert api.calls[1][2] == {"branch": "v2", "repo_type": "dataset", "exist_ok": True}
    assert api.calls[2][2]["revision"] == "v2"


def test_dry_run_prints_files_and_card_and_sends_nothing(
    built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api = RecordingApi()
    plan = publish(built / "export", "me/tiny", dry_run=True, api=api)
    out = capsys.readouterr().out
    assert api.calls == []
    for path in plan.paths:
        assert path in out
    assert (built / "export/README.md").read_text() in out


def test_command_exit_codes(export_copy: Path, caplog: pytest.LogCaptureFixture) -> None:
    api = RecordingApi()
    assert run(_args(str(export_copy), "--repo-id", "me/tiny", "--private"), api=api) == 0
    assert api.calls[0][2]["private"] is True
    assert run(_args(str(export_copy), "--repo-id", "no-owner"), api=api) == 2
    assert "expected OWNER/NAME" in caplog.text
    assert run(_args(str(export_copy / "nowhere"), "--repo-id", "me/tiny"), api=api) == 2
    (export_copy / "data/test/test-00000.tar").unlink()
    assert run(_args(str(export_copy), "--repo-id", "me/tiny", "--dry-run")) == 1
    assert "data/test/test-00000.tar: missing" in caplog.text


def test_without_a_token_the_default_api_is_refused_before_any_request(built: Path) -> None:
    # conftest's offline hub: no HF_TOKEN and an empty token file location
    assert run(_args(str(built / "export"), "--repo-id", "me/tiny")) == 2


def test_the_token_is_never_printed_logged_or_written(
    built: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    import huggingface_hub

    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    assert huggingface_hub.get_token() == FAKE_TOKEN  # the token is visible to the library
    caplog.set_level(logging.DEBUG)
    export = built / "export"
    api = RecordingApi()
    assert run(_args(str(export), "--repo-id", "me/tiny", "--dry-run")) == 0
    assert run(_args(str(export), "--repo-id", "me/tiny", "--revision", "dev"), api=api) == 0
    captured = capsys.readouterr()
    assert "me/tiny" in captured.out and "published" in caplog.text
    assert FAKE_TOKEN not in captured.out + captured.err + caplog.text
    assert FAKE_TOKEN not in repr(api.calls)
    for path in export.rglob("*"):
        if path.is_file():
            assert FAKE_TOKEN.encode() not in path.read_bytes(), path
