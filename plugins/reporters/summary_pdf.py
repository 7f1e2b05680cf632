"""Reporter ``summary``: one PDF per model, ``reports/summaries/<model>/result_summary.pdf``.

The page a reader decides from: where it was measured, what was asked, the verdict (the same
sentence the CLI prints), how the best configs and the default compare (a chart for the
mode's question and a memory chart), and a table of those configs at their chosen load.
With ``num_top_model_configs``, one more such summary ranks the best configs of all models
together, in ``reports/summaries/Best Configs Across All Models/`` (Model Analyzer's folder).
Throughput and p99 carry their 95% confidence intervals everywhere (error bars, "±"), so
a reader sees how well each figure is known before trusting a difference between two.
Online mode asks "how much throughput at what latency" (throughput against p99, the latency
budget drawn); offline mode asks "how much throughput at what load" (throughput against
concurrency or request rate, the minimum throughput drawn). Written after ``profile`` and
``analyze``; ``report`` passes no ranking, so nothing is written then.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from tsweep import repeats
from tsweep.files import inside
from tsweep.plotspec import BATCH_SIZE
from tsweep.plugin import ConfigKey, ReportContext, hookimpl
from tsweep.records import Constraint, Measurement, RankedConfig
from tsweep.verdict import overall_verdict, percentile_label, shown, verdict

from tsweep.plugins.reporters import pdfparts as pdf
from tsweep.plugins.reporters import configured, plots, resources, stages, tokens, together
from tsweep.plugins.reporters.series import LOAD, config_label, curve, load_axis, params_text, series


#: What the error bars and the ± figures are, said once under the main chart.
INTERVALS_NOTE = (
    "Error bars and ± figures are 95% confidence intervals of throughput and p99 latency (from batch means "
    "over each point's measurement windows, combined over the looks at a point measured more than once); "
    "a point measured in a single window has no interval: no bar, and ±? in the table."
)


def bounds(constraints: Sequence[Constraint], latency: str = "latency_p99_ms") -> Dict[str, Optional[float]]:
    """The latency budget (on ``latency``, the percentile the verdict reads) and the minimum
    throughput among the constraints, if set."""
    budget = min((c.max for c in constraints if c.metric == latency and c.max is not None), default=None)
    floor = max((c.min for c in constraints if c.metric == "throughput" and c.min is not None), default=None)
    return {"budget": budget, "min_throughput": floor}


def main_chart(rows: Sequence[RankedConfig], points: Sequence[Measurement], mode: str, constraints: Sequence[Constraint], latency: str = "latency_p99_ms") -> plots.Chart:
    """Online: throughput against the latency the verdict reads (p99 unless ``percentile``
    says another); offline: throughput against load."""
    limits = bounds(constraints, latency)
    refs = []
    if mode == "offline":
        chart = plots.Chart("Throughput vs load", load_axis(points), "Throughput (infer/s)")
        x = LOAD
    else:
        label = percentile_label(latency)
        chart = plots.Chart(f"Throughput vs {label} latency", f"{label} latency (ms)", "Throughput (infer/s)")
        x = latency
        if limits["budget"] is not None:
            refs.append(plots.RefLine(f"latency budget {limits['budget']:g} ms", limits["budget"], vertical=True))
    if limits["min_throughput"] is not None:
        refs.append(plots.RefLine(f"min throughput {limits['min_throughput']:g} infer/s", limits["min_throughput"]))
    chart.series = [series(config_label(r), curve(points, r.variant, r.best.batch_size), x, "throughput") for r in rows]
    chart.refs = refs
    return chart


def memory_chart(rows: Sequence[RankedConfig], points: Sequence[Measurement], metric: str, known) -> plots.Chart:
    chart = plots.Chart("Memory vs p99 latency", "p99 latency (ms)", known.heading(metric))
    chart.series = [series(config_label(r), curve(points, r.variant, r.best.batch_size), "latency_p99_ms", metric) for r in rows]
    return chart


def chosen_charts(rows, points, specs, constraints, known, width: float, compared: str) -> list:
    """One section per chart of the ``plots`` key: a line per shown config, captioned with
    what it plots (the chart's own text is an image)."""
    parts = []
    for i, spec in enumerate(specs):
        lines = [(config_label(r), curve(points, r.variant, None if spec.x == BATCH_SIZE else r.best.batch_size)) for r in rows]
        caption = configured.caption(spec, points, known) + (" " + INTERVALS_NOTE if i == 0 else "")
        parts.append(pdf.section(f"{spec.title} ({compared})" if i == 0 else spec.title,
                                 pdf.chart(configured.chart(spec, lines, constraints, known), width), pdf.para(caption, pdf.SMALL)))  # fmt: skip
    return parts


def table_rows(rows: Sequence[RankedConfig], memory: Optional[str], utilization: Optional[str]) -> List[List[str]]:
    result = []
    for r in rows:
        m = r.best
        status = "meets" if r.passes else "misses " + ", ".join(r.misses)
        result.append([
            str(r.rank), config_label(r), *params_text(m.variant_params), f"{m.load} b{m.batch_size}",
            pdf.num_ci(m.throughput, m.throughput_ci, 1), pdf.num_ci(m.latency_p99_ms, m.latency_p99_ci_ms),
            pdf.num(m.value(memory) if memory else None, 1), pdf.num(m.value(utilization) if utilization else None, 1),
            status + (" (tied)" if r.tied_with else ""),
        ])  # fmt: skip
    return result


def story(model: str, ranking: Sequence[RankedConfig], points: Sequence[Measurement], context: ReportContext, overall: bool = False) -> list:
    """A model's summary; with ``overall``, the summary of the best configs across all
    models (``ranking`` is then :attr:`ReportContext.overall`, already cut to its length)."""
    constraints = list(context.goals_of("" if overall else model)[1])
    mode = context.mode
    known = context.metrics
    rows = list(ranking) if overall else shown(ranking, context.num_configs_per_model)
    width = pdf.text_width()
    chart_width = width * 0.72  # both charts and the verdict fit on the first page
    memory, utilization = resources.memory_metric(points), resources.utilization_metric(points)

    heading = "Summary: best configs across all models" if overall else f"Summary: {model}"
    parts: list = [pdf.para(heading, pdf.TITLE), *pdf.run_facts(context, model="" if overall else model), pdf.spacer()]
    latency = context.latency_metric if overall else context.latency_of(model)
    judged = "" if latency == "latency_p99_ms" else (
        f" The latency budget and latency constraints read the {percentile_label(latency)} latency (percentile {percentile_label(latency)[1:]})."
    )
    said = overall_verdict(ranking, constraints) if overall else verdict(model, ranking, constraints, latency)
    parts.append(pdf.section("Verdict", pdf.para(said + judged)))
    focus = "throughput at each load" if mode == "offline" else f"throughput against {percentile_label(latency)} latency"
    top = len(rows) if overall else min(len(ranking), context.num_configs_per_model)
    compared = f"The best {top} configs" + (" of all models, ranked together" if overall else " and the default" if len(rows) > top else "")
    if context.plots:  # the user's choice of charts (Model Analyzer's plots key)
        parts.extend(chosen_charts(rows, points, context.plots, constraints, known, chart_width, compared))
    else:
        parts.append(pdf.section(
            f"{compared} ({mode} mode: {focus})",
            pdf.chart(plots.lines(main_chart(rows, points, mode, constraints, latency)), chart_width),
            pdf.para(INTERVALS_NOTE, pdf.SMALL),
        ))  # fmt: skip
        if memory:
            parts.append(pdf.section("Memory", pdf.chart(plots.lines(memory_chart(rows, points, memory, known)), chart_width)))
        else:
            parts.append(pdf.section("Memory", pdf.para("No memory metric was recorded (no GPU or server-process collector ran).", pdf.SMALL)))
    parts.extend(tokens.summary_section(rows, points, constraints, width))  # a streamed model's token charts and figures
    header = ["#", "Config", "Instances", "Max batch", "Dynamic batching", "Load", known.short("throughput"), known.short("latency_p99_ms"),
              known.heading(memory) if memory else "Memory", known.heading(utilization) if utilization else "Utilization",
              "Constraints"]  # fmt: skip
    best = [i for i, r in enumerate(rows) if r is ranking[0] and r.passes]
    parts.append(pdf.section("Configs at their chosen load", pdf.table(header, table_rows(rows, memory, utilization), width, best)))
    if ranking and not overall:  # a pipeline: where the best config's time goes, stage by stage
        parts.extend(stages.section(pdf, ranking[0].best, width, f"Pipeline stages of {ranking[0].variant} at {ranking[0].best.load}"))
    parts.append(pdf.para(
        "Each config is shown at the load point the ranking chose for it; every measured point is in "
        "results/metrics-model-inference.csv, and 'tsweep report --report-model-configs NAME' details one config.",
        pdf.SMALL,
    ))  # fmt: skip
    failed = [] if overall else [m for m in points if m.status == "failed"]
    if failed:
        parts.append(pdf.section(
            f"Failed points ({len(failed)})",
            pdf.table(["Config", "Load", "Why"], failed_rows(failed), width, []),
        ))  # fmt: skip
    return parts


#: Longest error text shown in the table; the CSV has the whole of it.
ERROR_CHARS = 300


def failed_rows(failed: Sequence[Measurement]) -> List[List[str]]:
    """Which points failed and why: a server crash, a variant Triton would not load, errors."""
    return [
        [m.variant, f"{m.load} b{m.batch_size}", m.error if len(m.error) <= ERROR_CHARS else m.error[: ERROR_CHARS - 3] + "..."]
        for m in failed
    ]


#: The folder of the summary across all models (``num_top_model_configs``): Model Analyzer's name.
OVERALL = "Best Configs Across All Models"

#: Model Analyzer's key, declared by this plugin (tsweep_config_keys).
SKIP = ConfigKey("skip_summary_reports", False, "Write no summary PDFs (the CSVs and the console ranking stay).", commands=("profile", "analyze"))


class SummaryReporter:
    def __init__(self, skip: bool = False):
        self.skip = skip

    def write(self, measurements, ranking, export_dir: Path, context):
        if self.skip:
            return []
        measurements = repeats.merge(measurements, context.metrics)  # re-measured points count once, as in the ranking
        by_model: Dict[str, List[RankedConfig]] = defaultdict(list)
        for r in ranking:
            by_model[r.model].append(r)
        written = []
        for model, ranked in by_model.items():
            path = inside(Path(export_dir), "reports", "summaries", model, "result_summary.pdf")
            points = [m for m in measurements if m.model == model]
            written.append(pdf.write_pdf(path, f"tsweep summary: {model}", story(model, ranked, points, context)))
        if context.overall:
            path = inside(Path(export_dir), "reports", "summaries", OVERALL, "result_summary.pdf")
            written.append(pdf.write_pdf(path, f"tsweep summary: {OVERALL}", story(OVERALL, context.overall, measurements, context, overall=True)))
        if context.combinations:  # models profiled together: the set's own summary
            written.append(together.write_summary(measurements, export_dir, context))
        return written


@hookimpl
def tsweep_config_keys():
    return [SKIP]


@hookimpl
def tsweep_reporters(options):
    return {"summary": SummaryReporter(skip=options.get(SKIP.name, False))}
