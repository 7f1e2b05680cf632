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


def run(server, t, protocol="http", settings=FAST):
    load = make_load(t, server, LoadSettings(protocol=protocol, shapes={}))
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
