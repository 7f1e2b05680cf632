"""Re-measuring the top candidates: which points, in which order, and how repeats combine.

When the winner and the runners-up differ by less than their noise, one more look at each,
back to back, would mostly measure the machine's mood at that moment. So the candidates'
best points are measured again in rounds (A, B, C, A, B, C, ...): a slow minute on the
machine then hits every candidate alike instead of one of them.

The repeats of a point are stored as separate rows (``repeat`` 1, 2, ...) and combined into
one point for ranking: the mean of each figure, and a noise estimate from the spread across
repeats (how much the point moves from one look to the next), shrunk by sqrt(n) because the
mean of n looks wobbles less than one look does.
"""
from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from typing import Dict, List, Mapping, Sequence

from tsweep.records import Measurement, RankedConfig, Trial, Variant, relative_half_spread

_AVERAGED = (
    "throughput", "latency_avg_ms", "latency_p50_ms", "latency_p90_ms", "latency_p95_ms", "latency_p99_ms",
    "queue_ms", "compute_input_ms", "compute_infer_ms", "compute_output_ms", "client_send_ms", "client_recv_ms",
)  # fmt: skip


def plan(ranking: Sequence[RankedConfig], top: int, rounds: int, variants: Mapping[str, Variant]) -> List[Trial]:
    """The re-measurements of the ``top`` passing configs' best points, interleaved by round."""
    chosen = [r for r in ranking if r.passes][:top]
    trials = []
    for repeat in range(1, rounds + 1):
        for r in chosen:
            trials.append(Trial(variants[r.best.variant], r.best.load, r.best.batch_size, repeat))
    return trials


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
    spread = relative_half_spread([m.throughput for m in usable])
    within = _mean([m.throughput_noise or 0.0 for m in usable]) or 0.0
    failed = len(rows) - len(usable)
    return dataclasses.replace(
        first,
        **values,
        status="ok" if all(m.status == "ok" for m in usable) else "unstable",
        throughput_noise=max(spread, within) / math.sqrt(len(usable)),
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


def _mean(values):
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None
