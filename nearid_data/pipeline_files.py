"""The pipelines shipped inside the package, and how ``build --pipeline`` finds a pipeline file.

Shipped pipelines live in ``nearid_data/pipelines/`` (package data, so a wheel install has them;
a source checkout also shows them as ``pipelines/``). ``--pipeline`` takes a file path or the
name of a shipped pipeline; without it, ``build`` uses ``./nearid.yaml`` when present, else the
demo.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from nearid_data.errors import NearidError
from nearid_data.suggest import did_you_mean

LOCAL_PIPELINE = Path("nearid.yaml")
DEFAULT_PIPELINE = "demo"
SUMMARY_WIDTH = 90


def shipped_pipelines() -> dict[str, Path]:
    """Name -> file of every pipeline shipped with the package, sorted by name."""
    folder = Path(str(resources.files("nearid_data") / "pipelines"))
    return {path.stem: path for path in sorted(folder.glob("*.yaml"))}


def describe(path: Path, width: int = SUMMARY_WIDTH) -> str:
    """A pipeline's one-line summary: the first sentence of its leading comment, shortened to
    ``width`` characters at a word boundary."""
    comment = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        comment.append(line.lstrip("#").strip())
    sentence = re.split(r"(?<=[.;])\s", " ".join(comment), maxsplit=1)[0]
    if len(sentence) <= width:
        return sentence
    return sentence[: width - 3].rsplit(" ", 1)[0].rstrip(",;:") + "..."


def resolve_pipeline(requested: str | None) -> Path:
    """The pipeline file ``build`` reads for ``--pipeline requested`` (None: not given)."""
    shipped = shipped_pipelines()
    if requested is None:
        return LOCAL_PIPELINE if LOCAL_PIPELINE.is_file() else shipped[DEFAULT_PIPELINE]
    path = Path(requested)
    if path.is_file():
        return path
    if requested in shipped:
        return shipped[requested]
    raise NearidError(
        f"pipeline {requested!r}: no such file and no shipped pipeline of that name"
        f"{did_you_mean(path.stem, shipped)}; shipped: {', '.join(shipped)} "
        "(python -m nearid_data pipelines lists them)"
    )
