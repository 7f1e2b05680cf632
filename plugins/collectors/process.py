"""Collector ``process``: CPU and resident memory of the server's process tree.

The tree is tritonserver (``RunningServer.pid``) and everything it started, such as the
python backend's stub processes, where a python model actually runs. CPU is in percent of
one core, summed over the tree (two busy cores read 200); memory is the summed resident set
size in MB (10^6 bytes). Pages shared between processes (the python backend's shared-memory
region) count once per process, so the memory is an upper bound. Without a pid (remote
mode) there is no process to watch and the plugin offers nothing.
"""
from __future__ import annotations

import warnings
from typing import Dict, List

import psutil

from tsweep.components import CollectorWarning
from tsweep.plugin import hookimpl
from tsweep.records import MAX, MetricInfo, RunningServer

from tsweep.plugins.collectors.sampling import SampledCollector

METRICS = (
    MetricInfo("server_cpu_pct", "%", False, "Server CPU (% of one core)"),
    MetricInfo("server_memory_mb", "MB", False, "Server RAM (RSS)", looks=MAX),
)

MB = 1e6


class ProcessTree:
    """Reads the tree's CPU and RSS; CPU is the share of one core since the previous read.

    psutil measures a process's CPU between two calls on the same Process object, so the
    objects are kept across reads; :meth:`prime` makes the first read of a point cover the
    interval since the point started, not since the process did.
    """

    def __init__(self, pid: int):
        self.root = psutil.Process(pid)
        self._known: Dict[int, psutil.Process] = {}

    def processes(self) -> List[psutil.Process]:
        tree = [self.root, *self.root.children(recursive=True)]
        self._known = {p.pid: self._known.get(p.pid, p) for p in tree}
        return list(self._known.values())

    def prime(self) -> None:
        for p in self.processes():
            try:
                p.cpu_percent(None)
            except psutil.Error:
                pass

    def __call__(self) -> Dict[str, float]:
        if not self.root.is_running():
            return {}
        cpu = rss = 0.0
        for p in self.processes():
            try:
                with p.oneshot():
                    cpu += p.cpu_percent(None)
                    rss += p.memory_info().rss
            except psutil.Error:  # a stub that ended between listing and reading
                continue
        return {"server_cpu_pct": cpu, "server_memory_mb": rss / MB}


@hookimpl
def tsweep_metric_infos():
    return METRICS


@hookimpl
def tsweep_metric_collectors(server: RunningServer, interval_s: float):
    try:
        tree = ProcessTree(server.pid) if server.pid is not None else None
    except psutil.Error:
        tree = None
    if tree is None:
        warnings.warn(f"no server process metrics: no local process for {server.description}", CollectorWarning, stacklevel=2)
        return []
    return [SampledCollector(tree, interval_s, METRICS, prime=tree.prime)]
