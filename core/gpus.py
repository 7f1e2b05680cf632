"""Which GPUs NVML sees, and which of them the ``gpus`` key chooses: the one place for both.

The automatic config space asks it (KIND_GPU instance groups when the run has a GPU, KIND_CPU
otherwise), the launchers give the server the chosen GPUs and the NVML collector reads only
those, so all three agree on what "the run's GPUs" means. NVML comes from nvidia-ml-py
(module ``pynvml``); without the package, the driver or a device, the answer is simply
"no GPU" plus the reason, never an exception. Only a ``gpus`` value naming a GPU NVML does
not see is an error: one line listing the ones it does see.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import List, Optional, Sequence, Tuple

from tsweep.errors import UsageError


@dataclass(frozen=True)
class Gpu:
    """One device as NVML numbers it (the index nvidia-smi shows) and its UUID."""

    index: int
    uuid: str


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


def text(value) -> str:
    """Older bindings return bytes where newer ones return str."""
    return value.decode() if isinstance(value, bytes) else str(value)


def seen() -> Tuple[List[Gpu], str]:
    """Every GPU NVML sees, by index, or ``([], why not)``."""
    nvml, why = open_nvml()
    if nvml is None:
        return [], why
    try:
        count = int(nvml.nvmlDeviceGetCount())
        found = [Gpu(i, text(nvml.nvmlDeviceGetUUID(nvml.nvmlDeviceGetHandleByIndex(i)))) for i in range(count)]
    except nvml.NVMLError as exc:
        return [], f"NVML could not list the GPUs ({exc})"
    finally:
        nvml.nvmlShutdown()
    return found, "" if found else "NVML sees no GPU"


def gpu_count() -> int:
    """How many GPUs NVML sees; 0 without NVML, driver or device."""
    return len(seen()[0])


def gpu_available() -> bool:
    return gpu_count() > 0


ALL, NONE = "all", "none"


def select(spec: Sequence[str]) -> Tuple[str, ...]:
    """The UUIDs of the GPUs the ``gpus`` key chooses, in NVML's order.

    ``all`` (the default) is every GPU NVML sees, none on a machine without one; ``none``
    (or an empty list, Model Analyzer's ``[]``) is no GPU; otherwise each entry is an NVML
    index (as nvidia-smi numbers them) or a UUID. An entry NVML does not see is a UsageError
    that lists the ones it does."""
    wanted = [str(g).strip() for g in spec if str(g).strip() and str(g).strip() != "[]"]
    if not wanted or wanted == [NONE]:
        return ()
    devices, why = seen()
    if wanted == [ALL]:
        return tuple(d.uuid for d in devices)
    if {ALL, NONE} & set(wanted):
        raise UsageError(f"gpus must be all, none, or GPU indices/UUIDs, not a mix: got {','.join(wanted)}")
    chosen: List[str] = []
    for entry in wanted:
        match = next((d for d in devices if entry == str(d.index) or entry.lower() == d.uuid.lower()), None)
        if match is None:
            have = ", ".join(f"{d.index} ({d.uuid})" for d in devices)
            where = f"NVML sees {have}" if devices else f"NVML sees no GPU here ({why})"
            raise UsageError(f"gpus names {entry!r}, which is not a GPU of this machine: {where}; use all, none, or those indices/UUIDs")
        if match.uuid not in chosen:
            chosen.append(match.uuid)
    return tuple(d.uuid for d in devices if d.uuid in chosen)
