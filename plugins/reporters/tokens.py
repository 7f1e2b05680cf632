"""The token sections of the PDF reports, for models measured through their token stream.

A generative model is chosen by time to first token and inter-token latency at the token
throughput it must serve (docs/generative-models.md), so its summary adds two charts, TTFT
p99 against output tokens/s (one line per config shown, each point a load level, the TTFT
bound drawn) and inter-token latency p50 and p99 against load, with a table of those figures
at each config's chosen load; its detailed report adds the token-level breakdown of every
load level. Points measured without streaming have none of these metrics, and their reports
get no such section. Kept in one module so that both reports read the same metrics.
"""
from __future__ import annotations

from typing import List, Sequence

from tsweep.records import Constraint, Measurement, RankedConfig

from tsweep.plugins.reporters import pdfparts as pdf
from tsweep.plugins.reporters import plots
from tsweep.plugins.reporters.series import LOAD, config_label, curve, load_axis, series

TTFT, ITL, TOKENS_PER_S = "ttft_p99_ms", "itl_p99_ms", "output_tokens_per_s"
#: The detailed table's token columns, after the load: (heading, metric, digits).
BREAKDOWN = (
    *((f"TTFT {s} (ms)", f"ttft_{s}_ms", 2) for s in ("avg", "p50", "p90", "p99")),
    *((f"ITL {s} (ms)", f"itl_{s}_ms", 2) for s in ("avg", "p50", "p90", "p99")),
    ("Output tokens asked", "output_tokens_asked_avg", 1),
    ("Output tokens got", "output_tokens_avg", 1),
    ("Tokens/s", TOKENS_PER_S, 1),
)


def streamed(points: Sequence[Measurement]) -> List[Measurement]:
    """The points that carry token figures (measured through a token stream)."""
    return [m for m in points if m.status != "failed" and m.value(TTFT) is not None]


def ttft_budget(constraints: Sequence[Constraint]) -> float | None:
    return min((c.max for c in constraints if c.metric == TTFT and c.max is not None), default=None)


def ttft_chart(rows: Sequence[RankedConfig], points: Sequence[Measurement], constraints: Sequence[Constraint]) -> bytes:
    chart = plots.Chart("TTFT p99 vs output token throughput", "Output tokens/s", "TTFT p99 (ms)")
    chart.series = [series(config_label(r), streamed(curve(points, r.variant, r.best.batch_size)), TOKENS_PER_S, TTFT) for r in rows]
    budget = ttft_budget(constraints)
    if budget is not None:
        chart.refs = [plots.RefLine(f"TTFT budget {budget:g} ms", budget)]
    return plots.lines(chart)


def itl_chart(rows: Sequence[RankedConfig], points: Sequence[Measurement]) -> bytes:
    shown = streamed(points)
    chart = plots.Chart("Inter-token latency vs load", load_axis(shown), "Inter-token latency (ms)")
    for r in rows:
        mine = streamed(curve(points, r.variant, r.best.batch_size))
        chart.series += [series(f"{config_label(r)} {stat}", mine, LOAD, f"itl_{stat}_ms") for stat in ("p50", "p99")]
    return plots.lines(chart)


def summary_section(rows: Sequence[RankedConfig], points: Sequence[Measurement], constraints: Sequence[Constraint], width: float) -> list:
    """The summary's token charts and table for the configs shown; empty when none of them
    was measured through a token stream."""
    rows = [r for r in rows if streamed(curve(points, r.variant, r.best.batch_size))]
    if not rows:
        return []
    names = ", ".join(config_label(r) for r in rows)
    caption = (
        f"Left: p99 time to first token against output tokens per second, one line per config ({names}), "
        "one point per load level measured" + (f", the TTFT budget ({ttft_budget(constraints):g} ms) drawn across" if ttft_budget(constraints) is not None else "")
        + ". Right: inter-token latency p50 and p99 of the same configs against load."
    )  # fmt: skip
    header = ["Config", "Load", "TTFT p50 (ms)", "TTFT p99 (ms)", "ITL p50 (ms)", "ITL p99 (ms)", "Tokens/s"]
    table = [
        [config_label(r), str(r.best.load), *(pdf.num(r.best.value(k), d) for k, d in (("ttft_p50_ms", 2), (TTFT, 2), ("itl_p50_ms", 2), (ITL, 2), (TOKENS_PER_S, 1)))]
        for r in rows
    ]
    return [
        pdf.section("Tokens: time to first token, inter-token latency, token throughput",
                    pdf.side_by_side([ttft_chart(rows, points, constraints), itl_chart(rows, points)], width), pdf.para(caption, pdf.SMALL)),
        pdf.section("Token figures at the chosen load", pdf.table(header, table, width)),
    ]  # fmt: skip


def detailed_section(points: Sequence[Measurement], width: float) -> list:
    """The detailed report's token-level breakdown, a row per streamed load level."""
    shown = streamed(points)
    if not shown:
        return []
    header = ["Load", *(heading for heading, _, _ in BREAKDOWN)]
    rows = [[str(m.load), *(pdf.num(m.value(metric), digits) for _, metric, digits in BREAKDOWN)] for m in shown]
    note = (
        "Per request: time to first token from the send (the intended send in an open loop), every gap between two "
        "tokens, and output tokens got against those asked for (max_tokens); tokens/s counts output tokens of all streams."
    )
    return [pdf.section("Token-level breakdown", pdf.table(header, rows, width), pdf.para(note, pdf.SMALL))]
