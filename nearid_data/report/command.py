"""``python -m nearid_data report DIR``: write the HTML report of a build.

``DIR`` and ``--out`` may be URLs (``s3://bucket/builds/demo``): the manifests and samples are
read, and the page and its thumbnail cache written, through the storage seam.

The CLI builds its parser on every call, so this module imports only argparse-level things at
the top; the report's modules (OpenCV, matplotlib) load when a report is written.
"""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

from nearid_data.engine import storage
from nearid_data.engine.storage import Location
from nearid_data.errors import NearidError

if TYPE_CHECKING:
    from nearid_data.report.collect import BuildReport
    from nearid_data.report.thumbs import Thumbnailer

log = logging.getLogger("nearid_data")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "directory", type=storage.location, help="a build directory or one stage's directory"
    )
    parser.add_argument(
        "--out", type=storage.location, help="HTML file to write (default: DIRECTORY/report.html)"
    )
    parser.add_argument(
        "--per-category",
        type=int,
        default=4,
        metavar="N",
        help="identities per category on the contact sheets (default 4)",
    )
    parser.add_argument(
        "--thumb-size",
        type=int,
        default=128,
        metavar="PX",
        help="longer side of the thumbnails in pixels (default 128)",
    )


def run(args: argparse.Namespace) -> int:
    if args.per_category < 0:
        raise NearidError("--per-category must be 0 or more")
    if args.thumb_size < 16:
        raise NearidError("--thumb-size must be at least 16")
    out = args.out or args.directory / "report.html"
    thumbs = write_report(args.directory, out, args.per_category, args.thumb_size)
    log.info(
        "wrote %s (%.1f MB; %d thumbnails drawn, the rest from %s)",
        out,
        (storage.size(out) or 0) / 1e6,
        thumbs.drawn,
        thumbs.cache_dir,
    )
    return 0


def write_report(
    directory: Location, out: Location, per_category: int, thumb_size: int
) -> Thumbnailer:
    """Collect, draw and write the page; returns the thumbnailer (it counts what it drew)."""
    from nearid_data.report.collect import collect
    from nearid_data.report.html import render
    from nearid_data.report.thumbs import CACHE_DIR, Thumbnailer

    report = collect(directory, per_category)
    thumbs = Thumbnailer(directory / CACHE_DIR, thumb_size)
    page = render(report, thumbs, charts(report), str(directory))
    storage.write_bytes(out, page.encode("utf-8"))
    return thumbs


def charts(report: BuildReport) -> list[tuple[str, bytes]]:
    """(title, PNG) per generator with QA figures, then the subject mask areas."""
    from nearid_data.report.charts import histograms

    drawn = []
    for gid, figures in report.qa.items():
        if any(figures.values()):
            title = f"distractor QA: {gid}"
            drawn.append((title, histograms(title, figures)))
    if report.mask_areas:
        title = "subject mask area of the views segment kept"
        drawn.append((title, histograms(title, {"area": report.mask_areas})))
    if report.positive_similarity:
        title = "synthetic positives: similarity to the references"
        drawn.append((title, histograms(title, report.positive_similarity)))
    return drawn
