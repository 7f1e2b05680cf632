# cython: language_level=3
"""Native HTTP/1.1 load generator for Triton (and any HTTP/1.1 server).

The event loop is C (``loadgen-c/``: epoll, non-blocking keep-alive sockets, one pthread per
loop, no per-request allocation and no Python on the request path; ``tsw_loadgen.h`` is its API);
this module only builds requests, starts/stops the loop and turns its counters into
:class:`Window` objects.

Example::

    from tsweep.ext.loadgen import HttpLoad, build_http_request

    req = build_http_request("127.0.0.1", 8000, "/v2/models/add_sub/infer", body=payload,
                             headers={"Content-Type": "application/json"})
    with HttpLoad("127.0.0.1", 8000, [req], concurrency=8) as load:
        load.start()
        time.sleep(5)
        w = load.take_window()       # the load keeps running
        print(w.throughput, w.histogram.value_at_percentile(99))

Closed loop (``concurrency=N``): N keep-alive connections, each with one request always in
flight; latency = first request byte written -> last response byte read.

Open loop (``rate=R``): sends at intended times (constant spacing 1/R, or exponential gaps for
``schedule="poisson"``, seeded; or ``intervals``, perf_analyzer's request intervals: the gaps
between successive sends in seconds, cycled through, their mean rate standing for R), on an idle connection or a newly opened one while fewer than
``max_connections`` are open; otherwise the send waits for a free connection and is *late*.
Latency is measured from the intended send time (coordinated-omission correction) to the
arrival of the response's last byte (the kernel's receive timestamp: responses are read at the
loop's next wake-up, so they cost no wake-up of their own). A send is counted in ``late_sends``
when it starts more than ``late_threshold_s`` (default 1 ms) after its intended time.

Accounting: ``sent`` counts requests whose first byte was written; each ends as ``completed``
(HTTP 200), an error (other status, connection closed/reset, timeout) or stays in flight.
Connection failures are errors as well (``connect_errors``) without being sent requests, so over
consecutive windows ``sum(sent) == sum(completed) + sum(errors - connect_errors) + in_flight``
of the last window; after :meth:`HttpLoad.stop` the last window's ``in_flight`` counts the
requests abandoned by the stop.

Why one file a little over 400 lines: a third of it is this description and the ``cdef extern``
declarations of the C API; the rest is one wrapper class and the request builder it needs.
"""
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc


from tsweep.ext.histogram cimport Histogram, tsw_hist, tsw_hist_merge

import ipaddress
import os


cdef extern from "<netdb.h>" nogil:
    const char *gai_strerror(int errcode)


cdef extern from "tsw_clock.h" nogil:
    int64_t tsw_now_ns()


cdef extern from "tsw_loadgen.h" nogil:
    ctypedef struct tsw_sample:
        int status
        char msg[1]

    ctypedef struct tsw_window:
        int64_t start_ns, end_ns
        int64_t completed, errors, timeouts, connect_errors
        int64_t sent, bytes_sent, bytes_received, send_ns, recv_ns
        int64_t late_sends, max_lateness_ns
        int64_t in_flight, connections, schedule_lag_ns
        int nsamples
        tsw_sample samples[1]
        tsw_hist *hist
        tsw_hist *ttft
        tsw_hist *itl
        int64_t tokens

    enum tsw_error:
        TSW_OK
        TSW_ERR_CONFIG
        TSW_ERR_RESOLVE
        TSW_ERR_NOMEM
        TSW_ERR_SYSTEM
        TSW_ERR_THREAD
        TSW_ERR_STATE

    ctypedef struct tsw_load_config:
        const char *host
        int port
        const char *reqdata
        const size_t *req_lens
        uint32_t nreq
        int concurrency
        double rate
        int poisson
        uint64_t seed
        int max_connections
        double timeout_s
        double late_threshold_s
        int threads
        double duration_s
        int64_t max_requests
        const double *intervals_ns
        uint32_t nintervals
        int seq_length
        double seq_variation
        uint64_t seq_id_start
        uint64_t seq_id_end
        int seq_slots
        int seq_serial
        const uint32_t *seq_marks
        int stream

    ctypedef struct tsw_load:
        pass

    const char *tsw_error_text(tsw_error err)
    tsw_error tsw_load_new(const tsw_load_config *cfg, tsw_load **out, int *os_error)
    tsw_error tsw_load_start(tsw_load *D, int *os_error)
    void tsw_load_stop(tsw_load *D)
    int tsw_load_running(tsw_load *D)
    tsw_error tsw_load_take(tsw_load *D, const tsw_window **window)
    void tsw_load_take_done(tsw_load *D)
    tsw_error tsw_load_wait_answered(tsw_load *D, int64_t n, double timeout_s, int *reached)
    double tsw_load_planned_offset_ns(const tsw_load *D, int64_t s)
    void tsw_load_free(tsw_load *D)
    int tsw_load_open_sequences(tsw_load *D, uint64_t *ids, int max)


