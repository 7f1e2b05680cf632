"""What machine a sweep ran on, in a few words for the reports.

Throughput and latency only mean something next to the hardware that produced them, so
``profile`` records this description in the results store and every report prints it, also
when ``analyze`` runs later on another machine. Reading it must never fail a run: whatever
cannot be found (no /proc, no nvidia-smi) is simply left out.
"""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List, Mapping, Optional


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> Optional[str]:
    """The CPU's marketing name (Linux), else whatever the platform module knows."""
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                return " ".join(value.split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or None


def gpu_names(timeout_s: float = 5.0) -> List[str]:
    """Names of the NVIDIA GPUs nvidia-smi lists; [] without a driver or GPU."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run(
            [smi, "--query-gpu=name,memory.total", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=timeout_s, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return []
    return [", ".join(part.strip() for part in line.split(",")) for line in out.splitlines() if line.strip()]


def describe() -> Dict[str, object]:
    """``{"cpu": str, "cpu_count": int, "gpus": [str], "os": str}`` of this machine."""
    return {
        "cpu": cpu_model() or "unknown CPU",
        "cpu_count": os.cpu_count() or 0,
        "gpus": gpu_names(),
        "os": platform.platform(terse=True),
    }


def summary(machine: Mapping[str, object]) -> str:
    """One line for a report header, e.g. 'AMD EPYC 7B13 x 2 CPUs; GPUs: none; Linux-6.1'."""
    if not machine:
        return "not recorded"
    gpus = machine.get("gpus") or []
    parts = [f"{machine.get('cpu', 'unknown CPU')} x {machine.get('cpu_count', '?')} CPUs",
             "GPUs: " + ("; ".join(map(str, gpus)) if gpus else "none")]  # fmt: skip
    if machine.get("os"):
        parts.append(str(machine["os"]))
    return "; ".join(parts)
