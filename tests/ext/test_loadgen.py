"""tsweep.ext.loadgen against a real tritonserver (fixture in conftest.py).

Every test is bounded in time (a few seconds of load at most) and asserts on counts, never on
speed.
"""
from __future__ import annotations

import errno
import gc
import http.client
import json
import os
import socket
import threading
import time

import pytest

from tsweep.ext.httpparser import _parse_response
from tsweep.ext.loadgen import (
    _ERROR_CODES,
    HttpLoad,
    Window,
    _load_error,
    build_http_request,
)

from tests.support import eventually

pytestmark = pytest.mark.server

TEST_TIME_LIMIT_S = 10.0


@pytest.fixture(autouse=True)
def _bounded_test_time(request):
    """Each test must finish in TEST_TIME_LIMIT_S (the session server's start-up excluded); a
    hang dumps all thread stacks and ends the run instead of blocking CI."""
    import faulthandler

    faulthandler.dump_traceback_later(120, exit=True)
    t0 = time.monotonic()
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
    elapsed = time.monotonic() - t0
    assert elapsed < TEST_TIME_LIMIT_S, f"{request.node.name} took {elapsed:.1f} s"


# ---------------------------------------------------------------- helpers

def infer_body(a=(1.0, 2.0, 3.0, 4.0), b=(1.0, 1.0, 1.0, 1.0)) -> bytes:
    return json.dumps(
        {
            "inputs": [
                {"name": "INPUT0", "shape": [1, 4], "datatype": "FP32", "data": list(a)},
                {"name": "INPUT1", "shape": [1, 4], "datatype": "FP32", "data": list(b)},
            ]
        }
    ).encode()


def infer_request(server, model="add_sub", a=(1.0, 2.0, 3.0, 4.0), b=(1.0, 1.0, 1.0, 1.0)) -> bytes:
    return build_http_request(
        server.host, server.http_port, f"/v2/models/{model}/infer", body=infer_body(a, b),
        headers={"Content-Type": "application/json"},
    )


def raw_roundtrip(host, port, request: bytes):
    """Send pre-encoded bytes and parse the answer with the standard library's http.client."""
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(request)
        resp = http.client.HTTPResponse(s)
        resp.begin()
        return resp.status, dict(resp.getheaders()), resp.read()


def tasks_settle(want: int) -> int:
    """``task_count()`` once it equals ``want`` (bounded): a joined thread's /proc/self/task
    entry can outlive the join by a moment (the kernel clears the thread id the join waits
    on before it removes the task)."""
    return eventually(task_count, want, timeout_s=2.0)


def task_count() -> int:
    """Native load threads of this process (the C loop names its threads tsw-loadgen)."""
    n = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                n += f.read().strip() == "tsw-loadgen"
        except OSError:  # the thread just ended
            pass
    return n


def closed_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return port


def settled_count(triton, model="add_sub", quiet_s=0.3, timeout_s=5.0):
    """Triton's success count once it stopped moving: requests abandoned by an earlier test
    still finish (Triton does not cancel them) and would otherwise land in this test's delta."""
    end = time.monotonic() + timeout_s
    last = triton.success_count(model)
    while time.monotonic() < end:
        time.sleep(quiet_s)
        now = triton.success_count(model)
        if now == last:
            return now
        last = now
    return last


def wait_until(pred, timeout_s=5.0, step=0.05):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


def run_for(load: HttpLoad, seconds: float) -> Window:
    load.start()
    time.sleep(seconds)
    return load.take_window()


def check_invariants(windows, concurrency=None):
    """sum(sent) == sum(completed) + sum(errors - connect_errors) + in_flight of the last."""
    sent = sum(w.sent for w in windows)
    ended = sum(w.completed + w.errors - w.connect_errors for w in windows)
    assert sent == ended + windows[-1].in_flight, [w.as_dict() for w in windows]
    for w in windows:
        assert w.histogram.count == w.completed
        assert w.duration_ns >= 0
        if concurrency is not None:
            assert 0 <= w.in_flight <= concurrency


# ---------------------------------------------------------------- request building / parsing

