"""The charts the ``plots`` key asks for, as the summary and the detailed report draw them.

Each :class:`tsweep.plotspec.PlotSpec` becomes one line chart: a line per config (summary) or
per client batch size (detailed), through the points sorted by x (with ``monotonic``, only
those that improve on every point before them), throughput and p99 with their 95% intervals
as error bars, and the constraints on x or y drawn across as lines. Without the key, each
report draws its own charts; this module is only asked when the user chose.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

from tsweep.plotspec import BATCH_SIZE, LOAD, PlotSpec
from tsweep.records import Constraint, Measurement

from tsweep.plugins.reporters import plots
from tsweep.plugins.reporters.series import along_x, load_axis, series


def axis_title(what: str, points: Sequence[Measurement], known) -> str:
    """The title of an axis showing ``what``: the load's kind, the batch size or the metric's heading."""
    if what == LOAD:
        return load_axis(points)
    if what == BATCH_SIZE:
        return "Client batch size"
    return known.heading(what)


def bound_lines(constraints: Sequence[Constraint], x: str, y: str, known) -> List[plots.RefLine]:
    """The constraints on the chart's x (vertical lines) or y (horizontal lines)."""
    lines = []
    for c in constraints:
        for bound, word in ((c.min, "min"), (c.max, "max")):
            if bound is not None and c.metric in (x, y):
                info = known.info(c.metric)
                lines.append(plots.RefLine(f"{word} {info.label} {bound:g} {info.unit}".rstrip(), bound, vertical=c.metric == x))
    return lines


def chart(spec: PlotSpec, lines: Sequence[Tuple[str, Sequence[Measurement]]], constraints: Sequence[Constraint], known) -> bytes:
    """``spec`` drawn with one line per ``(label, points)``, as PNG bytes."""
    everything = [m for _, points in lines for m in points]
    drawn = plots.Chart(spec.title, axis_title(spec.x, everything, known), axis_title(spec.y, everything, known))
    drawn.series = [series(label, along_x(points, spec.x, spec.y, spec.monotonic), spec.x, spec.y) for label, points in lines]
    drawn.refs = bound_lines(constraints, spec.x, spec.y, known)
    return plots.lines(drawn)


def caption(spec: PlotSpec, points: Sequence[Measurement], known) -> str:
    """What a chosen chart shows, in words the PDF's text holds (the chart itself is an image)."""
    axes = f"{axis_title(spec.y, points, known)} against {axis_title(spec.x, points, known)}"
    return f"Plot {spec.name}: {axes}" + ("; only the points that raise it along x (monotonic)." if spec.monotonic else ".")
