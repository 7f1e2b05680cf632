"""Type stub for tsweep.ext.loadgen (native HTTP/1.1 load generator, see loadgen.pyx)."""
from __future__ import annotations

from types import TracebackType
from typing import Literal, Mapping, Sequence

from tsweep.ext.histogram import Histogram

def build_http_request(
    host: str,
    port: int,
    path: str,
    body: bytes | str = b"",
    headers: Mapping[str, str] | None = None,
    method: str = "POST",
) -> bytes: ...
def monotonic_ns() -> int: ...

SEQUENCE_ID_WIDTH: int
SEQUENCE_PLACEHOLDER: bytes

def sequence_placeholder(body: bytes) -> tuple[bytes, tuple[int, int, int]]: ...

class Window:
    start_ns: int
    end_ns: int
    duration_ns: int
    completed: int
    errors: int
    timeouts: int
    connect_errors: int
    error_samples: list[tuple[int, str]]
    histogram: Histogram
    sent: int
    bytes_sent: int
    bytes_received: int
    send_ns: int
    recv_ns: int
    in_flight: int
    connections: int
    late_sends: int
    max_lateness_ns: int
    schedule_lag_ns: int
    ttft_histogram: Histogram | None
    itl_histogram: Histogram | None
    tokens: int
    def __init__(self, **fields: object) -> None: ...
    @property
    def throughput(self) -> float: ...
    @property
    def send_rate(self) -> float: ...
    def as_dict(self) -> dict[str, object]: ...

class HttpLoad:
    started: bool
    concurrency: int
    rate: float
    schedule: str
    threads: int
    timeout_s: float
    max_connections: int
    intervals: tuple[float, ...]
    def __init__(
        self,
        host: str,
        port: int,
        requests: Sequence[bytes],
        concurrency: int | None = None,
        rate: float | None = None,
        schedule: Literal["constant", "poisson"] = "constant",
        seed: int = 1,
        max_connections: int = 256,
        timeout_s: float = 30.0,
        threads: int = 1,
        late_threshold_s: float = 0.001,
        duration_s: float | None = None,
        max_requests: int | None = None,
        intervals: Sequence[float] | None = None,
        sequence_length: int = 0,
        sequence_variation: float = 0.0,
        sequence_ids: tuple[int, int] = (1, 0),
        sequence_slots: int = 4,
        serial_sequences: bool = False,
        sequence_marks: Sequence[tuple[int, int, int]] | None = None,
        stream: bool = False,
    ) -> None: ...
    def start(self) -> HttpLoad: ...
    def open_sequences(self) -> list[int]: ...
    def wait_responses(self, n: int, timeout_s: float) -> bool: ...
    def planned_offsets(self, count: int) -> list[float] | None: ...
    @property
    def running(self) -> bool: ...
    def stop(self) -> None: ...
    def take_window(self) -> Window: ...
    def __enter__(self) -> HttpLoad: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]: ...

# Test hooks (not part of the API): the mapping from the C API's error codes to the
# exceptions HttpLoad raises.
_ERROR_CODES: dict[str, int]

def _load_error(code: int, os_error: int = 0, host: str = "", port: int = 0) -> Exception: ...
