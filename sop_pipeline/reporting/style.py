"""One look for every chart and page: colours, sizes, and rendering to PNG."""

from __future__ import annotations

import io

from matplotlib.figure import Figure

# Tableau-like palette, one meaning per colour across all charts.
PLAN = "#4C78A8"  # the plan (bars, the statistical forecast)
CONSENSUS = "#E45756"  # the consensus, budget lines, capacity + overtime, shortfall
ACTUAL = "black"  # actuals and capacity
ALTERNATIVE = "#72B7B2"  # unconstrained demand
UP, DOWN = "#54A24B", "#E45756"
BAND_ALPHA = 0.2
TITLE_SIZE = 10
LEGEND_SIZE = 8
PANEL_HEIGHT = 2.6  # inches per stacked panel
WIDTH = 10.0
DPI = 100


def panels(n: int, width: float = WIDTH) -> tuple[Figure, list]:
    """A figure of `n` stacked panels (at least one) with a constrained layout."""
    fig = Figure(figsize=(width, PANEL_HEIGHT * max(n, 1)), layout="constrained")
    return fig, [fig.add_subplot(max(n, 1), 1, k) for k in range(1, max(n, 1) + 1)]


def to_png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return buffer.getvalue()
