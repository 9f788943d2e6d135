"""The page: self-contained (data URIs only, no URL, no script), escaped, cached, reproducible."""

from __future__ import annotations

import argparse
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest

from nearid_data.errors import NearidError
from nearid_data.report import command
from nearid_data.report.charts import histograms
from nearid_data.report.collect import (
    BuildReport,
    Example,
    RejectionGroup,
    SampleRef,
    SheetRow,
    StageCounts,
)
from nearid_data.report.html import render
from nearid_data.report.thumbs import CACHE_DIR

HOSTILE = '<script>alert("x")</script> & <img src=http://example.com/a.png>'


class FakeThumbs:
    size = 64

    def get(self, ref: SampleRef, kinds: Sequence[str]) -> dict[str, bytes]:
        ok, jpeg = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))
        assert ok
        return {kind: jpeg.tobytes() for kind in kinds}


def _hostile_report() -> BuildReport:
    ref = SampleRef(Path("x.tar"), "0" * 64, "k_v000", Path("."))
    return BuildReport(
        title=HOSTILE,
        stages=[StageCounts(HOSTILE, 3, 2, 1, 1, 100, 0.1)],
        rejections=[
            RejectionGroup("segment", HOSTILE, 2, [Example("k_v000", HOSTILE, ref)]),
            RejectionGroup("ingest", "not_an_image", 1, [Example("bad", "no pixels", None)]),
        ],
        generators=["cut_paste"],
        sheets={HOSTILE: [SheetRow(HOSTILE, HOSTILE, "train", 0, ref, {"cut_paste": {}})]},
    )


def _img_tags(page: str) -> list[str]:
    return re.findall(r"<img\b[^>]*>", page)


def _assert_self_contained(page: str) -> None:
    assert "http" not in page.lower()
    assert not re.search(r"<(script|link|iframe|object|embed)\b", page, re.IGNORECASE)
    assert not re.search(r"\b(href|url\()", page, re.IGNORECASE)
    for tag in _img_tags(page):
        assert re.search(r'\ssrc="data:image/(jpeg|png);base64,[A-Za-z0-9+/=]+"', tag), tag[:120]
    # every src or srcset in the page is one of those data URIs
    assert page.count("src=") == len(_img_tags(page))


def test_build_text_is_escaped() -> None:
    page = render(_hostile_report(), FakeThumbs(), [], HOSTILE)
    assert "<script" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp;" in page
    assert len(_img_tags(page)) == 4  # rejection example + reference, overlay, distractor
    assert "no pixels" in page  # an example without pixels still says what it was


def test_report_of_a_build_is_self_contained(rejecting_build: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    command.write_report(rejecting_build, out, per_category=2, thumb_size=96)
    page = out.read_text(encoding="utf-8")
    _assert_self_contained(page)
    report_images = len(_img_tags(page))
    assert report_images > 20
    assert page.count('class="chart"') == 3  # QA of two generators, mask areas
    for reason in ("mask_too_large", "cut_paste:too_little_change", "too_few_views"):
        assert reason in page


def test_thumbnails_are_cached_and_the_page_reproducible(
    rejecting_build: Path, tmp_path: Path
) -> None:
    build = tmp_path / "build"
    shutil.copytree(rejecting_build, build, ignore=shutil.ignore_patterns(CACHE_DIR))
    first = command.write_report(build, tmp_path / "a.html", per_category=2, thumb_size=96)
    cached = sorted(p.name for p in (build / CACHE_DIR).iterdir())
    assert first.drawn == len(cached) > 0
    second = command.write_report(build, tmp_path / "b.html", per_category=2, thumb_size=96)
    assert second.drawn == 0
    assert (tmp_path / "a.html").read_bytes() == (tmp_path / "b.html").read_bytes()
    command.write_report(build, tmp_path / "c.html", per_category=2, thumb_size=64)
    assert len(list((build / CACHE_DIR).iterdir())) == 2 * len(cached)  # size is in the key


def test_histograms_are_deterministic_pngs() -> None:
    values = {"inside_changed_fraction": [0.3, 0.5, 0.9], "seam_gradient": [1.0, 2.5]}
    png = histograms("QA", values)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"Software" not in png and b"matplotlib" not in png
    assert histograms("QA", values) == png


def test_command_line(rejecting_build: Path, tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    out = tmp_path / "r.html"
    args = parser.parse_args([str(rejecting_build), "--out", str(out), "--per-category", "1"])
    assert command.run(args) == 0
    _assert_self_contained(out.read_text(encoding="utf-8"))
    with pytest.raises(NearidError, match="per-category"):
        command.run(parser.parse_args([str(rejecting_build), "--per-category", "-1"]))
