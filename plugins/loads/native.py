"""How a point's load level becomes the native generator's arguments, for plain requests
(:mod:`.http`) and token streams (:mod:`.stream`) alike: one rule for both."""
from __future__ import annotations

from tsweep.records import LoadSettings, Trial

#: Connections the open-loop generator may open to keep to its schedule.
OPEN_LOOP_MAX_CONNECTIONS = 256


def level_arguments(trial: Trial, settings: LoadSettings) -> dict:
    """Closed loop: ``concurrency`` connections, one request (or stream) in flight on each.
    Open loop: the rate with its spacing, or perf_analyzer's request intervals (their gaps
    replace the rate's spacing), on up to :data:`OPEN_LOOP_MAX_CONNECTIONS` connections."""
    if trial.load.kind == "concurrency":
        n = int(trial.load.value)
        return dict(concurrency=n, max_connections=n, timeout_s=settings.timeout_s)
    if settings.intervals_us:
        spacing = dict(intervals=[us / 1e6 for us in settings.intervals_us])
    else:
        spacing = dict(rate=trial.load.value, schedule=settings.distribution)
    return dict(max_connections=OPEN_LOOP_MAX_CONNECTIONS, timeout_s=settings.timeout_s, **spacing)
