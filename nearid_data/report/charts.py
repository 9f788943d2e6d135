"""Histograms for the report, as PNG bytes.

matplotlib (extra ``report``) is imported on first use only. Figures are drawn on the Agg canvas
without pyplot (no global figure state), in matplotlib's default style (a user's matplotlibrc
does not leak in), at a fixed size and dpi, and saved without the "Software" stamp: the same
values give the same bytes. PNG rather than SVG, so no ``svg.hashsalt`` is involved.
"""

from __future__ import annotations

import io
from typing import Any

from nearid_data.optional import import_optional

PANEL_SIZE = (3.2, 2.4)  # inches per histogram
DPI = 100
BINS = 20
COLOR = "#4c72b0"
# Shares get a fixed 0..1 axis so that histograms of different builds compare at a glance; the
# other figures have no natural bound and use the data's range.
_FIXED_RANGE = {
    "inside_changed_fraction": (0.0, 1.0),
    "donor_clipped": (0.0, 1.0),
    "area": (0.0, 1.0),
}


def histograms(title: str, values: dict[str, list[float]]) -> bytes:
    """One row of histograms, a panel per figure (figure name -> its values), as PNG bytes."""
    matplotlib, figure, backend_agg = _matplotlib()
    with matplotlib.style.context("default"):
        fig = figure.Figure(
            figsize=(PANEL_SIZE[0] * len(values), PANEL_SIZE[1]), dpi=DPI, layout="constrained"
        )
        backend_agg.FigureCanvasAgg(fig)
        axes = fig.subplots(1, len(values), squeeze=False)[0]
        for ax, (name, data) in zip(axes, values.items(), strict=True):
            ax.hist(data, bins=BINS, range=_FIXED_RANGE.get(name), color=COLOR, edgecolor="white")
            ax.set_title(f"{name} (n={len(data)})", fontsize=9)
            ax.set_ylabel("views", fontsize=8)
            ax.tick_params(labelsize=8)
        fig.suptitle(title, fontsize=10)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _matplotlib() -> tuple[Any, Any, Any]:
    matplotlib = import_optional("matplotlib", extra="report")
    import_optional("matplotlib.style", extra="report")
    figure = import_optional("matplotlib.figure", extra="report")
    backend_agg = import_optional("matplotlib.backends.backend_agg", extra="report")
    return matplotlib, figure, backend_agg
