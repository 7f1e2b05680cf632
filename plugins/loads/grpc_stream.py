"""Streaming load over gRPC: tritonclient's bidirectional stream, for decoupled models.

The accounting (closed and open loop, the end-to-end latency from the intended send) is
:class:`tsweep.plugins.loads.callbacks.CallbackLoad`'s; this module is the stream transport:
one gRPC stream per point carries every request (told apart by request id); each response with
an output is a token, timed on arrival into the time-to-first-token and inter-token
histograms (from the request's intended send, which the load hands over), and the response
flagged final ends the request. A request that gets no final response within
``request_timeout_s`` fails as a timeout (a stalled stream), checked at each window.

It is Python on tritonclient's threads, so the client pays the GIL per token, unlike the native
HTTP generator (docs/generative-models.md says what that costs); it is here because the native
loop has no HTTP/2.
"""
from __future__ import annotations

import itertools
import threading
import time
from typing import Any, Callable, Dict, List, Mapping, Optional

import numpy as np

from tsweep import generative, prompts, tls
from tsweep.ext.histogram import Histogram
from tsweep.records import LoadSettings, RunningServer, TlsSettings, Trial

from tsweep.plugins.loads.callbacks import CallbackLoad


class StreamTimeout(Exception):
    """A request whose stream did not end within the request timeout."""


class GrpcStreamTransport:
    """Requests on one gRPC stream; token timing per request id."""

    wants_origin = True  # CallbackLoad passes each request's intended send time

    def __init__(self, url: str, model: str, timeout_s: float, model_version: str = "", headers: Optional[Mapping[str, str]] = None, secure: TlsSettings = TlsSettings()):
        import tritonclient.grpc as grpcclient  # imported here: gRPC is optional at run time

        self._grpc, self.url, self.model, self.timeout_s = grpcclient, url, model, timeout_s
        self.model_version, self.headers = model_version, {k.lower(): v for k, v in (headers or {}).items()} or None
        self.arguments = tls.grpc_arguments(secure)
        self._client = None
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._open: Dict[str, list] = {}  # id -> [origin_ns, tokens, last token ns, done]
        self._swap_state()

    def _swap_state(self):
        self.ttft, self.itl, self.tokens = Histogram(), Histogram(), 0

    def open(self) -> None:
        self._client = self._grpc.InferenceServerClient(self.url, **self.arguments)
        self._client.start_stream(callback=self._on_response, headers=self.headers)

    def infer(self, request: Any, done: Callable[[Optional[BaseException]], None], origin_ns: Optional[int] = None) -> None:
        inputs, outputs = request
        rid = str(next(self._ids))
        origin = origin_ns if origin_ns is not None else time.monotonic_ns()
        with self._lock:
            self._open[rid] = [origin, 0, origin, done]
        self._client.async_stream_infer(self.model, inputs, outputs=outputs, request_id=rid, model_version=self.model_version, enable_empty_final_response=True)

    def _on_response(self, result, error) -> None:
        now = time.monotonic_ns()
        if error is not None:  # the stream names no request for an error: the oldest one fails
            with self._lock:
                rid = next(iter(self._open), None)
                entry = self._open.pop(rid) if rid is not None else None
            if entry is not None:
                entry[3](error)
            return
        response = result.get_response()
        final = "triton_final_response" in response.parameters and response.parameters["triton_final_response"].bool_param
        with self._lock:
            entry = self._open.get(response.id)
            if entry is None:  # timed out already
                return
            if len(response.outputs):
                if entry[1] == 0:
                    self.ttft.record(now - entry[0])
                else:
                    self.itl.record(now - entry[2])
                entry[1] += 1
                entry[2] = now
            if final:
                del self._open[response.id]
                self.tokens += entry[1]
        if final:
            entry[3](None)

    def expire(self) -> None:
        """Fail the requests whose stream has not ended within the timeout (a stalled stream)."""
        limit = time.monotonic_ns() - int(self.timeout_s * 1e9)
        with self._lock:
            late = [rid for rid, entry in self._open.items() if entry[0] < limit]
            entries = [self._open.pop(rid) for rid in late]
        for entry in entries:
            entry[3](StreamTimeout(f"timeout: the stream did not end within {self.timeout_s:g} s"))

    def take(self):
        """The token figures since the last take: (ttft, itl, tokens of completed requests)."""
        with self._lock:
            taken = (self.ttft, self.itl, self.tokens)
            self._swap_state()
        return taken

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.stop_stream(cancel_requests=True)
            finally:
                self._client.close()
                self._client = None


class GrpcStreamLoad(CallbackLoad):
    """CallbackLoad whose windows also carry the transport's token figures."""

    asked_output_tokens = 0.0

    def take_window(self):
        self.transport.expire()
        window = super().take_window()
        window.ttft_histogram, window.itl_histogram, window.tokens = self.transport.take()
        return window


def stream_requests(grpcclient, fields: generative.RequestFields, asked: List[prompts.Prompt]) -> list:
    """Every prompt as tritonclient input objects (shape [1] each: one prompt a request)."""
    made = []
    for p in asked:
        text = grpcclient.InferInput(fields.text, [1], "BYTES")
        text.set_data_from_numpy(np.array([p.text.encode()], dtype=np.object_))
        inputs = [text]
        if fields.max_tokens:
            limit = grpcclient.InferInput(fields.max_tokens, [1], "INT32")
            limit.set_data_from_numpy(np.array([p.max_tokens], dtype=np.int32))
            inputs.append(limit)
        if fields.stream:
            switch = grpcclient.InferInput(fields.stream, [1], "BOOL")
            switch.set_data_from_numpy(np.array([True]))
            inputs.append(switch)
        made.append((inputs, None))
    return made


def make_grpc_stream_load(trial: Trial, server: RunningServer, settings: LoadSettings):
    """The trial's streaming load over gRPC, closed or open loop."""
    import tritonclient.grpc as grpcclient

    fields = generative.request_fields(trial.variant.model, trial.variant.config)
    asked = prompts.make(settings.prompts)
    transport = GrpcStreamTransport(server.grpc_url, trial.variant.name, settings.timeout_s, settings.model_version, settings.headers, settings.tls)
    closed = trial.load.kind == "concurrency"
    load = GrpcStreamLoad(
        transport, stream_requests(grpcclient, fields, asked), "tritonclient grpc stream" + (" (TLS)" if settings.tls.grpc_use_ssl else ""),
        concurrency=int(trial.load.value) if closed else None, rate=None if closed else trial.load.value,
        schedule=settings.distribution, timeout_s=settings.timeout_s, intervals=tuple(us / 1e6 for us in settings.intervals_us),
    )  # fmt: skip
    load.asked_output_tokens = sum(p.max_tokens for p in asked) / len(asked)  # compared with what came (tokens.length_note)
    return load