def test_build_http_request_shape():
    req = build_http_request("127.0.0.1", 8000, "/v2/models/m/infer", body=b"abc",
                             headers={"Content-Type": "application/json"})
    head, _, body = req.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /v2/models/m/infer HTTP/1.1"
    assert b"Host: 127.0.0.1:8000" in lines
    assert b"Content-Length: 3" in lines
    assert b"Connection: keep-alive" in lines
    assert b"Content-Type: application/json" in lines
    assert body == b"abc"
    get = build_http_request("::1", 80, "/v2/health/ready", method="GET")
    assert b"Host: [::1]\r\n" in get and b"Content-Length" not in get
    with pytest.raises(ValueError):
        build_http_request("h", 1, "/x", headers={"X-Bad": "a\r\nInjected: 1"})
    with pytest.raises(ValueError):
        build_http_request("h", 1, "no-slash")


@pytest.mark.parametrize("step", [0, 1, 7])
def test_parser_content_length_and_split_reads(step):
    resp = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: 5\r\n\r\nhello"
    r, status, keep, used, snip, why = _parse_response(resp + b"EXTRA", step)
    assert (r, status, keep, used, why) == (1, 200, True, len(resp), None)
    r, status, *_ = _parse_response(resp[:-1], step)
    assert r == 0


@pytest.mark.parametrize("step", [0, 1, 3])
def test_parser_chunked_interim_and_errors(step):
    chunked = (b"HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;ext=1\r\n{\"err\r\nb\r\nor\":\"boom\"}\r\n0\r\nX-Trailer: 1\r\n\r\n")
    r, status, keep, used, snip, why = _parse_response(chunked, step)
    assert (r, status, keep, used) == (1, 500, True, len(chunked))
    assert snip == '{"error":"boom"}'
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    assert _parse_response(interim, step)[:4] == (1, 200, True, len(interim))
    close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    assert _parse_response(close, step)[:3] == (1, 200, False)
    http10 = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nbody until close"
    assert _parse_response(http10, step)[:3] == (0, 200, False)  # ends at EOF
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n"
    assert _parse_response(head, step, head=True)[:2] == (1, 200)
    bad = _parse_response(b"SMTP ready\r\n\r\n", step)
    assert bad[0] == -1 and "status line" in bad[5]


# ---------------------------------------------------------------- against tritonserver

def test_request_bytes_roundtrip_and_counted(triton):
    req = infer_request(triton, a=(1, 2, 3, 4), b=(1, 1, 1, 1))
    status, headers, body = raw_roundtrip(triton.host, triton.http_port, req)
    assert status == 200, body
    outs = {o["name"]: o["data"] for o in json.loads(body)["outputs"]}
    assert outs["OUTPUT0"] == [2.0, 3.0, 4.0, 5.0]
    assert outs["OUTPUT1"] == [0.0, 1.0, 2.0, 3.0]

    with HttpLoad(triton.host, triton.http_port, [req], concurrency=1) as load:
        load.start()
        assert wait_until(lambda: triton.success_count("add_sub") > 0, 5)
        time.sleep(0.05)
        load.stop()
        w = load.take_window()
    assert w.completed >= 1 and w.errors == 0
    assert w.bytes_sent == w.sent * len(req)
    assert w.bytes_received >= w.completed * len(body)
    assert w.histogram.count == w.completed


@pytest.mark.parametrize("concurrency", [1, 8])
def test_closed_loop_matches_server_stats(triton, concurrency):
    req = infer_request(triton)
    before = settled_count(triton)
    base_tasks = task_count()
    load = HttpLoad(triton.host, triton.http_port, [req], concurrency=concurrency)
    try:
        load.start()
        assert task_count() == base_tasks + 1
        windows = []
        for _ in range(2):
            time.sleep(1.0)
            windows.append(load.take_window())
        load.stop()
        windows.append(load.take_window())
    finally:
        load.stop()
    check_invariants(windows, concurrency)
    for w in windows[:2]:
        assert w.completed > 0, w
        assert w.errors == 0, w.error_samples
        assert 0.9e9 < w.duration_ns < 5e9
        assert w.send_ns > 0 and w.recv_ns >= 0
        assert w.connections == concurrency
        assert w.histogram.count == w.completed
    completed = sum(w.completed for w in windows)
    abandoned = windows[-1].in_flight
    assert abandoned <= concurrency
    # Triton still finishes the abandoned requests: wait until its count settles.
    assert wait_until(lambda: triton.success_count("add_sub") - before >= completed, 5)
    delta = settled_count(triton) - before
    assert completed <= delta <= completed + abandoned, (completed, delta, abandoned)
    assert tasks_settle(base_tasks) == base_tasks


