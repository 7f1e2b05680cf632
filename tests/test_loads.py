"""Loads against the real server: gRPC closed/open loop, failures recorded with reasons."""
from __future__ import annotations

import socket

import pytest

from tsweep import modelconfig
from tsweep.measure import MethodSettings, measure
from tsweep.pluginmanager import make_plugin_manager
from tsweep.records import LoadLevel, LoadSettings, RunningServer, Trial, Variant
from tsweep.triton import ServerStats, TritonHTTP

from tests.support import MODEL_REPOSITORY

pytestmark = pytest.mark.server

CONFIG = modelconfig.read(MODEL_REPOSITORY / "add_sub" / "config.pbtxt")
FAST = MethodSettings(window_s=0.3, min_windows=3, max_windows=4, warmup_s=0.1)
GENERATORS = make_plugin_manager().load_generators()  # http and grpc, offered by the built-in plugins


def make_load(trial, server, settings):
    return GENERATORS[settings.protocol](trial, server, settings)


def trial(kind="concurrency", value=2.0, batch=1):
    return Trial(Variant("add_sub", CONFIG, {}, name="add_sub"), LoadLevel(kind, value), batch)


def run(server, t, protocol="http", settings=FAST, **load_settings):
    load = make_load(t, server, LoadSettings(protocol=protocol, shapes={}, **load_settings))
    client = TritonHTTP(server.http_url)
    before = client.stats("add_sub").success_count
    m = measure(t, load, lambda: client.stats("add_sub"), settings)
    return m, client.stats("add_sub").success_count - before


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_closed_loop_counts_match_the_server(add_sub_server, protocol):
    m, served = run(add_sub_server, trial("concurrency", 4.0, batch=2), protocol)
    assert m.status in ("ok", "unstable") and m.errors == 0
    assert 0 < m.requests <= served  # the judged windows are part of what the server served
    judged = m.window_throughputs  # every window after the warm-up
    assert min(judged) * 0.999 <= m.throughput <= max(judged) * 1.001  # inferences/s: requests x batch 2
    parts = m.queue_ms + m.compute_input_ms + m.compute_infer_ms + m.compute_output_ms
    assert 0 < parts <= m.latency_avg_ms  # the server's share fits inside what the client saw


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_open_loop_sends_on_schedule(add_sub_server, protocol):
    m, _ = run(add_sub_server, trial("request_rate", 200.0), protocol, MethodSettings(window_s=0.5, max_windows=3, warmup_s=0.1, min_requests=20))
    assert m.status in ("ok", "unstable"), m.error
    assert m.throughput == pytest.approx(200.0, rel=0.15)
    assert m.metrics["late_send_fraction"] <= 0.1


def test_unsustainable_rate_is_a_failed_point_with_the_reason(add_sub_server):
    m, _ = run(add_sub_server, trial("request_rate", 200000.0), "grpc", MethodSettings(window_s=0.3, max_windows=3, warmup_s=0.1))
    assert m.status == "failed"
    assert m.error.startswith("the client could not keep to 200000 requests/s:") and m.error.endswith("lower the request rate")
    assert m.throughput > 0  # the data is kept


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_unreachable_server_is_a_failed_point_with_the_reason(protocol):
    with socket.socket() as s:  # a port on loopback that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = RunningServer(http_url=f"http://127.0.0.1:{port}", grpc_url=f"127.0.0.1:{port}")
    t = trial()
    load = make_load(t, server, LoadSettings(protocol=protocol, shapes={}, timeout_s=2.0))
    m = measure(t, load, ServerStats, MethodSettings(window_s=0.2, max_windows=2, warmup_s=0.05))
    assert m.status == "failed"
    assert m.error.startswith("all requests failed: ") and len(m.error) > len("all requests failed: ")