# Every tsw_error a call can return, by name (the tests check that each maps to an exception).
_ERROR_CODES = {
    "TSW_ERR_CONFIG": TSW_ERR_CONFIG,
    "TSW_ERR_RESOLVE": TSW_ERR_RESOLVE,
    "TSW_ERR_NOMEM": TSW_ERR_NOMEM,
    "TSW_ERR_SYSTEM": TSW_ERR_SYSTEM,
    "TSW_ERR_THREAD": TSW_ERR_THREAD,
    "TSW_ERR_STATE": TSW_ERR_STATE,
}


def _load_error(int code, int os_error=0, host="", port=0):
    """The exception HttpLoad raises for a tsw_error code from the C API.

    A host that does not resolve is an OSError, a config the C side rejects a ValueError, a
    thread that cannot start an OSError with its errno; the rest (memory, epoll/eventfd, state)
    are RuntimeErrors. Mapped by value: the C text is only the message.
    """
    text = tsw_error_text(<tsw_error>code).decode()
    if code == TSW_ERR_RESOLVE:
        return OSError(f"cannot resolve {host}:{port}: {gai_strerror(os_error).decode()}")
    if code == TSW_ERR_CONFIG:
        return ValueError(text)
    if code == TSW_ERR_THREAD:
        return OSError(os_error, text)
    if code == TSW_ERR_SYSTEM:
        return RuntimeError(f"{text}: {os.strerror(os_error)}")
    return RuntimeError(text)


_HEADER_SAFE = str.maketrans("", "", "\r\n")


def build_http_request(host, port, path, body=b"", headers=None, method="POST"):
    """Return one complete HTTP/1.1 request as bytes, ready for :class:`HttpLoad`.

    Adds ``Host`` (unless given in ``headers``), ``Content-Length`` (always for a body or a
    method other than GET/HEAD) and ``Connection: keep-alive``. ``body`` may be bytes or str
    (UTF-8). Header names/values must not contain CR or LF.
    """
    if isinstance(body, str):
        body = body.encode()
    body = bytes(body)
    if not isinstance(path, str) or not path.startswith("/") or any(c in path for c in " \r\n"):
        raise ValueError(f"path must start with '/' and contain no spaces or newlines: {path!r}")
    method = str(method).upper()
    if not method.isalpha():
        raise ValueError(f"bad method {method!r}")
    host = str(host)
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass
    port = int(port)
    given = {}
    for k, v in (headers or {}).items():
        k, v = str(k), str(v)
        if k != k.translate(_HEADER_SAFE) or v != v.translate(_HEADER_SAFE) or ":" in k or not k:
            raise ValueError(f"invalid header {k!r}: {v!r}")
        given[k.lower()] = (k, v)
    lines = [f"{method} {path} HTTP/1.1"]
    if "host" in given:
        lines.append(f"Host: {given.pop('host')[1]}")
    else:
        lines.append(f"Host: {host}" if port == 80 else f"Host: {host}:{port}")
    given.pop("content-length", None)
    if "connection" not in given:
        lines.append("Connection: keep-alive")
    for k, v in given.values():
        lines.append(f"{k}: {v}")
    if body or method not in ("GET", "HEAD"):
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body


#: The sequence controls' placeholder in a request's JSON header (the native loop writes the
#: id and the flags over it per send: fixed widths, so no length changes).
SEQUENCE_ID_WIDTH = 20
SEQUENCE_PLACEHOLDER = ('"parameters": {"sequence_id": ' + "1".ljust(SEQUENCE_ID_WIDTH) + ', "sequence_start": false, "sequence_end": false}, ').encode()


