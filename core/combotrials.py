"""Measuring combinations for the combination search: load steps, the store, the books.

:class:`CombinationWalker` is the :class:`tsweep.combosearch.Evaluator` of a real run: it
walks a combination through its load steps (:func:`tsweep.combination.load_steps`), has
each step measured by the executor (every model's rows in the same windows) and commits
the rows at once; a step already in the store is not measured again, so a rerun resumes.
With listed loads every step is measured; on the automatic load range the walk stops once
no model's throughput grows by :data:`MIN_GAIN` any more, or a model's latency passes its
constraint (more load only adds latency; judged by the figure, as a single model's walk), or
a step failed.
"""
from __future__ import annotations

import time
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from tsweep.combination import Combination, CombinationTrial, load_steps
from tsweep.comboranking import RankedCombination, rank_combinations
from tsweep.records import LoadLevel, Measurement, ModelSpec

#: A load step must raise some model's throughput by this much for the walk to go on.
MIN_GAIN = 0.05


class CombinationWalker:
    """Walks combinations for :func:`tsweep.combosearch.search`; see the module docstring.

    ``runner`` is the sweep's :class:`tsweep.trials.TrialRunner`, whose store, progress and
    counters it shares; ``executor`` (the local executor's, :mod:`tsweep.executor`) measures."""

    def __init__(
        self, runner, executor, run, models: Sequence[ModelSpec], levels: Mapping[str, Sequence[LoadLevel]], batch_size: int, listed: bool,
    ):  # fmt: skip
        self.runner, self.executor, self.run, self.models = runner, executor, run, list(models)
        self.names = [m.name for m in models]
        self.steps = load_steps(levels, self.names)
        self.batch_size, self.listed = batch_size, listed
        self.history: List[Measurement] = [m for name in self.names for m in runner.store.measurements(name) if m.combination]
        runner.resumed += len(self.history)
        self._ranking: Optional[List[RankedCombination]] = None

    def walk(self, combination: Combination) -> None:
        previous: Optional[List[Measurement]] = None
        for loads in self.steps:
            point = CombinationTrial(combination, loads, self.batch_size)
            rows = self._measured(point) or self._measure(point)
            if any(m.status == "failed" for m in rows):
                return
            if not self.listed and (saturated(previous, rows) or misses_latency(rows, self.run)):
                return
            previous = rows

    def value(self, combination: Combination):
        found = self._best(combination)
        return found.value if found else None

    def standing(self, combination: Combination) -> Dict[str, Tuple[float, float]]:
        found = self._best(combination)
        if found is None:
            return {}
        return {m: (sum(found.misses.get(m, {}).values()), found.scores.get(m, 0.0)) for m in self.names}

    # -- helpers ----------------------------------------------------------------------------
    def ranking(self) -> List[RankedCombination]:
        if self._ranking is None:
            self._ranking = rank_combinations(self.history, self.run, self.names)
        return self._ranking

    def _best(self, combination: Combination) -> Optional[RankedCombination]:
        return next((c for c in self.ranking() if c.variants == tuple(v.name for v in combination.members)), None)

    def _measured(self, point: CombinationTrial) -> List[Measurement]:
        keys = set(point.keys())
        return [m for m in self.history if m.key in keys]

    def _measure(self, point: CombinationTrial) -> List[Measurement]:
        r = self.runner
        for t in point.trials():
            r.progress.trial_started(t, len(self.history), r.planned, time.monotonic() - r.started)
        rows = self.executor.measure_together(self.models, point, None)
        for m in rows:
            r.store.add(m)
            self.history.append(m)
            r.measured += 1
            r.stable += m.status == "ok"
            r.measuring_s += m.duration_s / len(rows)  # the rows share their seconds
            if m.status == "failed":
                r.failed.append(m)
            r.progress.trial_finished(m)
        for m in rows:
            self.executor.settle(m)
            if m.status == "failed":
                break  # one restart for the point, whichever row says so
        self._ranking = None
        return rows


def saturated(previous: Optional[List[Measurement]], rows: List[Measurement]) -> bool:
    """No model's throughput grew by :data:`MIN_GAIN` from the previous load step."""
    if previous is None:
        return False
    return all((now.throughput or 0.0) < (before.throughput or 0.0) * (1 + MIN_GAIN) for before, now in zip(previous, rows))


def misses_latency(rows: List[Measurement], run) -> bool:
    """A model's latency beyond its own bound, by the figure itself: as a single model's
    load walk does, the direction comes from the p99, not from the unfavourable end of its
    interval (which a noisy first step would put past any budget)."""
    for m in rows:
        for c in run.goals_of(m.model).constraints:
            value = m.value(c.metric)
            if c.metric.startswith("latency") and c.max is not None and value is not None and value > c.max:
                return True
    return False
