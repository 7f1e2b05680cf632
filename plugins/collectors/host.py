"""Collector ``host``: how busy the CPUs of the machine running tsweep are.

The figure is the busy share of *all* cores between two reads (100 means every core busy),
machine-wide: the load generator, a local server and anything else running count alike.
That is the point of it. On a CPU-only host the server and the client share the cores, and
once they are all busy no model-config change can raise throughput at that batch size; the
adaptive search uses it to bound what a variant with more instances could reach
(docs/search.md). With a remote server it says whether the client side is the bottleneck.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import psutil

from tsweep.plugin import hookimpl
from tsweep.records import MetricInfo, RunningServer

from tsweep.plugins.collectors.sampling import SampledCollector

METRICS = (MetricInfo("host_cpu_utilization", "%", False, "Host CPU busy (% of all cores)"),)


def busy_and_total() -> Tuple[float, float]:
    """Seconds of CPU time since boot: (busy, total), summed over all cores."""
    t = psutil.cpu_times()
    idle = t.idle + getattr(t, "iowait", 0.0)
    total = sum(t)
    # guest time is already inside user/nice on Linux; do not count it twice
    total -= getattr(t, "guest", 0.0) + getattr(t, "guest_nice", 0.0)
    return total - idle, total


class HostCpu:
    """The busy share of all cores since the previous read (or since :meth:`prime`)."""

    def __init__(self) -> None:
        self._last: Optional[Tuple[float, float]] = None

    def prime(self) -> None:
        self._last = busy_and_total()

    def __call__(self) -> Dict[str, float]:
        now = busy_and_total()
        last, self._last = self._last, now
        if last is None or now[1] <= last[1]:
            return {}
        return {"host_cpu_utilization": 100.0 * (now[0] - last[0]) / (now[1] - last[1])}


@hookimpl
def tsweep_metric_infos():
    return METRICS


@hookimpl
def tsweep_metric_collectors(server: RunningServer, interval_s: float):
    host = HostCpu()
    return [SampledCollector(host, interval_s, METRICS, prime=host.prime)]