def test_closed_loop_two_threads(triton):
    req = infer_request(triton)
    base_tasks = task_count()
    with HttpLoad(triton.host, triton.http_port, [req], concurrency=4, threads=2) as load:
        load.start()
        assert task_count() == base_tasks + 2
        time.sleep(0.6)
        w1 = load.take_window()
        load.stop()
        w2 = load.take_window()
    check_invariants([w1, w2], 4)
    assert w1.completed > 0 and w1.errors == 0 and w1.connections == 4
    assert tasks_settle(base_tasks) == base_tasks


@pytest.mark.parametrize("schedule,tolerance", [("constant", 0.10), ("poisson", 0.15)])
def test_open_loop_rate(triton, schedule, tolerance):
    req = infer_request(triton)
    load = HttpLoad(triton.host, triton.http_port, [req], rate=200, schedule=schedule, seed=7)
    with load:
        w = run_for(load, 2.0)
        load.stop()
        last = load.take_window()
    check_invariants([w, last])
    expected = 200 * w.duration_ns / 1e9
    assert abs(w.sent - expected) <= tolerance * expected, (w, expected)
    assert abs(w.sent - 400) <= tolerance * 400 + 10, w  # the window is ~2 s long
    assert w.errors == 0, w.error_samples
    assert w.completed > 0 and w.completed + w.in_flight <= w.sent + 1
    assert w.max_lateness_ns >= 0 and w.late_sends <= w.sent


def test_open_loop_latency_uses_arrival_time(triton):
    """Open loop reads responses at the next send time; the latency must still end when the
    response arrived (kernel receive timestamp), not when it was read. At 50/s a read deferred
    to the next send would add ~10 ms to the median; add_sub answers in well under 1 ms."""
    req = infer_request(triton)
    with HttpLoad(triton.host, triton.http_port, [req], rate=50) as load:
        w = run_for(load, 1.5)
    assert w.completed > 50 and w.errors == 0, w
    assert w.histogram.value_at_percentile(50) < 5_000_000, w.histogram.value_at_percentile(50)


def test_error_responses_are_counted_with_samples(triton):
    good = infer_request(triton, "flaky", a=(1, 2, 3, 4))
    bad = infer_request(triton, "flaky", a=(-1, 2, 3, 4))
    with HttpLoad(triton.host, triton.http_port, [good, good, bad], concurrency=1) as load:
        w1 = run_for(load, 1.0)
        load.stop()
        w2 = load.take_window()
    check_invariants([w1, w2], 1)
    total_ok = w1.completed + w2.completed
    total_err = w1.errors + w2.errors
    assert total_err > 0 and total_ok > 0
    assert w1.connect_errors == 0 and w1.timeouts == 0
    # round-robin over [good, good, bad] on one connection: exactly every third request fails
    ended = total_ok + total_err
    assert abs(total_err - ended / 3) <= 1, (total_ok, total_err)
    assert any("boom" in msg and status >= 400 for status, msg in w1.error_samples), w1.error_samples
    assert len(w1.error_samples) <= 5


def test_unknown_model_and_server_closing_connections(triton):
    missing = build_http_request(triton.host, triton.http_port, "/v2/models/nope/infer",
                                 body=infer_body(), headers={"Content-Type": "application/json"})
    garbage = b"GARBAGE\r\n\r\n"  # Triton closes the connection without answering
    with HttpLoad(triton.host, triton.http_port, [missing, garbage], concurrency=2) as load:
        w1 = run_for(load, 0.5)
        load.stop()
        w2 = load.take_window()
    check_invariants([w1, w2], 2)
    assert w1.completed == 0 and w1.errors > 0 and w1.sent > 0
    statuses = {s for s, _ in w1.error_samples}
    msgs = " | ".join(m for _, m in w1.error_samples)
    assert -1 in statuses and "closed by server" in msgs, w1.error_samples
    assert any(s >= 400 for s in statuses), w1.error_samples
    # every connection the server dropped was re-established: requests kept flowing
    assert w1.sent > 4


