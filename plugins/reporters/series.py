"""From stored measurements to what the reports plot and tabulate.

A config's curve is its successful points at one client batch size, ordered by load; the
x and y of a chart are metric names (see :meth:`Measurement.value`), ``"load"`` or
``"batch_size"`` (the client's). Throughput
and p99 come with the half-widths of their 95% confidence intervals, which the charts draw as
error bars. Kept apart from drawing so the reports and their tests agree on which points
(and which bars) a chart holds.
"""
from __future__ import annotations

from typing import Iterable, List, Optional

from tsweep.plotspec import BATCH_SIZE, LOAD
from tsweep.records import DISPLAYED, Measurement, RankedConfig, cell

from tsweep.plugins.reporters.plots import Series

#: The figures measured with a 95% confidence interval, and the field holding its half-width.
HALF_WIDTHS = {"throughput": "throughput_ci", "latency_p99_ms": "latency_p99_ci_ms"}


def usable(points: Iterable[Measurement]) -> List[Measurement]:
    """Points with a result (failed ones have no numbers to show)."""
    return [m for m in points if m.status != "failed" and m.throughput is not None]


def curve(points: Iterable[Measurement], variant: str, batch_size: Optional[int] = None) -> List[Measurement]:
    """The usable points of ``variant`` (at ``batch_size`` if given), by client batch then load."""
    chosen = [m for m in usable(points) if m.variant == variant and (batch_size is None or m.batch_size == batch_size)]
    return sorted(chosen, key=lambda m: (m.batch_size, m.load_value))


def value(m: Measurement, what: str) -> Optional[float]:
    if what == LOAD:
        return m.load_value
    return float(m.batch_size) if what == BATCH_SIZE else m.value(what)


def along_x(points: Iterable[Measurement], x: str, y: str, monotonic: bool = False) -> List[Measurement]:
    """The points that have both values, sorted by x; with ``monotonic``, only those whose y
    is higher than every kept point before them (Model Analyzer's rule for its ``plots``)."""
    chosen = sorted((m for m in points if value(m, x) is not None and value(m, y) is not None), key=lambda m: value(m, x))
    if not monotonic:
        return chosen
    kept: List[Measurement] = []
    for m in chosen:
        if not kept or value(m, y) > value(kept[-1], y):
            kept.append(m)
    return kept


def half_width(m: Measurement, what: str) -> Optional[float]:
    """The half-width of ``what``'s 95% interval at ``m``: None for figures measured without
    one (load, collectors' metrics), ``inf`` when one window left nothing to estimate from."""
    field = HALF_WIDTHS.get(what)
    return None if field is None else getattr(m, field)


def series(label: str, points: Iterable[Measurement], x: str, y: str) -> Series:
    """A line through the points that have both values, with their intervals as error bars."""
    chosen = [m for m in points if value(m, x) is not None and value(m, y) is not None]
    return Series(
        label,
        [value(m, x) for m in chosen],
        [value(m, y) for m in chosen],
        xerr=[half_width(m, x) for m in chosen],
        yerr=[half_width(m, y) for m in chosen],
    )


def load_axis(points: Iterable[Measurement]) -> str:
    """The x-axis title for load: concurrency or request rate, whichever was measured."""
    kinds = {m.load_kind for m in points}
    if kinds == {"request_rate"}:
        return "Request rate (requests/s)"
    return "Concurrency (requests in flight)" if kinds == {"concurrency"} else "Load (concurrency or requests/s)"


def config_label(r: RankedConfig) -> str:
    """The config's name as the reports show it, saying when it is the default or has twins."""
    extra = [] if not r.is_default else ["default"]
    if r.aliases:
        extra.append("= " + ", ".join(r.aliases))
    return r.variant + (f" ({'; '.join(extra)})" if extra else "")


def params_text(params: dict) -> List[str]:
    """instances, max batch size and dynamic batching, as table cells."""
    return [cell(params.get(name)) for name in DISPLAYED]
