"""Stopping tsweep mid-sweep: the server goes with it, finished points stay, rerun resumes."""
from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.support import TINY_SWEEP, TSWEEP, wait_gone

pytestmark = [pytest.mark.server, pytest.mark.slow]

ARGS = [*TINY_SWEEP, "--measurement-window-s", "0.3"]


def _signals_as_in_a_terminal() -> None:
    """In the child: SIGINT/SIGTERM at their defaults, as for a command typed in a terminal.

    A job started in the background of a non-interactive shell (CI runners do this) inherits
    SIGINT ignored, and tsweep rightly keeps an ignored signal ignored.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def start_and_wait_for_second_point(workdir: Path):
    """Start a sweep; return (process, server pid) once the second point has started."""
    proc = subprocess.Popen([*TSWEEP, *ARGS], cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_signals_as_in_a_terminal)  # fmt: skip
    server_pid, deadline = None, time.monotonic() + 180
    for line in proc.stderr:
        if found := re.search(r"pid (\d+) at http", line):
            server_pid = int(found.group(1))
        if line.startswith("[  2/"):
            return proc, server_pid
        assert time.monotonic() < deadline, "sweep did not reach its second point"
    pytest.fail(f"sweep ended early: {proc.wait()}")


def rows(workdir: Path) -> int:
    return sqlite3.connect(workdir / "checkpoints" / "results.sqlite").execute("SELECT COUNT(*) FROM measurements").fetchone()[0]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])  # SIGKILL: tests/test_kill_resume.py
def test_stopped_sweep_stops_its_server_and_resumes(workdir: Path, sig):
    proc, server_pid = start_and_wait_for_second_point(workdir)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "error: interrupted; finished measurements are kept in checkpoints/results.sqlite: rerun the same command to resume" in err
    assert server_pid and wait_gone(server_pid), "tritonserver outlived tsweep"
    kept = rows(workdir)
    assert kept >= 1  # the first point was committed before the signal

    rerun = subprocess.run([*TSWEEP, *ARGS], cwd=workdir, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert re.search(rf"^{4 - kept} points measured \(\d+ stable\) in \d+ s of measuring, [\d.]+ s per point; {kept} reused from", rerun.stderr, re.M)
    assert rows(workdir) == 4  # nothing measured twice, nothing lost


def test_second_interrupt_exits_at_once(workdir: Path):
    proc, server_pid = start_and_wait_for_second_point(workdir)
    proc.send_signal(signal.SIGINT)
    for line in proc.stderr:  # the first interrupt is being handled: cleanup has begun
        if line.startswith("interrupted: stopping the server"):
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=10)  # no waiting for a clean server shutdown
    assert proc.returncode == 130
    assert "stopping now" in err
    assert server_pid and wait_gone(server_pid), "tritonserver outlived tsweep"
    assert rows(workdir) >= 1