def test_large_requests_partial_writes(triton):
    # 4 MiB bodies (valid JSON padded with whitespace) overflow the socket buffer, so every
    # request is written in several non-blocking writes driven by EPOLLOUT.
    body = infer_body() + b" " * (4 << 20)
    req = build_http_request(triton.host, triton.http_port, "/v2/models/add_sub/infer", body=body,
                             headers={"Content-Type": "application/json"})
    with HttpLoad(triton.host, triton.http_port, [req], concurrency=2) as load:
        w1 = run_for(load, 1.0)
        load.stop()
        w2 = load.take_window()
    check_invariants([w1, w2], 2)
    assert w1.completed > 0 and w1.errors == 0, w1
    assert w1.bytes_sent >= w1.completed * len(req)


def test_http10_close_delimited_bodies(triton):
    # HTTP/1.0 request: Triton answers without Content-Length and closes; each response ends
    # at EOF and the loader reconnects for the next one.
    req = b"GET /v2/health/ready HTTP/1.0\r\n\r\n"
    windows = []
    with HttpLoad(triton.host, triton.http_port, [req], concurrency=1) as load:
        load.start()
        deadline = time.monotonic() + 4
        while sum(w.completed for w in windows) < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
            windows.append(load.take_window())
        load.stop()
        windows.append(load.take_window())
    check_invariants(windows, 1)
    assert sum(w.completed for w in windows) >= 5, windows
    assert sum(w.errors for w in windows) == 0, [w.error_samples for w in windows]


def test_open_loop_lateness_against_slow_model(triton):
    req = infer_request(triton, "slow")
    before = triton.success_count("slow")
    with HttpLoad(triton.host, triton.http_port, [req], rate=20, max_connections=2,
                  timeout_s=5.0) as load:
        w1 = run_for(load, 1.2)
        load.stop()
        w2 = load.take_window()
    check_invariants([w1, w2], 2)
    # 24 sends were due but at most 2 connections of a 0.5 s model: most sends wait
    assert w1.sent < 12, w1
    assert w1.connections <= 2
    assert w1.late_sends >= 1 and w1.max_lateness_ns > 100_000_000, w1
    assert w1.schedule_lag_ns > 100_000_000, w1
    assert wait_until(lambda: triton.success_count("slow") - before >= w1.sent + w2.sent, 3)


def test_timeout_against_slow_model(triton):
    req = infer_request(triton, "slow")
    before = triton.success_count("slow")
    with HttpLoad(triton.host, triton.http_port, [req], concurrency=1, timeout_s=0.1) as load:
        w1 = run_for(load, 0.45)
        load.stop()
        w2 = load.take_window()
    check_invariants([w1, w2], 1)
    assert w1.timeouts >= 2, w1
    assert w1.errors == w1.timeouts and w1.completed == 0
    assert (-1, "timeout") in w1.error_samples
    assert w1.sent >= w1.timeouts
    # Triton does not cancel abandoned HTTP requests: let it drain them so later tests see an
    # idle model (bounded: about 4 x 0.5 s)
    assert wait_until(lambda: triton.success_count("slow") - before >= w1.sent + w2.sent, 6)


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_unreachable_port_reports_errors_not_hang(mode):
    port = closed_port()
    req = build_http_request("127.0.0.1", port, "/v2/health/ready", method="GET")
    kw = {"concurrency": 2} if mode == "closed" else {"rate": 100}
    t0 = time.monotonic()
    with HttpLoad("127.0.0.1", port, [req], **kw) as load:
        w1 = run_for(load, 0.5)
        load.stop()
        w2 = load.take_window()
    assert time.monotonic() - t0 < 3
    check_invariants([w1, w2])
    assert w1.errors > 0 and w1.errors == w1.connect_errors and w1.sent == 0 and w1.completed == 0
    assert any(s == -1 and "refused" in m.lower() for s, m in w1.error_samples), w1.error_samples
    if mode == "closed":
        assert w1.errors < 200  # back-off, not a busy loop
    else:
        assert 30 <= w1.errors <= 70  # one failed connect per due send


