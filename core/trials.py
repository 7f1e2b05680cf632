"""The trial runner: asks the strategies (or the final race) for trials, has them measured on lanes, keeps the books.

It owns nothing about *how* a point is measured (that is the lane pool's, :mod:`tsweep.lanes`)
nor *what* to measure next (the strategies', or :mod:`tsweep.race`): while a lane is idle it
asks for trials, skips those already stored or in flight, gives each the Judge's ``decided``
rule against the best point of its model at that moment, sends it to a lane (the one with
its variant loaded, if idle), commits each result to the store as it arrives (the single
writer) and reports progress.

With one lane this is the serial sweep it always was: one model after another, each
strategy asked again after every point. With several, a strategy's answer is spread over
the idle lanes (its trials are independent of one another, :class:`tsweep.components.SearchStrategy`),
and when no model searched so far has a trial for an idle lane, the next model starts.

A point lost with its lane (worker or node gone) is retried once on another lane; lost twice,
it is stored failed with both causes. With no lane left the run stops: the finished points
are in the store and rerunning the command resumes.
"""
from __future__ import annotations

import functools
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple

from tsweep import analysis, race
from tsweep.errors import ServerError
from tsweep.executor import failed_point
from tsweep.judge import Judge, best_rival
from tsweep.lanes import Finished, Lane, LanePool
from tsweep.progress import Progress
from tsweep.records import Measurement, ModelSpec, SearchGoal, Trial, Variant
from tsweep.run import Run
from tsweep.store import ResultsStore


@dataclass(eq=False)
class Job:
    """One model's trials to measure: a strategy's search, a race, or a list of trials.

    ``rounds``: ask again only once nothing of the job is in flight (a race's rounds stay
    rounds: every contender gets its look before the Judge decides again)."""

    model: ModelSpec
    strategy: object  # anything with propose(history) -> List[Trial]
    history: List[Measurement]
    planned: int = 0
    rounds: bool = False
    variants: Optional[int] = None  # a search announces its model (model_started) with this many variants
    candidates: List[Trial] = field(default_factory=list)  # the strategy's last answer, not yet sent
    stale: bool = True  # a result arrived since the strategy was last asked
    in_flight: int = 0
    measured: int = 0

    def done_keys(self) -> FrozenSet[str]:
        return frozenset(m.key for m in self.history)


@dataclass(eq=False)
class Flight:
    """A trial sent to a lane (``lane``), or waiting for one after a lost lane (``lane`` empty)."""

    job: Job
    trial: Trial
    lane: str = ""
    lost: Tuple[Tuple[str, str], ...] = ()  # (lane, why) of each lane lost with it

    @property
    def shunned(self) -> FrozenSet[str]:
        return frozenset(lane for lane, _ in self.lost)


class Listed:
    """A fixed list of trials as a strategy: what is not stored yet (measure_later)."""

    def __init__(self, trials: Sequence[Trial]):
        self.trials = list(trials)

    def propose(self, history: Sequence[Measurement]) -> List[Trial]:
        done = {m.key for m in history}
        return [t for t in self.trials if t.key not in done]


class RaceLooks:
    """The final race of one model as a strategy: each answer is one round of looks (:func:`tsweep.race.next_looks`)."""

    def __init__(self, store: ResultsStore, run: Run, model: str, variants: Mapping[str, Variant]):
        self.store, self.run, self.model, self.variants = store, run, model, variants
        self.top, self.looks = run.config.remeasure_top_configs, 1 + run.config.remeasure_rounds

    def propose(self, history: Sequence[Measurement]) -> List[Trial]:
        ranking = analysis.rank(self.store, self.run, [self.model])[self.model]
        judge = Judge.from_history(self.run.goals_of(self.model).goal, history)
        return race.next_looks(ranking, history, judge, self.top, self.looks, self.variants)