def sequence_placeholder(body):
    """``(body with the placeholder, (id, start, end) offsets in the new body)``: the
    placeholder goes first into the top-level JSON object that starts ``body`` (Triton's
    request parameters), valid JSON as it stands (id 1, both flags false)."""
    body = bytes(body)
    if not body.startswith(b"{") or body.startswith(b"{}"):
        raise ValueError("a sequence request's body must start with a non-empty JSON object")
    marked = b"{" + SEQUENCE_PLACEHOLDER + body[1:]
    at = 1 + SEQUENCE_PLACEHOLDER.index(b'"sequence_id": ') + len(b'"sequence_id": ')
    start = 1 + SEQUENCE_PLACEHOLDER.index(b'"sequence_start": ') + len(b'"sequence_start": ')
    end = 1 + SEQUENCE_PLACEHOLDER.index(b'"sequence_end": ') + len(b'"sequence_end": ')
    return marked, (at, start, end)


class Window:
    """What the load did between two swaps (see :meth:`HttpLoad.take_window`).

    All durations are integer nanoseconds (CLOCK_MONOTONIC). ``send_ns`` / ``recv_ns`` are sums
    (time spent writing requests / from the first response byte to the complete response; in
    open loop the latter uses the bytes' kernel arrival times), so ``send_ns / sent`` and
    ``recv_ns / (completed + errors - connect_errors)`` are per-request averages.
    ``in_flight``, ``connections`` (open sockets) and ``schedule_lag_ns`` (open loop: how far the
    next unsent intended send is in the past, 0 when on schedule) are snapshots at the swap.
    ``timeouts`` and ``connect_errors`` are included in ``errors``. ``error_samples`` holds up to
    5 distinct ``(status, message)`` pairs: the HTTP status and the start of the body (Triton's
    ``{"error": ...}``), or -1 and a transport message ("timeout", "connect: Connection refused",
    "connection closed by server", ...).

    A streaming load (``stream=True``) also fills ``ttft_histogram`` (time to each request's
    first token), ``itl_histogram`` (every gap between tokens) and ``tokens`` (the tokens of
    the completed requests); otherwise they are None and 0.
    """

    __slots__ = (
        "start_ns", "end_ns", "duration_ns", "completed", "errors", "timeouts", "connect_errors",
        "error_samples", "histogram", "sent", "bytes_sent", "bytes_received", "send_ns",
        "recv_ns", "in_flight", "connections", "late_sends", "max_lateness_ns",
        "schedule_lag_ns", "ttft_histogram", "itl_histogram", "tokens",
    )

    def __init__(self, **fields):
        for name in self.__slots__:
            setattr(self, name, fields.pop(name))
        if fields:
            raise TypeError(f"unknown Window fields: {sorted(fields)}")

    @property
    def throughput(self):
        """Completed (HTTP 200) responses per second."""
        return self.completed * 1e9 / self.duration_ns if self.duration_ns > 0 else 0.0

    @property
    def send_rate(self):
        """Requests written per second."""
        return self.sent * 1e9 / self.duration_ns if self.duration_ns > 0 else 0.0

    def as_dict(self):
        """Plain fields (the histogram excluded)."""
        return {k: getattr(self, k) for k in self.__slots__ if not k.endswith("histogram")}

    def __repr__(self):
        return (
            f"Window(duration_ns={self.duration_ns}, sent={self.sent}, completed={self.completed}, "
            f"errors={self.errors}, in_flight={self.in_flight}, late_sends={self.late_sends}, "
            f"error_samples={self.error_samples!r})"
        )