def test_stop_idempotent_and_threads_gone(triton):
    req = infer_request(triton)
    base_threads, base_tasks = threading.active_count(), task_count()
    assert base_tasks == 0  # no load thread of an earlier test is left either

    load = HttpLoad(triton.host, triton.http_port, [req], concurrency=2)
    load.stop()  # before start: no-op
    load.start()
    assert load.running and task_count() == base_tasks + 1
    with pytest.raises(RuntimeError):
        load.start()
    time.sleep(0.2)
    load.stop()
    load.stop()
    assert not load.running
    assert tasks_settle(base_tasks) == base_tasks and threading.active_count() == base_threads
    w = load.take_window()
    assert w.completed > 0
    empty = load.take_window()
    assert empty.sent == 0 and empty.completed == 0 and empty.in_flight == 0
    with pytest.raises(RuntimeError):
        load.start()

    # __del__ stops a running load
    load = HttpLoad(triton.host, triton.http_port, [req], concurrency=2)
    load.start()
    assert task_count() == base_tasks + 1
    del load
    gc.collect()
    assert tasks_settle(base_tasks) == base_tasks

    # context manager exit stops it too, and sockets are closed
    fds_before = len(os.listdir("/proc/self/fd"))
    with HttpLoad(triton.host, triton.http_port, [req], concurrency=4) as load:
        load.start()
        time.sleep(0.1)
    assert not load.running and tasks_settle(base_tasks) == base_tasks
    del load
    gc.collect()
    assert len(os.listdir("/proc/self/fd")) <= fds_before


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_limits_end_the_load_by_themselves(triton, mode):
    req = infer_request(triton)
    kw = {"concurrency": 4} if mode == "closed" else {"rate": 400}
    # max_requests: exactly that many sent, all answered, then the thread ends
    load = HttpLoad(triton.host, triton.http_port, [req], max_requests=50, **kw)
    load.start()
    assert wait_until(lambda: not load.running, 5)
    assert tasks_settle(0) == 0
    w = load.take_window()
    assert (w.sent, w.completed, w.errors, w.in_flight) == (50, 50, 0, 0), w
    load.stop()
    # duration_s: ends as stop() would, after about that long
    t0 = time.monotonic()
    load = HttpLoad(triton.host, triton.http_port, [req], duration_s=0.3, **kw)
    load.start()
    assert wait_until(lambda: not load.running, 5)
    assert time.monotonic() - t0 < 2
    w = load.take_window()
    check_invariants([w])
    assert w.completed > 0 and 0.25e9 < w.duration_ns < 1.5e9, w
    load.stop()
    assert tasks_settle(0) == 0
    with pytest.raises(ValueError):
        HttpLoad(triton.host, triton.http_port, [req], max_requests=0, **kw)


def test_take_window_before_start_and_bad_args(triton):
    req = infer_request(triton)
    load = HttpLoad(triton.host, triton.http_port, [req], concurrency=1)
    with pytest.raises(RuntimeError):
        load.take_window()
    with pytest.raises(ValueError):
        HttpLoad(triton.host, triton.http_port, [req])
    with pytest.raises(ValueError):
        HttpLoad(triton.host, triton.http_port, [req], concurrency=1, rate=10)
    with pytest.raises(ValueError):
        HttpLoad(triton.host, triton.http_port, [], concurrency=1)
    with pytest.raises(ValueError):
        HttpLoad(triton.host, triton.http_port, [req], rate=10, schedule="bursty")
    with pytest.raises(ValueError):
        HttpLoad(triton.host, 0, [req], concurrency=1)


def test_unresolvable_host_is_an_oserror():
    """The C API reports TSW_ERR_RESOLVE; HttpLoad raises OSError with getaddrinfo's reason."""
    req = build_http_request("nonexistent.invalid", 80, "/v2/health/ready", method="GET")
    with pytest.raises(OSError, match=r"cannot resolve nonexistent\.invalid:80: "):
        HttpLoad("nonexistent.invalid", 80, [req], concurrency=1)


