"""The trial runner: asks a strategy (or the final race) for trials, has them measured, keeps the books.

It owns nothing about *how* a point is measured (that is the executor's, :mod:`tsweep.executor`)
nor *what* to measure next (the strategy's, or :mod:`tsweep.race`): it skips trials already in
the store, gives each trial the Judge's ``decided`` rule against the best point so far,
commits each result to the store at once, and reports progress.
"""
from __future__ import annotations

import time
from typing import Callable, List, Mapping, Sequence

from tsweep import analysis, race
from tsweep.executor import Executor
from tsweep.judge import Judge, best_rival
from tsweep.progress import Progress
from tsweep.records import Measurement, ModelSpec, SearchGoal, Trial, Variant
from tsweep.run import Run
from tsweep.store import ResultsStore


class TrialRunner:
    """Measures trials one by one through ``executor``, committing each to the store; counts
    what it did. A point ends early once the Judge says no decision it feeds can change
    (:meth:`Judge.decided`, against the best point of the model so far); ``goal_of(model
    name)`` is the goal that decides it."""

    def __init__(self, store: ResultsStore, executor: Executor, goal_of: Callable[[str], SearchGoal], progress: Progress):
        self.store, self.executor, self.goal_of, self.progress = store, executor, goal_of, progress
        self.measured = self.resumed = self.stable = 0
        self.measuring_s = 0.0
        self.failed: List[Measurement] = []
        self.started = time.monotonic()
        self.planned = 0

    def search(self, model: ModelSpec, strategy, variants: int) -> None:
        """Propose -> measure -> propose until the strategy has nothing more to ask."""
        history = self.store.measurements(model.name)
        self.resumed += len(history)
        self.planned = strategy.planned()
        self.progress.model_started(model.name, variants, self.planned, len(history))
        while self.run(model, strategy.propose(history), history):
            pass
        self.executor.model_done()

    def race(self, model: ModelSpec, run: Run, variants: Mapping[str, Variant]) -> None:
        """The final race (:mod:`tsweep.race`): rounds of interleaved looks at the contenders
        until the Judge separates them or they reach their look limit."""
        history = self.store.measurements(model.name)
        top, looks = run.config.remeasure_top_configs, 1 + run.config.remeasure_rounds
        while True:
            ranking = analysis.rank(self.store, run, [model.name])[model.name]
            judge = Judge.from_history(run.goals_of(model.name).goal, history)
            trials = race.next_looks(ranking, history, judge, top, looks, variants)
            if not self.run(model, trials, history):
                break
        self.executor.model_done()

    def run(self, model: ModelSpec, trials: Sequence[Trial], history: List[Measurement]) -> int:
        """Measure the trials not yet in ``history`` (appending them); returns how many."""
        done = {m.key for m in history}
        todo = [t for t in trials if t.key not in done]
        for trial in todo:
            self.progress.trial_started(trial, len(history), self.planned, time.monotonic() - self.started)
            judge = Judge.from_history(self.goal_of(model.name), history)
            rival = best_rival(history, judge, trial.point)
            m = self.executor.measure(model, trial, lambda p: judge.decided(p, rival))
            self.store.add(m)
            history.append(m)
            self.measured += 1
            self.stable += m.status == "ok"
            self.measuring_s += m.duration_s
            if m.status == "failed":
                self.failed.append(m)
            self.progress.trial_finished(m)
            self.executor.settle(m)
        return len(todo)
