"""Reporter ``detailed``: one PDF per config at ``reports/detailed/<config>/detailed_report.pdf``:
for each model's best ``num_configs_per_model`` configs at the end of ``tsweep profile`` (as
Model Analyzer does), and for those ``tsweep report --report-model-configs`` names.

Where the summary shows each config at one load, this shows a config at every load it was
measured at: how throughput and latency grow with load (with their 95% confidence intervals,
as error bars and "±"), where the time of a request goes (server queue and compute, client
send and receive, and the rest: network and HTTP handling), and memory and utilization when
collectors recorded them. A config that was measured under its identical twin's name reports
the twin's rows and says so.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from tsweep import repeats
from tsweep.catalogue import BUILT_IN
from tsweep.files import inside
from tsweep.plotspec import BATCH_SIZE
from tsweep.plugin import ConfigKey, ReportContext, hookimpl
from tsweep.records import Measurement

from tsweep.plugins.reporters import pdfparts as pdf
from tsweep.plugins.reporters import configured, plots, resources, stages, tokens, together
from tsweep.plugins.reporters.series import LOAD, load_axis, series, usable

#: The stacked parts of a request's latency, bottom to top: (label, column), titled by the catalogue.
SERVER_PARTS = tuple((BUILT_IN.info(c).label, c) for c in ("queue_ms", "compute_input_ms", "compute_infer_ms", "compute_output_ms"))
CLIENT_PARTS = tuple((BUILT_IN.info(c).label, c) for c in ("client_send_ms", "client_recv_ms"))
NETWORK = "Network and other"


def network_ms(m: Measurement) -> Optional[float]:
    """Average client latency not spent in the server's parts or the client's send/receive:
    the network, HTTP handling and scheduling in between. Never below zero (the parts are
    averaged over slightly different requests, so they can add up to a hair more)."""
    if m.latency_avg_ms is None:
        return None
    known = sum(m.value(col) or 0.0 for _, col in (*SERVER_PARTS, *CLIENT_PARTS))
    return max(m.latency_avg_ms - known, 0.0)


def breakdown(m: Measurement) -> List[Tuple[str, Optional[float]]]:
    """The parts of the average latency in stacking order; they add up to it."""
    send, recv = CLIENT_PARTS
    return [(send[0], m.client_send_ms), *((label, m.value(col)) for label, col in SERVER_PARTS),
            (recv[0], m.client_recv_ms), (NETWORK, network_ms(m))]  # fmt: skip


def point_label(m: Measurement, batches: int) -> str:
    short = {"concurrency": "c", "request_rate": "r"}[m.load_kind]
    return f"{short}={m.load_value:g}" + (f" b{m.batch_size}" if batches > 1 else "")


def by_batch(points: Sequence[Measurement]) -> List[Tuple[str, List[Measurement]]]:
    """The curve per client batch size, labelled only when there are several."""
    sizes = sorted({m.batch_size for m in points})
    return [("" if len(sizes) == 1 else f" (batch {b})", [m for m in points if m.batch_size == b]) for b in sizes]


def load_chart(points: Sequence[Measurement]) -> bytes:
    chart = plots.Chart("Throughput and p99 latency vs load", load_axis(points), "Throughput (infer/s)")
    groups = by_batch(points)
    chart.series = [series("Throughput" + suffix, pts, LOAD, "throughput") for suffix, pts in groups]
    right = [series("p99 latency" + suffix, pts, LOAD, "latency_p99_ms") for suffix, pts in groups]
    return plots.two_axes(chart, "p99 latency (ms)", right)


def breakdown_chart(points: Sequence[Measurement]) -> bytes:
    batches = len({m.batch_size for m in points})
    parts = [[part for part in breakdown(m)] for m in points]
    labels = [label for label, _ in parts[0]]
    stacks = [(label, [p[i][1] for p in parts]) for i, label in enumerate(labels)]
    chart = plots.Chart("Where the average latency goes", "Load level", "Latency (ms)")
    return plots.stacked_bars(chart, [point_label(m, batches) for m in points], stacks)


def resource_chart(points: Sequence[Measurement], metric: str, known) -> bytes:
    heading = known.heading(metric)
    chart = plots.Chart(f"{known.info(metric).label or metric} vs p99 latency", "p99 latency (ms)", heading)
    chart.series = [series(heading + suffix, pts, "latency_p99_ms", metric) for suffix, pts in by_batch(points)]
    return plots.lines(chart)


def chosen_charts(points: Sequence[Measurement], specs, context: ReportContext, width: float) -> list:
    """The charts of the ``plots`` key, two a row: a line per client batch size (one line
    when the batch size is the x axis), each named in a caption (the chart's text is an image)."""
    known, constraints = context.metrics, context.goals_of(points[0].model)[1]
    pngs = [configured.chart(spec, [("all batch sizes", points)] if spec.x == BATCH_SIZE else
                             [(f"{spec.title}{suffix}", pts) for suffix, pts in by_batch(points)], constraints, known)
            for spec in specs]  # fmt: skip
    rows = [pdf.side_by_side(pngs[i:i + 2], width) for i in range(0, len(pngs), 2)]
    captions = " ".join(configured.caption(spec, points, known) for spec in specs)
    return [pdf.section("Chosen charts", rows[0]), *rows[1:], pdf.para(captions, pdf.SMALL)]


def table_rows(points: Sequence[Measurement], memory: Optional[str], utilization: Optional[str]) -> List[List[str]]:
    rows = []
    for m in points:
        parts = dict(breakdown(m))
        rows.append([
            f"{m.load}", str(m.batch_size), m.status,
            pdf.num_ci(m.throughput, m.throughput_ci, 1), pdf.num_ci(m.latency_p99_ms, m.latency_p99_ci_ms),
            pdf.num(m.latency_p50_ms), pdf.num(m.latency_avg_ms),
            *(pdf.num(parts[label], 3) for label, _ in (*SERVER_PARTS, *CLIENT_PARTS)), pdf.num(parts[NETWORK], 3),
            pdf.num(m.value(utilization) if utilization else None, 1), pdf.num(m.value(memory) if memory else None, 1),
        ])  # fmt: skip
    return rows


#: How the table marks a load level measured after the search.
LATER_MARK = " (later)"


def later_words(points: Sequence[Measurement], context: ReportContext) -> str:
    """'; 2 measured later ...': how many of the points ``tsweep report --complete-load-curves``
    added after the search (empty when none)."""
    later = sum(m.point in context.measured_later for m in points)
    return f"; {later} measured later by tsweep report --complete-load-curves, marked{LATER_MARK} in the table" if later else ""


def story(name: str, measured: str, points: Sequence[Measurement], context: ReportContext) -> list:
    known = context.metrics
    size = pdf.LANDSCAPE
    width = pdf.text_width(size)
    memory, utilization = resources.memory_metric(points), resources.utilization_metric(points)
    first = points[0]
    twin = f" It was measured as {measured}, the very same config." if measured != name else ""
    params = ", ".join(f"{k}={v}" for k, v in first.variant_params.items()) or "the model's own config"
    top = max(points, key=lambda m: m.throughput or 0.0)
    failed = sum(m.status == "failed" for m in points)
    unstable = sum(m.status == "unstable" for m in points)

    parts: list = [pdf.para(f"Detailed report: {name}", pdf.TITLE), *pdf.run_facts(context, include_goals=False), pdf.spacer()]
    parts.append(pdf.para(
        f"Config {name} of model {first.model} ({params}).{twin} {len(points)} load levels measured"
        f" ({unstable} unstable, {failed} failed{later_words(points, context)}). Highest throughput: {pdf.num_ci(top.throughput, top.throughput_ci, 1)} "
        f"infer/s at {top.load}, client batch {top.batch_size}, p99 {pdf.num_ci(top.latency_p99_ms, top.latency_p99_ci_ms)} ms."
    ))  # fmt: skip
    ok = usable(points)
    if ok:
        parts.append(pdf.section("Throughput, latency and where the time goes", pdf.side_by_side([load_chart(ok), breakdown_chart(ok)], width)))
        parts.append(pdf.para(
            "Left: throughput (solid) and p99 latency (dashed) with their 95% confidence intervals as error bars "
            "(none for a point measured in a single window); the ± figures in the table are the same intervals. "
            "Right: each bar is the average client latency at one load level: the server's queue and compute "
            "times (from Triton's statistics), the client's time to send and receive, and what remains "
            "(network, HTTP handling, scheduling).", pdf.SMALL))  # fmt: skip
        specs = context.plots_of(name)
        if specs:  # the user's choice of charts (Model Analyzer's plots key, or this config's own)
            parts.extend(chosen_charts(ok, specs, context, width))
        else:
            charts = [resource_chart(ok, metric, known) for metric in (memory, utilization) if metric]
            if charts:
                parts.append(pdf.section("Memory and utilization", pdf.side_by_side(charts, width)))
            else:
                parts.append(pdf.para("No memory or utilization metric was recorded (no GPU or server-process collector ran).", pdf.SMALL))
    header = ["Load", "Batch", "Status", *map(known.short, ("throughput", "latency_p99_ms", "latency_p50_ms", "latency_avg_ms")),
              *(known.heading(c) for _, c in (*SERVER_PARTS, *CLIENT_PARTS)), f"{NETWORK} (ms)",
              known.heading(utilization) if utilization else "Utilization",
              known.heading(memory) if memory else "Memory"]  # fmt: skip
    rows = table_rows(points, memory, utilization)
    for row, m in zip(rows, points):
        if m.point in context.measured_later:
            row[0] += LATER_MARK
    parts.append(pdf.section("Every measured load level", pdf.table(header, rows, width)))
    parts.extend(tokens.detailed_section(points, width))  # a streamed model's token figures
    parts.extend(stages.section(pdf, top, width, f"Pipeline stages at {top.load} (highest throughput)"))
    return parts


#: Model Analyzer's key, declared by this plugin (tsweep_config_keys).
SKIP = ConfigKey(
    "skip_detailed_reports", False,
    "Write no detailed PDFs: neither profile's for each model's best num_configs_per_model configs nor report's (which still prints every load level).",
    commands=("profile", "report"),
)  # fmt: skip


class DetailedReporter:
    def __init__(self, skip: bool = False):
        self.skip = skip

    def write(self, measurements, ranking, export_dir: Path, context):
        if self.skip:
            return []
        measurements = repeats.merge(measurements, context.metrics)  # re-measured points count once, as in the ranking
        written = []
        for name, measured in context.report_model_configs.items():
            points = sorted((m for m in measurements if m.variant == measured), key=lambda m: (m.batch_size, m.load_value))
            if not points:
                continue
            path = inside(Path(export_dir), "reports", "detailed", name, "detailed_report.pdf")
            written.append(pdf.write_pdf(path, f"tsweep detailed report: {name}", story(name, measured, points, context), pdf.LANDSCAPE))
        if context.combinations:  # models profiled together: the best combinations, step by step
            written.extend(together.write_detailed(measurements, export_dir, context))
        return written


@hookimpl
def tsweep_config_keys():
    return [SKIP]


@hookimpl
def tsweep_reporters(options):
    return {"detailed": DetailedReporter(skip=options.get(SKIP.name, False))}
