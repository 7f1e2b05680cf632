# cython: language_level=3
"""The load generator's HTTP/1.1 response parser (ext/loadgen-c/tsw_http_parser.c), reachable
from Python for its tests only: tests/ext/test_http_parser.py feeds it random splits of valid
and malformed responses. The load generator itself calls the parser from C, never through here.
"""
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy


cdef extern from "tsw_http_parser.h" nogil:
    ctypedef struct tsw_http_parser:
        int status
        int keepalive
        int64_t body_len
        int snip_len
        char snip[1]
        int sse
        int sse_error
        int64_t events

    int tsw_http_parser_init(tsw_http_parser *p)
    void tsw_http_parser_release(tsw_http_parser *p)
    void tsw_http_parser_reset(tsw_http_parser *p, int no_body)
    int tsw_http_feed(tsw_http_parser *p, const char *data, size_t n, size_t *used,
                      const char **why)


cdef int _feed_copy(tsw_http_parser *p, const char *data, size_t n, size_t *used,
                    const char **why) except -2:
    # Each piece goes to the parser in a buffer of exactly its size, as a recv() would leave
    # it, so a read past the piece's end is a heap overflow that ASan or valgrind report.
    cdef char *piece = <char *>malloc(n if n > 0 else 1)
    if piece is NULL:
        raise MemoryError()
    memcpy(piece, data, n)
    cdef int r = tsw_http_feed(p, piece, n, used, why)
    free(piece)
    return r


def _parse_stream(pieces, bint head=False):
    """Test hook: feed ``pieces`` (bytes objects) in order to one C response parser, as
    successive recv() calls would.

    When a response completes, it is recorded and the parser restarts on the bytes after it
    (pipelined responses). Returns ``(responses, state, why)``: ``responses`` a list of
    ``(status, keepalive, body_len, wire_len, snippet)``, ``state`` 1 when the data ended right
    after a complete response (or was empty), 0 in the middle of one, -1 on a protocol error
    (``why`` says which, else None). Stops at the first error.
    """
    cdef tsw_http_parser p
    if tsw_http_parser_init(&p) != 0:
        raise MemoryError()
    cdef bytes piece
    cdef size_t off, n, used
    cdef const char *why = NULL
    cdef int r = 1
    cdef Py_ssize_t wire = 0
    responses = []
    try:
        tsw_http_parser_reset(&p, head)
        for obj in pieces:
            piece = bytes(obj)
            off, n = 0, len(piece)
            while off < n:
                used = 0
                r = _feed_copy(&p, <const char *>piece + off, n - off, &used, &why)
                if r < 0:
                    return responses, -1, why.decode() if why is not NULL else None
                if used > n - off:
                    raise AssertionError(f"parser used {used} of {n - off} bytes")
                off += used
                wire += used
                if r == 1:
                    responses.append((p.status, bool(p.keepalive), p.body_len, wire,
                                      p.snip[:p.snip_len].decode("latin-1")))
                    wire = 0
                    tsw_http_parser_reset(&p, head)
        return responses, 1 if wire == 0 and r != 0 else 0, None
    finally:
        tsw_http_parser_release(&p)


def _parse_response(bytes data, int step=0, bint head=False):
    """Test hook: run the C response parser over ``data`` fed in ``step``-byte pieces.

    Returns ``(result, status, keepalive, consumed, snippet, why)`` with result 1 (complete),
    0 (needs more bytes) or -1 (protocol error, reason in ``why``).
    """
    cdef tsw_http_parser p
    if tsw_http_parser_init(&p) != 0:
        raise MemoryError()
    cdef size_t n = len(data), off = 0, k, used
    cdef size_t cstep = <size_t>step if step > 0 else (n if n else 1)
    cdef const char *why = NULL
    cdef int r = 0
    try:
        tsw_http_parser_reset(&p, head)
        while off < n:
            k = n - off if n - off < cstep else cstep
            used = 0
            r = _feed_copy(&p, <const char *>data + off, k, &used, &why)
            if r < 0:
                break
            off += used
            if r == 1:
                break
        return (r, p.status, bool(p.keepalive), off, p.snip[:p.snip_len].decode("latin-1"),
                why.decode() if why is not NULL else None)
    finally:
        tsw_http_parser_release(&p)


def _count_events(pieces):
    """Test hook: feed one streamed response (server-sent events), split into ``pieces``, to a
    parser reading events, as the streaming load does. Returns ``(events after each piece,
    complete, sse_error, snippet)``."""
    cdef tsw_http_parser p
    if tsw_http_parser_init(&p) != 0:
        raise MemoryError()
    cdef bytes piece
    cdef size_t used
    cdef const char *why = NULL
    cdef int r = 0
    seen = []
    try:
        tsw_http_parser_reset(&p, 0)
        p.sse = 1
        for obj in pieces:
            piece = bytes(obj)
            used = 0
            r = _feed_copy(&p, <const char *>piece, len(piece), &used, &why)
            if r < 0:
                raise ValueError(why.decode() if why is not NULL else "parse error")
            seen.append(p.events)
        return seen, r == 1, bool(p.sse_error), p.snip[:p.snip_len].decode("latin-1")
    finally:
        tsw_http_parser_release(&p)
