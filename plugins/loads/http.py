"""Load generator ``http`` (the default): tsweep's native HTTP/1.1 client.

The requests are encoded once per trial (binary tensor extension or JSON) into complete
HTTP requests; the native loop (ext/loadgen.pyx, epoll, the GIL released) then only sends
bytes and records latencies into a histogram, closed loop (``concurrency`` in flight) or open
loop (a schedule, each request timed from its intended send).
"""
from __future__ import annotations

from urllib.parse import urlsplit

from tsweep import inputs
from tsweep.plugin import hookimpl
from tsweep.records import LoadSettings, RunningServer, Trial

#: Connections the open-loop generator may open to keep to its schedule.
OPEN_LOOP_MAX_CONNECTIONS = 256


def wire_requests(trial: Trial, server: RunningServer, settings: LoadSettings) -> list:
    """The trial's requests as complete HTTP/1.1 requests: the model (and version) in the
    path, the user's extra headers after tsweep's."""
    from tsweep.ext.loadgen import build_http_request

    url = urlsplit(server.http_url)
    version = f"/versions/{settings.model_version}" if settings.model_version else ""
    path = f"/v2/models/{trial.variant.name}{version}/infer"
    strings = inputs.Strings(settings.string_length, settings.string_data)
    encoded = inputs.http_requests(trial.variant.config, trial.batch_size, settings.shapes or {}, settings.input_data, settings.encoding, strings)
    return [build_http_request(url.hostname, url.port, path, r.body, {**dict(r.headers), **settings.headers}) for r in encoded]


def make_http_load(trial: Trial, server: RunningServer, settings: LoadSettings):
    """The trial's load as a native ``HttpLoad`` (start / take_window / stop)."""
    from tsweep.ext.loadgen import HttpLoad

    url = urlsplit(server.http_url)
    raw = wire_requests(trial, server, settings)
    if trial.load.kind == "concurrency":
        n = int(trial.load.value)
        return HttpLoad(url.hostname, url.port, raw, concurrency=n, max_connections=n, timeout_s=settings.timeout_s)
    if settings.intervals_us:  # perf_analyzer's request intervals: the gaps replace the rate's spacing
        spacing = dict(intervals=[us / 1e6 for us in settings.intervals_us])
    else:
        spacing = dict(rate=trial.load.value, schedule=settings.distribution)
    return HttpLoad(url.hostname, url.port, raw, max_connections=OPEN_LOOP_MAX_CONNECTIONS, timeout_s=settings.timeout_s, **spacing)


@hookimpl
def tsweep_load_generators():
    return {"http": make_http_load}
