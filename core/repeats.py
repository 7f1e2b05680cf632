"""Several looks at one point, combined into one.

A point measured more than once (a search's second look, the final race) is stored as one
row per look (``repeat`` 0, 1, 2, ...). For ranking and reports they count as one point:
throughput and p99 are the looks combined by their intervals (:func:`tsweep.intervals.combine`,
so a precise look weighs more and the combined interval is narrower than any look's), the
other figures are plain means, and ``metrics["looks"]`` says how many looks it stands for.
How much the looks disagree with each other is the Judge's drift estimate, not this module's.
"""
from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import Dict, List, Sequence

from tsweep import intervals
from tsweep.intervals import Interval
from tsweep.records import Measurement

_AVERAGED = (
    "latency_avg_ms", "latency_p50_ms", "latency_p90_ms", "latency_p95_ms",
    "queue_ms", "compute_input_ms", "compute_infer_ms", "compute_output_ms", "client_send_ms", "client_recv_ms",
)  # fmt: skip


def merge(measurements: Sequence[Measurement]) -> List[Measurement]:
    """One row per point: repeats of the same point combined, other rows unchanged."""
    groups: Dict[str, List[Measurement]] = defaultdict(list)
    for m in measurements:
        groups[m.point].append(m)
    return [rows[0] if len(rows) == 1 else combine(rows) for rows in groups.values()]


def combine(rows: Sequence[Measurement]) -> Measurement:
    """The mean of several looks at one point (failed looks are left out, and counted)."""
    usable = [m for m in rows if m.status != "failed" and m.throughput]
    first = min(rows, key=lambda m: m.repeat)
    if not usable:
        return first
    values = {name: _mean([getattr(m, name) for m in usable]) for name in _AVERAGED}
    throughput = intervals.combine([_interval(m.throughput, m.throughput_ci) for m in usable])
    p99s = [_interval(m.latency_p99_ms, m.latency_p99_ci_ms) for m in usable if m.latency_p99_ms is not None]
    p99 = intervals.combine(p99s) if p99s else Interval(None, None)  # type: ignore[arg-type]
    failed = len(rows) - len(usable)
    return dataclasses.replace(
        first,
        **values,
        status="ok" if all(m.status == "ok" for m in usable) else "unstable",
        throughput=throughput.value,
        throughput_ci=throughput.half_width,
        latency_p99_ms=p99.value,
        latency_p99_ci_ms=p99.half_width,
        requests=sum(m.requests for m in usable),
        errors=sum(m.errors for m in rows),
        windows=sum(m.windows for m in rows),
        duration_s=sum(m.duration_s for m in rows),
        error=f"{failed} of {len(rows)} looks failed" if failed else first.error,
        window_throughputs=[t for m in usable for t in m.window_throughputs],
        window_p99s_ms=[t for m in usable for t in m.window_p99s_ms],
        metrics={**first.metrics, "looks": float(len(usable))},
        repeat=0,
    )


def _interval(value: float, half_width) -> Interval:
    return Interval(value, 0.0 if half_width is None else half_width)  # None: no interval recorded, exact


def _mean(values):
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None
