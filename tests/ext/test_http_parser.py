"""Properties of the load generator's C response parser (ext/loadgen-c/tsw_http_parser.c).

The parser sees a response in whatever pieces recv() returns, so the central property is that
the split does not matter: every way of cutting the bytes gives what feeding them at once
gives. The test hook ``_parse_stream`` copies each piece into a buffer of exactly its size, so a
read past a piece would be a heap overflow (visible under ASan or valgrind), and it checks that
the parser never claims more bytes than it was given.

Responses are generated with the structure the parser must understand: HTTP/1.0 and 1.1,
Content-Length and chunked bodies (chunk extensions, hex of either case, trailers), Connection
headers of any case, 1xx interim responses, HEAD requests, bodies of 0 to a few KiB.
"""
from __future__ import annotations

import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tsweep.ext.httpparser import _parse_response, _parse_stream

HDR_MAX = 16384  # TSW_HDR_MAX: the largest header block accepted

bounded = settings(max_examples=200, deadline=None)

TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=1, max_size=20)
VALUE = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
FRAMING_HEADERS = {"content-length", "transfer-encoding", "connection"}


def random_case(draw, word: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    return "".join(c.upper() if f else c.lower() for c, f in zip(word, flips))


@st.composite
def responses(draw, framings=("length", "chunked"), allow_head=True):
    """(wire bytes, expected (status, keepalive, body_len, wire_len, snippet), head request?)."""
    http10 = draw(st.booleans())
    status = draw(st.sampled_from([200, 200, 201, 204, 304, 400, 404, 500, 503]))
    head = draw(st.booleans()) if status == 200 and allow_head else False
    no_body = head or status in (204, 304)
    body = b"" if status in (204, 304) else draw(st.binary(max_size=2000))
    framing = "length" if no_body else draw(st.sampled_from(framings))
    if http10 and framing == "chunked":
        framing = "length"

    lines = [f"HTTP/1.{0 if http10 else 1} {status} {draw(st.sampled_from(['OK', 'Whatever', '']))}"]
    for name, value in draw(st.lists(st.tuples(TOKEN, VALUE), max_size=6)):
        if name.lower() not in FRAMING_HEADERS:
            lines.append(f"{name}:{draw(st.sampled_from(['', ' ', '  ', chr(9)]))}{value}")
    connection = draw(st.sampled_from([None, "close", "keep-alive"]))
    if connection:
        lines.append(f"{random_case(draw, 'connection')}: {random_case(draw, connection)}")
    keepalive = (connection == "keep-alive") if http10 else (connection != "close")

    if framing == "length":
        lines.append(f"{random_case(draw, 'content-length')}: {len(body)}")
        payload = b"" if no_body else body
    elif framing == "chunked":
        lines.append(f"{random_case(draw, 'transfer-encoding')}: {draw(st.sampled_from(['chunked', 'gzip, chunked']))}")
        payload = chunked(draw, body)
    else:  # delimited by close: never keep-alive, complete only at EOF
        payload = body
        keepalive = False
    position = draw(st.integers(0, len(lines) - 1)) + 1  # framing headers need not come last
    lines.insert(position, lines.pop())
    interim = b"HTTP/1.1 100 Continue\r\n\r\n" if draw(st.booleans()) and not http10 else b""
    wire = interim + ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload
    body_len = 0 if no_body else len(body)
    snippet = "" if status == 200 or no_body else body[:159].decode("latin-1")
    return wire, (status, keepalive, body_len, len(wire), snippet), head, framing


def chunked(draw, body: bytes) -> bytes:
    out, i = [], 0
    while i < len(body):
        n = draw(st.integers(1, max(1, len(body) - i)))
        size = f"{n:x}"
        size = size.upper() if draw(st.booleans()) else size
        ext = draw(st.sampled_from(["", ";a=b", " ;x", "\t;name=\"v\""]))
        out.append(f"{size}{ext}\r\n".encode() + body[i:i + n] + b"\r\n")
        i += n
    trailers = draw(st.lists(st.tuples(TOKEN, VALUE), max_size=2))
    out.append(b"0\r\n" + b"".join(f"{k}: {v}\r\n".encode() for k, v in trailers) + b"\r\n")
    return b"".join(out)


@st.composite
def splits(draw, data: bytes):
    """data cut at random places (possibly into single bytes, possibly not at all)."""
    if not data:
        return [data]
    cuts = sorted(set(draw(st.lists(st.integers(1, len(data) - 1), max_size=12)))) if len(data) > 1 else []
    if draw(st.integers(0, 9)) == 0:  # sometimes byte by byte, the hardest case
        cuts = list(range(1, len(data)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


# ---------------------------------------------------------------- valid responses

@bounded
@given(st.data())
def test_any_split_gives_what_one_shot_gives(data):
    wire, expected, head, _ = data.draw(responses())
    one_shot = _parse_stream([wire], head)
    assert one_shot == ([expected], 1, None)
    assert _parse_stream(data.draw(splits(wire)), head) == one_shot


@bounded
@given(st.data())
def test_bytes_after_a_response_are_not_consumed(data):
    """What the load generator uses to tell a reusable connection: the response ends where it
    ends, whatever follows it in the same read (and in whatever steps it was fed)."""
    wire, (status, keepalive, *_), head, _ = data.draw(responses())
    extra = data.draw(st.binary(min_size=1, max_size=50))
    step = data.draw(st.integers(0, len(wire) + 5))
    result, got_status, got_keep, consumed, _, why = _parse_response(wire + extra, step, head)
    assert (result, got_status, got_keep, consumed, why) == (1, status, keepalive, len(wire), None)


@bounded
@given(st.data())
def test_pipelined_responses_in_any_split(data):
    drawn = data.draw(st.lists(responses(allow_head=False), min_size=2, max_size=3))
    stream = b"".join(r[0] for r in drawn)
    expected = [r[1] for r in drawn]
    assert _parse_stream(data.draw(splits(stream))) == (expected, 1, None)


@bounded
@given(st.data())
def test_close_delimited_body_waits_for_eof(data):
    wire, (status, keepalive, body_len, wire_len, snippet), head, framing = data.draw(
        responses(framings=("close",)))
    assume(framing == "close")  # not a response without a body (HEAD, 204, 304)
    responses_, state, why = _parse_stream(data.draw(splits(wire)), head)
    assert (responses_, state, why) == ([], 0, None)  # complete only when the server closes
    r, got_status, got_keep, consumed, snip, _ = _parse_response(wire, 0, head)
    assert (r, got_status, got_keep, consumed, snip) == (0, status, False, len(wire), snippet)


@bounded
@given(st.data())
def test_truncated_response_is_incomplete_never_complete(data):
    wire, _, head, _ = data.draw(responses())
    cut = data.draw(st.integers(0, len(wire) - 1))
    assert _parse_stream(data.draw(splits(wire[:cut])), head) == ([], 0 if cut else 1, None)


# ---------------------------------------------------------------- malformed responses

STATUS_LINE = re.compile(rb"HTTP/1\.. [0-9]{3}")


@bounded
@given(st.data())
def test_bad_status_line_is_an_error(data):
    line = data.draw(st.one_of(
        st.binary(max_size=30).filter(lambda b: b"\r\n\r\n" not in b and b"\n" not in b),
        st.sampled_from([b"HTTP/1.1 2x0 OK", b"HTTP/1.1200 OK", b"HTTP/2 200 OK", b"http/1.1 200 OK",
                         b"HTTP/1.1 20", b"SMTP ready", b"", b"HTTP/1.1  200"]),
    ))
    block = line + b"\r\nContent-Length: 0\r\n\r\n"
    assume(not STATUS_LINE.match(block))
    responses_, state, why = _parse_stream(data.draw(splits(block)))
    assert (responses_, state) == ([], -1) and "status line" in why


@bounded
@given(st.data())
def test_bad_chunk_size_is_an_error(data):
    prefix = data.draw(st.text(alphabet="0123456789abcdefABCDEF", max_size=3))
    bad = data.draw(st.sampled_from(list("gGxz-+.:/\x00\x7f")))
    wire = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            + prefix.encode() + bad.encode() + b"\r\nhello\r\n0\r\n\r\n")
    responses_, state, why = _parse_stream(data.draw(splits(wire)))
    assert (responses_, state) == ([], -1) and "chunk size" in why
    huge = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"f" * 16 + b"\r\n"
    responses_, state, why = _parse_stream(data.draw(splits(huge)))
    assert (responses_, state) == ([], -1) and "chunk too large" in why


@settings(max_examples=50, deadline=None)
@given(st.data())
def test_oversized_header_is_an_error_in_any_split(data):
    """A header block longer than TSW_HDR_MAX is refused however it arrives (it once was
    accepted when it came in one read and refused when split); one that fits is accepted."""
    size = data.draw(st.integers(HDR_MAX - 20, HDR_MAX + 20))
    start = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Pad: "
    end = b"\r\n\r\n"
    block = start + b"a" * (size - len(start) - len(end)) + end
    assert len(block) == size
    complete = data.draw(st.booleans())
    wire = block if complete else block[:-4]
    for pieces in ([wire], data.draw(splits(wire))):  # one read (the fast path) and any split
        responses_, state, why = _parse_stream(pieces)
        # complete: too large past HDR_MAX; incomplete: once HDR_MAX bytes came without the
        # blank line (the whole block cannot fit), before that the parser cannot know
        if (size > HDR_MAX) if complete else (len(wire) >= HDR_MAX):
            assert (responses_, state) == ([], -1) and "header too large" in why
        elif complete:
            assert (responses_, state, why) == ([(200, True, 0, size, "")], 1, None)
        else:
            assert (responses_, state, why) == ([], 0, None)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_garbage_never_crashes_and_split_does_not_matter(data):
    """Arbitrary bytes, or a valid response with bytes flipped: the parser ends in one of its
    three states, never claims bytes it was not given (the hook checks), and the split does not
    change the outcome."""
    if data.draw(st.booleans()):
        wire = data.draw(st.binary(max_size=400))
    else:
        wire = bytearray(data.draw(responses())[0])
        for _ in range(data.draw(st.integers(1, 4))):
            wire[data.draw(st.integers(0, len(wire) - 1))] = data.draw(st.integers(0, 255))
        wire = bytes(wire)
    one_shot = _parse_stream([wire])
    assert one_shot[1] in (-1, 0, 1)
    assert sum(r[3] for r in one_shot[0]) <= len(wire)
    assert _parse_stream(data.draw(splits(wire))) == one_shot


@pytest.mark.parametrize("step", [1, 2, 5, 64])
def test_interim_responses_are_skipped_in_any_step(step):
    wire = (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\nX: y\r\n\r\n"
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found")
    pieces = [wire[i:i + step] for i in range(0, len(wire), step)]
    assert _parse_stream(pieces) == ([(404, True, 9, len(wire), "not found")], 1, None)
