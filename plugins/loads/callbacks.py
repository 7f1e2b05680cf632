"""The accounting of a load whose client answers by callback (tritonclient's gRPC and HTTP).

Same interface as the native HTTP generator (``start`` / ``take_window`` / ``stop``) and the
same accounting: closed loop keeps ``concurrency`` requests in flight (each answer sends the
next); open loop sends on a schedule and times each request from its *intended* send time,
so a server that falls behind shows its queueing instead of slowing the client down
(coordinated omission). How a request is sent is the transport's business
(:class:`Transport`): the accounting is written once for every tritonclient-based client.
With a :class:`tsweep.sequences.SequencePlan` the requests go out as sequences (stateful
models): each closed-loop slot sends its own sequences one request after the other, and the
open loop's sends go to the plan's sequences in turn. Callbacks run on the client's threads,
so these clients pay the GIL per request; the native
HTTP generator is the one to use when the client's own cost matters.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, List, Optional, Protocol, Sequence, Tuple

import numpy as np

from tsweep.ext.histogram import Histogram
from tsweep.records import LoadWindow
from tsweep.sequences import SequencePlan

#: A send later than this past its intended time counts as late (open loop).
LATE_THRESHOLD_NS = 1_000_000


class Transport(Protocol):
    """Sends prepared requests through one client: ``open()`` before the first, ``infer``
    calls ``done(error or None)`` once per request (on any thread), ``close()`` after the last."""

    def open(self) -> None: ...

    def infer(self, request: Any, done: Callable[[Optional[BaseException]], None], sequence: Optional[Tuple[int, bool, bool]] = None) -> None:
        """``sequence``: ``(id, start, end)``, the request's sequence controls (stateful
        models); only passed when the load sends sequences."""

    def close(self) -> None: ...


class CallbackLoad:
    """A closed or open loop over ``requests`` (cycled) sent through ``transport``; ``client``
    names it in the stored point."""

    def __init__(
        self, transport: Transport, requests: Sequence[Any], client: str, concurrency: Optional[int] = None, rate: Optional[float] = None,
        schedule: str = "constant", timeout_s: float = 30.0, seed: int = 1, intervals: Sequence[float] = (),
        sequences: Optional[SequencePlan] = None,
    ):  # fmt: skip
        if (concurrency is None) == (rate is None):
            raise ValueError("give exactly one of concurrency and rate")
        if intervals and (any(not g >= 0 for g in intervals) or not sum(intervals) > 0):
            raise ValueError("intervals must be gaps >= 0 s with a positive sum")
        self.transport, self.requests, self.client = transport, list(requests), client
        self.concurrency, self.rate, self.schedule = concurrency, rate, schedule
        self.intervals = tuple(float(g) for g in intervals)  # gaps in s, cycled through: replace rate's spacing
        self.timeout_s = timeout_s
        self.sequences = sequences  # closed loop: slot i is concurrency slot i's sequence
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0
        self._next = 0
        self._opened = False
        self._scheduler: Optional[threading.Thread] = None
        self._reset()

    def _reset(self) -> None:
        self._hist = Histogram()
        self._completed = self._errors = self._sent = self._late = self._max_late = 0
        self._samples: List[Tuple[int, str]] = []
        self._window_start = time.monotonic_ns()

    # ------------------------------------------------------------------------- sending
    def _send(self, intended_ns: int, slot: Optional[int] = None) -> None:
        with self._lock:
            request = self.requests[self._next % len(self.requests)]
            self._next += 1
            self._in_flight += 1
            self._sent += 1
        controls = {}
        if getattr(self.transport, "wants_origin", False):  # a stream transport times tokens from it
            controls["origin_ns"] = intended_ns
        if self.sequences is not None:  # the open loop waited until a sequence may send
            slot, sequence_id, first, last = self.sequences.take(slot)
            controls = dict(sequence=(sequence_id, first, last))
        sent_ns = time.monotonic_ns()
        lateness = sent_ns - intended_ns
        if self.rate is not None and lateness > LATE_THRESHOLD_NS:
            with self._lock:
                self._late += 1
                self._max_late = max(self._max_late, lateness)
        try:
            self.transport.infer(request, lambda error: self._done(intended_ns, error, slot), **controls)
        except Exception as exc:  # the channel itself failed: an error like any other
            self._done(intended_ns, exc, slot)

    def _done(self, intended_ns: int, error: Optional[BaseException], slot: Optional[int] = None) -> None:
        now = time.monotonic_ns()
        if self.sequences is not None:
            self.sequences.answered(slot)
        with self._lock:
            self._in_flight -= 1
            if error is None:
                self._completed += 1
                self._hist.record(now - intended_ns)
            else:
                self._errors += 1
                message = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
                if len(self._samples) < 5 and (-1, message) not in self._samples:
                    self._samples.append((-1, message))
            self._idle.notify_all()
            keep_going = self.concurrency is not None and not self._stopping.is_set()
        if keep_going:
            self._send(time.monotonic_ns(), slot)

    def _gaps(self):
        """The gaps between intended sends, in seconds: the request intervals cycled through,
        else constant or exponential spacing at the rate."""
        k = 0
        while True:
            if self.intervals:
                yield self.intervals[k % len(self.intervals)]
                k += 1
            else:
                yield 1.0 / self.rate if self.schedule == "constant" else self._rng.exponential(1.0 / self.rate)

    def planned_offsets(self, count: int) -> Optional[List[float]]:
        """The intended times of the first ``count`` sends, in seconds after start, from the
        same gaps the open loop uses; None for a Poisson schedule or a closed loop."""
        if self.concurrency is not None or (self.schedule == "poisson" and not self.intervals):
            return None
        offsets, at, gaps = [], 0.0, self._gaps()
        for _ in range(count):
            at += next(gaps)
            offsets.append(at)
        return offsets

    def _open_loop(self) -> None:
        intended = time.monotonic_ns()
        gaps = self._gaps()
        while not self._stopping.is_set():
            intended += int(next(gaps) * 1e9)
            delay = (intended - time.monotonic_ns()) / 1e9
            if delay > 0 and self._stopping.wait(delay):
                break
            if self.sequences is not None:  # no sequence may send yet: the send waits (and is late)
                with self._idle:
                    self._idle.wait_for(lambda: self._stopping.is_set() or self.sequences.ready())
                if self._stopping.is_set():
                    break
            self._send(intended)

    # ----------------------------------------------------------------------- interface
    def start(self) -> "CallbackLoad":
        self.transport.open()
        self._opened = True
        self._reset()
        if self.concurrency is not None:
            for slot in range(self.concurrency):
                self._send(time.monotonic_ns(), slot)
        else:
            self._scheduler = threading.Thread(target=self._open_loop, name="tsweep-load-schedule", daemon=True)
            self._scheduler.start()
        return self

    def wait_responses(self, n: int, timeout_s: float) -> bool:
        """Wait until the current window holds at least ``n`` answered requests (completed or
        failed), or ``timeout_s`` passed; True when it does (count windows)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._completed + self._errors >= n, timeout=timeout_s)

    def take_window(self) -> LoadWindow:
        with self._lock:
            now = time.monotonic_ns()
            window = LoadWindow(
                duration_ns=now - self._window_start, completed=self._completed, errors=self._errors,
                histogram=self._hist, error_samples=self._samples, sent=self._sent, late_sends=self._late,
                max_lateness_ns=self._max_late, in_flight=self._in_flight,
            )  # fmt: skip
            self._reset()
        return window

    def stop(self) -> None:
        """Stop sending, wait (bounded) for requests in flight, close the client."""
        self._stopping.set()
        with self._idle:  # an open loop waiting for a sequence wakes up to stop
            self._idle.notify_all()
        if self._scheduler is not None:
            self._scheduler.join(timeout=5)
            self._scheduler = None
        deadline = time.monotonic() + self.timeout_s + 1
        with self._lock:
            while self._in_flight > 0 and time.monotonic() < deadline:
                self._idle.wait(timeout=0.1)
        if self._opened:
            self._opened = False
            try:
                if self.sequences is not None:
                    self._end_sequences()
            finally:
                self.transport.close()

    def _end_sequences(self) -> None:
        """End the sequences the stop cut off, one request flagged sequence_end each, outside
        the windows (as perf_analyzer does), so the server frees their slots at once."""
        ids = self.sequences.open_ids()
        answered = threading.Semaphore(0)
        for sequence_id in ids:
            self.transport.infer(self.requests[0], lambda error: answered.release(), sequence=(sequence_id, False, True))
        for _ in ids:
            if not answered.acquire(timeout=self.timeout_s):
                break
