"""perf_analyzer's request-intervals file: the gaps between an open loop's sends.

One gap per line, in microseconds; the load sends its first request one gap after it starts
and cycles through the file (perf_analyzer's ``--request-intervals``). tsweep reads the file
when the config is loaded, so a bad line stops the run before anything is written, and the
load level a point is stored under is the file's mean rate.
"""
from __future__ import annotations

from pathlib import Path
from typing import Tuple

from tsweep.errors import UsageError


def read(path: str, key: str = "request_intervals") -> Tuple[float, ...]:
    """The gaps in ``path`` (microseconds), or one UsageError line naming the bad line."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise UsageError(f"{key}: cannot read {path}: {exc.strerror}; give a file of gaps in microseconds, one per line") from None
    gaps = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            gap = float(line)
        except ValueError:
            gap = -1.0
        if not gap >= 0 or gap == float("inf"):
            raise UsageError(f"{key}: line {number} of {path} is {line.strip()!r}, not a gap in microseconds: write one number >= 0 per line")
        gaps.append(gap)
    if not sum(gaps) > 0:
        raise UsageError(f"{key}: {path} holds no gap above 0 microseconds: write one gap per line, in microseconds")
    return tuple(gaps)


def mean_rate(gaps_us: Tuple[float, ...]) -> float:
    """Sends per second the gaps make on average: the point's load level."""
    return len(gaps_us) * 1e6 / sum(gaps_us)
