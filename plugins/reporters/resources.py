"""Which resource metrics the reports show, chosen from what the collectors recorded.

Collectors are plugins and may be missing, so reports never assume a metric exists: memory
is the GPU's when any point has it, else the server process's RAM (CPU-only machines); the
same for utilization. Per-GPU values arrive as ``gpu/<uuid>/<metric>`` keys. This module
only picks and labels; it draws and writes nothing.
"""
from __future__ import annotations

from typing import Dict, Iterable, Mapping, Optional, Sequence, Tuple

from tsweep.records import Measurement, MetricInfo

MEMORY = ("gpu_memory_used_mb", "server_memory_mb")
UTILIZATION = ("gpu_utilization", "server_cpu_pct")
#: The server process's own metrics (the ``process`` collector's), for the CPU-only export.
PROCESS = ("server_cpu_pct", "server_memory_mb")

#: Labels for the metrics reports pick, used when no collector described them.
FALLBACK = {
    "gpu_memory_used_mb": MetricInfo("gpu_memory_used_mb", "MB", False, "GPU memory used"),
    "server_memory_mb": MetricInfo("server_memory_mb", "MB", False, "Server RAM (RSS)"),
    "gpu_utilization": MetricInfo("gpu_utilization", "%", False, "GPU utilization"),
    "server_cpu_pct": MetricInfo("server_cpu_pct", "%", False, "Server CPU (% of one core)"),
    "utilization": MetricInfo("utilization", "%", False, "GPU utilization"),
    "memory_used_mb": MetricInfo("memory_used_mb", "MB", False, "GPU memory used"),
    "power_w": MetricInfo("power_w", "W", False, "GPU power"),
}

GPU_PREFIX = "gpu/"


def pick(points: Iterable[Measurement], candidates: Sequence[str]) -> Optional[str]:
    """The first candidate metric that any point has, or None."""
    points = list(points)
    return next((name for name in candidates if any(p.metrics.get(name) is not None for p in points)), None)


def memory_metric(points: Iterable[Measurement]) -> Optional[str]:
    return pick(points, MEMORY)


def utilization_metric(points: Iterable[Measurement]) -> Optional[str]:
    return pick(points, UTILIZATION)


def info(name: str, known: Optional[Mapping[str, MetricInfo]] = None) -> MetricInfo:
    """How to title a metric: the collector's description, else ours, else its bare name."""
    if known and name in known:
        return known[name]
    return FALLBACK.get(name, MetricInfo(name, "", False, name))


def heading(name: str, known: Optional[Mapping[str, MetricInfo]] = None) -> str:
    """'GPU memory used (MB)': a column or axis title (the unit once, if the label has it)."""
    m = info(name, known)
    label = m.label or m.name
    return f"{label} ({m.unit})" if m.unit and m.unit not in label else label


def split_gpus(metrics: Mapping[str, float]) -> Tuple[Dict[str, Dict[str, float]], Dict[str, float]]:
    """``({uuid: {metric: value}}, {other metric: value})`` from one metrics dict."""
    gpus: Dict[str, Dict[str, float]] = {}
    rest: Dict[str, float] = {}
    for key, value in metrics.items():
        if key.startswith(GPU_PREFIX) and key.count("/") >= 2:
            uuid, _, metric = key[len(GPU_PREFIX):].rpartition("/")
            gpus.setdefault(uuid, {})[metric] = value
        else:
            rest[key] = value
    return gpus, rest
