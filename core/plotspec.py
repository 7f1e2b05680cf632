"""Model Analyzer's ``plots`` key: which charts the reports draw, checked once.

A plot is ``{name: {title, x_axis, y_axis, monotonic}}`` with Model Analyzer's metric tags
(``perf_latency_p99``, ``perf_throughput``, ``gpu_used_memory``, ...; tsweep's own names work
too) and, as an axis, the load (``concurrency``, ``request_rate``) or the client batch size
(``batch_size``). Here the tags become tsweep's names, checked against the run's metric
catalogue, so a typo stops the command with one line (and a did-you-mean) before anything is
written; the reporters draw :class:`PlotSpec` values and never see a tag.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Tuple

from tsweep.catalogue import Catalogue
from tsweep.config import METRIC_ALIASES
from tsweep.configvalues import KeyRule, coerce
from tsweep.errors import UsageError

#: The x or y of a chart that is not a metric: the offered load, the client batch size.
LOAD = "load"
BATCH_SIZE = "batch_size"
#: Model Analyzer's perf_analyzer parameters that may be an axis, as tsweep names them.
AXIS_TAGS = {"concurrency": LOAD, "request_rate": LOAD, "batch_size": BATCH_SIZE}
#: What one plot's mapping may hold.
PLOT_KEYS = ("title", "x_axis", "y_axis", "monotonic")


@dataclass(frozen=True)
class PlotSpec:
    """One chart: ``x`` and ``y`` are tsweep's names (a metric of the catalogue,
    :data:`LOAD` or :data:`BATCH_SIZE`); ``monotonic`` keeps, along x, only the points whose
    y is higher than every point before them (Model Analyzer's rule)."""

    name: str
    title: str
    x: str
    y: str
    monotonic: bool = False


def parse_plots(value: Any, known: Catalogue, where: str = "plots") -> Tuple[PlotSpec, ...]:
    """``value`` (the YAML mapping) as plot specs, in the order given; one line per problem."""
    if not value:
        return ()
    if not isinstance(value, dict):
        raise UsageError(f"{where} must be a mapping of plot names to {{title, x_axis, y_axis, monotonic}}, got {value!r}")
    specs = []
    for name, body in value.items():
        if not isinstance(body, dict):
            raise UsageError(f"plot {name!r} in {where} must be a mapping with {', '.join(PLOT_KEYS)}, got {body!r}")
        unknown = sorted(set(map(str, body)) - set(PLOT_KEYS))
        if unknown:
            raise UsageError(f"plot {name!r} in {where} has unknown key {unknown[0]!r}: use {', '.join(PLOT_KEYS)}")
        for axis in ("x_axis", "y_axis"):
            if axis not in body:
                raise UsageError(f"plot {name!r} in {where} needs {axis}: a metric such as perf_latency_p99 or perf_throughput")
        monotonic = coerce(KeyRule(f"monotonic of plot {name}", "bool"), body.get("monotonic", False))
        x, y = (axis_name(body[a], known, f"{a} of plot {name!r} in {where}") for a in ("x_axis", "y_axis"))
        specs.append(PlotSpec(str(name), str(body.get("title") or name), x, y, monotonic))
    return tuple(specs)


def axis_name(tag: Any, known: Catalogue, where: str) -> str:
    """tsweep's name for an axis tag (Model Analyzer's or tsweep's), or one line saying which
    tag was meant."""
    tag = str(tag)
    name = AXIS_TAGS.get(tag) or METRIC_ALIASES.get(tag, tag)
    if name in (LOAD, BATCH_SIZE) or name in known:
        return name
    raise UsageError(f"unknown metric {tag!r} for {where}: {did_you_mean(tag, [*AXIS_TAGS, *METRIC_ALIASES, *known])}")


def did_you_mean(given: str, choices) -> str:
    """'did you mean 'x'?' for the closest choice, else where the names are listed."""
    close = difflib.get_close_matches(given, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else "see docs/metrics.md for the metric names"


def parse_config_plots(per_config: Mapping[str, Any], known: Catalogue) -> Dict[str, Tuple[PlotSpec, ...]]:
    """The ``plots`` of each entry of report_model_configs' mapping form."""
    return {name: parse_plots(plots, known, f"report_model_configs.{name}.plots") for name, plots in per_config.items() if plots}
