"""Several looks at one point, combined into one.

A point measured more than once (a search's second look, the final race) is stored as one
row per look (``repeat`` 0, 1, 2, ...). For ranking and reports they count as one point, each
metric combined by the rule the metric catalogue gives it (:attr:`MetricInfo.looks`):
throughput and p99 by their intervals (:func:`tsweep.intervals.combine`, so a precise look
weighs more and the combined interval is narrower than any look's), peaks such as memory by
the highest look, the rest by the mean; ``looks`` says how many looks the row stands for.
How much the looks disagree with each other is the Judge's drift estimate, not this module's.
"""
from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

from tsweep import catalogue, intervals
from tsweep.intervals import Interval
from tsweep.records import COUNT, FIRST, INTERVAL, MAX, Measurement


def merge(measurements: Sequence[Measurement], known: Optional[catalogue.Catalogue] = None) -> List[Measurement]:
    """One row per point: repeats of the same point combined, other rows unchanged.

    ``known`` is the run's catalogue (collectors' rules included); without it, collected
    metrics combine by the mean, which is all a search's decisions need."""
    groups: Dict[str, List[Measurement]] = defaultdict(list)
    for m in measurements:
        groups[m.point].append(m)
    return [rows[0] if len(rows) == 1 else combine(rows, known) for rows in groups.values()]


def combine(rows: Sequence[Measurement], known: Optional[catalogue.Catalogue] = None) -> Measurement:
    """Several looks at one point as one (failed looks are left out, and counted)."""
    known = known if known is not None else catalogue.BUILT_IN
    usable = [m for m in rows if m.status != "failed" and m.throughput]
    first = min(rows, key=lambda m: m.repeat)
    if not usable:
        return first
    fields = {}
    for info in catalogue.columns():
        rule = info.looks
        if rule == INTERVAL:
            looks = [_interval(m.value(info.name), getattr(m, info.interval)) for m in usable if m.value(info.name) is not None]
            both = intervals.combine(looks) if looks else Interval(None, None)  # type: ignore[arg-type]
            fields[info.name], fields[info.interval] = both.value, both.half_width
        else:
            fields[info.name] = _by_rule(rule, [m.value(info.name) for m in usable])
    collected = sorted({k for m in usable for k in m.metrics})
    metrics = {k: _by_rule(known.combine_rule(k), [m.metrics.get(k) for m in usable]) for k in collected}
    failed = len(rows) - len(usable)
    return dataclasses.replace(
        first,
        **fields,
        status="ok" if all(m.status == "ok" for m in usable) else "unstable",
        requests=sum(m.requests for m in usable),
        errors=sum(m.errors for m in rows),
        windows=sum(m.windows for m in rows),
        duration_s=sum(m.duration_s for m in rows),
        error=f"{failed} of {len(rows)} looks failed" if failed else first.error,
        window_throughputs=[t for m in usable for t in m.window_throughputs],
        window_p99s_ms=[t for m in usable for t in m.window_p99s_ms],
        metrics={k: v for k, v in metrics.items() if v is not None},
        looks=sum(m.looks for m in usable),
        repeat=0,
    )


def _by_rule(rule: str, values):
    present = [v for v in values if v is not None]
    if not present:
        return None
    if rule == MAX:
        return max(present)
    if rule == FIRST:
        return present[0]
    if rule == COUNT:
        return sum(present)
    return sum(present) / len(present)


def _interval(value: float, half_width) -> Interval:
    return Interval(value, 0.0 if half_width is None else half_width)  # None: no interval recorded, exact
