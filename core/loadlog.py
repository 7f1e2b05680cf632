"""The per-point load log (Model Analyzer's perf_output / perf_output_path).

Model Analyzer can show perf_analyzer's own output for every point. tsweep has no
perf_analyzer; its equivalent is this log: for every measured point, as it is stored, one
block with the point, how it ended, its figures and each judged window's throughput, written
to a file (appended, flushed per point, so a killed run keeps what it measured) or to stderr.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional, TextIO

from tsweep.progress import Progress
from tsweep.records import Measurement, RunningServer, Trial


def block(m: Measurement) -> str:
    """One point's lines of the log."""
    figures = "" if m.throughput is None else f", {m.throughput:.1f} infer/s, p99 {m.latency_p99_ms:.3f} ms, p50 {m.latency_p50_ms:.3f} ms"
    windows = " ".join(f"{t:.1f}" for t in m.window_throughputs) or "-"
    lines = [
        f"*** {m.variant} {m.load} batch {m.batch_size} look {m.repeat + 1}: {m.status}, {m.windows} windows, "
        f"{m.requests} requests, {m.errors} errors{figures}",
        f"    window throughputs (infer/s): {windows}",
    ]
    if m.error:
        lines.append(f"    error: {m.error}")
    return "\n".join(lines) + "\n"


class LoadLog(Progress):
    """Passes every event on to ``inner`` and logs each finished point to ``path`` (or stderr)."""

    def __init__(self, inner: Progress, path: Optional[Path] = None):
        self.inner, self.path = inner, path

    def server_started(self, server: RunningServer) -> None:
        self.inner.server_started(server)

    def model_started(self, model: str, variants: int, planned: int, resumed: int) -> None:
        self.inner.model_started(model, variants, planned, resumed)

    def lanes_started(self, lanes) -> None:
        self.inner.lanes_started(lanes)

    def trial_started(self, trial: Trial, done: int, planned: int, elapsed_s: float, lane: str = "") -> None:
        self.inner.trial_started(trial, done, planned, elapsed_s, lane)

    def lane_lost(self, lane: str, why: str, trial: Trial, retried: bool) -> None:
        self.inner.lane_lost(lane, why, trial, retried)

    def trial_finished(self, m: Measurement) -> None:
        self.inner.trial_finished(m)
        if self.path is None:
            self._write(sys.stderr, block(m))
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as out:
            self._write(out, block(m))

    @staticmethod
    def _write(out: TextIO, text: str) -> None:
        out.write(text)
        out.flush()
