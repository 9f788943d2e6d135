"""The report page: one self-contained HTML file (inline CSS, images as data URIs, no script).

Every text that comes from the build (identities, reasons, details, paths) goes through
``html.escape``: names and captions are dataset content, not markup.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from string import Template
from typing import Any, Protocol

from nearid_data.report.collect import (
    DISTRACTOR_PREFIX,
    BuildReport,
    RejectionGroup,
    SampleRef,
    SheetRow,
    StageCounts,
)
from nearid_data.report.thumbs import IMAGE, OVERLAY

SHEET_FIGURES = ("inside_changed_fraction", "seam_gradient", "donor_clipped")

_PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>nearid-data report: $title</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; background: #fff; }
h1 { margin-top: 0; } h2 { border-bottom: 1px solid #ccc; margin-top: 32px; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
td.n { text-align: right; }
th { background: #f2f2f2; }
img.thumb { width: ${size}px; height: ${size}px; object-fit: contain; background: #ddd;
  margin-right: 2px; }
img.chart { display: block; margin: 8px 0; max-width: 100%; height: auto; }
.sheet { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; padding: 6px; border: 1px solid #ddd; background: #fafafa; }
figcaption { font-size: 12px; max-width: ${caption_width}px; overflow-wrap: anywhere; }
figure.example figcaption { max-width: ${size}px; }
.legend, .note { color: #555; font-size: 12px; }
</style>
</head>
<body>
<h1>Build report: $title</h1>
<p class="note">$directory</p>
$sections
</body>
</html>
""")


class Thumbs(Protocol):
    size: int

    def get(self, ref: SampleRef, kinds: Sequence[str]) -> dict[str, bytes]: ...


def render(
    report: BuildReport, thumbs: Thumbs, charts: Sequence[tuple[str, bytes]], directory: str
) -> str:
    """The page; ``charts`` are (title, PNG bytes)."""
    sections = [
        _stages(report),
        _splits(report),
        _rejections(report.rejections, thumbs),
        _charts(charts),
        _sheets(report, thumbs),
    ]
    return _PAGE.substitute(
        title=_e(report.title),
        directory=_e(directory),
        size=thumbs.size,
        caption_width=3 * thumbs.size + 8,
        sections="\n".join(sections),
    )


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _img(data: bytes, alt: str, css: str, mime: str = "image/jpeg") -> str:
    uri = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    return f'<img class="{css}" src="{uri}" alt="{_e(alt)}" title="{_e(alt)}">'


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], *, numeric: range) -> str:
    """Cells of ``rows`` are HTML already (escaped by the caller); header cells are text.
    Columns in ``numeric`` are right-aligned."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(_td(cell, i in numeric) for i, cell in enumerate(row)) + "</tr>\n"
        for row in rows
    )
    return f"<table>\n<tr>{head}</tr>\n{body}</table>"


def _td(cell: str, numeric: bool) -> str:
    return f'<td class="n">{cell}</td>' if numeric else f"<td>{cell}</td>"


def _mb(size: int) -> str:
    return f"{size / 1e6:.2f}"


def _stages(report: BuildReport) -> str:
    rows = [_stage_row(stage) for stage in report.stages]
    header = ["stage", "in", "kept", "rejected", "shards", "MB", "wall s"]
    return f'<h2 id="stages">Stages</h2>\n{_table(header, rows, numeric=range(1, 7))}'


def _stage_row(stage: StageCounts) -> list[str]:
    counts = [str(n) for n in (stage.n_in, stage.n_kept, stage.n_rejected, stage.shards)]
    return [_e(stage.name), *counts, _mb(stage.bytes), f"{stage.wall_s:.1f}"]


def _splits(report: BuildReport) -> str:
    if not report.splits:
        return '<h2 id="splits">Splits</h2>\n<p class="note">No stage assigned splits.</p>'
    rows = [
        [_e(name), str(size.identities), str(size.samples), _mb(size.bytes)]
        for name, size in report.splits.items()
    ]
    table = _table(["split", "identities", "samples", "MB"], rows, numeric=range(1, 4))
    return f'<h2 id="splits">Splits</h2>\n{table}'


def _rejections(groups: Sequence[RejectionGroup], thumbs: Thumbs) -> str:
    title = '<h2 id="rejections">Rejections by reason</h2>'
    if not groups:
        return f'{title}\n<p class="note">No input was rejected.</p>'
    rows = []
    for group in groups:
        examples = []
        for example in group.examples:
            caption = f"<figcaption>{_e(example.key)}<br>{_e(example.detail)}</figcaption>"
            image = ""
            if example.ref is not None:
                image = _img(thumbs.get(example.ref, [OVERLAY])[OVERLAY], example.key, "thumb")
            examples.append(f'<figure class="example">{image}{caption}</figure>')
        cells = [_e(group.stage), _e(group.reason), str(group.count)]
        rows.append([*cells, f'<div class="sheet">{"".join(examples)}</div>'])
    legend = (
        '<p class="legend">Examples: the rejected input as the upstream stage holds it '
        "(subject mask red, inpainting region cyan, where the input had them).</p>"
    )
    table = _table(["stage", "reason", "count", "examples"], rows, numeric=range(2, 3))
    return f"{title}\n{legend}\n{table}"


def _charts(charts: Sequence[tuple[str, bytes]]) -> str:
    images = "\n".join(_img(png, title, "chart", "image/png") for title, png in charts)
    images = images or '<p class="note">No QA figures.</p>'
    return f'<h2 id="qa">Distributions</h2>\n{images}'


def _sheets(report: BuildReport, thumbs: Thumbs) -> str:
    parts = ['<h2 id="sheets">Contact sheets</h2>']
    if not report.generators:
        parts.append('<p class="note">No stage holds distractors.</p>')
    for category, rows in report.sheets.items():
        parts.append(f"<h3>{_e(category)}</h3>")
        for gid in report.generators:
            legend = f"reference | subject mask (red), inpainting region (cyan) | distractor {gid}"
            cards = "".join(_card(row, gid, thumbs) for row in rows)
            parts.append(f'<h4>{_e(gid)}</h4>\n<p class="legend">{_e(legend)}</p>')
            parts.append(f'<div class="sheet">\n{cards}\n</div>')
    return "\n".join(parts)


def _card(row: SheetRow, gid: str, thumbs: Thumbs) -> str:
    """One view: reference, mask overlay and distractor, with who it is and the QA figures."""
    field = f"{DISTRACTOR_PREFIX}{gid}.png"
    images = thumbs.get(row.ref, [IMAGE, OVERLAY, field])
    strip = "".join(
        _img(images[kind], f"{row.identity} {label}", "thumb")
        for kind, label in ((IMAGE, "reference"), (OVERLAY, "mask"), (field, gid))
    )
    qa = row.qa.get(gid, {})
    figures = "".join(
        f"<br>{_e(name)} {_e(_figure(qa[name]))}" for name in SHEET_FIGURES if name in qa
    )
    caption = f"<b>{_e(row.identity)}</b> · {_e(row.split or 'no split')} · view {row.view}"
    return f"<figure>{strip}<figcaption>{caption}{figures}</figcaption></figure>"


def _figure(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)
