"""Line charts as deterministic SVG: the drawing shared by ``gpufleet diff --chart`` and
``gpufleet runway --chart``.

A chart is one or more panels (:class:`ChartData`), each with lines (:class:`Series`: demand,
capacity, vertical markers) and shaded bands (:class:`Band`: a forecast's range). Every line and
band has exactly one legend entry and an SVG id (``series-<n>``, ``band-<n>``, numbered across
panels). Output is byte-for-byte deterministic: fixed ``svg.hashsalt``, no date in the metadata,
text kept as text. matplotlib is imported only in :func:`chart_bytes` (``pip install
'gpufleet[report]'``).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gpufleet.errors import Issue, SpecError


@dataclass(frozen=True)
class Series:
    """One line of a chart: its legend label, its points and its style."""

    label: str
    days: tuple[float, ...]
    values: tuple[float, ...]
    style: str  # a key of STYLES: "demand", "demand-base", "base", "head", "marker", "scenario[-2|-3]", "order"
    step: bool = False


@dataclass(frozen=True)
class Band:
    """A shaded range between two curves over the same days (a forecast's p50–p90)."""

    label: str
    days: tuple[float, ...]
    lower: tuple[float, ...]
    """The band's bottom edge on each day."""
    upper: tuple[float, ...]
    """Its top edge on each day (at least ``lower``)."""
    style: str = "band"


@dataclass(frozen=True)
class ChartData:
    """One panel: a title, the y axis, its lines and bands."""

    title: str
    """Shown above the panel, left-aligned."""
    y_label: str
    series: tuple[Series, ...]
    """Lines, drawn over the bands, in legend order."""
    note: str = ""
    """Text in the middle of the panel (e.g. why it is empty)."""
    bands: tuple[Band, ...] = ()
    x_label: str = "days from today"
    y_max: float | None = None
    """Top of the y axis (default: the highest value plotted, plus 8 %)."""


STYLES: dict[str, dict[str, Any]] = {
    "demand": {"color": "#222222", "linewidth": 2.0},
    "demand-base": {"color": "#888888", "linewidth": 1.5, "linestyle": (0, (4, 3))},
    "base": {"color": "#1f77b4", "linewidth": 1.8, "linestyle": (0, (6, 3))},
    "head": {"color": "#d62728", "linewidth": 2.2},
    "marker": {"color": "#555555", "linewidth": 1.0, "linestyle": (0, (1, 2))},
    "scenario": {"color": "#9467bd", "linewidth": 1.3, "linestyle": (0, (5, 2, 1, 2))},
    "scenario-2": {"color": "#8c564b", "linewidth": 1.3, "linestyle": (0, (5, 2, 1, 2))},
    "scenario-3": {"color": "#e377c2", "linewidth": 1.3, "linestyle": (0, (5, 2, 1, 2))},
    "order": {"color": "#d62728", "linewidth": 1.4, "linestyle": (0, (2, 2))},
    "band": {"color": "#ff7f0e", "alpha": 0.25, "linewidth": 0.0},
}


def chart_bytes(panels: Sequence[ChartData], fmt: str = "svg", *, salt: str = "gpufleet") -> bytes:
    """Draw ``panels`` one above the other; ``fmt`` ``svg`` (deterministic) or another matplotlib
    format such as ``png``.

    Raises:
        SpecError: matplotlib is not installed.
    """
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - matplotlib is in the dev and report extras
        raise SpecError(Issue("--chart", "matplotlib is not installed", "pip install 'gpufleet[report]'")) from None
    # Text stays text (svg.fonttype none) and ids come from a fixed salt: the same data, the same bytes.
    with matplotlib.rc_context({"svg.hashsalt": salt, "svg.fonttype": "none", "font.family": "DejaVu Sans",
                                "axes.spines.top": False, "axes.spines.right": False}):
        fig = Figure(figsize=(8.0, 5.0 * max(1, len(panels))), dpi=100, layout="constrained")
        FigureCanvasAgg(fig)  # no GUI backend and no global pyplot state
        counters = [0, 0]
        for i, data in enumerate(panels):
            _draw(fig.add_subplot(max(1, len(panels)), 1, i + 1), data, counters)
        out = io.BytesIO()
        if fmt == "svg":
            fig.savefig(out, format="svg", metadata={"Date": None})
        else:  # PNG for a quick look; only the SVG is promised byte-for-byte stable
            fig.savefig(out, format=fmt)
    return out.getvalue()


def _draw(ax: Any, data: ChartData, counters: list[int]) -> None:
    from matplotlib.ticker import StrMethodFormatter

    top = 0.0
    for band in data.bands:
        counters[1] += 1
        patch = ax.fill_between(band.days, band.lower, band.upper, label=band.label, **STYLES[band.style])
        patch.set_gid(f"band-{counters[1]}")
        top = max(top, *band.upper)
    for s in data.series:
        counters[0] += 1
        kwargs = dict(STYLES[s.style])
        if s.step:
            (line,) = ax.step(s.days, s.values, where="post", label=s.label, **kwargs)
        else:
            (line,) = ax.plot(s.days, s.values, label=s.label, **kwargs)
        line.set_gid(f"series-{counters[0]}")
        top = max(top, *s.values)
    if data.y_max is not None:
        top = data.y_max / 1.08
    ax.set_title(data.title, fontsize=11, loc="left")
    ax.set_xlabel(data.x_label)
    ax.set_ylabel(data.y_label)
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0, top=top * 1.08 if top > 0 else 1.0)
    if data.y_label != "FLOP (cumulative)":
        ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.grid(True, color="#e5e5e5", linewidth=0.6)
    if data.note:
        ax.text(0.5, 0.5, data.note, transform=ax.transAxes, ha="center", va="center", color="#555555")
    if data.series or data.bands:
        # Below the axes, so no entry hides a line.
        ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.14), ncol=2, fontsize=8, frameon=False)


__all__ = ["STYLES", "Band", "ChartData", "Series", "chart_bytes"]
