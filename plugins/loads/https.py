"""The HTTP load through TLS: tritonclient's asyncio HTTP client, for ``https://`` endpoints.

The native generator speaks plain HTTP/1.1 only; a server behind a TLS proxy is measured
through ``tritonclient.http.aio`` instead (aiohttp, with the TLS context of
:func:`tsweep.tls.https_context`, the same the control plane uses). One event loop thread
per point runs the client; the accounting is :class:`CallbackLoad`'s, like gRPC's, so the
stored point says ``tritonclient http (TLS)``: its figures include this client's cost,
which is higher than the native generator's.
"""
from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable, Mapping, Optional, Tuple
from urllib.parse import urlsplit

from tsweep import sequences, tls
from tsweep.records import LoadSettings, RunningServer, TlsSettings, Trial

from tsweep.plugins.loads.callbacks import CallbackLoad
from tsweep.plugins.loads.regions import WithRegions, point_regions
from tsweep.plugins.loads.tensors import request_objects

#: Connections the client may open (a closed loop needs one per request in flight).
MAX_CONNECTIONS = 256


class AioHttpTransport:
    """tritonclient's asyncio HTTP client on an event loop thread of its own."""

    def __init__(self, url: str, model: str, timeout_s: float, model_version: str, headers: Mapping[str, str], secure: TlsSettings, connections: int):
        parts = urlsplit(url)
        self.address, self.model, self.timeout_s = f"{parts.hostname}:{parts.port or 443}", model, timeout_s
        self.model_version, self.headers = model_version, dict(headers) or None
        self.context = tls.https_context(secure)
        self.connections = connections
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._client = None

    def open(self) -> None:
        from tritonclient.http import aio

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tsweep-https-loop", daemon=True)
        self._thread.start()

        async def make():  # aiohttp's session belongs to the loop it is made on
            return aio.InferenceServerClient(self.address, conn_limit=self.connections, conn_timeout=self.timeout_s, ssl=True, ssl_context=self.context)

        self._client = asyncio.run_coroutine_threadsafe(make(), self._loop).result(timeout=10)

    def infer(self, request: Any, done: Callable[[Optional[BaseException]], None], sequence: Optional[Tuple[int, bool, bool]] = None) -> None:
        inputs, outputs = request
        sequence_id, first, last = sequence or (0, False, False)
        call = self._client.infer(
            self.model, inputs, model_version=self.model_version, outputs=outputs, headers=self.headers,
            sequence_id=sequence_id, sequence_start=first, sequence_end=last,
        )  # fmt: skip
        future = asyncio.run_coroutine_threadsafe(call, self._loop)
        future.add_done_callback(lambda f: done(RuntimeError("request cancelled") if f.cancelled() else f.exception()))

    def close(self) -> None:
        if self._loop is None:
            return
        try:
            if self._client is not None:
                asyncio.run_coroutine_threadsafe(self._client.close(), self._loop).result(timeout=5)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()
            self._loop = self._thread = self._client = None


def make_https_load(trial: Trial, server: RunningServer, settings: LoadSettings):
    """The trial's HTTP load through TLS (``server.http_url`` is ``https://``)."""
    import tritonclient.http as httpclient

    regions = point_regions(trial, server, settings) if settings.shared_memory == "system" else None
    requests = request_objects(httpclient, trial, settings, regions)
    if regions is None:  # binary outputs, as the native generator asks for them
        outputs = [httpclient.InferRequestedOutput(o.name, binary_data=True) for o in trial.variant.config.output]
        requests = [(inputs, outputs) for inputs, _ in requests]
    closed = trial.load.kind == "concurrency"
    connections = int(trial.load.value) if closed else MAX_CONNECTIONS
    transport = AioHttpTransport(server.http_url, trial.variant.name, settings.timeout_s, settings.model_version, settings.headers, settings.tls, connections)
    client, plan, seq = "tritonclient http (TLS)", None, sequences.for_model(trial.variant.config, settings)
    if seq is not None:
        sequences.check_ids(seq, int(trial.load.value) if closed else None)
        plan = sequences.SequencePlan(seq, sequences.in_flight(seq, int(trial.load.value) if closed else None))
        client += ", " + sequences.describe(seq, closed)
    load = CallbackLoad(
        transport, requests, client, concurrency=int(trial.load.value) if closed else None,
        rate=None if closed else trial.load.value, schedule=settings.distribution, timeout_s=settings.timeout_s,
        intervals=tuple(us / 1e6 for us in settings.intervals_us), sequences=plan,
    )  # fmt: skip
    return WithRegions(load, regions) if regions else load
