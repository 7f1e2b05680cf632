"""Search strategy ``optuna``: Model Analyzer's optuna mode, on the optuna library's ask-and-tell interface.

Three phases, each worked out again from the history on every call (so a resumed run
continues where it stopped, as with every tsweep strategy):

1. **The default config** gets a load walk (brute's, with its early exit): the verdict
   compares the winner with it, and its best point is the reference every trial is scored
   against (Model Analyzer scores each trial relative to the default's measurement too).
2. **The study.** Each optuna trial (``study.ask()``) proposes one point: a variant, by its
   coordinates (instances, max_batch_size, dynamic batching, the values a manual space
   varies: every coordinate on which the variants differ), plus a load level and a client
   batch size when the space has more than one. That is Model Analyzer's design: its optuna
   search draws the concurrency as one more parameter of the trial (the levels of the space,
   powers of two or the user's list) rather than sweeping it per trial; with
   ``use_concurrency_formula`` the concurrency is 2 x max_batch_size x instances instead, as
   there (closed loop only). The point's value is told back (``study.tell()``). The TPE sampler has a fixed seed (``optuna_seed``), so two
   runs on the same measurements propose the same points.
3. **The load walks of the top configs**: as Model Analyzer sweeps the concurrency of its
   top-N configs after the study, the three variants with the highest values get a load
   walk (brute's), so the ranking and the reports see each one's curve and its best load.

The value of a point is the ranker's score (weighted objectives, each relative to the
default's reference point: :func:`tsweep.plugins.rankers.objectives.score`) when the point
surely meets every constraint, the Judge deciding as everywhere (a p99 inside the budget
only by luck does not meet it). A point that misses is penalised below every point that
meets: ``-1 - misses`` (the relative misses summed, at most :data:`MAX_MISS`); a failed point
is worse still. Values are computed without the look-to-look drift (the Judge of first looks
only), so that a value told once never changes when the final race adds looks later: a
resumed run replays the very same study.

The budget is Model Analyzer's: at most ``optuna_max_trials`` trials or
``max_percentage_of_search_space`` percent of the space (the smaller when both are set, the
percentage alone by default), at least ``optuna_min_trials`` or ``min_percentage_of_search_space``
percent (the larger when both are set) before the early exit: the study stops once
``optuna_early_exit_threshold`` trials in a row did not improve on the best value (the
default's included). The space is the generated variants x load levels (one with the
formula) x client batch sizes, as Model Analyzer counts it; the default config is not part of it. A trial that
proposes a point already measured is told its value again and counts, as in Model Analyzer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import optuna

from tsweep.errors import UsageError
from tsweep.judge import Judge, goal_constraints
from tsweep.plugin import ConfigKey, hookimpl
from tsweep.plugins.rankers.objectives import score
from tsweep.plugins.search.brute import next_in_walks
from tsweep.records import ConfigSpace, Constraint, LoadLevel, Measurement, MetricInfo, Objective, SearchGoal, Trial, Variant

#: A point's misses (relative, summed over constraints) count up to this in its penalty.
MAX_MISS = 1000.0
#: The value of a failed point (or one without throughput): below every miss.
FAILED = -2.0 - MAX_MISS
#: How many of the study's best configs get a load walk afterwards (Model Analyzer sweeps
#: the concurrency of its top num_configs_per_model, 3 by default).
TOP_WALKED = 3
#: Proposals of coordinates that no variant has (a manual space that is not a full product)
#: are told as failed and asked again, at most this many in a row.
MAX_MISSES_IN_A_ROW = 200

KEYS = (
    ConfigKey("optuna_min_trials", None, "Optuna search: at least this many trials before the early exit (with min_percentage_of_search_space: the larger).", type="int", kind="count"),
    ConfigKey("optuna_max_trials", None, "Optuna search: at most this many trials (with max_percentage_of_search_space: the smaller).", type="int", kind="positive"),
    ConfigKey("min_percentage_of_search_space", None, "Optuna search: at least this percentage of the space before the early exit (5 when neither minimum is set).", type="float", kind="count"),
    ConfigKey("max_percentage_of_search_space", None, "Optuna search: at most this percentage of the space (10 when optuna_max_trials is not set).", type="float", kind="positive"),
    ConfigKey("optuna_early_exit_threshold", 10, "Optuna search: stop after this many trials in a row without a better value.", kind="positive"),
    ConfigKey("optuna_seed", 0, "Optuna search: the TPE sampler's seed; the same seed and measurements give the same proposals.", kind="count"),
    ConfigKey("use_concurrency_formula", False, "Optuna search: each trial's concurrency is 2 x max_batch_size x instances (within the space's levels), not a trial parameter."),
    ConfigKey("concurrency_sweep_disable", False, "Optuna search: no load walks of the top configs after the study, only the study's own points."),
)  # fmt: skip
DEFAULT_MIN_PERCENTAGE = 5.0
DEFAULT_MAX_PERCENTAGE = 10.0


@dataclass(frozen=True)
class StudySettings:
    """The optuna keys as given (None: not set): the study's budget, its seed, and whether the
    concurrency formula replaces the load level as a trial parameter."""

    min_trials: Optional[int] = None
    max_trials: Optional[int] = None
    min_percentage: Optional[float] = None
    max_percentage: Optional[float] = None
    early_exit_threshold: int = 10
    seed: int = 0
    concurrency_formula: bool = False
    top_walked: int = TOP_WALKED

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> "StudySettings":
        """The keys' values, checked against each other (one line for the user to fix)."""
        budget = cls(
            options.get("optuna_min_trials"), options.get("optuna_max_trials"), options.get("min_percentage_of_search_space"),
            options.get("max_percentage_of_search_space"), options.get("optuna_early_exit_threshold", 10), options.get("optuna_seed", 0),
            bool(options.get("use_concurrency_formula", False)), 0 if options.get("concurrency_sweep_disable") else TOP_WALKED,
        )  # fmt: skip
        for name, value in (("min_percentage_of_search_space", budget.min_percentage), ("max_percentage_of_search_space", budget.max_percentage)):
            if value is not None and value > 100:
                raise UsageError(f"config key {name!r} must be at most 100 (a percentage), got {value!r}")
        for low, high, a, b in (
            (budget.min_trials, budget.max_trials, "optuna_min_trials", "optuna_max_trials"),
            (budget.min_percentage, budget.max_percentage, "min_percentage_of_search_space", "max_percentage_of_search_space"),
        ):
            if low is not None and high is not None and low > high:
                raise UsageError(f"{a} ({low:g}) is greater than {b} ({high:g}): swap or fix them")
        return budget

    def bounds(self, size: int) -> Tuple[int, int]:
        """(minimum, maximum) trials for a space of ``size`` points, as Model Analyzer decides
        them; the maximum is at least 1 while the space has a point (a small space would
        otherwise get no trial at all)."""
        def share(percentage: Optional[float], default: float) -> int:
            return int(size * (default if percentage is None else percentage) / 100)

        if self.max_trials is not None and self.max_percentage is not None:
            most = min(self.max_trials, share(self.max_percentage, DEFAULT_MAX_PERCENTAGE))
        elif self.max_trials is not None:
            most = self.max_trials
        else:
            most = share(self.max_percentage, DEFAULT_MAX_PERCENTAGE)
        if self.min_trials is not None and self.min_percentage is not None:
            least = max(self.min_trials, share(self.min_percentage, DEFAULT_MIN_PERCENTAGE))
        elif self.min_trials is not None:
            least = self.min_trials
        else:
            least = share(self.min_percentage, DEFAULT_MIN_PERCENTAGE)
        most = min(size, max(most, 1 if size else 0))
        return min(least, most), most


