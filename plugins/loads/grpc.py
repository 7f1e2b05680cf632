"""Load generator ``grpc``: requests through tritonclient's gRPC client, correct rather than fast.

The accounting (closed and open loop, latency from the intended send) is
:class:`tsweep.plugins.loads.callbacks.CallbackLoad`'s; this module is the gRPC transport:
one channel per point, TLS when ``grpc_use_ssl`` (perf_analyzer's ssl-grpc flags), the
model version and the user's headers on every request, tensors in the request or, with
``shared_memory: system``, in the point's regions; a stateful model's sequence controls
(:mod:`tsweep.sequences`) as the client's sequence_id/start/end arguments.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Tuple

from tsweep import sequences, tls
from tsweep.plugin import hookimpl
from tsweep.records import LoadSettings, RunningServer, TlsSettings, Trial

from tsweep.plugins.loads.callbacks import CallbackLoad
from tsweep.plugins.loads.regions import WithRegions, point_regions
from tsweep.plugins.loads.tensors import request_objects


class GrpcTransport:
    """tritonclient's gRPC client: ``async_infer`` with a callback on gRPC's threads."""

    def __init__(self, url: str, model: str, timeout_s: float, model_version: str = "", headers: Optional[Mapping[str, str]] = None, secure: TlsSettings = TlsSettings()):
        import tritonclient.grpc as grpcclient  # imported here: gRPC is optional at run time

        self._grpc, self.url, self.model, self.timeout_s = grpcclient, url, model, timeout_s
        # gRPC metadata keys are lower-case (HTTP/2 header names are case-insensitive anyway)
        self.model_version, self.headers = model_version, {k.lower(): v for k, v in (headers or {}).items()} or None
        self.arguments = tls.grpc_arguments(secure)
        self._client = None

    def open(self) -> None:
        self._client = self._grpc.InferenceServerClient(self.url, **self.arguments)

    def infer(self, request: Any, done: Callable[[Optional[BaseException]], None], sequence: Optional[Tuple[int, bool, bool]] = None) -> None:
        inputs, outputs = request
        sequence_id, first, last = sequence or (0, False, False)
        self._client.async_infer(
            self.model, inputs, callback=lambda result, error: done(error), outputs=outputs,
            model_version=self.model_version, headers=self.headers, client_timeout=self.timeout_s,
            sequence_id=sequence_id, sequence_start=first, sequence_end=last,
        )  # fmt: skip

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def make_grpc_load(trial: Trial, server: RunningServer, settings: LoadSettings):
    """The trial's load over gRPC: request objects made once, closed or open loop; a
    streaming point reads token streams (:mod:`.grpc_stream`)."""
    if settings.streaming:
        from tsweep.plugins.loads.grpc_stream import make_grpc_stream_load

        return make_grpc_stream_load(trial, server, settings)
    import tritonclient.grpc as grpcclient

    regions = point_regions(trial, server, settings) if settings.shared_memory == "system" else None
    transport = GrpcTransport(server.grpc_url, trial.variant.name, settings.timeout_s, settings.model_version, settings.headers, settings.tls)
    closed = trial.load.kind == "concurrency"
    client = "tritonclient grpc" + (" (TLS)" if settings.tls.grpc_use_ssl else "")
    plan, seq = None, sequences.for_model(trial.variant.config, settings)
    if seq is not None:
        sequences.check_ids(seq, int(trial.load.value) if closed else None)
        plan = sequences.SequencePlan(seq, sequences.in_flight(seq, int(trial.load.value) if closed else None))
        client += ", " + sequences.describe(seq, closed)
    load = CallbackLoad(
        transport, request_objects(grpcclient, trial, settings, regions), client,
        concurrency=int(trial.load.value) if closed else None, rate=None if closed else trial.load.value,
        schedule=settings.distribution, timeout_s=settings.timeout_s, intervals=tuple(us / 1e6 for us in settings.intervals_us),
        sequences=plan,
    )  # fmt: skip
    return WithRegions(load, regions) if regions else load


@hookimpl
def tsweep_load_generators():
    return {"grpc": make_grpc_load}
