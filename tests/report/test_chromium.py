"""The report as a browser shows it: headless Chromium loads every image and draws a page.

The page has no script, so image loading is checked from a test-only wrapper page that loads
the report in a same-origin iframe (file:// pages count as one origin only with
``--allow-file-access-from-files``) and writes what it finds into its own DOM for ``--dump-dom``.
A copy of the report with one broken image proves the check can fail.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nearid_data.report import command

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not on PATH (CI installs it with .ci/report.sh)"
)

WRAPPER = """<!DOCTYPE html>
<html><body>
<iframe id="report" src="report.html"></iframe><iframe id="broken" src="broken.html"></iframe>
<pre id="result"></pre>
<script>
const found = {};
for (const frame of document.querySelectorAll("iframe")) {
  frame.addEventListener("load", () => {
    const images = Array.from(frame.contentDocument.images);
    found[frame.id] = {
      total: images.length,
      failed: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt),
    };
    document.getElementById("result").textContent = JSON.stringify(found);
  });
}
</script>
</body></html>
"""


def _chromium(profile: Path, *args: str) -> str:
    command_line = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        *args,
    ]
    done = subprocess.run(command_line, capture_output=True, text=True, timeout=120, check=True)
    return done.stdout


@pytest.fixture(scope="module")
def page(rejecting_build: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("chromium") / "report.html"
    command.write_report(rejecting_build, out, per_category=2, thumb_size=128)
    return out


def test_every_image_loads(page: Path) -> None:
    html = page.read_text(encoding="utf-8")
    first_src = re.search(r'src="(data:[^"]+)"', html)
    assert first_src is not None
    broken = html.replace(first_src.group(1), "data:image/jpeg;base64,bm90IGFuIGltYWdl", 1)
    (page.parent / "broken.html").write_text(broken, encoding="utf-8")
    wrapper = page.parent / "wrapper.html"
    wrapper.write_text(WRAPPER, encoding="utf-8")

    profile = page.parent / "profile-dom"
    dom = _chromium(profile, "--allow-file-access-from-files", "--dump-dom", wrapper.as_uri())
    result = re.search(r'<pre id="result">(.*?)</pre>', dom, re.DOTALL)
    assert result is not None, dom[-2000:]
    found = json.loads(result.group(1))
    images = html.count("<img ")
    assert found["report"] == {"total": images, "failed": []}
    assert found["broken"]["total"] == images
    assert len(found["broken"]["failed"]) == 1


def test_screenshot_shows_the_page(page: Path) -> None:
    shot = page.parent / "shot.png"
    _chromium(
        page.parent / "profile-screenshot",
        "--hide-scrollbars",
        "--window-size=1280,2400",
        f"--screenshot={shot}",
        page.as_uri(),
    )
    pixels = np.asarray(Image.open(io.BytesIO(shot.read_bytes())).convert("RGB"))
    assert pixels.shape == (2400, 1280, 3)
    # Text and tables on white above; photos and charts: thousands of colours, not a blank page.
    colours = pixels.astype(np.uint32) @ np.array([1 << 16, 1 << 8, 1], np.uint32)
    assert len(np.unique(colours)) > 2000
    top = pixels[:200]
    assert (top < 128).all(axis=2).sum() > 500  # the title and table text are drawn
