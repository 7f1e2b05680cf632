"""Collector ``nvml``: GPU utilization, memory and power, read from the driver through NVML.

NVML answers for the whole device, whoever uses it, so these numbers are the GPU's and
not only the server's; on a machine that runs nothing else they are the deployment's.
The GPUs sampled are the run's (the ``gpus`` key, which the core puts on the server
record), or every GPU NVML sees for a server the core did not describe. The aggregates add
memory and power over those GPUs (what the deployment costs in total) and average
utilization; the per-GPU values are stored under ``gpu/<uuid>/...`` next to them. Without
a GPU, driver or the bindings, the plugin offers no collector and says why in one line.
"""
from __future__ import annotations

import warnings
from types import ModuleType
from typing import Dict, List, Optional, Sequence

from tsweep.components import CollectorWarning
from tsweep.gpus import open_nvml, text
from tsweep.plugin import hookimpl
from tsweep.records import MAX, MetricInfo, RunningServer

from tsweep.plugins.collectors.sampling import SampledCollector

METRICS = (
    MetricInfo("gpu_utilization", "%", True, "GPU utilization"),
    MetricInfo("gpu_memory_used_mb", "MB", False, "GPU memory used", looks=MAX),
    MetricInfo("gpu_memory_total_mb", "MB", False, "GPU memory total", looks=MAX),
    MetricInfo("gpu_power_w", "W", False, "GPU power draw"),
)

MB = 1e6


class NvmlReader:
    """One read of the chosen GPUs: ``gpu/<uuid>/...`` per device plus the aggregates.

    ``uuids``: the GPUs to read (the run's); None reads every GPU NVML sees."""

    def __init__(self, nvml: ModuleType, uuids: Optional[Sequence[str]] = None):
        self.nvml = nvml
        count = nvml.nvmlDeviceGetCount()
        every = [(text(nvml.nvmlDeviceGetUUID(h)), h) for h in map(nvml.nvmlDeviceGetHandleByIndex, range(count))]
        self.devices = every if uuids is None else [(uuid, h) for uuid, h in every if uuid in set(uuids)]

    def __call__(self) -> Dict[str, float]:
        values: Dict[str, float] = {}
        utilization: List[float] = []
        used = total = power = 0.0
        for uuid, handle in self.devices:
            util = float(self.nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
            memory = self.nvml.nvmlDeviceGetMemoryInfo(handle)
            watts = self.nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0  # NVML reports mW
            values[f"gpu/{uuid}/utilization"] = util
            values[f"gpu/{uuid}/memory_used_mb"] = memory.used / MB
            values[f"gpu/{uuid}/power_w"] = watts
            utilization.append(util)
            used, total, power = used + memory.used / MB, total + memory.total / MB, power + watts
        if utilization:
            values.update(
                gpu_utilization=sum(utilization) / len(utilization),
                gpu_memory_used_mb=used,
                gpu_memory_total_mb=total,
                gpu_power_w=power,
            )
        return values


@hookimpl
def tsweep_metric_infos():
    return METRICS


@hookimpl
def tsweep_metric_collectors(server: RunningServer, interval_s: float):
    nvml, why = open_nvml()
    if nvml is None:
        warnings.warn(f"no GPU metrics: {why}", CollectorWarning, stacklevel=2)
        return []
    try:
        reader = NvmlReader(nvml, server.gpus)
    except nvml.NVMLError as exc:
        reader, why = None, f"NVML could not list the GPUs ({exc})"
    if reader is None or not reader.devices:
        if not why:
            why = "the gpus key chooses none" if server.gpus is not None and nvml.nvmlDeviceGetCount() else "NVML sees no GPU"
        nvml.nvmlShutdown()
        warnings.warn(f"no GPU metrics: {why}", CollectorWarning, stacklevel=2)
        return []
    # NVML stays initialised for the run: sampling needs it, and the process ends with the run.
    return [SampledCollector(reader, interval_s, METRICS)]
