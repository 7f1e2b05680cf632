"""Helpers shared by the tests (fixtures live in conftest.py)."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
MODEL_REPOSITORY = EXAMPLES / "model_repository"
TSWEEP = [sys.executable, "-m", "tsweep"]

#: A four-point sweep of add_sub in a known order: default and one variant (1 instance,
#: max_batch_size 8), each at concurrency 1 and 2, with no final race (its looks depend on
#: the machine's noise; tests/test_repeats.py races). Add a window length.
TINY_SWEEP = [
    "profile", "--model-repository", str(MODEL_REPOSITORY), "--profile-models", "add_sub",
    "--output-model-repository-path", "out", "--run-config-search-mode", "brute",
    "--run-config-search-max-instance-count", "1", "--run-config-search-min-model-batch-size", "8",
    "--run-config-search-max-model-batch-size", "8", "--concurrency", "1,2", "--remeasure-top-configs", "0",
]  # fmt: skip


def run_tsweep(*args: str, cwd: Path, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess, as a user would."""
    return subprocess.run(
        [*TSWEEP, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


def stored(workdir: Path) -> list:
    """The rows of the results store under ``workdir``, after SQLite's integrity check."""
    conn = sqlite3.connect(workdir / "checkpoints" / "results.sqlite")
    conn.row_factory = sqlite3.Row
    found = conn.execute("SELECT * FROM measurements ORDER BY id").fetchall()
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    return found


def wait_gone(pid: int, timeout_s: float = 30.0) -> bool:
    """True once process ``pid`` has exited (bounded wait; it need not be our child)."""
    import psutil

    try:
        psutil.Process(pid).wait(timeout=timeout_s)
    except psutil.NoSuchProcess:
        pass
    except psutil.TimeoutExpired:
        return False
    return True


def eventually(read, want=1, timeout_s: float = 5.0):
    """``read()`` once it returns ``want``, or its last value after ``timeout_s``: for facts
    that settle just after the call that causes them (Triton's statistics after a response,
    a joined thread's /proc entry), polled, bounded."""
    deadline = time.monotonic() + timeout_s
    value = read()
    while value != want and time.monotonic() < deadline:
        time.sleep(0.01)
        value = read()
    return value


def tree(path: Path) -> list:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def install_fake_distribution(site: Path, dist: str, modules: dict, entry_points: dict) -> None:
    """Write modules and a minimal .dist-info, as pip would have installed them."""
    for name, source in modules.items():
        (site / f"{name}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[tsweep]\n{lines}\n")
