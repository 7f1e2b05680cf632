"""Collector ``triton_metrics``: what the server itself exports on its Prometheus endpoint.

Triton publishes GPU gauges (``nv_gpu_utilization``, ``nv_gpu_memory_used_bytes``,
``nv_gpu_power_usage``, one series per GPU) when it sees GPUs, and host gauges
(``nv_cpu_utilization``, ``nv_cpu_memory_used_bytes``) on Linux. The host gauges are the
whole machine's CPU and RAM, not the server process's (the ``process`` collector has those).
Triton refreshes them every ``--metrics-interval-ms`` (2 s by default), so sampling faster
only repeats values. Until the first refresh the host gauges read 0; such a scrape (total
RAM 0) is skipped. The text is parsed with prometheus_client's parser, never by hand.
"""
from __future__ import annotations

import urllib.error
import urllib.request
import warnings
from typing import Dict, Optional

from prometheus_client.parser import text_string_to_metric_families

from tsweep.components import CollectorWarning
from tsweep.plugin import hookimpl
from tsweep.records import MAX, MetricInfo, RunningServer

from tsweep.plugins.collectors.sampling import SampledCollector

METRICS = (
    MetricInfo("triton_gpu_utilization", "%", True, "GPU utilization (Triton)"),
    MetricInfo("triton_gpu_memory_used_mb", "MB", False, "GPU memory used (Triton)", looks=MAX),
    MetricInfo("triton_gpu_power_w", "W", False, "GPU power draw (Triton)"),
    MetricInfo("triton_cpu_utilization", "%", False, "Host CPU utilization (Triton)"),
    MetricInfo("triton_cpu_memory_used_mb", "MB", False, "Host RAM used (Triton)", looks=MAX),
)

MB = 1e6
SCRAPE_TIMEOUT_S = 2.0


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT_S) as response:
        return response.read().decode("utf-8", errors="replace")


def parse(text: str) -> Dict[str, float]:
    """Our metrics from one scrape: GPUs averaged (utilization) or added (memory, power)."""
    series = {f.name: [s.value for s in f.samples if s.name == f.name] for f in text_string_to_metric_families(text)}
    values: Dict[str, float] = {}

    def put(name: str, family: str, combine, scale: float) -> None:
        found = series.get(family)
        if found:
            values[name] = combine(found) * scale

    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    put("triton_gpu_utilization", "nv_gpu_utilization", mean, 100.0)  # exported as 0..1
    put("triton_gpu_memory_used_mb", "nv_gpu_memory_used_bytes", sum, 1 / MB)
    put("triton_gpu_power_w", "nv_gpu_power_usage", sum, 1.0)
    if sum(series.get("nv_cpu_memory_total_bytes", [])) > 0:  # 0 until Triton's first refresh
        put("triton_cpu_utilization", "nv_cpu_utilization", mean, 100.0)
        put("triton_cpu_memory_used_mb", "nv_cpu_memory_used_bytes", sum, 1 / MB)
    return values


def read_from(url: str):
    return lambda: parse(scrape(url))


@hookimpl
def tsweep_metric_infos():
    return METRICS


@hookimpl
def tsweep_metric_collectors(server: RunningServer, interval_s: float):
    why = _unreachable(server.metrics_url)
    if why:
        warnings.warn(f"no Triton metrics: {why}", CollectorWarning, stacklevel=2)
        return []
    return [SampledCollector(read_from(server.metrics_url), interval_s, METRICS)]


def _unreachable(url: Optional[str]) -> str:
    if not url:
        return "the server's metrics URL is unknown (remote mode: pass --triton-metrics-url)"
    try:
        scrape(url)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"{url} did not answer ({exc})"
    return ""
