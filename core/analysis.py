"""Ranking and reporting from the results store: shared by profile, analyze and report.

Nothing here measures; it reads the store, asks the ranker plugin for an order and hands
the result to reporter plugins. That is why ``analyze`` needs no server.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

from tsweep import repeats
from tsweep.catalogue import Catalogue
from tsweep.comboranking import RankedCombination, rank_combinations
from tsweep.judge import TIED, UNSURE, Judge
from tsweep.records import MetricInfo, RankedConfig
from tsweep.reportcontext import ReportContext
from tsweep.run import Run
from tsweep.store import ResultsStore


def known_metrics(extra: Sequence[MetricInfo]) -> Catalogue:
    """The run's metric catalogue: the core's metrics, then ``extra``, what plugins describe
    through ``tsweep_metric_infos`` (``hooks.metric_infos()``), so no server is needed."""
    return Catalogue(extra)


def rank(store: ResultsStore, run: Run, models: Sequence[str]) -> Dict[str, List[RankedConfig]]:
    """The ranking of each model's variants, best first.

    Re-measured points count as one point (their looks combined), and the Judge that
    decides constraints and ties is built from the same rows.
    """
    result = {}
    for model in models:
        variants = store.variants(model)
        result[model] = _ranked(store.measurements(model), variants, run, model)
    return result


def rank_overall(store: ResultsStore, run: Run, models: Sequence[str]) -> List[RankedConfig]:
    """All models' configs in one ranking (``num_top_model_configs``), best first."""
    rows = [m for model in models for m in store.measurements(model)]
    return _ranked(rows, store.variants(), run, None)[: run.config.num_top_model_configs]


def rank_together(store: ResultsStore, run: Run, models: Sequence[str]) -> List[RankedCombination]:
    """The combinations of ``models`` profiled together, best first (empty when the store
    holds none: the models were profiled one after the other)."""
    rows = [m for model in models for m in store.measurements(model) if m.combination]
    return rank_combinations(rows, run, list(models)) if rows else []


def _ranked(rows, variants, run: Run, model: Optional[str]) -> List[RankedConfig]:
    """``model``'s ranking by its goals (None: all models together, by the global goals)."""
    points = repeats.merge(rows, run.catalogue)
    defaults = [v["name"] for v in variants if v["is_default"]]
    wanted = run.goals_of(model)
    judge = Judge.from_history(wanted.goal, rows)
    ranking = run.ranker.rank(points, dict(wanted.objectives), list(wanted.constraints), run.catalogue, defaults, judge)
    return mark_ties([with_aliases(r, variants) for r in ranking], judge)


def mark_ties(ranking: List[RankedConfig], judge: Judge) -> List[RankedConfig]:
    """Name the configs that meet the constraints and that the Judge cannot rank below the
    winner (tied, or not separated yet): the order between them is chance."""
    if not ranking or not ranking[0].passes:
        return ranking
    top = ranking[0]
    tied = [r for r in ranking[1:] if r.passes and judge.compare(top.best, r.best) in (TIED, UNSURE)]
    if not tied:
        return ranking
    names = {r.variant for r in tied}
    return [
        replace(r, tied_with=tuple(t.variant for t in tied)) if r is top
        else replace(r, tied_with=(top.variant,)) if r.variant in names else r
        for r in ranking
    ]  # fmt: skip


def with_aliases(ranked: RankedConfig, variants: Sequence[Mapping[str, object]]) -> RankedConfig:
    """Name every variant of the same model that is the same config as the measured one
    (measured only once); another model's variant with the same config text is not."""
    variants = [v for v in variants if v["model"] == ranked.model]
    digest = next((v["digest"] for v in variants if v["name"] == ranked.variant), None)
    same = tuple(str(v["name"]) for v in variants if v["digest"] == digest and v["name"] != ranked.variant)
    is_default = ranked.is_default or any(v["is_default"] for v in variants if v["name"] in same)
    return replace(ranked, aliases=same, is_default=is_default)


def measured_name(store: ResultsStore, name: str) -> Optional[str]:
    """The variant whose rows hold ``name``'s results (itself, or its identical twin)."""
    variants = store.variants()
    digest = next((v["digest"] for v in variants if v["name"] == name), None)
    measured = {m.variant for m in store.measurements()}
    return next((str(v["name"]) for v in variants if v["digest"] == digest and v["name"] in measured), None)


def top_configs(rankings: Mapping[str, List[RankedConfig]], n: int) -> Dict[str, str]:
    """The configs ``profile`` writes detailed reports for, as Model Analyzer does after
    profiling: each model's best ``n`` (``num_configs_per_model``), as ``{name: name}`` (the
    form of :attr:`ReportContext.report_model_configs`; ranked names hold their own rows)."""
    return {r.variant: r.variant for ranking in rankings.values() for r in ranking[:n]}


def report_context(
    store: ResultsStore, run: Run, report_model_configs: Optional[Mapping[str, str]] = None, overall: Sequence[RankedConfig] = (),
    combinations: Sequence[RankedCombination] = (),
) -> ReportContext:
    """What reporters get besides the rows: where the results were measured (recorded by
    ``profile``, so ``analyze`` elsewhere still names the right machine), the idle server's
    metrics, what the user asked for, and how to present it."""
    return ReportContext(
        metrics=run.catalogue,
        server=store.meta("server") or "",
        machine=json.loads(store.meta("machine") or "{}"),
        mode=run.config.mode,
        objectives=dict(run.objectives),
        constraints=tuple(run.constraints),
        model_goals={m: (dict(g.objectives), tuple(g.constraints)) for m, g in run.model_goals.items()},
        num_configs_per_model=run.config.num_configs_per_model,
        report_model_configs=dict(report_model_configs or {}),
        server_baseline=store.server_baseline(),
        latency_metric=run.goal.latency_metric,
        latency_metrics={m: g.goal.latency_metric for m, g in run.model_goals.items()},
        overall=tuple(overall),
        plots=run.plots,
        config_plots=dict(run.config_plots),
        output_fields=dict(run.output_fields),
        measured_later=store.measured_later(),
        clients=tuple(store.clients()),
        combinations=tuple(combinations),
        together=tuple(m.model for m in combinations[0].rows) if combinations else (),
    )


def write_reports(
    store: ResultsStore,
    rankings: Mapping[str, List[RankedConfig]],
    run: Run,
    report_model_configs: Optional[Mapping[str, str]] = None,
    overall: Sequence[RankedConfig] = (),
    combinations: Sequence[RankedCombination] = (),
) -> List[Path]:
    """Run the chosen reporters; returns the files written. ``report_model_configs`` is
    ``{config: measured variant}``: those ``tsweep report`` was asked for, or the best
    configs at the end of ``profile`` (:func:`top_configs`); ``overall`` is
    :func:`rank_overall`'s (``num_top_model_configs``), for the summary across all models."""
    flat = [r for ranking in rankings.values() for r in ranking]
    measurements = store.measurements()
    context = report_context(store, run, report_model_configs, overall, combinations)
    written: List[Path] = []
    for reporter in run.reporters.values():
        written.extend(reporter.write(measurements, flat, Path(run.config.export_path), context))
    return written
