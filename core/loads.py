"""Build the load for one trial: native HTTP (default) or gRPC, closed or open loop.

Request data is made and encoded here once per trial; the load generator then only sends
bytes (HTTP) or prepared tensors (gRPC).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Tuple
from urllib.parse import urlsplit

from tsweep import inputs
from tsweep.records import RunningServer, Trial

#: Connections the open-loop HTTP generator may open to keep to its schedule.
OPEN_LOOP_MAX_CONNECTIONS = 256


@dataclass(frozen=True)
class LoadSettings:
    protocol: str = "http"
    shapes: Mapping[str, Tuple[int, ...]] = None  # type: ignore[assignment]
    input_data: str = "random"
    encoding: str = "binary"
    timeout_s: float = 30.0
    distribution: str = "constant"


def make_load(trial: Trial, server: RunningServer, settings: LoadSettings):
    """A started-on-demand load object (start / take_window / stop) for ``trial``."""
    config, name = trial.variant.config, trial.variant.name
    shapes = settings.shapes or {}
    closed = trial.load.kind == "concurrency"
    if settings.protocol == "grpc":
        from tsweep.grpcload import GrpcLoad

        specs, data = inputs.samples(config, shapes, settings.input_data)
        requests = inputs.batches(config, specs, data, trial.batch_size)
        return GrpcLoad(
            server.grpc_url, name, requests, {s.name: s.datatype for s in specs},
            concurrency=int(trial.load.value) if closed else None, rate=None if closed else trial.load.value,
            schedule=settings.distribution, timeout_s=settings.timeout_s,
        )  # fmt: skip
    from tsweep.ext.loadgen import HttpLoad, build_http_request

    url = urlsplit(server.http_url)
    encoded = inputs.http_requests(config, trial.batch_size, shapes, settings.input_data, settings.encoding)
    raw = [build_http_request(url.hostname, url.port, f"/v2/models/{name}/infer", r.body, dict(r.headers)) for r in encoded]
    if closed:
        n = int(trial.load.value)
        return HttpLoad(url.hostname, url.port, raw, concurrency=n, max_connections=n, timeout_s=settings.timeout_s)
    return HttpLoad(
        url.hostname, url.port, raw, rate=trial.load.value, schedule=settings.distribution,
        max_connections=OPEN_LOOP_MAX_CONNECTIONS, timeout_s=settings.timeout_s,
    )  # fmt: skip
