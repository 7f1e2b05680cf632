"""Which resource metrics the reports show, chosen from what the collectors recorded.

Collectors are plugins and may be missing, so reports never assume a metric exists: memory
is the GPU's when any point has it, else the server process's RAM (CPU-only machines); the
same for utilization. Per-GPU values arrive as ``gpu/<uuid>/<metric>`` keys. Titles and
units come from the run's metric catalogue (``context.metrics``). This module only picks;
it draws and writes nothing.
"""
from __future__ import annotations

from typing import Dict, Iterable, Mapping, Optional, Sequence, Tuple

from tsweep.catalogue import PER_GPU_PREFIX
from tsweep.records import Measurement

MEMORY = ("gpu_memory_used_mb", "server_memory_mb")
UTILIZATION = ("gpu_utilization", "server_cpu_pct")
#: The server process's own metrics (the ``process`` collector's), for the CPU-only export.
PROCESS = ("server_cpu_pct", "server_memory_mb")



def pick(points: Iterable[Measurement], candidates: Sequence[str]) -> Optional[str]:
    """The first candidate metric that any point has, or None."""
    points = list(points)
    return next((name for name in candidates if any(p.metrics.get(name) is not None for p in points)), None)


def memory_metric(points: Iterable[Measurement]) -> Optional[str]:
    return pick(points, MEMORY)


def utilization_metric(points: Iterable[Measurement]) -> Optional[str]:
    return pick(points, UTILIZATION)


def split_gpus(metrics: Mapping[str, float]) -> Tuple[Dict[str, Dict[str, float]], Dict[str, float]]:
    """``({uuid: {metric: value}}, {other metric: value})`` from one metrics dict."""
    gpus: Dict[str, Dict[str, float]] = {}
    rest: Dict[str, float] = {}
    for key, value in metrics.items():
        if key.startswith(PER_GPU_PREFIX) and key.count("/") >= 2:
            uuid, _, metric = key[len(PER_GPU_PREFIX):].rpartition("/")
            gpus.setdefault(uuid, {})[metric] = value
        else:
            rest[key] = value
    return gpus, rest
