"""The measurement method: windows of load until the point is known to a precision.

One point = one variant under one load level. The load runs continuously; every
``window_s`` the client's window (latency histogram, counts) is taken together with the
delta of Triton's statistics for the model, so client and server numbers cover the same
interval. A window with too few responses to say anything is extended rather than judged
(for slow models). With ``count_windows`` (perf_analyzer's ``measurement-mode``) a window
ends instead once it holds ``min_requests`` responses: the load generator's
``wait_responses`` blocks until it does (or :data:`MAX_COUNT_WINDOW_S` passed: a stalled
server, judged on what the window holds).

After each window the point's 95% confidence intervals for throughput and p99 latency are
computed from all its windows (batch means, :mod:`tsweep.intervals`). After at least
``min_windows``, the point ends when both are narrow enough (``throughput_precision`` and
``latency_precision``, relative half-widths), or as soon as the caller's ``decided`` says
no decision the point feeds can change with more windows (the sweep asks the
:class:`tsweep.judge.Judge`: the point surely misses the goal, or surely loses to the best
point so far). Precision is spent on the points that may still win. A point that reaches
``max_windows`` first is kept as ``unstable``: it has its intervals like any other, only
wider than asked for.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

from tsweep import intervals, sequences, tokens
from tsweep.errors import UsageError
from tsweep.ext.histogram import Histogram
from tsweep.intervals import Interval
from tsweep.records import Measurement, Trial
from tsweep.triton import ServerStats

#: A window needs at least this many responses before its p99 means anything.
MIN_WINDOW_REQUESTS = 50
#: A count window that waits longer than this for its responses ends anyway (unless a time
#: window could be extended longer: window_s x max_windows).
MAX_COUNT_WINDOW_S = 60.0
#: Open loop: more late sends than this fraction means the client could not keep the rate.
MAX_LATE_FRACTION = 0.10


@dataclass(frozen=True)
class MethodSettings:
    """How one point is measured; :func:`tsweep.settings.method_settings` fills it from the config."""

    window_s: float = 1.0
    throughput_precision: float = 0.05  # relative half-width of the throughput's 95% interval
    latency_precision: float = 0.10  # the same for p99 latency
    min_windows: int = 3
    max_windows: int = 10
    warmup_s: float = 0.5
    min_requests: int = MIN_WINDOW_REQUESTS
    max_error_fraction: float = 0.01  # more failed requests than this: the point failed
    count_windows: bool = False  # a window ends after min_requests responses, not after window_s


@dataclass
class Window:
    """One judged window: client side and the matching server-side stats delta."""

    duration_ns: int
    completed: int
    errors: int
    histogram: Histogram
    server: ServerStats
    send_ns: int
    recv_ns: int
    error_samples: list
    sent: int = 0
    late_sends: int = 0
    max_lateness_ns: int = 0
    started_s: float = 0.0  # time.monotonic() when the window began (collectors aggregate from it)
    # streaming loads: time to first token, gaps between tokens (histograms, ns), output tokens
    ttft: Optional[Histogram] = None
    itl: Optional[Histogram] = None
    tokens: int = 0

    def throughput(self, batch_size: int) -> float:
        return self.completed * batch_size / (self.duration_ns / 1e9) if self.duration_ns else 0.0

    def p99_ns(self) -> int:
        return self.histogram.value_at_percentile(99.0)

    def absorb(self, other: "Window") -> None:
        """Extend this window with the next one (used when a window is too short)."""
        self.duration_ns += other.duration_ns
        self.completed += other.completed
        self.errors += other.errors
        self.histogram.merge(other.histogram)
        self.server = ServerStats(*(a + b for a, b in zip(self.server.__dict__.values(), other.server.__dict__.values())))
        self.send_ns += other.send_ns
        self.recv_ns += other.recv_ns
        self.error_samples = (self.error_samples + other.error_samples)[:5]
        self.sent += other.sent
        self.late_sends += other.late_sends
        self.max_lateness_ns = max(self.max_lateness_ns, other.max_lateness_ns)
        self.tokens += other.tokens
        for name in ("ttft", "itl"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if theirs is not None:
                if mine is None:
                    setattr(self, name, mine := Histogram())
                mine.merge(theirs)

    @classmethod
    def from_load(cls, raw, server: ServerStats) -> "Window":
        """A window from what the load generator handed out (a LoadWindow or the native Window)."""
        return cls(
            raw.duration_ns, raw.completed, raw.errors, raw.histogram, server, raw.send_ns, raw.recv_ns,
            list(raw.error_samples), raw.sent, raw.late_sends, raw.max_lateness_ns,
            ttft=getattr(raw, "ttft_histogram", None), itl=getattr(raw, "itl_histogram", None), tokens=getattr(raw, "tokens", 0),
        )  # fmt: skip


def throughput_interval(windows: Sequence[Window], batch_size: int) -> Interval:
    """Inferences per second over the windows, with its 95% interval (batch means)."""
    return intervals.batch_means(windows, lambda group: _merged_throughput(group, batch_size))


def p99_interval_ms(windows: Sequence[Window]) -> Interval:
    """p99 latency (ms) of the windows' merged histogram, with its 95% interval (each batch's
    p99 from its own merged histogram)."""
    return intervals.batch_means(windows, _merged_p99_ms)


def _merged_throughput(group: Sequence[Window], batch_size: int) -> float:
    duration = sum(w.duration_ns for w in group)
    return sum(w.completed for w in group) * batch_size / (duration / 1e9) if duration else 0.0


def _merged_p99_ms(group: Sequence[Window]) -> float:
    if len(group) == 1:
        return group[0].p99_ns() / 1e6
    merged = Histogram()
    for w in group:
        merged.merge(w.histogram)
    return merged.value_at_percentile(99.0) / 1e6


def known_enough(windows: Sequence[Window], settings: MethodSettings, batch_size: int) -> bool:
    """True when both intervals are as narrow as asked (after ``min_windows``)."""
    if len(windows) < settings.min_windows:
        return False
    if p99_interval_ms(windows).relative > settings.latency_precision:
        return False
    return throughput_interval(windows, batch_size).relative <= settings.throughput_precision


#: ``decided(point so far) -> bool``: True when no decision the point feeds can change with
#: more windows (see :meth:`tsweep.judge.Judge.decided`).
Decided = Callable[[Measurement], bool]


def measure(
    trial: Trial,
    load,
    server_stats: Callable[[], ServerStats],
    settings: MethodSettings,
    collectors: Sequence = (),
    clock: Callable[[float], None] = time.sleep,
    decided: Optional[Decided] = None,
) -> Measurement:
    """Drive ``load`` (started here, stopped before returning) until the point is known
    well enough (:func:`known_enough`, or ``decided`` on the point so far, both after
    ``min_windows``) or ``max_windows`` windows were judged."""
    if settings.count_windows and not callable(getattr(load, "wait_responses", None)):
        raise UsageError(f"measurement_mode count_windows needs a load generator with wait_responses, and {type(load).__name__} has none: use time_windows")
    windows: List[Window] = []
    pending: Optional[Window] = None
    started = time.monotonic()
    for c in collectors:
        c.start()
    load.start()
    try:
        clock(settings.warmup_s)
        load.take_window()  # warm-up: discarded
        window_start = time.monotonic()
        before = server_stats()
        stable = False
        while len(windows) < settings.max_windows:
            if settings.count_windows:
                load.wait_responses(settings.min_requests, max(MAX_COUNT_WINDOW_S, settings.window_s * settings.max_windows))
            else:
                clock(settings.window_s)
            raw = load.take_window()
            after = server_stats()
            window = Window.from_load(raw, after - before)
            window.started_s, window_start = window_start, time.monotonic()
            before = after
            if pending is not None:
                pending.absorb(window)
                window, pending = pending, None
            too_few = window.completed + window.errors < settings.min_requests
            if too_few and window.duration_ns < settings.window_s * 1e9 * settings.max_windows:
                pending = window  # extend it: the next window's data is added, not restarted
                continue
            windows.append(window)
            if window.completed == 0 and window.errors > 0:
                break  # every request fails: more windows will not fix it
            stable = known_enough(windows, settings, trial.batch_size)
            if not stable and decided is not None and len(windows) >= settings.min_windows:
                stable = decided(summarize(trial, windows, True, settings, 0.0, {}))
            if stable:
                break
    finally:
        try:  # before the load stops, so that the last samples still see it
            metrics = stop_collectors(collectors, windows[0].started_s if windows else started)
        finally:
            load.stop()
    judged = windows or ([pending] if pending else [])
    metrics = {**metrics, **tokens.summarize(judged, getattr(load, "asked_output_tokens", 0.0))}
    m = summarize(trial, judged, stable, settings, time.monotonic() - started, metrics)
    note = tokens.length_note(m.metrics) if m.status != "failed" else None
    if note:
        m.error = f"{m.error}; {note}" if m.error else note
    m.client = str(getattr(load, "client", ""))  # which client measured it, as the load generator names itself
    return m


def stop_collectors(collectors: Sequence, since: float) -> Dict[str, float]:
    """Stop every collector, each aggregating what it sampled since ``since`` (see
    :class:`tsweep.components.MetricCollector`)."""
    metrics: Dict[str, float] = {}
    for c in collectors:
        metrics.update(c.stop(since))
    return metrics


def server_baseline(collectors: Sequence, interval_s: float, clock: Callable[[float], None] = time.sleep) -> Dict[str, float]:
    """Sample every collector once for one interval, with no model loaded and no load.

    Model Analyzer's "server only" row: what the bare server costs, to compare each config
    with. The wait is the sampling period itself (no readiness is involved), so it is bounded.
    """
    for c in collectors:
        c.start()
    clock(interval_s)
    return stop_collectors(collectors, 0.0)


def summarize(trial: Trial, windows: Sequence[Window], stable: bool, settings: MethodSettings, elapsed_s: float, metrics: dict) -> Measurement:
    """One Measurement from every judged window (the warm-up is not among them)."""
    base = dict(
        model=trial.variant.model,
        variant=trial.variant.name,
        variant_digest=trial.variant.digest,
        load_kind=trial.load.kind,
        load_value=trial.load.value,
        batch_size=trial.batch_size,
        repeat=trial.repeat,
        windows=len(windows),
        duration_s=elapsed_s,
        metrics=metrics,
        variant_params=dict(trial.variant.params),
    )
    if not windows:
        return Measurement(status="failed", error="no measurement window completed", **base)
    used = list(windows)
    total = Window(0, 0, 0, Histogram(), ServerStats(), 0, 0, [])
    for w in used:
        total.absorb(w)
    errors = sum(w.errors for w in windows)
    samples = [s for w in windows for s in w.error_samples]
    if total.completed == 0:
        reason = samples[0][1] if samples else "no request completed"
        return Measurement(status="failed", error=f"all requests failed: {reason}", errors=errors, **base)
    hist = total.histogram
    srv = total.server
    per_request = (lambda ns: ns / srv.success_count / 1e6) if srv.success_count else (lambda ns: None)
    if srv.execution_count:  # requests per model execution: how much dynamic batching batched
        base["server_batch_avg"] = srv.inference_count / srv.execution_count
    status, error = ("ok" if stable else "unstable"), (f"{errors} failed requests, e.g. {samples[0][1]}" if errors and samples else "")
    answered = errors + sum(w.completed for w in windows)
    if answered and errors / answered > settings.max_error_fraction:
        example = f", e.g. {samples[0][1]}" if samples else ""
        status = "failed"
        error = f"{100 * errors / answered:.1f}% of requests failed (more than {100 * settings.max_error_fraction:g}%){example}"
    if trial.load.kind == "request_rate":
        sent = sum(w.sent for w in windows)
        late = sum(w.late_sends for w in windows)
        worst = max(w.max_lateness_ns for w in windows)
        base["metrics"] = {**base["metrics"], "late_send_fraction": late / sent if sent else 0.0, "max_lateness_ms": worst / 1e6}
        if sent and late / sent > MAX_LATE_FRACTION:
            status = "failed"
            fix = "lower the request rate"
            if sequences.is_sequence_model(trial.variant.config):  # its sends wait for a free sequence
                fix += " or raise num_of_sequences (each sequence has one request in flight)"
            error = (
                f"the client could not keep to {trial.load.value:g} requests/s: {100 * late / sent:.0f}% of sends were "
                f"late (worst by {worst / 1e6:.1f} ms); {fix}"
            )
    throughput = throughput_interval(used, trial.batch_size)
    p99 = p99_interval_ms(used)
    return Measurement(
        status=status,
        throughput=throughput.value,
        latency_avg_ms=hist.mean / 1e6,
        latency_p50_ms=hist.value_at_percentile(50) / 1e6,
        latency_p90_ms=hist.value_at_percentile(90) / 1e6,
        latency_p95_ms=hist.value_at_percentile(95) / 1e6,
        latency_p99_ms=p99.value,
        queue_ms=per_request(srv.queue_ns),
        compute_input_ms=per_request(srv.compute_input_ns),
        compute_infer_ms=per_request(srv.compute_infer_ns),
        compute_output_ms=per_request(srv.compute_output_ns),
        client_send_ms=total.send_ns / total.completed / 1e6,
        client_recv_ms=total.recv_ns / total.completed / 1e6,
        throughput_ci=throughput.half_width,
        latency_p99_ci_ms=p99.half_width,
        requests=total.completed,
        errors=errors,
        error=error,
        window_throughputs=[w.throughput(trial.batch_size) for w in windows],
        window_p99s_ms=[w.p99_ns() / 1e6 for w in windows],
        histogram=hist.to_bytes(),
        **base,
    )
