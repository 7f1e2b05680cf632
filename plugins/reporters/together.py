"""Reports of models profiled together (:attr:`ReportContext.combinations` is not empty).

The summary, detailed and CSV reporters call these; one place says how a combination is
shown, so the three agree:

* ``results/metrics-combinations.csv``: a row per combination at its chosen load step: its
  rank, name and combination point id (the ``Combination`` column of the per-point CSV), the
  weighted score and whether every model meets its constraints, then every model's config,
  load, throughput and p99 (with their 95% intervals), score, weighting and misses.
* ``reports/summaries/Models Profiled Together/result_summary.pdf``: the verdict for the set,
  the chosen combination with every model's figures (measured in the same windows), the
  best combinations compared, and the combination points that failed, with why.
* ``reports/detailed/<combination>/detailed_report.pdf`` for each of the best
  ``num_configs_per_model`` combinations: every load step measured, per model.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Sequence

from tsweep.files import inside
from tsweep.plugin import ReportContext
from tsweep.records import Measurement
from tsweep.verdict import describe_constraints, together_verdict

from tsweep.plugins.reporters import pdfparts as pdf
from tsweep.plugins.reporters import plots

#: The summary's folder, beside each model's own.
FOLDER = "Models Profiled Together"
CSV_NAME = "metrics-combinations.csv"


def folder_name(name: str) -> str:
    """``add_sub_config_1+mlp_config_0``: a combination's detailed report folder."""
    return name.replace(" + ", "+")


def csv_rows(context: ReportContext) -> tuple:
    """``(header, rows)`` of :data:`CSV_NAME`."""
    models = list(context.together)
    header = ["Rank", "Combination", "Combination Point", "Score", "Satisfies Constraints"]
    for m in models:
        header += [f"{m} Model Config", f"{m} Load Kind", f"{m} Load Value", f"{m} Throughput (infer/sec)",
                   f"{m} Throughput 95% CI (+/- infer/sec)", f"{m} p99 Latency (ms)", f"{m} p99 Latency 95% CI (+/- ms)",
                   f"{m} Score", f"{m} Weighting", f"{m} Misses"]  # fmt: skip
    rows = []
    for c in context.combinations:
        row = [c.rank, c.name, c.point, c.score, "yes" if c.passes else "no"]
        for m in c.rows:
            misses = ", ".join(f"{k} by {100 * v:.0f}%" for k, v in sorted(c.misses.get(m.model, {}).items()))
            row += [m.variant, m.load_kind, f"{m.load_value:g}", m.throughput, m.throughput_ci, m.latency_p99_ms, m.latency_p99_ci_ms,
                    c.scores.get(m.model), c.weights.get(m.model, 1.0), misses]  # fmt: skip
        rows.append(row)
    return header, rows


def _figures_rows(c, context: ReportContext) -> List[List[str]]:
    return [
        [m.model, m.variant, str(m.load), pdf.num_ci(m.throughput, m.throughput_ci, 1), pdf.num_ci(m.latency_p99_ms, m.latency_p99_ci_ms),
         pdf.num(m.queue_ms), pdf.num(m.compute_infer_ms), str(m.windows), f"{c.scores.get(m.model, 0.0):.3f}",
         f"{c.weights.get(m.model, 1.0):g}", describe_constraints(context.goals_of(m.model)[1]),
         "meets" if m.model not in c.misses else "misses " + ", ".join(sorted(c.misses[m.model]))]
        for m in c.rows
    ]  # fmt: skip


FIGURES_HEADER = ["Model", "Config", "Load", "Throughput (infer/s)", "p99 (ms)", "Queue (ms)", "Compute (ms)", "Windows",
                  "Score", "Weighting", "Constraints", "Verdict"]  # fmt: skip


