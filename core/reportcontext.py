"""What a reporter is told besides the measurements and the ranking."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Tuple

from tsweep.catalogue import Catalogue
from tsweep.records import Constraint


@dataclass(frozen=True)
class ReportContext:
    """The run a report describes, typed (the ``context`` of :meth:`Reporter.write`).

    ``metrics`` is the run's metric catalogue (titles, units, directions, how looks
    combine). ``server`` and ``machine`` (``{"cpu", "cpu_count", "gpus", "os"}``) say where
    the results were measured, as recorded by ``profile`` (so ``analyze`` on another
    machine still names the right one); empty when not recorded. ``mode`` is ``online``
    (present latency) or ``offline`` (present throughput). ``objectives`` (``{metric:
    weight}``), ``constraints`` and ``num_configs_per_model`` are what the user asked for.
    ``report_model_configs`` is set by ``tsweep report``: ``{requested config: the variant
    whose rows hold its results}`` (an identical twin may have been measured instead).
    ``server_baseline`` is the idle server's ``{metric: value}``, empty when no collector
    took one. ``model_goals`` holds ``(objectives, constraints)`` of the models that have
    their own (:meth:`goals_of` picks).
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

    def goals_of(self, model: str) -> Tuple[Mapping[str, float], Tuple[Constraint, ...]]:
        """``(objectives, constraints)`` that ``model`` was ranked by."""
        return self.model_goals.get(model, (self.objectives, self.constraints))
