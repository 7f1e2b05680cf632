"""Periodic sampling on a background thread, aggregated per point: shared by the collectors.

Each collector only knows how to read its source once (``read() -> {name: value}``); a
:class:`Sampler` calls that every ``interval_s`` seconds on a daemon thread, once more at
stop, and keeps the samples with their ``time.monotonic()`` stamps so that the point's
aggregate can cover only the judged windows (``stop(since)``).

How samples combine: names containing ``memory`` take the **peak** (does the deployment
fit?), everything else (utilization, power, CPU) the **mean** over the samples.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from tsweep.records import MetricInfo

Sample = Tuple[float, Mapping[str, float]]

#: How long stop() waits for a read in flight; reads carry their own shorter timeouts.
JOIN_TIMEOUT_S = 10.0


def is_peak(name: str) -> bool:
    return "memory" in name


def aggregate(samples: List[Sample], since: float = 0.0) -> Dict[str, float]:
    """Per name, the peak or the mean of the samples stamped at or after ``since``.

    When no sample is that recent (a judged interval shorter than the sampling interval),
    the last sample stands for it rather than reporting nothing.
    """
    recent = [values for stamp, values in samples if stamp >= since] or [values for _, values in samples[-1:]]
    columns: Dict[str, List[float]] = {}
    for values in recent:
        for name, value in values.items():
            columns.setdefault(name, []).append(float(value))
    return {name: max(vals) if is_peak(name) else sum(vals) / len(vals) for name, vals in columns.items()}


class SampledCollector:
    """A :class:`tsweep.components.MetricCollector` built from a ``read`` function.

    Between :meth:`start` and :meth:`stop` it calls ``read`` every ``interval_s`` seconds on
    a daemon thread. ``prime`` (optional) runs at start, for sources that report rates
    since their previous read. A read that raises is skipped (the sample is missing, the
    point is not lost); so is one that returns nothing. The waits between reads are waits on
    the stop event, so stopping never sits out an interval.
    """

    def __init__(
        self,
        read: Callable[[], Mapping[str, float]],
        interval_s: float,
        infos: Sequence[MetricInfo],
        prime: Optional[Callable[[], None]] = None,
    ):
        self.read = read
        self.interval_s = interval_s
        self.infos = tuple(infos)
        self.prime = prime
        self._samples: List[Sample] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def describe(self) -> Sequence[MetricInfo]:
        return self.infos

    def start(self) -> None:
        self.stop(0.0)
        with self._lock:
            self._samples = []
        if self.prime is not None:
            try:
                self.prime()
            except Exception:  # same rule as a failed read: fewer samples, never a lost point
                pass
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tsweep-sampler", daemon=True)
        self._thread.start()

    def stop(self, since: float) -> Dict[str, float]:
        """End sampling (one last sample now) and aggregate the samples since ``since``."""
        thread, self._thread = self._thread, None
        if thread is None:
            return {}
        self._stopping.set()
        thread.join(JOIN_TIMEOUT_S)
        self._take()
        with self._lock:
            return aggregate(list(self._samples), since)

    def samples(self) -> List[Sample]:
        with self._lock:
            return list(self._samples)

    def _run(self) -> None:
        while not self._stopping.wait(self.interval_s):
            self._take()

    def _take(self) -> None:
        try:
            values = self.read()
        except Exception:  # a source that fails once (timeout, process gone) skips a sample
            return
        if values:
            with self._lock:
                self._samples.append((time.monotonic(), dict(values)))
