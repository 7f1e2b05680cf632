"""The charts of the PDF reports, as PNG bytes.

Three shapes cover every chart the reports draw: lines (one per config or per metric, over
load levels), one x axis with two y axes (throughput and latency against load), and stacked
bars (the latency breakdown). Figures are built with matplotlib's object API on the Agg
canvas, never through pyplot, so nothing depends on a display or on global state.

A series may carry the half-widths of its points' 95% confidence intervals, drawn as error
bars in the line's colour. A point without a usable half-width (None, or infinite because one
window left nothing to estimate from) is drawn without a bar: an infinite bar would stretch
the axis to nothing and hide every other point.

Names in labels come from users (model and config names): matplotlib would read ``$...$`` in
them as math and hide legend entries that start with ``_``, so every label passes through
:func:`_label` and legends get their handles and labels explicitly.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

SIZE = (6.4, 3.4)  # inches; the PDFs scale it to the text width
DPI = 150


@dataclass
class Series:
    """One line: a label and its points, drawn in the order given, with optional error bars
    (one half-width per point, None for no bar) along x and along y."""

    label: str
    xs: Sequence[float]
    ys: Sequence[float]
    xerr: Optional[Sequence[Optional[float]]] = None
    yerr: Optional[Sequence[Optional[float]]] = None


@dataclass
class RefLine:
    """A bound drawn across the chart, e.g. the latency budget (vertical) or a minimum throughput."""

    label: str
    value: float
    vertical: bool = False


@dataclass
class Chart:
    title: str
    x_label: str
    y_label: str
    series: List[Series] = field(default_factory=list)
    refs: List[RefLine] = field(default_factory=list)


def _label(text: str) -> str:
    """User text made literal for matplotlib (no mathtext)."""
    return str(text).replace("$", r"\$")


def _axes():
    """A fresh figure on the Agg canvas and its axes. matplotlib is imported here, not at
    module level: it takes about half a second, which every tsweep command would pay while
    loading plugins, even those that draw nothing."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=SIZE)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return buf.getvalue()


def _legend(ax, handles, labels) -> None:
    if handles:
        ax.legend(handles, [_label(t) for t in labels], fontsize=7, loc="best", framealpha=0.8)


def drawable(errors: Optional[Sequence[Optional[float]]], count: int) -> List[Optional[float]]:
    """One half-width per point, None where no bar can be drawn (missing or not finite)."""
    errors = list(errors or [])
    errors += [None] * (count - len(errors))
    return [e if e is not None and math.isfinite(e) else None for e in errors[:count]]


def _error_bars(ax, s: Series, color) -> None:
    """``s``'s error bars in ``color``; x and y apart, so a point with only one finite
    half-width still gets that bar, and points with none get none."""
    for along, errors in (("x", s.xerr), ("y", s.yerr)):
        chosen = [(x, y, e) for x, y, e in zip(s.xs, s.ys, drawable(errors, len(s.xs))) if e is not None]
        if chosen:
            xs, ys, es = zip(*chosen)
            ax.errorbar(list(xs), list(ys), **{f"{along}err": list(es)}, fmt="none", ecolor=color, elinewidth=0.9,
                        capsize=2.5, alpha=0.8)  # fmt: skip


def lines(chart: Chart) -> bytes:
    """A line per series with markers at the measured points and their error bars, plus
    reference lines."""
    fig, ax = _axes()
    handles, labels = [], []
    for s in chart.series:
        (h,) = ax.plot(list(s.xs), list(s.ys), marker="o", markersize=3.5, linewidth=1.4)
        _error_bars(ax, s, h.get_color())
        handles.append(h)
        labels.append(s.label)
    for ref in chart.refs:
        draw = ax.axvline if ref.vertical else ax.axhline
        handles.append(draw(ref.value, color="crimson", linestyle="--", linewidth=1.1))
        labels.append(ref.label)
    _decorate(ax, chart)
    _legend(ax, handles, labels)
    return _png(fig)


def two_axes(chart: Chart, right_label: str, right: Sequence[Series]) -> bytes:
    """``chart.series`` on the left axis and ``right`` (dashed) on a right axis, same x,
    each with its error bars."""
    fig, ax = _axes()
    other = ax.twinx()
    handles, labels = [], []
    for axis, group, style in ((ax, chart.series, "-"), (other, right, "--")):
        for s in group:
            (h,) = axis.plot(list(s.xs), list(s.ys), marker="o", markersize=3.5, linewidth=1.4, linestyle=style,
                             color=f"C{len(handles)}")  # fmt: skip
            _error_bars(axis, s, h.get_color())
            handles.append(h)
            labels.append(s.label)
    other.set_ylabel(_label(right_label))
    other.set_ylim(bottom=0)
    _decorate(ax, chart)
    _legend(ax, handles, labels)
    return _png(fig)


def stacked_bars(chart: Chart, categories: Sequence[str], parts: Sequence[Tuple[str, Sequence[float]]]) -> bytes:
    """One bar per category, stacked from ``parts`` in order (label, one value per category)."""
    fig, ax = _axes()
    xs = list(range(len(categories)))
    bottom = [0.0] * len(categories)
    handles, labels = [], []
    for label, values in parts:
        values = [v or 0.0 for v in values]
        bars = ax.bar(xs, values, bottom=bottom, width=0.6)
        handles.append(bars)
        labels.append(label)
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set_xticks(xs, [_label(c) for c in categories], fontsize=7, rotation=30 if len(categories) > 6 else 0)
    _decorate(ax, chart)
    _legend(ax, handles, labels)
    return _png(fig)


def _decorate(ax, chart: Chart) -> None:
    ax.set_title(_label(chart.title), fontsize=10)
    ax.set_xlabel(_label(chart.x_label))
    ax.set_ylabel(_label(chart.y_label))
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)


def empty_note(chart: Optional[Chart]) -> bool:
    """True when a chart has nothing to draw (no series with a point)."""
    return chart is None or not any(len(s.xs) for s in chart.series)
