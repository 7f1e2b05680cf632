"""A pipeline point's per-stage figures, from each composing model's Triton statistics.

The executor reads every composing model's statistics at the same moments as the pipeline's
own (:class:`StageRecorder` wraps the point's statistics reader), so the figures cover the
point's windows. They are stored in the measurement's metrics as ``stage.<model>.<figure>``
(:data:`STAGE_FIGURES`); :func:`bounding_stage` names the stage whose instances were busiest.
"""
from __future__ import annotations

import time
from typing import Callable, Dict, Mapping, Optional, Tuple

from tsweep.triton import ServerStats

#: The per-stage figures stored for each composing model, with what they say.
STAGE_FIGURES = {
    "queue_ms": "time a request waited in the stage's queue (per request)",
    "compute_input_ms": "copying inputs in (per request)",
    "compute_infer_ms": "the stage's own work (per request)",
    "compute_output_ms": "copying outputs out (per request)",
    "batch_avg": "requests per execution (how full its batches were)",
    "busy": "share of the stage's instance time spent computing: compute time / (window time x instances)",
}
PREFIX = "stage."


class StageRecorder:
    """Each composing model's statistics at the first and last of the moments the point's
    server statistics are read: over the same windows as the point's own figures."""

    def __init__(self, stats: Callable[[str], ServerStats], served: Mapping[str, str], instances: Mapping[str, int], clock=time.monotonic):
        self.stats, self.served, self.instances, self.clock = stats, dict(served), dict(instances), clock
        self.first: Optional[Tuple[float, Dict[str, ServerStats]]] = None
        self.last: Optional[Tuple[float, Dict[str, ServerStats]]] = None

    def wrap(self, server_stats: Callable[[], ServerStats]) -> Callable[[], ServerStats]:
        def read() -> ServerStats:
            own = server_stats()
            if self.served:
                snapshot = (self.clock(), {model: self.stats(name) for model, name in self.served.items()})
                self.first = self.first or snapshot
                self.last = snapshot
            return own

        return read

    def metrics(self) -> Dict[str, float]:
        """``stage.<model>.<figure>`` for every composing model (nothing before two reads)."""
        if self.first is None or self.last is None or self.last[0] <= self.first[0]:
            return {}
        elapsed_ns = (self.last[0] - self.first[0]) * 1e9
        found: Dict[str, float] = {}
        for model in self.served:
            d = self.last[1][model] - self.first[1][model]
            figures = stage_figures(d, elapsed_ns, self.instances.get(model, 1))
            found.update({f"{PREFIX}{model}.{k}": v for k, v in figures.items()})
        return found


def stage_figures(d: ServerStats, elapsed_ns: float, instances: int) -> Dict[str, float]:
    """One stage's figures from its statistics' delta over ``elapsed_ns``."""
    if not d.success_count:
        return {}
    compute = d.compute_input_ns + d.compute_infer_ns + d.compute_output_ns
    figures = {
        "queue_ms": d.queue_ns / d.success_count / 1e6,
        "compute_input_ms": d.compute_input_ns / d.success_count / 1e6,
        "compute_infer_ms": d.compute_infer_ns / d.success_count / 1e6,
        "compute_output_ms": d.compute_output_ns / d.success_count / 1e6,
        # Triton counts a batch's compute once for each request in it: divide by requests per execution
        "busy": compute / max(d.success_count / max(d.execution_count, 1), 1.0) / (elapsed_ns * max(instances, 1)),
    }
    if d.execution_count:
        figures["batch_avg"] = d.inference_count / d.execution_count
    return figures


def stages(metrics: Mapping[str, float]) -> Dict[str, Dict[str, float]]:
    """A point's per-stage figures, by composing model, in the order they were stored."""
    found: Dict[str, Dict[str, float]] = {}
    for key, value in metrics.items():
        if key.startswith(PREFIX):
            model, _, figure = key[len(PREFIX):].rpartition(".")
            found.setdefault(model, {})[figure] = value
    return found


def bounding_stage(metrics: Mapping[str, float]) -> Optional[str]:
    """The stage that bounds the pipeline's throughput: the one whose instances were busiest."""
    busy = {model: f["busy"] for model, f in stages(metrics).items() if "busy" in f}
    return max(busy, key=lambda m: busy[m]) if busy else None
