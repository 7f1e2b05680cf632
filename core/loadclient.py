"""A simple closed-loop HTTP load client in Python threads.

This is the interim client of the walking skeleton: N threads, each with one keep-alive
connection, keep N requests in flight. It has the same interface as the native generator
(``start`` / ``take_window`` / ``stop``), which replaces it as the default, so the
measurement method does not care which one runs.
"""
from __future__ import annotations

import http.client
import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

from tsweep.ext.histogram import Histogram


@dataclass
class LoadWindow:
    """What the load did between two ``take_window`` calls."""

    duration_ns: int
    completed: int
    errors: int
    histogram: Histogram
    error_samples: List[Tuple[int, str]] = field(default_factory=list)
    send_ns: int = 0
    recv_ns: int = 0


class ThreadedHttpLoad:
    """Closed loop at ``concurrency`` over keep-alive connections to ``host:port``."""

    def __init__(self, host: str, port: int, path: str, bodies: Sequence[bytes], concurrency: int, timeout_s: float = 30.0):
        self.host, self.port, self.path = host, port, path
        self.bodies = list(bodies)
        self.concurrency = int(concurrency)
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: List[threading.Thread] = []
        self._reset_window()

    def _reset_window(self) -> None:
        self._hist = Histogram()
        self._completed = self._errors = self._send_ns = self._recv_ns = 0
        self._samples: List[Tuple[int, str]] = []
        self._window_start = time.monotonic_ns()

    def start(self) -> None:
        self._reset_window()
        for i in range(self.concurrency):
            t = threading.Thread(target=self._worker, args=(i,), name=f"tsweep-load-{i}", daemon=True)
            self._threads.append(t)
            t.start()

    def _worker(self, index: int) -> None:
        conn: Optional[http.client.HTTPConnection] = None
        headers = {"Content-Type": "application/json"}
        bodies = itertools.cycle(self.bodies[index % len(self.bodies):] + self.bodies[: index % len(self.bodies)])
        while not self._stop.is_set():
            body = next(bodies)
            if conn is None:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
            t0 = time.monotonic_ns()
            try:
                conn.request("POST", self.path, body=body, headers=headers)
                t1 = time.monotonic_ns()
                resp = conn.getresponse()
                t2 = time.monotonic_ns()
                payload = resp.read()
                t3 = time.monotonic_ns()
                status = resp.status
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = None
                self._record_error(-1, f"{type(exc).__name__}: {exc}")
                if not self._stop.is_set():
                    self._stop.wait(0.01)  # do not spin on a dead server
                continue
            if status == 200:
                with self._lock:
                    self._hist.record(t3 - t0)
                    self._completed += 1
                    self._send_ns += t1 - t0
                    self._recv_ns += t3 - t2
            else:
                self._record_error(status, payload[:200].decode(errors="replace"))
        if conn is not None:
            conn.close()

    def _record_error(self, status: int, message: str) -> None:
        with self._lock:
            self._errors += 1
            if len(self._samples) < 5 and (status, message) not in self._samples:
                self._samples.append((status, message))

    def take_window(self) -> LoadWindow:
        with self._lock:
            now = time.monotonic_ns()
            window = LoadWindow(
                duration_ns=now - self._window_start,
                completed=self._completed,
                errors=self._errors,
                histogram=self._hist,
                error_samples=self._samples,
                send_ns=self._send_ns,
                recv_ns=self._recv_ns,
            )
            self._reset_window()
        return window

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=self.timeout_s + 1)
        self._threads = []