def point_value(p: Measurement, goal: SearchGoal, judge: Judge, reference: Optional[Measurement]) -> float:
    """What optuna is told for point ``p`` (see the module docstring)."""
    if p.status == "failed" or not p.throughput:
        return FAILED
    misses = sum(judge.miss(p, c) for c in constraints_of(goal))
    if misses > 0:
        return -1.0 - min(misses, MAX_MISS)
    objectives = goal.objectives or (Objective("throughput", 1.0),)
    metrics = {o.metric: MetricInfo(o.metric, "", o.higher_is_better) for o in objectives}
    best = {o.metric: reference.value(o.metric) for o in objectives if reference is not None and (reference.value(o.metric) or 0) > 0}
    return score(p, {o.metric: o.weight for o in objectives}, metrics, best)


def constraints_of(goal: SearchGoal) -> Tuple[Constraint, ...]:
    """The ranking's constraints; a goal built from its two bounds alone has them as constraints."""
    return goal.constraints or tuple(goal_constraints(goal))


class OptunaSearch:
    def __init__(self, space: ConfigSpace, goal: SearchGoal, settings: StudySettings = StudySettings()):
        self.space, self.goal, self.settings = space, goal, settings
        self.default = next((v for v in space.variants if v.is_default), None)
        self.variants = [v for v in space.variants if not v.is_default]
        self.dimensions = _dimensions(self.variants)
        self.by_coordinates = {_coordinates(v, self.dimensions): v for v in reversed(self.variants)}  # first wins
        self.formula = settings.concurrency_formula and bool(space.load_levels) and space.load_levels[0].kind == "concurrency"
        self.size = len(self.variants) * (1 if self.formula else len(space.load_levels)) * len(space.batch_sizes)
        self.least, self.most = settings.bounds(self.size)
        self.judge = Judge(goal)  # no drift: a value once told never changes (see the module docstring)
        self.study: Optional[optuna.Study] = None
        self.told = 0  # trials told (complete) in self.study
        self.values: Dict[str, float] = {}  # variant name -> its best value in the study
        self.best = -math.inf
        self.best_trial = 0
        self.pending: Optional[Tuple[Any, Trial]] = None
        self.over = False  # the study has ended (budget, early exit, or no proposal fits the space)

    def planned(self) -> int:
        """For the progress line: the default's walk, the study and the top configs' walks."""
        return len(self.space.load_levels) * len(self.space.batch_sizes) * (1 + self.settings.top_walked) + self.most

    def propose(self, history: Sequence[Measurement]) -> List[Trial]:
        by_key = {m.key: m for m in history if m.repeat == 0}
        if self.default is not None:
            trials, walked = next_in_walks(self.space, self.default, by_key, self.judge, 0.05)
            if trials:
                return trials  # one walk per client batch size, independent; the study waits for them all
        else:
            walked = []
        reference = self._reference(walked)
        trial = self._study_step(by_key, reference)
        if trial:
            return [trial]  # one study trial at a time: TPE's next ask depends on what was told
        leaders = []  # the top configs' load walks do not depend on one another
        for variant in self.leaders():
            leaders.extend(next_in_walks(self.space, variant, by_key, self.judge, 0.05)[0])
        return leaders

    def leaders(self) -> List[Variant]:
        """The study's best variants that met every constraint, best first (at most
        :data:`TOP_WALKED`; none with concurrency_sweep_disable)."""
        ranked = sorted(((value, name) for name, value in self.values.items() if value >= 0), key=lambda t: (-t[0], t[1]))
        names = {v.name: v for v in self.variants}
        return [names[name] for _, name in ranked[: self.settings.top_walked]]

    # -- the study ----------------------------------------------------------------------

    def _reference(self, walked: Sequence[Measurement]) -> Optional[Measurement]:
        """The default's best point: meeting the constraints first, then by throughput."""
        def rank(p: Measurement):
            misses = sum(self.judge.miss(p, c) for c in constraints_of(self.goal))
            return (p.status != "failed" and misses == 0, -misses, p.throughput or 0.0)

        usable = [p for p in walked if p.status != "failed" and p.throughput]
        return max(usable, key=rank, default=None)

    def _study_step(self, by_key: Dict[str, Measurement], reference: Optional[Measurement]) -> Optional[Trial]:
        """Tell what the history has, ask on; the next point to measure, or None when the study is over."""
        if self.study is None:
            self.study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=self.settings.seed))
            if reference is not None:
                self.best = point_value(reference, self.goal, self.judge, reference)
        misses_in_a_row = 0
        while not self.over:
            if self.pending is not None:
                asked, trial = self.pending
                done = by_key.get(trial.key)
                if done is None:
                    return trial
                value = point_value(done, self.goal, self.judge, reference)
                self.study.tell(asked, value)
                self.pending = None
                self.told += 1
                self.values[trial.variant.name] = max(value, self.values.get(trial.variant.name, -math.inf))
                if value > self.best:
                    self.best, self.best_trial = value, self.told
            if self.told >= self.most or (self.told >= self.least and self.told - self.best_trial >= self.settings.early_exit_threshold):
                self.over = True
                break
            asked = self.study.ask()
            trial = self._trial_of(asked)
            if trial is None:
                self.study.tell(asked, state=optuna.trial.TrialState.FAIL)
                misses_in_a_row += 1
                self.over = misses_in_a_row >= MAX_MISSES_IN_A_ROW
                continue
            misses_in_a_row = 0
            self.pending = (asked, trial)
        return None

    def _trial_of(self, asked) -> Optional[Trial]:
        """The point optuna's trial proposes; None for coordinates no variant has."""
        chosen = tuple(
            values[asked.suggest_int(name, 0, len(values) - 1)] if ordered else values[asked.suggest_categorical(name, list(range(len(values))))]
            for name, values, ordered in self.dimensions
        )  # fmt: skip
        variant = self.by_coordinates.get(chosen)
        if variant is None:
            return None
        load = self._formula_load(variant) if self.formula else _pick(asked, "load", self.space.load_levels)
        batch = _pick(asked, "batch_size", self.space.batch_sizes)
        return Trial(variant, LoadLevel(load.kind, load.value), batch)

    def _formula_load(self, variant: Variant) -> LoadLevel:
        """Model Analyzer's concurrency formula: 2 x max_batch_size x instances, within the
        space's lowest and highest concurrency (enough requests in flight to fill every
        instance's batches twice over)."""
        levels = [level.value for level in self.space.load_levels]
        wanted = max(2 * max(c.max_batch_size, 1) * max(c.instances, 1) for c in ([p.coordinates for p in variant.composing] or [variant.coordinates]))
        return LoadLevel("concurrency", float(min(max(wanted, min(levels)), max(levels))))


