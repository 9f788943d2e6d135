"""``python -m nearid_data publish DIR --repo-id OWNER/NAME``: the command line of publishing.

The main parser adds a ``publish`` sub-command with ``add_arguments`` and calls ``run``.
Exit codes as for the other commands: 0 published (or planned, with ``--dry-run``), 1 the export
is not fit to publish (missing, resized or corrupt shard, unlisted data file, shard over the size
limit), 2 bad usage.
"""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

from nearid_data.engine.storage import location
from nearid_data.errors import NearidError

if TYPE_CHECKING:
    from nearid_data.publish.hub import HubApi

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "directory",
        type=location,
        help="the export directory, e.g. build/demo/export or s3://bucket/demo/export",
    )
    parser.add_argument("--repo-id", required=True, help="dataset repo on the Hub, OWNER/NAME")
    parser.add_argument(
        "--private",
        action="store_true",
        help="create the repo private (an existing repo is kept as it is)",
    )
    parser.add_argument(
        "--revision", help="branch to commit to, created if missing (default: main)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the files and the card; send nothing"
    )
    parser.add_argument(
        "--max-shard-gb",
        type=float,
        default=5.0,
        help="refuse shards larger than this (Hub guidance: 1-5 GB per file; default 5)",
    )
    parser.add_argument(
        "--allow-extra",
        action="store_true",
        help="leave out data files the manifests do not list, instead of refusing to publish",
    )


def run(args: argparse.Namespace, *, api: HubApi | None = None) -> int:
    if args.max_shard_gb <= 0:
        log.error("error: --max-shard-gb must be positive")
        return 2
    # Imported here: the main parser imports this module for every command, and these pull in
    # pydantic models.
    from nearid_data.publish.hub import publish
    from nearid_data.publish.plan import PublishError

    try:
        publish(
            args.directory,
            args.repo_id,
            private=args.private,
            revision=args.revision,
            dry_run=args.dry_run,
            max_shard_gb=args.max_shard_gb,
            allow_extra=args.allow_extra,
            api=api,
        )
    except PublishError as exc:
        log.error("error: %s", exc)
        return 1
    except NearidError as exc:
        log.error("error: %s", exc)
        return 2
    return 0
