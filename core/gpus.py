"""Does this machine have a GPU that NVML can see? One place that opens NVML.

The automatic config space asks it (KIND_GPU instance groups on GPU machines, KIND_CPU
elsewhere) and the NVML collector opens NVML through it, so both agree on what "no GPU"
means. NVML comes from nvidia-ml-py (module ``pynvml``); without the package, the driver or
a device, the answer is simply "no GPU" plus the reason, never an exception.
"""
from __future__ import annotations

from types import ModuleType
from typing import Optional, Tuple


def open_nvml() -> Tuple[Optional[ModuleType], str]:
    """``(pynvml, "")`` with NVML initialised (call ``nvmlShutdown()`` when done), or
    ``(None, why not)``."""
    try:
        import pynvml
    except ImportError as exc:
        return None, f"the NVML bindings are not installed ({exc}); pip install nvidia-ml-py"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return None, f"NVML is not available ({exc}); no NVIDIA driver on this machine?"
    return pynvml, ""


def gpu_count() -> int:
    """How many GPUs NVML sees; 0 without NVML, driver or device."""
    nvml, _ = open_nvml()
    if nvml is None:
        return 0
    try:
        return int(nvml.nvmlDeviceGetCount())
    except nvml.NVMLError:
        return 0
    finally:
        nvml.nvmlShutdown()


def gpu_available() -> bool:
    return gpu_count() > 0
