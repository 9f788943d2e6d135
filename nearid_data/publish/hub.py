"""Publish an export to the Hugging Face Hub as a dataset repository.

The token is huggingface_hub's business: ``HfApi`` resolves it (``HF_TOKEN``, then the file
``hf auth login`` writes). This module never reads, prints, logs or stores it; it only asks
whether one exists, to fail before any request with a message that says how to log in.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Protocol, TextIO

from nearid_data.engine import storage, transfer
from nearid_data.engine.storage import Location
from nearid_data.errors import NearidError
from nearid_data.publish.plan import CARD_NAME, GB, UploadPlan, plan_upload

log = logging.getLogger(__name__)
# Remote files these match and the plan does not hold are deleted in the same commit: shards of an
# earlier, larger version would otherwise stay in the repo and in the card's `data/<split>/*.tar`.
REPLACED_PATTERNS = ["data/*", "*.wids.json"]


class HubApi(Protocol):
    """The part of ``huggingface_hub.HfApi`` that publishing uses (tests pass a recorder)."""

    def create_repo(
        self,
        repo_id: str,
        *,
        private: bool | None = ...,
        repo_type: str | None = ...,
        exist_ok: bool = ...,
    ) -> Any: ...

    def create_branch(
        self, repo_id: str, *, branch: str, repo_type: str | None = ..., exist_ok: bool = ...
    ) -> Any: ...

    def upload_folder(
        self,
        *,
        repo_id: str,
        folder_path: str | Path,
        commit_message: str | None = ...,
        repo_type: str | None = ...,
        revision: str | None = ...,
        allow_patterns: list[str] | str | None = ...,
        delete_patterns: list[str] | str | None = ...,
    ) -> Any: ...


def publish(
    export_dir: Location,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    dry_run: bool = False,
    max_shard_gb: float = 5.0,
    allow_extra: bool = False,
    api: HubApi | None = None,
    out: TextIO | None = None,
) -> UploadPlan:
    """Upload the planned files of ``export_dir`` to the dataset repo ``repo_id``.

    With ``dry_run`` the file list and the card are written to ``out`` (stdout) and nothing is
    sent. Otherwise the repo is created if needed (an existing repo keeps its visibility), the
    branch ``revision`` too, and the files go up with ``upload_folder``, which commits a large
    folder in several commits and, when re-run after an interruption, skips what is already there
    (with ``hf_xet`` installed, huggingface_hub's default; without it, one commit).
    """
    _check_repo_id(repo_id)
    plan = plan_upload(export_dir, max_shard_gb=max_shard_gb, allow_extra=allow_extra)
    for warning in plan.warnings:
        log.warning("warning: %s", warning)
    if dry_run:
        out = out or sys.stdout
        print(f"would upload to datasets/{repo_id} ({_where(revision)}):", file=out)
        print(plan.describe(), file=out)
        print(f"and delete remote files matching {REPLACED_PATTERNS} not listed here", file=out)
        print(f"\n--- {CARD_NAME} ---", file=out)
        print(storage.read_bytes(export_dir / CARD_NAME).decode("utf-8"), file=out)
        return plan
    api = api or _default_api()
    log.info("creating or reusing datasets/%s (private=%s)", repo_id, private)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    if revision is not None and revision != "main":
        # upload_folder commits to an existing revision only.
        api.create_branch(repo_id, branch=revision, repo_type="dataset", exist_ok=True)
    log.info(
        "uploading %d files (%.2f GB) to %s",
        len(plan.files),
        plan.total_bytes / GB,
        _where(revision),
    )
    with transfer.local_copy(export_dir, plan.paths) as folder:
        api.upload_folder(
            folder_path=str(folder),
            repo_id=repo_id,
            repo_type="dataset",
            revision=revision,
            allow_patterns=plan.allow_patterns,
            delete_patterns=REPLACED_PATTERNS,
            commit_message=f"Upload {export_dir.name} with nearid-data ({len(plan.files)} files)",
        )
    log.info("published https://huggingface.co/datasets/%s", repo_id)
    return plan


def _check_repo_id(repo_id: str) -> None:
    owner, _, name = repo_id.partition("/")
    if not owner or not name or "/" in name:
        raise NearidError(f"--repo-id {repo_id!r}: expected OWNER/NAME")


def _where(revision: str | None) -> str:
    return f"branch {revision}" if revision else "the default branch"


def _default_api() -> HubApi:
    from huggingface_hub import HfApi, get_token

    if get_token() is None:
        raise NearidError(
            "no Hugging Face token: run `hf auth login` or set HF_TOKEN (a token with write access)"
        )
    return HfApi()