class TrialRunner:
    """Measures trials through ``pool``, committing each to the store; counts what it did.

    A point ends early once the Judge says no decision it feeds can change
    (:meth:`Judge.decided`, against the best point of the model when it was sent);
    ``goal_of(model name)`` is the goal that decides it. ``lanes`` are the pool's started
    lanes: with more than one, progress lines name the lane of each trial."""

    def __init__(
        self, store: ResultsStore, pool: LanePool, goal_of: Callable[[str], SearchGoal], progress: Progress, lanes: Sequence[Lane] = (),
    ):  # fmt: skip
        self.store, self.pool, self.goal_of, self.progress = store, pool, goal_of, progress
        self.lanes = list(lanes)
        self.measured = self.resumed = self.stable = 0
        self.measuring_s = 0.0
        self.failed: List[Measurement] = []
        self.by_lane: Counter = Counter()  # points measured per lane
        self.lost: List[str] = []  # "<lane>: <why>" of every lane lost
        self.started = time.monotonic()
        self.planned = 0
        self._flights: Dict[str, Flight] = {}  # by trial key: sent to a lane
        self._retries: List[Flight] = []  # lost with their lane, waiting for another

    # -- what the sweep asks for ------------------------------------------------------------
    def search(self, model: ModelSpec, strategy, variants: int) -> None:
        """Propose -> measure -> propose until the strategy has nothing more to ask."""
        self.search_all([(model, strategy, variants)])

    def search_all(self, searches: Sequence[Tuple[ModelSpec, object, int]]) -> None:
        """Search several models: one after another on one lane, at once on several when one
        model's trials do not keep every lane busy."""
        self.drive([Job(model, strategy, [], variants=variants) for model, strategy, variants in searches])

    def race(self, model: ModelSpec, run: Run, variants: Mapping[str, Variant]) -> None:
        """The final race (:mod:`tsweep.race`): rounds of interleaved looks at the contenders
        until the Judge separates them or they reach their look limit. ``variants`` maps the
        model's variant digests to its variants."""
        self.race_all([model], run, {model.name: variants})

    def race_all(self, models: Sequence[ModelSpec], run: Run, variants: Mapping[str, Mapping[str, Variant]]) -> None:
        """The final race of several models; a round's looks are independent, so they are spread over the lanes.
        ``variants`` maps each model's name to its own digest -> variant mapping (per model: two
        models with equal configs share digests)."""
        jobs = [Job(m, RaceLooks(self.store, run, m.name, variants.get(m.name, {})), self.store.measurements(m.name), self.planned, rounds=True) for m in models]
        self.drive(jobs)

    def run(self, model: ModelSpec, trials: Sequence[Trial], history: List[Measurement]) -> int:
        """Measure the trials not yet in ``history`` (appending them); returns how many."""
        job = Job(model, Listed(trials), history, self.planned)
        self.drive([job])
        return job.measured

    # -- the dispatch loop ------------------------------------------------------------------
    def drive(self, jobs: Sequence[Job]) -> None:
        """Keep the idle lanes busy with the jobs' trials until every job has nothing more to
        measure; each result is stored as it arrives."""
        waiting, active = list(jobs), []
        while True:
            self._dispatch(waiting, active)
            if not self._flights:
                if not self._retries and (not (waiting or active) or self._next_trial(waiting, active) is None):
                    return  # every job is done (the lanes may all be gone, but nothing was left for them)
                lost = "; ".join(self.lost) or "no lane is idle and nothing is in flight"
                raise ServerError(f"no lane is left to measure on ({lost}): finished points are kept, rerun the command to resume")
            for done in self.pool.wait():
                self._finished(done)

    def _dispatch(self, waiting: List[Job], active: List[Job]) -> None:
        """Send trials to idle lanes while there are both."""
        while True:
            idle = self.pool.idle()
            if not idle:
                return
            retry = next((f for f in self._retries if any(lane not in f.shunned for lane in idle)), None)
            if retry is not None:
                self._retries.remove(retry)
                retry.job.in_flight -= 1  # counted while it waited
                self._send(retry.job, retry.trial, [lane for lane in idle if lane not in retry.shunned], retry.lost)
                continue
            picked = self._next_trial(waiting, active)
            if picked is None:
                return
            self._send(*picked, idle, ())

    def _next_trial(self, waiting: List[Job], active: List[Job]) -> Optional[Tuple[Job, Trial]]:
        """The next trial to send: from the models searched so far, in order; a model whose
        strategy has nothing more and nothing in flight is done; when none has a trial now,
        the next model starts."""
        while True:
            for job in list(active):
                trial = self._take(job)
                if trial is not None:
                    return job, trial
                if job.in_flight == 0 and not job.stale:
                    active.remove(job)
                    self.pool.model_done(job.model.name)
            if not waiting:
                return None
            job = waiting.pop(0)
            self._begin(job)
            active.append(job)

    def _begin(self, job: Job) -> None:
        if job.variants is None:
            return
        job.history = self.store.measurements(job.model.name)
        self.resumed += len(job.history)
        job.planned = self.planned = job.strategy.planned()
        self.progress.model_started(job.model.name, job.variants, job.planned, len(job.history))

    def _take(self, job: Job) -> Optional[Trial]:
        """The job's next trial not stored and not in flight, asking its strategy again when
        a result of it arrived since it was last asked."""
        done = job.done_keys()
        busy = set(self._flights) | {f.trial.key for f in self._retries}

        def new(trials: Sequence[Trial]) -> List[Trial]:
            return [t for t in trials if t.key not in done and t.key not in busy]

        job.candidates = new(job.candidates)
        if job.stale and not (job.rounds and (job.in_flight or job.candidates)):
            job.candidates, job.stale = new(job.strategy.propose(job.history)), False
        return job.candidates.pop(0) if job.candidates else None

    def _send(self, job: Job, trial: Trial, idle: Sequence[str], lost: Tuple[Tuple[str, str], ...]) -> None:
        lane = self._lane_for(trial, idle)
        history = job.history
        judge = Judge.from_history(self.goal_of(job.model.name), history)
        rival = best_rival(history, judge, trial.point)
        shown = lane if len(self.lanes) > 1 else ""
        if shown:
            self.progress.trial_started(trial, len(history) + job.in_flight, job.planned, time.monotonic() - self.started, shown)
        else:
            self.progress.trial_started(trial, len(history) + job.in_flight, job.planned, time.monotonic() - self.started)
        self._flights[trial.key] = Flight(job, trial, lane, lost)
        job.in_flight += 1
        self.pool.submit(lane, job.model, trial, functools.partial(judge.decided, rival=rival))

    def _lane_for(self, trial: Trial, idle: Sequence[str]) -> str:
        """The idle lane with the trial's variant loaded, else one with nothing loaded, else the first."""
        loaded = {lane: self.pool.loaded(lane) for lane in idle}
        for wanted in (trial.variant.digest, None):
            for lane in idle:
                if loaded[lane] == wanted:
                    return lane
        return idle[0]

    def _finished(self, done: Finished) -> None:
        flight = self._flights.pop(done.trial.key)
        job = flight.job
        job.in_flight -= 1
        if not done.lost:
            self._store(job, done.measurement, done.lane)
            return
        self.lost.append(f"{done.lane}: {done.lost}")
        causes = (*flight.lost, (done.lane, done.lost))
        retried = len(causes) < 2
        self.progress.lane_lost(done.lane, done.lost, done.trial, retried)
        if retried:
            self._retries.append(Flight(job, done.trial, "", causes))
            job.in_flight += 1  # the job is not done while its trial waits for a lane
        else:
            (first, why), (second, then) = causes
            self._store(job, failed_point(done.trial, f"lost with its lane twice: {first}: {why}; then {second}: {then}"), done.lane)

    def _store(self, job: Job, m: Measurement, lane: str) -> None:
        m.lane = lane
        self.store.add(m)
        job.history.append(m)
        job.stale = True
        job.measured += 1
        self.measured += 1
        self.by_lane[lane] += 1
        self.stable += m.status == "ok"
        self.measuring_s += m.duration_s
        if m.status == "failed":
            self.failed.append(m)
        self.progress.trial_finished(m)
