"""The evaluation protocols: names -> modules, and what they share.

A protocol module has ``evaluate(directory, context, options) -> dict`` (the JSON-ready results)
and ``table(results) -> str`` (Markdown). ``run_protocol`` wraps the results with what produced
them: protocol, directory, embedder, mode and options.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nearid_data.errors import NearidError
from nearid_data.evaluate.cache import EmbeddingCache
from nearid_data.evaluate.metrics import Convention

PROTOCOLS = {
    "nearid": "nearid_data.evaluate.nearid_protocol",
    "fpr": "nearid_data.evaluate.fpr_protocol",
    "pods": "nearid_data.evaluate.pods_protocol",
}


@dataclass(frozen=True)
class Options:
    split: str | None = None
    """NearID: evaluate one split of the export (default: all)."""
    queries: Path | None = None
    """FPR: a folder with one sub-folder of query images per subject (default: the references)."""


@dataclass(frozen=True)
class Context:
    cache: EmbeddingCache
    masked: bool
    """Foreground only: the background blacked out with the subject mask before embedding."""
    convention: Convention = "paper"
    """NearID: the paper's SSR/PA (default), or ``release``: as NearID's released code computes
    them, masks cleaned as that code cleans them (``metrics.ssr_pa``, ``images.clean_mask``)."""

    def clean_masks(self) -> bool:
        return self.masked and self.convention == "release"


def run_protocol(
    name: str, directory: Path, context: Context, options: Options
) -> tuple[dict[str, Any], str]:
    """(the result document, its Markdown table)."""
    if name not in PROTOCOLS:
        raise NearidError(f"unknown protocol {name!r}; known: {', '.join(PROTOCOLS)}")
    module = importlib.import_module(PROTOCOLS[name])
    results = module.evaluate(directory, context, options)
    embedder = context.cache.embedder
    document = {
        "protocol": name,
        "directory": str(directory),
        "embedder": {"fingerprint": embedder.fingerprint(), **embedder.describe()},
        "masked": context.masked,
        "convention": context.convention,
        "options": {k: None if v is None else str(v) for k, v in vars(options).items()},
        "results": results,
    }
    return document, module.table(results)


def locate(directory: Path, candidates: Sequence[str], marker: str, what: str) -> Path:
    """The first of ``directory / c`` holding ``marker``: a build directory or the export itself."""
    for candidate in candidates:
        if (directory / candidate / marker).exists():
            return directory / candidate
    tried = ", ".join(str(directory / c / marker) for c in candidates)
    raise NearidError(f"{directory} holds no {what} (looked for {tried})")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def percent(value: float) -> str:
    return f"{100 * value:.2f}"