def summary_story(measurements: Sequence[Measurement], context: ReportContext) -> list:
    models = list(context.together)
    ranking = list(context.combinations)
    width = pdf.text_width(pdf.LANDSCAPE)
    parts: list = [pdf.para(f"Summary: {', '.join(models)} profiled together", pdf.TITLE), *pdf.run_facts(context, include_goals=False)]
    parts.append(pdf.labelled("Each model's goals", "; ".join(
        f"{m}: {', '.join(f'{k} (weight {v:g})' for k, v in context.goals_of(m)[0].items()) or 'no objectives'}, "
        f"constraints {describe_constraints(context.goals_of(m)[1])}" for m in models), pdf.SMALL))  # fmt: skip
    parts.append(pdf.spacer())
    parts.append(pdf.section("Verdict for the set", pdf.para(together_verdict(ranking, models))))
    best = ranking[0]
    parts.append(pdf.section(
        f"The chosen combination: {best.name} (combination point {best.point})",
        pdf.table(FIGURES_HEADER, _figures_rows(best, context), width, []),
        pdf.para(
            "Every model's figures come from the same measurement windows, all models loaded and under load at once; "
            "± figures are 95% confidence intervals. A model's score is its objectives normalised to the best value "
            "that model reached in any combination; the combination's score is their mean weighted by weighting.", pdf.SMALL),
    ))  # fmt: skip
    top = ranking[: max(context.num_configs_per_model, 1) * 2]
    chart = plots.Chart("Each model's throughput in the best combinations", "combination rank", "Throughput (infer/s)")
    for i, model in enumerate(models):
        chart.series.append(plots.Series(model, [c.rank for c in top], [c.rows[i].throughput for c in top],
                                         yerr=[c.rows[i].throughput_ci for c in top]))  # fmt: skip
    header = ["#", "Combination", "Point", *[f"{m} infer/s" for m in models], *[f"{m} p99 ms" for m in models], "Score", "Constraints"]
    rows = [[str(c.rank), c.name, c.point, *[pdf.num_ci(m.throughput, m.throughput_ci, 1) for m in c.rows],
             *[pdf.num_ci(m.latency_p99_ms, m.latency_p99_ci_ms) for m in c.rows], f"{c.score:.3f}",
             "meets" if c.passes else "misses"] for c in top]  # fmt: skip
    parts.append(pdf.section(
        f"The best {len(top)} of {len(ranking)} combinations measured, each at its chosen load step",
        pdf.chart(plots.lines(chart), width * 0.6), pdf.table(header, rows, width, [0] if best.passes else []),
    ))  # fmt: skip
    failed = [m for m in measurements if m.combination and m.status == "failed" and m.model in models]
    if failed:
        parts.append(pdf.section(f"Failed rows of combination points ({len(failed)})", pdf.table(
            ["Point", "Model", "Config", "Load", "Why"],
            [[m.combination, m.model, m.variant, str(m.load), m.error[:300]] for m in failed], width, [],
        )))  # fmt: skip
    parts.append(pdf.para(f"Every row is in results/metrics-model-inference.csv (its Combination column) and each "
                          f"combination at its chosen step in results/{CSV_NAME}.", pdf.SMALL))  # fmt: skip
    return parts


def detailed_story(c, measurements: Sequence[Measurement], context: ReportContext) -> list:
    """Every load step of combination ``c``: each model's figures, step by step."""
    width = pdf.text_width(pdf.LANDSCAPE)
    variants = set(c.variants)
    points = {}
    for m in measurements:
        if m.combination and m.variant in variants:
            points.setdefault(m.combination, []).append(m)
    steps = [rows for rows in points.values() if {m.variant for m in rows} == variants]
    parts: list = [pdf.para(f"Detailed report: {c.name}", pdf.TITLE), *pdf.run_facts(context, include_goals=False), pdf.spacer()]
    parts.append(pdf.para(
        f"Rank {c.rank} of the combinations of {', '.join(context.together)} profiled together; {len(steps)} load steps measured, "
        f"each with every model loaded and under its own load in the same windows. Chosen step: combination point {c.point}, "
        f"score {c.score:.3f}, {'every model meets its constraints' if c.passes else 'some model misses its constraints'}."
    ))  # fmt: skip
    chart = plots.Chart("Each model's throughput at each load step", "the model's own load", "Throughput (infer/s)")
    for model in context.together:
        mine = sorted((m for rows in steps for m in rows if m.model == model and m.status != "failed"), key=lambda m: m.load_value)
        chart.series.append(plots.Series(model, [m.load_value for m in mine], [m.throughput for m in mine], yerr=[m.throughput_ci for m in mine]))
    parts.append(pdf.section("Throughput along the load steps", pdf.chart(plots.lines(chart), width * 0.6)))
    header = ["Point", "Model", "Config", "Load", "Status", "Throughput (infer/s)", "p99 (ms)", "p50 (ms)", "Queue (ms)", "Compute (ms)", "Windows"]
    rows = [
        [m.combination, m.model, m.variant, str(m.load), m.status, pdf.num_ci(m.throughput, m.throughput_ci, 1),
         pdf.num_ci(m.latency_p99_ms, m.latency_p99_ci_ms), pdf.num(m.latency_p50_ms), pdf.num(m.queue_ms), pdf.num(m.compute_infer_ms), str(m.windows)]
        for found in steps for m in found
    ]  # fmt: skip
    parts.append(pdf.section("Every measured load step, every model", pdf.table(header, rows, width, [])))
    parts.append(pdf.section("The chosen step", pdf.table(FIGURES_HEADER, _figures_rows(c, context), width, [])))
    return parts


def write_summary(measurements: Sequence[Measurement], export_dir: Path, context: ReportContext) -> Path:
    path = inside(Path(export_dir), "reports", "summaries", FOLDER, "result_summary.pdf")
    return pdf.write_pdf(path, f"tsweep summary: {FOLDER}", summary_story(measurements, context), pdf.LANDSCAPE)


def write_detailed(measurements: Sequence[Measurement], export_dir: Path, context: ReportContext) -> List[Path]:
    written = []
    for c in list(context.combinations)[: context.num_configs_per_model]:
        path = inside(Path(export_dir), "reports", "detailed", folder_name(c.name), "detailed_report.pdf")
        written.append(pdf.write_pdf(path, f"tsweep detailed report: {c.name}", detailed_story(c, measurements, context), pdf.LANDSCAPE))
    return written
