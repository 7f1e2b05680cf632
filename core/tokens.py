"""A streaming point's token figures: time to first token, inter-token latency, token rate.

The load generator records, per window, the time from each request's (intended) send to its
first token, every gap between two tokens of a request, and the tokens of the completed
requests (ext/loadgen-c/tsw_request.c); the request's own latency is its end-to-end time, kept
in the point's usual latency figures (``latency_*``). Here the judged windows' histograms are
merged into the figures the catalogue declares (:data:`tsweep.catalogue.TOKEN`), stored in
``Measurement.metrics``: ms for the times, tokens/s for the rate.

A model that ignores the output length it is asked for (or has no ``max_tokens`` input to be
told it) is reported, not hidden: the tokens a request got on average is stored beside the
mean length asked for, and a difference of more than :data:`LENGTH_TOLERANCE` becomes the
point's note (its ``error`` text; the point keeps its status).
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

from tsweep.ext.histogram import Histogram

#: Got and asked output lengths that differ by more than this share are reported.
LENGTH_TOLERANCE = 0.10
PERCENTILES = (50, 90, 99)


def _figures(prefix: str, hist: Histogram) -> Dict[str, float]:
    if not hist.count:
        return {}
    found = {f"{prefix}_avg_ms": hist.mean / 1e6}
    found.update({f"{prefix}_p{p}_ms": hist.value_at_percentile(p) / 1e6 for p in PERCENTILES})
    return found


def summarize(windows: Sequence, asked_output_tokens: float = 0.0) -> Dict[str, float]:
    """The token metrics of a point's judged windows (those with token histograms); empty when
    the point was not streamed."""
    streamed = [w for w in windows if getattr(w, "ttft", None) is not None]
    if not streamed:
        return {}
    ttft, itl = Histogram(), Histogram()
    for w in streamed:
        ttft.merge(w.ttft)
        itl.merge(w.itl)
    tokens = sum(w.tokens for w in streamed)
    completed = sum(w.completed for w in streamed)
    seconds = sum(w.duration_ns for w in streamed) / 1e9
    metrics = {**_figures("ttft", ttft), **_figures("itl", itl)}
    metrics["output_tokens_per_s"] = tokens / seconds if seconds else 0.0
    if completed:
        metrics["output_tokens_avg"] = tokens / completed
    if asked_output_tokens:
        metrics["output_tokens_asked_avg"] = asked_output_tokens
    return metrics


def length_note(metrics: Dict[str, float]) -> Optional[str]:
    """One sentence when the requests got other output lengths than they asked for."""
    got, asked = metrics.get("output_tokens_avg"), metrics.get("output_tokens_asked_avg")
    if got is None or not asked or abs(got - asked) <= LENGTH_TOLERANCE * asked:
        return None
    return f"the model returned {got:.1f} output tokens per request on average where {asked:.1f} were asked for: it ignores max_tokens or has no such input"
