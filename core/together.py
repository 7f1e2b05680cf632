"""The measurement method for models measured together: every model's load in the same windows.

One combination point (:mod:`tsweep.combination`) runs each model's own load generator at
its own load level, all at once against the one server. The windows are common: at each
tick every load's window is taken, with each model's Triton statistics delta for the same
interval, so that every model's figures describe the same seconds of shared load. The
single-model method's rules hold for the set (:mod:`tsweep.measure`): a tick in which any
model got too few responses is extended for all of them; the point ends when every model's
intervals are narrow enough (after ``min_windows``), or when ``decided`` says so, or at
``max_windows``. Each model's row comes from its own windows, so all rows of a point have
as many windows, over the same times.
"""
from __future__ import annotations

import time
from typing import Callable, List, Optional, Sequence

from tsweep.measure import MethodSettings, Window, known_enough, stop_collectors, summarize
from tsweep.records import Measurement, Trial
from tsweep.triton import ServerStats

#: ``decided(rows so far) -> bool``: True when no decision the point feeds can change.
DecidedTogether = Callable[[List[Measurement]], bool]


def measure_together(
    trials: Sequence[Trial],
    loads: Sequence,
    server_stats: Sequence[Callable[[], ServerStats]],
    settings: MethodSettings,
    combination: str,
    collectors: Sequence = (),
    clock: Callable[[float], None] = time.sleep,
    decided: Optional[DecidedTogether] = None,
) -> List[Measurement]:
    """Drive every load of ``loads`` (one per trial, started here, all stopped before
    returning) in common windows; returns one Measurement per trial, each carrying
    ``combination``. ``server_stats[i]`` reads trial ``i``'s model's statistics."""
    if settings.count_windows:
        raise ValueError("models measured together use time windows: a count window would end at one model's count")
    n = len(trials)
    windows: List[List[Window]] = [[] for _ in range(n)]
    pending: List[Optional[Window]] = [None] * n
    started = time.monotonic()
    for c in collectors:
        c.start()
    running = []
    stable = False
    try:
        for load in loads:
            load.start()
            running.append(load)
        clock(settings.warmup_s)
        for load in loads:
            load.take_window()  # warm-up: discarded
        window_start = time.monotonic()
        before = [stats() for stats in server_stats]
        while len(windows[0]) < settings.max_windows:
            clock(settings.window_s)
            raws = [load.take_window() for load in loads]
            after = [stats() for stats in server_stats]
            now = time.monotonic()
            tick = []
            for i in range(n):
                w = Window.from_load(raws[i], after[i] - before[i])
                w.started_s = window_start
                if pending[i] is not None:
                    pending[i].absorb(w)
                    w, pending[i] = pending[i], None
                tick.append(w)
            before, window_start = after, now
            too_few = any(w.completed + w.errors < settings.min_requests for w in tick)
            if too_few and tick[0].duration_ns < settings.window_s * 1e9 * settings.max_windows:
                pending = tick  # every model's window is extended, so the windows stay common
                continue
            for i, w in enumerate(tick):
                windows[i].append(w)
            if any(w.completed == 0 and w.errors > 0 for w in tick):
                break  # one model's requests all fail: more windows will not fix it
            stable = all(known_enough(windows[i], settings, trials[i].batch_size) for i in range(n))
            if not stable and decided is not None and len(windows[0]) >= settings.min_windows:
                stable = decided([summarize(t, windows[i], True, settings, 0.0, {}) for i, t in enumerate(trials)])
            if stable:
                break
    finally:
        try:
            metrics = stop_collectors(collectors, windows[0][0].started_s if windows[0] else started)
        finally:
            for load in running:
                load.stop()
    elapsed = time.monotonic() - started
    rows = []
    for i, t in enumerate(trials):
        got = windows[i] or ([pending[i]] if pending[i] else [])
        m = summarize(t, got, stable, settings, elapsed, dict(metrics))
        m.client = str(getattr(loads[i], "client", ""))
        m.combination = combination
        rows.append(m)
    return rows