cdef class HttpLoad:
    """Drive HTTP/1.1 load from a native thread; read results with :meth:`take_window`.

    Exactly one of ``concurrency`` (closed loop), ``rate`` (open loop, requests/s) or
    ``intervals`` (open loop on those gaps) is given.

    :param host: server address or name (resolved once, here)
    :param port: TCP port
    :param requests: pre-encoded requests (see :func:`build_http_request`), sent round-robin
    :param concurrency: closed loop: N requests always in flight on N keep-alive connections
    :param rate: open loop: intended sends per second
    :param schedule: ``"constant"`` (spacing 1/rate) or ``"poisson"`` (exponential gaps)
    :param seed: seed of the poisson schedule
    :param intervals: open loop: gaps in seconds between successive sends (the first send after
        the first gap), cycled through; ``schedule`` does not apply
    :param max_connections: open loop: most connections opened
    :param timeout_s: per-request timeout; a request slower than that is an error ("timeout")
        and its connection is closed and reopened
    :param threads: loop threads (1 is best when client and server share a small host);
        concurrency / rate / max_connections are split between them
    :param late_threshold_s: open loop: a send starting later than this after its intended time
        counts in ``late_sends``
    :param duration_s: optional limit: the load ends by itself that long after start(), as if
        stop() had been called (in-flight requests are abandoned)
    :param max_requests: optional limit: at most that many requests are sent in all; the load
        ends by itself once they are all answered (or failed)

    Sequences (stateful models): with ``sequence_length`` > 0 the requests are sent as
    sequences, each of ``sequence_length`` requests varied uniformly by
    ``sequence_variation`` percent either way, under ids from ``sequence_ids`` (``(start,
    end)``, end 0 for none), the first flagged sequence_start and the last sequence_end.
    Each request must carry the three fields in its JSON header at the byte offsets
    ``sequence_marks[i] = (id, start, end)`` (see :func:`sequence_placeholder`), which the
    loop fills in per send. Closed loop: one sequence per connection (concurrency =
    sequences in flight). Open loop: ``sequence_slots`` sequences take the sends in turn, a
    sequence's next request waiting for its previous answer (always: ``serial_sequences`` is
    kept for the record).

    Streaming (``stream=True``): every response is a stream of server-sent events, one per
    token (Triton's generate_stream); the latency is still to the stream's end, and the windows
    also hold time to first token, the gaps between tokens and the token count. An event
    ``data: {"error"...`` fails its request. The request timeout bounds the whole stream.

    After a limit ends the load, ``running`` is False and take_window() returns the rest, as
    after stop(); stop() is still fine to call (it joins the finished thread).
    """

    cdef tsw_load *_ld
    cdef readonly bint started
    cdef readonly int concurrency
    cdef readonly double rate
    cdef readonly str schedule
    cdef readonly int threads
    cdef readonly double timeout_s
    cdef readonly int max_connections
    cdef readonly tuple intervals

    def __cinit__(self):
        self._ld = NULL

    def __init__(self, host, int port, requests, concurrency=None, rate=None,
                 schedule="constant", seed=1, int max_connections=256, double timeout_s=30.0,
                 int threads=1, double late_threshold_s=0.001, duration_s=None,
                 max_requests=None, intervals=None, int sequence_length=0,
                 double sequence_variation=0.0, sequence_ids=(1, 0), int sequence_slots=4,
                 serial_sequences=False, sequence_marks=None, bint stream=False):
        if sum(x is not None for x in (concurrency, rate, intervals)) != 1:
            raise ValueError("give exactly one of concurrency (closed loop), rate or intervals (open loop)")
        gaps = tuple(float(g) for g in intervals) if intervals is not None else ()
        if intervals is not None and (not gaps or any(not g >= 0 for g in gaps) or not sum(gaps) > 0):
            raise ValueError("intervals must be gaps >= 0 s with a positive sum")
        if concurrency is not None and int(concurrency) < 1:
            raise ValueError("concurrency must be >= 1")
        if rate is not None and not float(rate) > 0:
            raise ValueError("rate must be > 0")
        if schedule not in ("constant", "poisson"):
            raise ValueError("schedule must be 'constant' or 'poisson'")
        if max_connections < 1:
            raise ValueError("max_connections must be >= 1")
        if not timeout_s > 0:
            raise ValueError("timeout_s must be > 0")
        if threads < 1:
            raise ValueError("threads must be >= 1")
        if not 0 < port < 65536:
            raise ValueError(f"bad port {port}")
        if duration_s is not None and not float(duration_s) > 0:
            raise ValueError("duration_s must be > 0")
        if max_requests is not None and int(max_requests) < 1:
            raise ValueError("max_requests must be >= 1")
        reqs = [bytes(r) for r in requests]
        if not reqs:
            raise ValueError("requests is empty")
        if any(len(r) == 0 for r in reqs):
            raise ValueError("empty request")
        if self._ld is not NULL:
            raise RuntimeError("HttpLoad.__init__ called twice")
        if sequence_length < 0 or not sequence_variation >= 0 or sequence_slots < 1:
            raise ValueError("sequence_length, sequence_variation must be >= 0 and sequence_slots >= 1")
        id_start, id_end = (int(v) for v in sequence_ids)
        if sequence_length and (id_start < 0 or id_end < 0 or (id_end and id_end < id_start)):
            raise ValueError(f"bad sequence id range {sequence_ids!r}")
        marks = [tuple(int(x) for x in m) for m in (sequence_marks or ())]
        if sequence_length and len(marks) != len(reqs):
            raise ValueError("sequences need one (id, start, end) mark triple per request")

        cdef bytes blob = b"".join(reqs)
        cdef Py_ssize_t n = len(reqs), i
        cdef size_t *lens = <size_t *>malloc(n * sizeof(size_t))
        if lens is NULL:
            raise MemoryError()
        for i in range(n):
            lens[i] = len(reqs[i])
        cdef bytes bhost = str(host).encode()
        cdef const char *chost = bhost
        cdef const char *cdata = blob
        cdef int cconc = int(concurrency) if concurrency is not None else 0
        cdef double crate = float(rate) if rate is not None else 0.0
        cdef int cpoisson = schedule == "poisson"
        cdef uint64_t cseed = <uint64_t>(int(seed) & 0xFFFFFFFFFFFFFFFF)
        cdef double cduration = float(duration_s) if duration_s is not None else 0.0
        cdef int64_t cmax = int(max_requests) if max_requests is not None else 0
        cdef double *cgaps = NULL
        if gaps:
            cgaps = <double *>malloc(len(gaps) * sizeof(double))
            if cgaps is NULL:
                free(lens)
                raise MemoryError()
            for i in range(len(gaps)):
                cgaps[i] = gaps[i] * 1e9
        cdef uint32_t *cmarks = NULL
        if sequence_length:
            cmarks = <uint32_t *>malloc(3 * len(marks) * sizeof(uint32_t))
            if cmarks is NULL:
                free(lens)
                free(cgaps)
                raise MemoryError()
            for i in range(len(marks)):
                cmarks[3 * i], cmarks[3 * i + 1], cmarks[3 * i + 2] = marks[i]
        cdef tsw_load_config cfg
        cfg.host = chost
        cfg.port = port
        cfg.reqdata = cdata
        cfg.req_lens = lens
        cfg.nreq = <uint32_t>n
        cfg.concurrency = cconc
        cfg.rate = crate
        cfg.poisson = cpoisson
        cfg.seed = cseed
        cfg.max_connections = max_connections
        cfg.timeout_s = timeout_s
        cfg.late_threshold_s = late_threshold_s
        cfg.threads = threads
        cfg.duration_s = cduration
        cfg.max_requests = cmax
        cfg.intervals_ns = cgaps
        cfg.nintervals = <uint32_t>len(gaps)
        cfg.seq_length = sequence_length
        cfg.seq_variation = sequence_variation
        cfg.seq_id_start = <uint64_t>id_start
        cfg.seq_id_end = <uint64_t>id_end
        cfg.seq_slots = sequence_slots
        cfg.seq_serial = 1 if serial_sequences else 0
        cfg.seq_marks = cmarks
        cfg.stream = stream
        cdef tsw_load *ld = NULL
        cdef tsw_error rc
        cdef int os_error = 0
        try:
            with nogil:  # getaddrinfo may block
                rc = tsw_load_new(&cfg, &ld, &os_error)
        finally:
            free(lens)
            free(cgaps)
            free(cmarks)
        if rc != TSW_OK:
            raise _load_error(rc, os_error, host, port)
        self._ld = ld
        self.started = False
        self.concurrency = cconc
        self.rate = crate if not gaps else len(gaps) / sum(gaps)
        self.schedule = schedule if not gaps else "intervals"
        self.intervals = gaps
        self.threads = threads
        self.timeout_s = timeout_s
        self.max_connections = max_connections

    def __dealloc__(self):
        if self._ld is not NULL:
            with nogil:
                tsw_load_free(self._ld)  # stops and joins first
            self._ld = NULL

    cdef tsw_load *_get(self) except NULL:
        if self._ld is NULL:
            raise RuntimeError("HttpLoad is not initialised")
        return self._ld

    def start(self):
        """Start the load thread(s). A stopped load cannot be started again."""
        cdef tsw_load *ld = self._get()
        if self.started:
            raise RuntimeError("HttpLoad already started (create a new one to run again)")
        cdef tsw_error rc
        cdef int os_error = 0
        with nogil:
            rc = tsw_load_start(ld, &os_error)
        self.started = True
        if rc != TSW_OK:
            raise _load_error(rc, os_error)
        return self

    @property
    def running(self):
        """True between start() and stop() (or the end set by duration_s / max_requests)."""
        return self._ld is not NULL and bool(tsw_load_running(self._ld))

    def stop(self):
        """Stop the load, close its sockets and join its thread(s). Idempotent."""
        if self._ld is NULL:
            return
        cdef tsw_load *ld = self._ld
        with nogil:
            tsw_load_stop(ld)

    def open_sequences(self):
        """After :meth:`stop`: the ids of the sequences the stop cut off before their last
        request (sorted), so the caller can end them; [] without sequences or while running."""
        cdef tsw_load *ld = self._get()
        cdef int n = tsw_load_open_sequences(ld, NULL, 0)
        if n <= 0:
            return []
        cdef uint64_t *ids = <uint64_t *>malloc(n * sizeof(uint64_t))
        if ids is NULL:
            raise MemoryError()
        try:
            n = tsw_load_open_sequences(ld, ids, n)
            return sorted([ids[i] for i in range(n)])
        finally:
            free(ids)

    def wait_responses(self, n, timeout_s):
        """Wait (the GIL released) until the current window holds at least ``n`` answered
        requests (completed or failed), or ``timeout_s`` passed; True when it does. The window
        goes on until :meth:`take_window`: count windows hold at least ``n``."""
        cdef tsw_load *ld = self._get()
        cdef int64_t cn = int(n)
        cdef double ct = float(timeout_s)
        cdef int reached = 0
        cdef tsw_error rc
        with nogil:
            rc = tsw_load_wait_answered(ld, cn, ct, &reached)
        if rc == TSW_ERR_STATE:
            raise RuntimeError("HttpLoad not started")
        return bool(reached)

    def planned_offsets(self, count):
        """The intended times of the load's first ``count`` sends, in seconds after start, as the
        loops compute them (constant spacing or request intervals); None for a Poisson schedule
        or a closed loop, whose sends are not planned ahead."""
        cdef tsw_load *ld = self._get()
        offsets = [tsw_load_planned_offset_ns(ld, s) for s in range(int(count))]
        if any(o < 0 for o in offsets):
            return None
        return [o / 1e9 for o in offsets]

    def take_window(self):
        """Return a :class:`Window` with everything since start() or the previous call.

        The load keeps running: the loop thread swaps its counters at its next iteration
        (woken through an eventfd) while this call waits with the GIL released. After stop(),
        the first call returns the rest up to the stop, later ones return empty windows.
        """
        cdef tsw_load *ld = self._get()
        cdef tsw_error rc
        cdef const tsw_window *w = NULL
        with nogil:
            rc = tsw_load_take(ld, &w)
        if rc == TSW_ERR_STATE:
            raise RuntimeError("HttpLoad not started")
        if rc != TSW_OK:
            raise _load_error(rc)
        cdef int j
        cdef const char *msg
        # A fresh (zeroed) histogram plus a merge copies only the occupied slots of the window's.
        cdef Histogram hist = Histogram()
        cdef Histogram ttft = None
        cdef Histogram itl = None
        try:
            tsw_hist_merge(hist._h, w.hist)
            if w.ttft is not NULL:
                ttft, itl = Histogram(), Histogram()
                tsw_hist_merge(ttft._h, w.ttft)
                tsw_hist_merge(itl._h, w.itl)
            samples = []
            for j in range(w.nsamples):
                msg = &w.samples[j].msg[0]
                samples.append((w.samples[j].status, msg.decode("utf-8", "replace")))
            fields = dict(
                start_ns=w.start_ns, end_ns=w.end_ns, duration_ns=w.end_ns - w.start_ns,
                completed=w.completed, errors=w.errors, timeouts=w.timeouts,
                connect_errors=w.connect_errors, error_samples=samples, sent=w.sent,
                bytes_sent=w.bytes_sent, bytes_received=w.bytes_received, send_ns=w.send_ns,
                recv_ns=w.recv_ns, in_flight=w.in_flight, connections=w.connections,
                late_sends=w.late_sends, max_lateness_ns=w.max_lateness_ns,
                schedule_lag_ns=w.schedule_lag_ns, tokens=w.tokens,
            )
        finally:
            tsw_load_take_done(ld)
        fields["histogram"], fields["ttft_histogram"], fields["itl_histogram"] = hist, ttft, itl
        return Window(**fields)

    def __enter__(self):
        """``with HttpLoad(...) as load:`` does not start the load; it stops it on exit."""
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def monotonic_ns():
    """CLOCK_MONOTONIC in ns, the clock of Window.start_ns / end_ns."""
    return tsw_now_ns()