def test_every_c_error_code_maps_to_its_exception():
    """Errors from the C API are classified by their enum value, as the old text matching did:
    resolve -> OSError, config -> ValueError, thread start -> OSError with the errno, the rest
    RuntimeError. A new code must be added here, which forces a decision about its class."""
    expected = {
        "TSW_ERR_CONFIG": ValueError,
        "TSW_ERR_RESOLVE": OSError,
        "TSW_ERR_NOMEM": RuntimeError,
        "TSW_ERR_SYSTEM": RuntimeError,
        "TSW_ERR_THREAD": OSError,
        "TSW_ERR_STATE": RuntimeError,
    }
    assert set(_ERROR_CODES) == set(expected)
    assert len(set(_ERROR_CODES.values())) == len(_ERROR_CODES) and 0 not in _ERROR_CODES.values()
    for name, code in _ERROR_CODES.items():
        exc = _load_error(code, errno.EAGAIN, "h", 1)
        assert isinstance(exc, expected[name]), (name, exc)  # OSError(errno, ...) picks a subclass
        assert str(exc)
    assert "out of memory" in str(_load_error(_ERROR_CODES["TSW_ERR_NOMEM"]))
    thread = _load_error(_ERROR_CODES["TSW_ERR_THREAD"], errno.EAGAIN)
    assert thread.errno == errno.EAGAIN and "thread" in thread.strerror
    assert os.strerror(errno.EMFILE) in str(_load_error(_ERROR_CODES["TSW_ERR_SYSTEM"], errno.EMFILE))
    assert str(_load_error(_ERROR_CODES["TSW_ERR_RESOLVE"], socket.EAI_NONAME, "h", 1)).startswith(
        "cannot resolve h:1: ")


def test_take_window_while_running_many_times(triton):
    """Rapid swaps never lose a request: the per-window sums add up."""
    req = infer_request(triton)
    with HttpLoad(triton.host, triton.http_port, [req], concurrency=4) as load:
        load.start()
        windows = []
        t_end = time.monotonic() + 1.0
        while time.monotonic() < t_end:
            windows.append(load.take_window())
            time.sleep(0.005)
        load.stop()
        windows.append(load.take_window())
    check_invariants(windows, 4)
    assert len(windows) > 20
    assert sum(w.completed for w in windows) > 0
    # windows tile time: each starts where the previous ended
    for a, b in zip(windows, windows[1:]):
        assert b.start_ns == a.end_ns


def test_request_intervals_are_split_between_loops_on_one_plan(triton):
    """perf_analyzer's request intervals: send s is due at the sum of the first s + 1 gaps,
    cycled through; with two loops, each takes every other send of that one plan."""
    req = infer_request(triton)
    for threads in (1, 2):
        load = HttpLoad(triton.host, triton.http_port, [req], intervals=[0.1, 0.2, 0.5], threads=threads)
        assert load.planned_offsets(7) == pytest.approx([0.1, 0.3, 0.8, 0.9, 1.1, 1.6, 1.7])
        assert load.rate == pytest.approx(3 / 0.8) and load.schedule == "intervals"
    with pytest.raises(ValueError, match="intervals must be gaps >= 0 s with a positive sum"):
        HttpLoad(triton.host, triton.http_port, [req], intervals=[0.0, 0.0])
    with pytest.raises(ValueError, match="exactly one of"):
        HttpLoad(triton.host, triton.http_port, [req], rate=10, intervals=[0.1])


@pytest.mark.parametrize("mode", [dict(concurrency=2), dict(intervals=[0.002, 0.001], threads=2)])
def test_wait_responses_ends_when_the_window_holds_the_count(triton, mode):
    """Count windows: wait_responses returns once the current window holds n answered
    requests, and the window taken right after holds at least that many."""
    req = infer_request(triton)
    with HttpLoad(triton.host, triton.http_port, [req], **mode) as load:
        with pytest.raises(RuntimeError, match="not started"):
            load.wait_responses(1, 1.0)
        load.start()
        for n in (25, 60):
            assert load.wait_responses(n, TEST_TIME_LIMIT_S / 2) is True
            w = load.take_window()
            assert w.completed + w.errors >= n and w.errors == 0, w
        load.stop()
        assert load.wait_responses(10, 0.05) is False  # stopped: nothing more comes
