"""What a reporter is told besides the measurements and the ranking."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import FrozenSet, Mapping, Tuple

from tsweep.catalogue import Catalogue
from tsweep.comboranking import RankedCombination
from tsweep.outputfields import OutputField
from tsweep.plotspec import PlotSpec
from tsweep.records import Constraint, RankedConfig


@dataclass(frozen=True)
class ReportContext:
    """The run a report describes, typed (the ``context`` of :meth:`Reporter.write`).

    ``metrics`` is the run's metric catalogue (titles, units, directions, how looks
    combine). ``server`` and ``machine`` (``{"cpu", "cpu_count", "gpus", "os"}``) say where
    the results were measured, as recorded by ``profile`` (so ``analyze`` on another
    machine still names the right one); empty when not recorded. ``mode`` is ``online``
    (present latency) or ``offline`` (present throughput). ``objectives`` (``{metric:
    weight}``), ``constraints`` and ``num_configs_per_model`` are what the user asked for.
    ``report_model_configs`` are the configs to detail: ``{config: the variant whose rows
    hold its results}`` (``tsweep report`` may name an identical twin of the measured one;
    ``profile`` passes each model's best ``num_configs_per_model``).
    ``server_baseline`` is the idle server's ``{metric: value}``, empty when no collector
    took one. ``model_goals`` holds ``(objectives, constraints)`` of the models that have
    their own (:meth:`goals_of` picks). ``latency_metric`` is the latency the verdicts read
    (``latency_p99_ms`` unless ``percentile`` says another), ``latency_metrics`` the models'
    own (:meth:`latency_of` picks). ``overall`` is the best ``num_top_model_configs``
    configs of all models ranked together by the global goals (empty: not asked for).
    ``plots`` are the charts the ``plots`` key asks for (empty: each report's own);
    ``config_plots`` a detailed report's own (:meth:`plots_of` picks). ``output_fields``
    are the CSV columns the ``*_output_fields`` keys chose, by file (``inference``,
    ``gpu``, ``server``; a file not named keeps tsweep's columns). ``measured_later`` holds
    the keys of the points measured after the search (``tsweep report --complete-load-curves``).
    """

    metrics: Catalogue = field(default_factory=lambda: Catalogue(()))
    server: str = ""
    machine: Mapping[str, object] = field(default_factory=dict)
    mode: str = "online"
    objectives: Mapping[str, float] = field(default_factory=dict)
    constraints: Tuple[Constraint, ...] = ()
    num_configs_per_model: int = 3
    report_model_configs: Mapping[str, str] = field(default_factory=dict)
    server_baseline: Mapping[str, float] = field(default_factory=dict)
    model_goals: Mapping[str, Tuple[Mapping[str, float], Tuple[Constraint, ...]]] = field(default_factory=dict)
    #: The clients that measured the points (``native http``, ``tritonclient http (TLS)``...).
    clients: Tuple[str, ...] = ()
    latency_metric: str = "latency_p99_ms"
    latency_metrics: Mapping[str, str] = field(default_factory=dict)
    overall: Tuple[RankedConfig, ...] = ()
    plots: Tuple[PlotSpec, ...] = ()
    config_plots: Mapping[str, Tuple[PlotSpec, ...]] = field(default_factory=dict)
    output_fields: Mapping[str, Tuple[OutputField, ...]] = field(default_factory=dict)
    measured_later: FrozenSet[str] = frozenset()
    #: Models profiled together: their combinations, best first (empty otherwise), and the
    #: models in their listed order (:mod:`tsweep.comboranking`).
    combinations: Tuple[RankedCombination, ...] = ()
    together: Tuple[str, ...] = ()

    def latency_of(self, model: str) -> str:
        """The latency metric ``model``'s verdict read (its percentile)."""
        return self.latency_metrics.get(model, self.latency_metric)

    def goals_of(self, model: str) -> Tuple[Mapping[str, float], Tuple[Constraint, ...]]:
        """``(objectives, constraints)`` that ``model`` was ranked by."""
        return self.model_goals.get(model, (self.objectives, self.constraints))

    def plots_of(self, config: str) -> Tuple[PlotSpec, ...]:
        """The charts ``config``'s detailed report draws besides its fixed ones."""
        return self.config_plots.get(config, self.plots)
