"""Words for results: the one-sentence verdict and the constraint description.

Pure functions over rankings, shared by the CLI and the reporters so that every output
states the choice the same way.
"""
from __future__ import annotations

from typing import List, Optional, Sequence

from tsweep.records import Constraint, Measurement, RankedConfig

_PERCENTILES = (50, 90, 95, 99)
_LABELS = {"throughput": "throughput", **{f"latency_p{p}_ms": f"p{p} latency" for p in _PERCENTILES}}
_UNITS = {"throughput": " infer/s", **{f"latency_p{p}_ms": " ms" for p in _PERCENTILES}}


def percentile_label(latency_metric: str) -> str:
    """'p95' for ``latency_p95_ms``: how outputs name the latency a verdict read."""
    return latency_metric[len("latency_"):-len("_ms")]


def latency_figure(m, latency_metric: str = "latency_p99_ms") -> str:
    """'p95 1.23 ms' (the p99 with its 95% interval): the latency a verdict read, of one point."""
    interval = plus_minus(m.latency_p99_ci_ms, 2) if latency_metric == "latency_p99_ms" else ""
    value = m.value(latency_metric)
    return f"{percentile_label(latency_metric)} {value:.2f}{interval} ms" if value is not None else f"{percentile_label(latency_metric)} ? ms"


def describe_constraints(constraints: Sequence[Constraint]) -> str:
    parts = []
    for c in constraints:
        label, unit = _LABELS.get(c.metric, c.metric), _UNITS.get(c.metric, "")
        if c.min is not None:
            parts.append(f"{label} >= {c.min:g}{unit}")
        if c.max is not None:
            parts.append(f"{label} <= {c.max:g}{unit}")
    return ", ".join(parts) or "none"


def default_of(ranking: Sequence[RankedConfig]) -> Optional[RankedConfig]:
    return next((r for r in ranking if r.is_default), None)


def shown(ranking: Sequence[RankedConfig], limit: Optional[int]) -> List[RankedConfig]:
    """The configs a summary shows: the best ``limit`` and, always, the default to compare with."""
    rows = list(ranking if limit is None else ranking[:limit])
    default = default_of(ranking)
    if default is not None and default not in rows:
        rows.append(default)
    return rows


def plus_minus(half_width: Optional[float], digits: int) -> str:
    """`` +-x`` for a 95% interval's half-width; `` +-?`` when one window left none; empty
    when the row has no interval at all."""
    if half_width is None:
        return ""
    if half_width == float("inf"):
        return " \u00b1?"
    return f" \u00b1{half_width:.{digits}f}"


def point_text(m: Measurement, latency_metric: str = "latency_p99_ms") -> str:
    """A point's throughput and its latency at the percentile the verdict read (p99 by
    default), with their 95% intervals, at which load."""
    return (
        f"{m.throughput:.1f}{plus_minus(m.throughput_ci, 1)} infer/s at {latency_figure(m, latency_metric)} "
        f"({m.load}, client batch {m.batch_size}; 95% intervals)"
    )


def overall_verdict(ranking: Sequence[RankedConfig], constraints: Sequence[Constraint]) -> str:
    """``num_top_model_configs``: the best config of all models ranked together, by the
    run's global objectives and constraints (no default to compare with: each model has one)."""
    if not ranking:
        return "No successful measurement of any model."
    best = ranking[0]
    if not best.passes:
        return (
            f"No config of any model surely meets the constraints ({describe_constraints(constraints)}); "
            f"the closest is {best.variant} of model {best.model}: {point_text(best.best)}."
        )
    return f"Best config across all models: {best.variant} of model {best.model}, {point_text(best.best)}."


def verdict(model: str, ranking: Sequence[RankedConfig], constraints: Sequence[Constraint], latency_metric: str = "latency_p99_ms") -> str:
    """One sentence: which config, its throughput and its latency at the percentile the
    verdict read (p99 by default, with their 95% intervals) at which load, the gain, and the
    configs it could not be told apart from."""
    if not ranking:
        return f"No successful measurement of {model}: see the errors above and the server log."
    best = ranking[0]
    m = best.best
    point = point_text(m, latency_metric)
    if not best.passes:
        return (
            f"No config of {model} surely meets the constraints ({describe_constraints(constraints)}, judged at the "
            f"unfavourable end of each 95% interval); the closest is {best.variant}: {point}."
        )
    default = default_of(ranking)
    gain = ""
    if default is not None and default.variant != best.variant and default.best.throughput:
        ratio = m.throughput / default.best.throughput
        gain = f", {ratio:.2f}x the throughput of the default config {default.variant} ({default.best.throughput:.1f} infer/s)"
    elif default is not None and default.variant == best.variant:
        gain = ", which is the default config"
    twins = f" It is the same config as {', '.join(best.aliases)}, measured once." if best.aliases else ""
    ties = (
        f" Tied with {', '.join(best.tied_with)}: at 95% confidence the difference is within the measurement uncertainty, so either will do."
        if best.tied_with else ""
    )  # fmt: skip
    return f"Best config for {model}: {best.variant}, {point}{gain}.{twins}{ties}"


def together_verdict(ranking: Sequence, models: Sequence[str]) -> str:
    """One sentence for models profiled together (a :mod:`tsweep.comboranking` ranking):
    the chosen combination, every model's figures in it (same windows), and whether every
    model's own constraints hold there."""
    names = " and ".join(models)
    if not ranking:
        return f"No combination of {names} was measured successfully together: see the failed points above."
    best = ranking[0]
    figures = "; ".join(f"{m.model} {point_text(m, 'latency_p99_ms')}" for m in best.rows)
    weights = ", ".join(f"{m} {w:g}" for m, w in best.weights.items())
    if not best.passes:
        missed = ", ".join(f"{m} misses {', '.join(sorted(found))}" for m, found in best.misses.items())
        return (
            f"No combination of {names} meets every model's constraints together (judged at the unfavourable end of each 95% "
            f"interval); the closest is {best.name} ({missed}): {figures}."
        )
    return (
        f"Best combination of {names} profiled together: {best.name}, every model's constraints met; {figures}; "
        f"weighted score {best.score:.3f} (weighting {weights})."
    )
