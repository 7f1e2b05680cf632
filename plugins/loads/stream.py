"""Streaming load for generative models: generation requests whose token stream is read.

Asked for by ``streaming: true`` (or Model Analyzer's ``model_type: LLM`` / genai-perf's
``--streaming``), whatever the ``client_protocol``: the http and grpc generators hand a
streaming point to :func:`make_stream_load`. Over HTTP the requests go to Triton's
``generate_stream`` endpoint and the native loop (ext/loadgen-c, GIL released) reads the
server-sent events, one per token: per request the time to the first token, each gap between
tokens and the end-to-end time go into histograms, and the token count into the window.
Closed loop (``concurrency`` streams) or open loop (a request rate, times from the intended
send), exactly as for plain requests. Over gRPC: :mod:`.grpc_stream`.

The request bodies are the prompts (:mod:`tsweep.prompts`) in the model's inputs
(:mod:`tsweep.generative`), made once per point, the same for every config.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from tsweep import generative, prompts, tls
from tsweep.errors import UsageError
from tsweep.ext.loadgen import HttpLoad, build_http_request
from tsweep.records import LoadSettings, RunningServer, Trial

from tsweep.plugins.loads.native import level_arguments


class NativeStreamLoad(HttpLoad):
    """The native generator reading token streams, named for the stored point; it knows the
    output lengths its prompts asked for (:func:`tsweep.tokens.summarize` compares them)."""

    client = "native http stream"
    asked_output_tokens = 0.0


def make_stream_load(trial: Trial, server: RunningServer, settings: LoadSettings):
    """The trial's streaming load: gRPC streaming for ``client_protocol: grpc``, else the
    native HTTP generate_stream load."""
    if settings.protocol == "grpc":
        from tsweep.plugins.loads.grpc_stream import make_grpc_stream_load

        return make_grpc_stream_load(trial, server, settings)
    if tls.is_https(server.http_url):
        raise UsageError("streaming over https is not supported yet: use the server's plain HTTP endpoint or client_protocol grpc")
    fields = generative.request_fields(trial.variant.model, trial.variant.config)
    asked = prompts.make(settings.prompts)
    url = urlsplit(server.http_url)
    version = f"/versions/{settings.model_version}" if settings.model_version else ""
    path = f"/v2/models/{trial.variant.name}{version}/generate_stream"
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream", **settings.headers}
    raw = [build_http_request(url.hostname, url.port, path, body, headers) for body in generative.json_bodies(fields, asked)]
    load = NativeStreamLoad(url.hostname, url.port, raw, stream=True, **level_arguments(trial, settings))
    load.asked_output_tokens = sum(p.max_tokens for p in asked) / len(asked)  # compared with what came (tokens.length_note)
    return load
