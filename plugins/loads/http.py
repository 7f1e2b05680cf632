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


def make_http_load(trial: Trial, server: RunningServer, settings: LoadSettings):
    """The trial's load as a native ``HttpLoad`` (start / take_window / stop)."""
    from tsweep.ext.loadgen import HttpLoad, build_http_request

    name = trial.variant.name
    url = urlsplit(server.http_url)
    encoded = inputs.http_requests(trial.variant.config, trial.batch_size, settings.shapes or {}, settings.input_data, settings.encoding)
    raw = [build_http_request(url.hostname, url.port, f"/v2/models/{name}/infer", r.body, dict(r.headers)) for r in encoded]
    if trial.load.kind == "concurrency":
        n = int(trial.load.value)
        return HttpLoad(url.hostname, url.port, raw, concurrency=n, max_connections=n, timeout_s=settings.timeout_s)
    return HttpLoad(
        url.hostname, url.port, raw, rate=trial.load.value, schedule=settings.distribution,
        max_connections=OPEN_LOOP_MAX_CONNECTIONS, timeout_s=settings.timeout_s,
    )  # fmt: skip


@hookimpl
def tsweep_load_generators():
    return {"http": make_http_load}
