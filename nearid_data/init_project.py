"""``python -m nearid_data init DIR``: a commented ``nearid.yaml`` for a folder of your images.

It looks at the folder the way the ``imagefolder`` source will read it: a folder per identity,
optionally grouped in category folders (``DIR/<category>/<identity>/``), masks beside images
(``<stem>.mask.png``) and ``metadata.jsonl``. It writes what it found and what it could not tell
as comments, and a pipeline that builds as written: the offline path (classical segmentation,
cut-and-paste distractors), with the model backends one edit away.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from nearid_data.errors import NearidError
from nearid_data.sources.imagefolder import (
    IMAGE_EXTENSIONS,
    LAYOUT_PATTERNS,
    MASK_SUFFIX,
    METADATA_NAME,
    ImageFolderConfig,
    ImageFolderSource,
    Layout,
    read_metadata,
)

log = logging.getLogger("nearid_data")

DEFAULT_FILE = Path("nearid.yaml")


@dataclass(frozen=True)
class Survey:
    """What ``init`` found in a folder, as ``imagefolder`` will read it."""

    root: Path
    layout: Layout
    identities: int
    categories: list[str]
    views: int
    set_aside: dict[str, int]
    has_masks: bool
    has_metadata: bool
    has_captions: bool
    smallest_identity: int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", type=Path, help="the folder of your images")
    parser.add_argument(
        "--file",
        type=Path,
        default=DEFAULT_FILE,
        help=f"where to write the pipeline (default ./{DEFAULT_FILE})",
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")


def run(args: argparse.Namespace) -> int:
    if args.file.exists() and not args.force:
        raise NearidError(f"{args.file} exists; pass --force to overwrite it")
    survey = survey_folder(args.directory)
    args.file.write_text(pipeline_text(survey), encoding="utf-8")
    log.info(
        "wrote %s: %d identities, %d images (layout %s)",
        args.file,
        survey.identities,
        survey.views,
        survey.layout,
    )
    log.info("next: python -m nearid_data build --pipeline %s", args.file)
    return 0


def survey_folder(directory: Path) -> Survey:
    root = directory.expanduser().resolve()
    if not root.is_dir():
        raise NearidError(f"{str(directory)!r} is not a directory")
    layout = detect_layout(root)
    config = ImageFolderConfig.model_validate({"root": str(root), "layout": layout})
    source = ImageFolderSource(config, seed=0)
    items = source.items()
    views = [item for item in items if item.rejection is None]
    per_identity = Counter(item.identity for item in views)
    metadata = read_metadata(root / METADATA_NAME)
    return Survey(
        root=root,
        layout=layout,
        identities=len(per_identity),
        categories=sorted({item.category for item in views}),
        views=len(views),
        set_aside=dict(Counter(item.rejection[0] for item in items if item.rejection)),
        has_masks=any(root.rglob(f"*{MASK_SUFFIX}")),
        has_metadata=bool(metadata),
        has_captions=any(record.get("caption") for record in metadata.values()),
        smallest_identity=min(per_identity.values(), default=0),
    )


def detect_layout(root: Path) -> Layout:
    """``category/identity`` when the top folders hold no images but folders that do; else
    ``identity``."""
    top = [p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")]
    if any(_holds_images(folder) for folder in top):
        return "identity"
    inner = [p for folder in top for p in folder.iterdir() if p.is_dir()]
    return "category/identity" if any(_holds_images(p) for p in inner) else "identity"


def _holds_images(folder: Path) -> bool:
    return any(
        p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
        for p in folder.iterdir()
        if p.is_file()
    )


def _out_line(survey: Survey) -> list[str]:
    """A build directory beside the images when the default (``./build/<name>``) would be inside
    them, which ``build`` refuses."""
    if not Path.cwd().resolve().is_relative_to(survey.root):
        return []
    out = survey.root.parent / f"{pipeline_name(survey.root)}-build"
    return [f"out: {json.dumps(str(out), ensure_ascii=False)}"]


def pipeline_name(root: Path) -> str:
    """A safe pipeline name (it becomes ``build/<name>``) from the folder's name."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", root.name).strip("-._")
    return cleaned or "my-images"


def pipeline_text(survey: Survey) -> str:
    found = [
        f"layout: {LAYOUT_PATTERNS[survey.layout]}",
        f"{survey.identities} identities, {survey.views} images "
        f"(fewest views of one identity: {survey.smallest_identity})",
    ]
    unknown = []
    if survey.layout == "category/identity":
        found.append(f"categories from the category folders: {', '.join(survey.categories)}")
    elif survey.categories != ["object"]:
        found.append(f"categories from {METADATA_NAME}: {', '.join(survey.categories)}")
    else:
        unknown.append(
            "the category of each identity: distractor siblings are drawn across all "
            "identities; add 'categories: {identity: category}' under source, a "
            f"{METADATA_NAME}, or category folders"
        )
    if survey.has_masks:
        found.append(f"masks beside images ({MASK_SUFFIX}): kept as the subject masks")
    else:
        unknown.append("where the subject is: no masks, so the segment stage cuts them")
    if not survey.has_captions:
        unknown.append(f"captions ({METADATA_NAME} 'caption'): prompts use the category")
    if survey.set_aside:
        reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(survey.set_aside.items()))
        found.append(f"files that will be rejected with a reason ({reasons})")
    if survey.smallest_identity < 2:
        found.append("identities with one image: splits rejects them (too_few_views)")
    lines = [
        "# Written by `python -m nearid_data init`; edit freely.",
        "# Build: python -m nearid_data build --pipeline nearid.yaml",
        "#",
        "# Found:",
        *(f"#   - {line}" for line in found),
    ]
    if unknown:
        lines += ["# Could not tell:", *(f"#   - {line}" for line in unknown)]
    lines += [
        f"name: {pipeline_name(survey.root)}",
        "seed: 0",
        "source:",
        "  name: imagefolder",
        f"  root: {json.dumps(str(survey.root), ensure_ascii=False)}",
        f"  layout: {survey.layout}",
        *_out_line(survey),
        "stages:",
        "  ingest:",
        "    shard_size: 64",
        "    max_side: 1024  # downscale larger photos (remove to keep full resolution)",
        "  segment:",
        "    # Offline default. For real datasets: {name: sam, kind: vit_b} with a detector.",
        "    segmenter: {name: classical}",
        "    source_masks: keep  # your masks win where they exist",
        "  distractors:",
        "    # Offline default. Diffusion backends (sd-inpaint, flux-fill) paint real ones.",
        "    generators:",
        "      - name: cut_paste",
        "  splits:",
        "    fractions: {train: 0.75, val: 0.125, test: 0.125}",
        "    min_views: 2",
        "  export:",
        "    max_shard_samples: 1000",
    ]
    return "\n".join(lines) + "\n"
