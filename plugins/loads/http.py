"""Load generator ``http`` (the default): tsweep's native HTTP/1.1 client.

The requests are encoded once per trial (binary tensor extension or JSON, or with
``shared_memory: system`` a JSON request naming the point's regions) into complete HTTP
requests; the native loop (ext/loadgen.pyx, epoll, the GIL released) then only sends
bytes and records latencies into a histogram, closed loop (``concurrency`` in flight) or open
loop (a schedule, each request timed from its intended send). The native loop has no TLS:
an ``https://`` endpoint is measured through tritonclient (:mod:`.https`), and the stored
point says so.
"""
from __future__ import annotations

from typing import Optional
from urllib.parse import urlsplit

from tsweep import inputs, tls
from tsweep.ext.loadgen import HttpLoad
from tsweep.plugin import hookimpl
from tsweep.records import LoadSettings, RunningServer, Trial
from tsweep.sharedmemory import PointRegions

from tsweep.plugins.loads.https import make_https_load
from tsweep.plugins.loads.regions import WithRegions, point_regions

#: Connections the open-loop generator may open to keep to its schedule.
OPEN_LOOP_MAX_CONNECTIONS = 256


class NativeHttpLoad(HttpLoad):
    """The native generator, named for the stored point."""

    client = "native http"


def wire_requests(trial: Trial, server: RunningServer, settings: LoadSettings, regions: Optional[PointRegions] = None) -> list:
    """The trial's requests as complete HTTP/1.1 requests: the model (and version) in the
    path, the user's extra headers after tsweep's; with ``regions``, bodies that name them."""
    from tsweep.ext.loadgen import build_http_request

    url = urlsplit(server.http_url)
    version = f"/versions/{settings.model_version}" if settings.model_version else ""
    path = f"/v2/models/{trial.variant.name}{version}/infer"
    if regions is not None:
        encoded = [request.json_body() for request in regions.requests]
    else:
        strings = inputs.Strings(settings.string_length, settings.string_data)
        encoded = inputs.http_requests(trial.variant.config, trial.batch_size, settings.shapes or {}, settings.input_data, settings.encoding, strings)
    return [build_http_request(url.hostname, url.port, path, r.body, {**dict(r.headers), **settings.headers}) for r in encoded]


def make_http_load(trial: Trial, server: RunningServer, settings: LoadSettings):
    """The trial's load: native (``start`` / ``take_window`` / ``stop``), or through
    tritonclient for an ``https://`` endpoint."""
    if tls.is_https(server.http_url):
        return make_https_load(trial, server, settings)
    url = urlsplit(server.http_url)
    regions = point_regions(trial, server, settings) if settings.shared_memory == "system" else None
    raw = wire_requests(trial, server, settings, regions)
    if trial.load.kind == "concurrency":
        n = int(trial.load.value)
        load = NativeHttpLoad(url.hostname, url.port, raw, concurrency=n, max_connections=n, timeout_s=settings.timeout_s)
    else:
        if settings.intervals_us:  # perf_analyzer's request intervals: the gaps replace the rate's spacing
            spacing = dict(intervals=[us / 1e6 for us in settings.intervals_us])
        else:
            spacing = dict(rate=trial.load.value, schedule=settings.distribution)
        load = NativeHttpLoad(url.hostname, url.port, raw, max_connections=OPEN_LOOP_MAX_CONNECTIONS, timeout_s=settings.timeout_s, **spacing)
    return WithRegions(load, regions) if regions else load


@hookimpl
def tsweep_load_generators():
    return {"http": make_http_load}
