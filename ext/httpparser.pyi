"""Test hooks for the load generator's C response parser (not part of tsweep's API)."""
from typing import Sequence

def _parse_response(
    data: bytes, step: int = 0, head: bool = False
) -> tuple[int, int, bool, int, str, str | None]: ...
def _parse_stream(
    pieces: Sequence[bytes], head: bool = False
) -> tuple[list[tuple[int, bool, int, int, str]], int, str | None]: ...
def _count_events(pieces: Sequence[bytes]) -> tuple[list[int], bool, bool, str]: ...