def _pick(asked, name: str, options: Sequence[Any]) -> Any:
    """One of ``options`` (in increasing order: an ordinal parameter for TPE); no parameter for one option."""
    return options[asked.suggest_int(name, 0, len(options) - 1)] if len(options) > 1 else options[0]


Dimension = Tuple[str, Tuple[Any, ...], bool]  # (name, values in order, ordered: numbers TPE may order)


def _dimensions(variants: Sequence[Variant]) -> List[Dimension]:
    """The coordinates on which ``variants`` differ, each with its values sorted. A coordinate
    the ones before it already decide (a manual space's ``instance_group`` list, given the
    instance count) is left out: it would only propose combinations no variant has."""
    found: List[Dimension] = []
    if not variants:
        return found
    names = _names(variants)
    for name in names:
        values = {_coordinate(v, name) for v in variants}
        before = {_coordinates(v, found) for v in variants}
        decided = len({(_coordinates(v, found), _coordinate(v, name)) for v in variants}) == len(before)
        if len(values) > 1 and not decided:
            numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in values)
            found.append((name, tuple(sorted(values, key=repr) if not numeric else sorted(values)), numeric))
    return found


def _names(variants: Sequence[Variant]) -> List[str]:
    """The coordinates' names; a pipeline's are each composing model's, ``<model>.<name>``."""
    if any(v.composing for v in variants):
        models = list(dict.fromkeys(part.model for v in variants for part in v.composing))
        return [f"{m}.{name}" for m in models for name in _names([part for v in variants for part in v.composing if part.model == m])]
    return ["instances", "kind", "max_batch_size", "dynamic_batching", *sorted({k for v in variants for k, _ in v.coordinates.values})]


def _coordinate(v: Variant, name: str) -> Any:
    if v.composing:  # a pipeline: the named composing model's coordinate
        model, _, rest = name.partition(".")
        return _coordinate(next(part for part in v.composing if part.model == model), rest)
    c = v.coordinates
    return getattr(c, name) if name in ("instances", "kind", "max_batch_size", "dynamic_batching") else _hashable(dict(c.values).get(name))


def _hashable(value: Any) -> Any:
    """A value a manual space varied (a list, a mapping: e.g. an instance_group entry), hashable."""
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(x) for x in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value


def _coordinates(v: Variant, dimensions: Sequence[Dimension]) -> tuple:
    return tuple(_coordinate(v, name) for name, _, _ in dimensions)


@hookimpl
def tsweep_config_keys():
    return list(KEYS)


@hookimpl
def tsweep_search_strategies(options):
    budget = StudySettings.from_options(options)

    def optuna_search(space: ConfigSpace, goal: SearchGoal) -> OptunaSearch:
        return OptunaSearch(space, goal, budget)

    return {"optuna": optuna_search}


optuna.logging.set_verbosity(optuna.logging.WARNING)  # a study's per-trial info lines would drown the progress line
