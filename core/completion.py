"""Completing a config's load curve after the search (``tsweep report --complete-load-curves``).

A search that walks the load of the configs it keeps may measure a config at only two or
three levels: enough to rank it, thin for its detailed report. This measures the missing
levels of the configs a report asks for, against a server started as ``profile`` would
(the same Sweep, launcher and settings), stores each point as it is measured and marks it as
measured later (:meth:`ResultsStore.mark_measured_later`), so the detailed report can say
which points the search did not take. A point already in the store is never measured again.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Iterable, List, Optional

from tsweep.config import Config
from tsweep.errors import UsageError
from tsweep.pluginmanager import Hooks
from tsweep.progress import Progress
from tsweep.records import LoadLevel, Measurement, Trial
from tsweep.run import Run
from tsweep.store import ResultsStore


def wanted_levels(config: Config, model_rows: Iterable[Measurement]) -> List[LoadLevel]:
    """The levels a complete curve has: the ``concurrency`` or ``request_rate`` list when the
    config sets one, else every level any config of the model was measured at."""
    if config.request_rate:
        return [LoadLevel("request_rate", v) for v in config.request_rate]
    if config.concurrency:
        return [LoadLevel("concurrency", v) for v in config.concurrency]
    return sorted({LoadLevel(m.load_kind, m.load_value) for m in model_rows}, key=lambda level: (level.kind, level.value))


def missing_trials(store: ResultsStore, config: Config, name: str) -> List[Trial]:
    """The trials that would complete the curve of the measured variant ``name``, at each
    client batch size it was measured at."""
    variant = store.variant(name)
    if variant is None:
        return []
    rows = store.measurements(variant.model)
    own = [m for m in rows if m.variant == name]
    have = {(m.load_kind, m.load_value, m.batch_size) for m in own}
    return [
        Trial(variant, level, batch)
        for batch in sorted({m.batch_size for m in own})
        for level in wanted_levels(config, rows)
        if (level.kind, level.value, batch) not in have
    ]


def plan(store: ResultsStore, config: Config, measured: Iterable[str]) -> Dict[str, List[Trial]]:
    """``{model: trials}`` completing the curves of the ``measured`` variants."""
    found: Dict[str, List[Trial]] = {}
    for name in dict.fromkeys(measured):
        for trial in missing_trials(store, config, name):
            found.setdefault(trial.variant.model, []).append(trial)
    return found


def measure(config: Config, hooks: Hooks, trials: Dict[str, List[Trial]], progress: Optional[Progress] = None) -> int:
    """Measure ``trials`` as ``profile`` would (the config's launch mode, load and method
    settings), marking each point as measured later; returns how many were measured."""
    from tsweep.sweep import Sweep  # the sweep's parts are needed only when there is something to measure

    if not config.model_repository:
        raise UsageError("--complete-load-curves measures against a server: set model_repository (and the profile's keys) in the config file")
    run = Run.build(dataclasses.replace(config, profile_models=tuple(trials)), hooks, sweep=True)
    sweep = Sweep(run, progress)
    count = 0
    try:
        with sweep:
            for model, todo in trials.items():
                count += sweep.measure_later(model, todo)
    finally:
        sweep.close()
    return count