def test_model_version_and_headers_reach_the_wire():
    """perf_analyzer's --model-version and -H: the version in the request path, the headers
    after tsweep's own in every request (read from the bytes the native loop will send)."""
    from tsweep.plugins.loads.http import wire_requests


    t = trial("concurrency", 1.0, 1)
    server = RunningServer(http_url="http://127.0.0.1:8000")
    raw = wire_requests(t, server, LoadSettings(shapes={}, model_version="1", headers={"X-Tenant": "team a, b"}))[0]
    head = raw.split(b"\r\n\r\n", 1)[0].decode()
    assert head.startswith("POST /v2/models/add_sub/versions/1/infer HTTP/1.1\r\n")
    assert "\r\nX-Tenant: team a, b" in head and head.count("X-Tenant") == 1
    plain = wire_requests(t, server, LoadSettings(shapes={}))[0]
    assert plain.startswith(b"POST /v2/models/add_sub/infer HTTP/1.1\r\n") and b"X-Tenant" not in plain


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_a_named_model_version_and_extra_headers_are_served(add_sub_server, protocol):
    """The server answers requests for version 1 with the user's headers, and refuses a
    version the model does not have (every request an error, the point failed)."""
    m, served = run(add_sub_server, trial("concurrency", 2.0), protocol, model_version="1", headers={"X-Tenant": "a"})
    assert m.status in ("ok", "unstable") and m.errors == 0 and served > 0
    missing, _ = run(add_sub_server, trial("concurrency", 1.0), protocol, FAST, model_version="9")
    assert missing.status == "failed" and missing.errors > 0


class Recording:
    """A real load generator whose windows the test keeps a count of (what ``measure`` took
    from it); everything is passed through."""

    def __init__(self, load):
        self.load, self.answered = load, []

    def start(self):
        return self.load.start()

    def wait_responses(self, n, timeout_s):
        return self.load.wait_responses(n, timeout_s)

    def take_window(self):
        window = self.load.take_window()
        self.answered.append(window.completed + window.errors)
        return window

    def stop(self):
        self.load.stop()


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_count_windows_hold_at_least_the_requested_count(add_sub_server, protocol):
    """perf_analyzer's measurement-mode count_windows: each window ends once it holds the
    count. An open loop at 100 requests/s keeps the count from coming early; the windows'
    time (window_s) would hold about 10 responses each, so a time window would need merging."""
    t = trial("request_rate", 100.0)
    load = Recording(make_load(t, add_sub_server, LoadSettings(protocol=protocol, shapes={})))
    client = TritonHTTP(add_sub_server.http_url)
    settings = MethodSettings(window_s=0.1, min_windows=3, max_windows=3, warmup_s=0.05, min_requests=40, count_windows=True)
    m = measure(t, load, lambda: client.stats("add_sub"), settings)
    assert m.errors == 0 and m.throughput > 0  # (a busy client may send late: not this test's matter)
    judged = load.answered[1:]  # the first take is the warm-up
    assert len(judged) == m.windows == 3
    assert all(n >= 40 for n in judged), judged
    assert m.requests >= 3 * 40


def test_count_windows_need_a_load_generator_that_can_wait(add_sub_server):
    from tsweep.errors import UsageError

    class TimeOnly(Recording):
        wait_responses = None

    t = trial("concurrency", 1.0)
    load = TimeOnly(make_load(t, add_sub_server, LoadSettings(shapes={})))
    with pytest.raises(UsageError, match="^measurement_mode count_windows needs a load generator with wait_responses, and TimeOnly has none: use time_windows$"):
        measure(t, load, ServerStats, MethodSettings(count_windows=True))
    assert load.answered == []  # refused before the load started


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_request_intervals_are_the_gaps_the_open_loop_keeps(add_sub_server, protocol):
    """perf_analyzer's --request-intervals: sends one gap after another, cycling through the
    list (its documented example: 0.1 s, 0.3 s, 0.8 s, 0.9 s, 1.1 s, 1.6 s), here scaled to
    milliseconds; the schedule is read from the generator, then the load runs on the server."""
    gaps_us = (1000.0, 2000.0, 5000.0)
    t = trial("request_rate", 3 / 0.008)
    load = make_load(t, add_sub_server, LoadSettings(protocol=protocol, shapes={}, intervals_us=gaps_us))
    assert load.planned_offsets(7) == pytest.approx([0.001, 0.003, 0.008, 0.009, 0.011, 0.016, 0.017])
    client = TritonHTTP(add_sub_server.http_url)
    m = measure(t, load, lambda: client.stats("add_sub"), MethodSettings(window_s=0.3, min_windows=2, max_windows=2, warmup_s=0.05, min_requests=20))
    assert m.errors == 0 and m.requests > 0 and m.throughput > 0
    # the other schedules: constant spacing is planned too, Poisson is drawn as it runs
    assert make_load(t, add_sub_server, LoadSettings(protocol=protocol, shapes={})).planned_offsets(2) == pytest.approx([0.0, 0.008 / 3] if protocol == "http" else [0.008 / 3, 0.016 / 3])
    assert make_load(t, add_sub_server, LoadSettings(protocol=protocol, shapes={}, distribution="poisson")).planned_offsets(2) is None
