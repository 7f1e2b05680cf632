"""The C parser's server-sent event counting (the streaming load's tokens): events are counted
however the stream is split, blank lines and chunk boundaries do not count, and an error event
fails the request with its text (tsw_http_parser.c, tsw_sse_scan)."""
import random

from tsweep.ext.httpparser import _count_events

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n"


def chunked(*events: bytes) -> bytes:
    """A streamed response as Triton writes it: one chunk per event, then the last chunk."""
    return HEAD + b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events) + b"0\r\n\r\n"


TOKEN = b'data: {"model_name":"m","text_output":"tok "}\n\n'


def test_every_event_is_counted_once_whatever_the_split():
    wire = chunked(*[TOKEN] * 7)
    rng = random.Random(3)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(wire)), rng.randint(0, 12)))
        pieces = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)])]
        seen, complete, error, _ = _count_events(pieces)
        assert complete and not error and seen[-1] == 7
        assert seen == sorted(seen)  # counted as they arrive, never taken back


def test_events_arrive_one_by_one_when_the_server_sends_them_so():
    events = [b"%x\r\n%s\r\n" % (len(TOKEN), TOKEN) for _ in range(3)]
    seen, complete, _, _ = _count_events([HEAD, *events, b"0\r\n\r\n"])
    assert seen == [0, 1, 2, 3, 3] and complete


def test_crlf_line_ends_and_blank_lines_between_events_count_no_extra_event():
    seen, _, _, _ = _count_events([chunked(b'data: {"a":1}\r\n\r\n', b"\n\n", b'data: {"a":2}\n\n')])
    assert seen == [2]


def test_an_error_event_fails_the_stream_with_its_text():
    seen, complete, error, snippet = _count_events([chunked(TOKEN, b'data: {"error":"engine died"}\n\n')])
    assert seen == [1] and complete and error
    assert snippet.startswith('data: {"error":"engine died"}')
