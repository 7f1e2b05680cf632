"""Load generator ``grpc``: requests through tritonclient's gRPC client, correct rather than fast.

Same interface as the native HTTP generator (``start`` / ``take_window`` / ``stop``) and the
same accounting: closed loop keeps ``concurrency`` requests in flight; open loop sends on a
schedule and times each request from its *intended* send time, so a server that falls
behind shows its queueing instead of slowing the client down (coordinated omission).
Callbacks run on gRPC's threads, so this client pays the GIL per request; use HTTP when the
client's own cost matters.
"""
from __future__ import annotations

import threading
import time
from typing import List, Mapping, Optional, Sequence, Tuple

import numpy as np

from tsweep import inputs
from tsweep.ext.histogram import Histogram
from tsweep.plugin import hookimpl
from tsweep.records import LoadSettings, LoadWindow, RunningServer, Trial

#: A send later than this past its intended time counts as late (open loop).
LATE_THRESHOLD_NS = 1_000_000


class GrpcLoad:
    def __init__(
        self,
        url: str,
        model: str,
        requests: Sequence[Mapping[str, np.ndarray]],
        datatypes: Mapping[str, str],
        concurrency: Optional[int] = None,
        rate: Optional[float] = None,
        schedule: str = "constant",
        timeout_s: float = 30.0,
        seed: int = 1,
        model_version: str = "",
        headers: Optional[Mapping[str, str]] = None,
        intervals: Sequence[float] = (),
    ):
        if (concurrency is None) == (rate is None):
            raise ValueError("give exactly one of concurrency and rate")
        if intervals and (any(not g >= 0 for g in intervals) or not sum(intervals) > 0):
            raise ValueError("intervals must be gaps >= 0 s with a positive sum")
        import tritonclient.grpc as grpcclient  # imported here: gRPC is optional at run time

        self._grpc = grpcclient
        self.url, self.model = url, model
        self.concurrency, self.rate, self.schedule = concurrency, rate, schedule
        self.intervals = tuple(float(g) for g in intervals)  # gaps in s, cycled through: replace rate's spacing
        self.timeout_s = timeout_s
        # gRPC metadata keys are lower-case (HTTP/2 header names are case-insensitive anyway)
        self.model_version, self.headers = model_version, {k.lower(): v for k, v in (headers or {}).items()} or None
        self._rng = np.random.default_rng(seed)
        self._inputs = [self._make_inputs(r, datatypes) for r in requests]
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0
        self._next = 0
        self._client = None
        self._scheduler: Optional[threading.Thread] = None
        self._reset()

    def _make_inputs(self, request: Mapping[str, np.ndarray], datatypes: Mapping[str, str]):
        inputs = []
        for name, array in request.items():
            tensor = self._grpc.InferInput(name, list(array.shape), datatypes[name])
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        return inputs

    def _reset(self) -> None:
        self._hist = Histogram()
        self._completed = self._errors = self._sent = self._late = self._max_late = 0
        self._samples: List[Tuple[int, str]] = []
        self._window_start = time.monotonic_ns()

    # ------------------------------------------------------------------------- sending
    def _send(self, intended_ns: int) -> None:
        with self._lock:
            inputs = self._inputs[self._next % len(self._inputs)]
            self._next += 1
            self._in_flight += 1
            self._sent += 1
        sent_ns = time.monotonic_ns()
        lateness = sent_ns - intended_ns
        if self.rate is not None and lateness > LATE_THRESHOLD_NS:
            with self._lock:
                self._late += 1
                self._max_late = max(self._max_late, lateness)
        try:
            self._client.async_infer(
                self.model, inputs, callback=lambda result, error: self._done(intended_ns, sent_ns, error),
                model_version=self.model_version, headers=self.headers, client_timeout=self.timeout_s,
            )  # fmt: skip
        except Exception as exc:  # the channel itself failed: an error like any other
            self._done(intended_ns, sent_ns, exc)

    def _done(self, intended_ns: int, sent_ns: int, error) -> None:
        now = time.monotonic_ns()
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
            self._send(time.monotonic_ns())

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
        start = time.monotonic_ns()
        intended = start
        gaps = self._gaps()
        while not self._stopping.is_set():
            intended += int(next(gaps) * 1e9)
            delay = (intended - time.monotonic_ns()) / 1e9
            if delay > 0 and self._stopping.wait(delay):
                break
            self._send(intended)

    # ----------------------------------------------------------------------- interface
    def start(self) -> "GrpcLoad":
        self._client = self._grpc.InferenceServerClient(self.url)
        self._reset()
        if self.concurrency is not None:
            for _ in range(self.concurrency):
                self._send(time.monotonic_ns())
        else:
            self._scheduler = threading.Thread(target=self._open_loop, name="tsweep-grpc-schedule", daemon=True)
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
        """Stop sending, wait (bounded) for requests in flight, close the channel."""
        self._stopping.set()
        if self._scheduler is not None:
            self._scheduler.join(timeout=5)
            self._scheduler = None
        deadline = time.monotonic() + self.timeout_s + 1
        with self._lock:
            while self._in_flight > 0 and time.monotonic() < deadline:
                self._idle.wait(timeout=0.1)
        if self._client is not None:
            self._client.close()
            self._client = None


def make_grpc_load(trial: Trial, server: RunningServer, settings: LoadSettings) -> GrpcLoad:
    """The trial's load over gRPC: request tensors made once, closed or open loop."""
    config = trial.variant.config
    specs, data = inputs.samples(config, settings.shapes or {}, settings.input_data, strings=inputs.Strings(settings.string_length, settings.string_data))
    requests = inputs.batches(config, specs, data, trial.batch_size)
    closed = trial.load.kind == "concurrency"
    return GrpcLoad(
        server.grpc_url, trial.variant.name, requests, {s.name: s.datatype for s in specs},
        concurrency=int(trial.load.value) if closed else None, rate=None if closed else trial.load.value,
        schedule=settings.distribution, timeout_s=settings.timeout_s, model_version=settings.model_version,
        headers=settings.headers, intervals=tuple(us / 1e6 for us in settings.intervals_us),
    )  # fmt: skip


@hookimpl
def tsweep_load_generators():
    return {"grpc": make_grpc_load}
