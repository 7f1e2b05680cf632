"""A stand-in for the ``pynvml`` module: the GPUs this machine (like CI) does not have.

Tests put it into ``sys.modules`` in place of nvidia-ml-py, the narrowest boundary there is:
it answers the NVML calls tsweep makes with scripted devices, and everything above it
(choosing the run's GPUs, the automatic space, the collector, sampling, storage, reports)
is the real code.
"""
from __future__ import annotations

import types
from types import SimpleNamespace


class NVMLError(Exception):
    pass


def stand_in(devices=(), init_error=None):
    """A module with pynvml's names; ``devices`` are dicts whose lists are read in turn."""
    nvml = types.ModuleType("pynvml")
    nvml.NVMLError = NVMLError
    state = {"inits": 0, "shutdowns": 0, "reads": 0}
    nvml.state = state

    def init():
        if init_error:
            raise NVMLError(init_error)
        state["inits"] += 1

    def current(handle, key):
        values = devices[handle][key]
        return values[min(state["reads"], len(values) - 1)]

    def utilization(handle):
        return SimpleNamespace(gpu=current(handle, "util"), memory=0)

    def power(handle):
        value = current(handle, "mw")
        if handle == len(devices) - 1:
            state["reads"] += 1  # the last call of one read: the next read sees the next values
        return value

    nvml.nvmlInit = init
    nvml.nvmlShutdown = lambda: state.__setitem__("shutdowns", state["shutdowns"] + 1)
    nvml.nvmlDeviceGetCount = lambda: len(devices)
    nvml.nvmlDeviceGetHandleByIndex = lambda i: i
    nvml.nvmlDeviceGetUUID = lambda h: devices[h]["uuid"].encode()  # older bindings: bytes
    nvml.nvmlDeviceGetUtilizationRates = utilization
    nvml.nvmlDeviceGetMemoryInfo = lambda h: SimpleNamespace(used=current(h, "used"), total=devices[h]["total"], free=0)
    nvml.nvmlDeviceGetPowerUsage = power
    return nvml


TWO_GPUS = [
    {"uuid": "GPU-a", "util": [10, 30], "used": [1_000_000_000, 3_000_000_000], "total": 16_000_000_000, "mw": [50_000, 70_000]},
    {"uuid": "GPU-b", "util": [50, 70], "used": [2_000_000_000, 500_000_000], "total": 16_000_000_000, "mw": [100_000, 100_000]},
]
