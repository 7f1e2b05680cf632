"""tsweep killed with SIGKILL at ten different moments of one sweep: every rerun resumes.

The moments cover the whole life of a run: while the server starts, right after a point
begins (variant loading), inside measurement windows, and around commits. After each kill
the results store must pass SQLite's integrity check, hold every point that finished before
the kill (at most the one in flight is lost), and the next run must reuse all of them. The
figures are printed (run with ``-s``) and summarised in docs/reliability.md.
"""
from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.support import TINY_SWEEP, TSWEEP, wait_gone

pytestmark = [pytest.mark.server, pytest.mark.slow]

# 9 points: default + 2 variants (1 and 2 instances, max_batch_size 8) x concurrency 1, 2, 4
ARGS = [*TINY_SWEEP, "--run-config-search-max-instance-count", "2", "--concurrency", "1,2,4", "--measurement-window-s", "0.2"]
POINTS = 9

#: (event in tsweep's stderr, which occurrence in this run, seconds after it) for each kill.
#: "start" is the process start; "point" the n-th point this run begins. Kills at a run's
#: second point let its first finish, so the sweep advances between kills.
MOMENTS = [
    ("start", 0, 1.0),  # interpreter and plugins loading, or the server starting
    ("server", 0, 0.0),  # server just ready, nothing loaded
    ("point", 1, 0.0),  # a point just announced: its variant is loading
    ("point", 2, 0.3),  # warm-up or first window
    ("point", 2, 0.6),  # inside the windows
    ("point", 1, 0.9),
    ("point", 2, 1.2),  # late in the point, or just after its commit
    ("point", 2, 0.1),
    ("point", 1, 0.45),
    ("point", 2, 0.75),
]


def store_state(workdir: Path):
    conn = sqlite3.connect(workdir / "checkpoints" / "results.sqlite")
    try:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        keys = [k for (k,) in conn.execute("SELECT point_key FROM measurements")]
    finally:
        conn.close()
    return integrity, keys


def run_until(workdir: Path, event: str, nth: int, delay_s: float):
    """Start the sweep; SIGKILL it ``delay_s`` after the ``nth`` ``event``. Returns (points
    begun, by their number in the sweep; server pid or None; whether the sweep finished
    before the moment came)."""
    proc = subprocess.Popen([*TSWEEP, *ARGS], cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    begun, seen, server_pid, fired = 0, 0, None, threading.Event()

    def kill_later():
        time.sleep(delay_s)  # the moment itself, not a wait for readiness
        fired.set()
        proc.send_signal(signal.SIGKILL)

    if event == "start":
        threading.Thread(target=kill_later, daemon=True).start()
    for line in proc.stderr:
        if found := re.search(r"pid (\d+) at http", line):
            server_pid = int(found.group(1))
        if fired.is_set():
            continue
        if event == "server" and server_pid and "pid" in line:
            threading.Thread(target=kill_later, daemon=True).start()
            event = "armed"
        if line.startswith("["):
            begun, seen = int(line[1:].split("/")[0]), seen + 1
            if event == "point" and seen == nth:
                threading.Thread(target=kill_later, daemon=True).start()
                event = "armed"
    code = proc.wait(timeout=120)
    return begun, server_pid, code == 0 and not fired.is_set()


def test_ten_kills_at_different_moments_lose_at_most_the_point_in_flight(workdir: Path):
    figures = []
    for event, nth, delay in MOMENTS:
        before = len(store_state(workdir)[1]) if (workdir / "checkpoints" / "results.sqlite").exists() else 0
        begun, server_pid, finished = run_until(workdir, event, nth, delay)
        assert not finished, "the sweep ended before the kill: use more points or earlier moments"
        if server_pid is not None:
            assert wait_gone(server_pid), "tritonserver outlived tsweep"
        if not (workdir / "checkpoints" / "results.sqlite").exists():
            figures.append((f"{event} {nth}", delay, 0, 0, 0))
            continue
        integrity, keys = store_state(workdir)
        assert integrity == "ok"
        assert len(keys) == len(set(keys))  # no point twice
        assert len(keys) >= before  # nothing finished was lost
        if begun:
            assert len(keys) >= begun - 1  # every point begun before the one in flight is stored
        figures.append((f"{event} {nth}", delay, before, len(keys), max(begun - len(keys), 0)))
    done = subprocess.run([*TSWEEP, *ARGS], cwd=workdir, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    kept = figures[-1][3]
    assert re.search(rf"^{POINTS - kept} points measured .* {kept} reused from", done.stderr, re.M), done.stderr
    integrity, keys = store_state(workdir)
    assert integrity == "ok" and len(keys) == len(set(keys)) == POINTS
    lost = sum(f[4] for f in figures)
    print(f"\n{len(MOMENTS)} kills: {lost} points in flight lost (at most 1 per kill), store intact after every kill, {POINTS} points once each in the end")
    for event, delay, before, after, in_flight in figures:
        print(f"  kill {delay:.2f} s after {event:7}: rows {before} -> {after}, in-flight point lost: {in_flight}")
