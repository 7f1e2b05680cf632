"""Load generator ``http`` (the default): tsweep's native HTTP/1.1 client.

The requests are encoded once per trial (binary tensor extension or JSON, or with
``shared_memory: system`` a JSON request naming the point's regions) into complete HTTP
requests; the native loop (ext/loadgen.pyx, epoll, the GIL released) then only sends
bytes and records latencies into a histogram, closed loop (``concurrency`` in flight) or open
loop (a schedule, each request timed from its intended send). The native loop has no TLS:
an ``https://`` endpoint is measured through tritonclient (:mod:`.https`), and the stored
point says so. A stateful model's requests carry the sequence controls' placeholder in their
JSON header, filled in per send by the native loop (docs/sequence-models.md).
"""
from __future__ import annotations

import http.client
import socket
from typing import Optional
from urllib.parse import urlsplit

from tsweep import inputs, sequences, tls
from tsweep.ext.loadgen import SEQUENCE_ID_WIDTH, HttpLoad, sequence_placeholder
from tsweep.plugin import hookimpl
from tsweep.records import LoadSettings, RunningServer, Trial
from tsweep.sharedmemory import PointRegions

from tsweep.plugins.loads.https import make_https_load
from tsweep.plugins.loads.native import level_arguments
from tsweep.plugins.loads.stream import make_stream_load
from tsweep.plugins.loads.regions import WithRegions, point_regions



class NativeHttpLoad(HttpLoad):
    """The native generator, named for the stored point (with its sequences, if it sends them).

    With sequences, :meth:`stop` also ends the sequences the stop cut off (one request
    flagged sequence_end each, outside the windows), as perf_analyzer does: the server then
    frees their slots at once, and the next point may give their ids again."""

    client = "native http"
    ender = None  # (request, marks) of a sequence's last request, set when sequences are sent

    def stop(self):
        super().stop()
        if self.ender is not None:
            request, marks = self.ender
            self.ender = None
            try:
                end_sequences(self.host_port, request, marks, self.open_sequences(), self.timeout_s)
            except (OSError, http.client.HTTPException):  # a server gone ends them itself, on idle
                pass


def end_sequences(address, request: bytes, marks, ids, timeout_s: float) -> None:
    """Send ``request`` once per id in ``ids``, as the last request of that sequence (the id
    filled in, sequence_start false, sequence_end true), one after the other on one
    connection; the answers are read and dropped (an error only means the server ended it first)."""
    if not ids:
        return
    at_id, at_start, at_end = marks
    with socket.create_connection(address, timeout=timeout_s) as sock:
        for sequence_id in ids:
            raw = bytearray(request)
            raw[at_id:at_id + SEQUENCE_ID_WIDTH] = str(sequence_id).ljust(SEQUENCE_ID_WIDTH).encode()
            raw[at_start:at_start + 5], raw[at_end:at_end + 5] = b"false", b"true "
            sock.sendall(bytes(raw))
            answer = http.client.HTTPResponse(sock)
            answer.begin()
            answer.read()


def wire_requests(trial: Trial, server: RunningServer, settings: LoadSettings, regions: Optional[PointRegions] = None, marks: Optional[list] = None) -> list:
    """The trial's requests as complete HTTP/1.1 requests: the model (and version) in the
    path, the user's extra headers after tsweep's; with ``regions``, bodies that name them.
    With ``marks`` (a list to fill), the sequence controls' placeholder goes into each
    request's JSON header and ``marks`` gets its offsets in the request, for the native loop."""
    from tsweep.ext.loadgen import build_http_request

    url = urlsplit(server.http_url)
    version = f"/versions/{settings.model_version}" if settings.model_version else ""
    path = f"/v2/models/{trial.variant.name}{version}/infer"
    if regions is not None:
        encoded = [request.json_body() for request in regions.requests]
    else:
        strings = inputs.Strings(settings.string_length, settings.string_data)
        encoded = inputs.http_requests(trial.variant.config, trial.batch_size, settings.shapes or {}, settings.input_data, settings.encoding, strings)
    if marks is None:
        return [build_http_request(url.hostname, url.port, path, r.body, {**dict(r.headers), **settings.headers}) for r in encoded]
    wired = []
    for r in encoded:
        body, at = sequence_placeholder(r.body)
        headers = dict(r.headers)
        if "Inference-Header-Content-Length" in headers:  # the JSON header grew by the placeholder
            headers["Inference-Header-Content-Length"] = str(int(headers["Inference-Header-Content-Length"]) + len(body) - len(r.body))
        request = build_http_request(url.hostname, url.port, path, body, {**headers, **settings.headers})
        marks.append(tuple(len(request) - len(body) + offset for offset in at))
        wired.append(request)
    return wired


def make_http_load(trial: Trial, server: RunningServer, settings: LoadSettings):
    """The trial's load: native (``start`` / ``take_window`` / ``stop``), or through
    tritonclient for an ``https://`` endpoint; a streaming point reads token streams (:mod:`.stream`)."""
    if settings.streaming:
        return make_stream_load(trial, server, settings)
    if tls.is_https(server.http_url):
        return make_https_load(trial, server, settings)
    url = urlsplit(server.http_url)
    closed = trial.load.kind == "concurrency"
    seq = sequences.for_model(trial.variant.config, settings)
    if seq is not None:
        sequences.check_ids(seq, int(trial.load.value) if closed else None)
    regions = point_regions(trial, server, settings) if settings.shared_memory == "system" else None
    marks: Optional[list] = [] if seq is not None else None
    raw = wire_requests(trial, server, settings, regions, marks)
    extra = {}
    if seq is not None:  # the loop fills in each send's id and flags (ext/loadgen-c/tsw_sequence.c)
        extra = dict(
            sequence_length=seq.length, sequence_variation=seq.variation, sequence_ids=(seq.id_start, seq.id_end),
            sequence_slots=seq.slots, serial_sequences=seq.serial, sequence_marks=marks,
        )  # fmt: skip
    load = NativeHttpLoad(url.hostname, url.port, raw, **level_arguments(trial, settings), **extra)
    if seq is not None:
        load.client = f"native http, {sequences.describe(seq, closed)}"
        load.host_port, load.ender = (url.hostname, url.port), (raw[0], marks[0])
    return WithRegions(load, regions) if regions else load


@hookimpl
def tsweep_load_generators():
    return {"http": make_http_load}
