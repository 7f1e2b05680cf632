"""Search strategy ``adaptive`` (the default): measure only where the answer can be.

It searches the same space as ``brute`` and spends measurements in four ways less
(docs/search.md explains each with an example):

1. **Load walks start where the answer was.** After the default config's walk (from the
   lowest level, for the comparison the verdict makes), every walk starts at the load of the
   best point found so far, or where the variant's dynamic batcher can fill its batches if
   that is higher, and moves up while throughput rises by more than the noise. A
   level that falls clearly ends the walk; a flat one gets one more level, since one flat
   step on a noisy machine is weak evidence of saturation. A variant already saturated
   (full batches, and every host CPU or every instance busy) below the best is not pushed
   further.
2. **The latency budget is a boundary to find, not a wall to hit.** When a level breaks the
   budget, the walk stops going up and bisects between the last level inside the budget and
   the first outside (concurrency 8 passes, 16 fails: try 12, then 10 or 14), until the
   bracket is within 25%, a level inside the budget gains nothing, or
   ``run_config_search_max_binary_search_steps`` levels (Model Analyzer's key, default 5)
   were tried. Lower loads carry no
   more throughput than higher ones, so an over-budget point that cannot beat the best so
   far ends the walk there: no bisection below it, no walking down from it.
3. **max_batch_size stops when it stops helping**, per instance count; **instance counts
   stop when one more instance did not beat the previous count's best** (Model Analyzer's
   rules, with "beat" judged against the noise). A step with nothing inside the goal says
   nothing either way and does not stop its axis.
4. **Variants that cannot win are not measured.** Before walking (instances I, max batch
   B), it bounds what the variant could reach from what was measured at (I', B), I' < I:
   perfect scaling of its best throughput (x I / I'); from Triton's statistics, I
   instances each busy 100% of the time at the measured execution time and batch size; and,
   when the host's CPUs were already (nearly) all busy (``host_cpu_utilization``), the host
   at 100%, since on a CPU-only machine client and server share the cores. If the bound
   cannot beat the best so far by the 5% a gain needs, the variant is skipped.

**Uncertainty.** Every comparison is the :class:`tsweep.judge.Judge`'s: "beats" means by
more than 5% *and* by more than the uncertainty of the difference (each point's 95%
interval, widened by the drift seen between looks); "inside the budget" means the p99's
whole interval is. And no decision that *prunes* (skips a variant, ends a walk below the
best, stops raising the load) rests on a single look at the best point when the Judge
cannot decide it from one: the best point is then measured a second time, later, with other
points in between, and the two looks are combined (:func:`tsweep.repeats.combine`). A
lucky window that crowned a point cannot then veto the rest of the search.

The strategy keeps no state between calls: :meth:`AdaptiveSearch.propose` replays the whole
plan against the history and returns the first point the plan needs that is not in it. So
a resumed run continues exactly where it stopped, and the plan reads as straight-line code.

Why one file over 400 lines: the plan and the bounds it prunes with share one object's view
of the history (grid, evidence, best so far); split, each half would read the other's state.
"""
from __future__ import annotations

import functools
from typing import Callable, Dict, List, Optional, Sequence

from tsweep import modelconfig, repeats, stagestats
from tsweep.judge import Judge, goal_constraints
from tsweep.plugin import ConfigKey, hookimpl
from tsweep.plugins.search.grid import Coord, by_coord, coord, is_pipeline, neighbours
from tsweep.records import ConfigSpace, LoadLevel, Measurement, SearchGoal, Trial, Variant

Measure = Callable[[Trial], Measurement]
Best = Callable[[bool], Optional[Measurement]]  # best(look_twice)

#: Bisection stops when the bracket is narrower than this fraction of its lower end.
BISECT_RESOLUTION = 0.25
#: The host-CPU bound holds only for a host this busy (percent): below it the idle share is
#: not capacity that more instances would use at the same cost per request (measured on
#: add_sub: 187 us of CPU per request at 1 instance and 69% busy, 147 us at 2 and 94%).
HOST_SATURATED = 90.0

#: Model Analyzer's key, with its default: the most levels one bisection measures.
MAX_BISECT_STEPS = ConfigKey(
    "run_config_search_max_binary_search_steps", 5,
    "Adaptive search: the most load levels one bisection of the latency budget measures (it also stops when the bracket is within 25%).",
    kind="positive",
)


class _Needed(Exception):
    """Raised inside the plan for the first point that has not been measured yet."""

    def __init__(self, trial: Trial):
        self.trial = trial


def server_time_ms(p: Measurement) -> Optional[float]:
    """Server compute time of one model execution (input + infer + output), if reported.

    Triton charges every request the whole execution its batch ran in, so the per-request
    figures the measurement stores are per-execution times."""
    parts = [p.compute_input_ms, p.compute_infer_ms, p.compute_output_ms]
    if p.compute_infer_ms is None:
        return None
    total = sum(x for x in parts if x is not None)
    return total if total > 0 else None


class _Evidence:
    """What one replay of the plan has seen: every point in the order the plan used it, and
    the second looks taken at best points. Rebuilt on every :meth:`AdaptiveSearch.propose`."""

    def __init__(self) -> None:
        self.seen: List[Measurement] = []
        self.confirmed: Dict[str, Measurement] = {}  # point -> its looks combined


class AdaptiveSearch:
    def __init__(self, space: ConfigSpace, goal: SearchGoal, min_gain: float = 0.05, max_bisect_steps: int = MAX_BISECT_STEPS.default):
        self.space, self.goal, self.min_gain = space, goal, min_gain
        self.max_bisect_steps = max_bisect_steps
        self.default = next((v for v in space.variants if v.is_default), None)
        self.grid: Dict[Coord, List[Variant]] = by_coord(v for v in space.variants if not v.is_default)
        self.kind = space.load_levels[0].kind if space.load_levels else "concurrency"
        self.levels = sorted({lvl.value for lvl in space.load_levels})
        self.by_digest = {v.digest: v for v in space.variants}  # stored rows may carry a twin's name
        self.evidence = _Evidence()
        self.judge = Judge(goal)

    # -- the protocol -------------------------------------------------------------------

    def propose(self, history: Sequence[Measurement]) -> List[Trial]:
        by_key = {m.key: m for m in history}
        self.evidence = _Evidence()
        self.judge = Judge.from_history(self.goal, history)

        def measure(trial: Trial) -> Measurement:
            found = by_key.get(trial.key)
            if found is None:
                raise _Needed(trial)
            self.evidence.seen.append(found)
            return found

        try:
            self.plan(measure)
        except _Needed as needed:
            return [needed.trial]
        return []

    def planned(self) -> int:
        """Upper bound for progress display: the whole space plus three in-between levels per
        walk and a second look per variant; it usually needs far less."""
        return len(self.space.variants) * len(self.space.batch_sizes) * (len(self.space.load_levels) + 4)

    # -- the plan -----------------------------------------------------------------------

    def plan(self, measure: Measure) -> None:
        """The whole search as straight-line code; ``measure`` raises for unmeasured points."""
        if not self.levels:
            return
        if self.default is not None:
            self.walk_variant(measure, self.default, from_lowest=True)
        if is_pipeline(self.space.variants):
            return self.plan_pipeline(measure)
        measured_at: Dict[Coord, List[Measurement]] = {}
        previous_count_best: Optional[Measurement] = None
        for instances in sorted({c[0] for c in self.grid}):
            count_best: Optional[Measurement] = None
            for mbs in sorted({c[1] for c in self.grid if c[0] == instances}):
                c = (instances, mbs)
                if self.cannot_win(measure, c, measured_at):
                    continue  # each batch size has its own bound: a larger one may batch cheaper
                points = [p for v in self.grid[c] for p in self.walk_variant(measure, v)]
                measured_at[c] = points
                top = self.best(self.looked(points))
                if top is None:
                    continue  # nothing inside the goal: its walks started above the budget and
                    # stopped there, unable to win; that says nothing about a larger batch size
                if count_best is not None and not self.beats(top, self.looked([count_best])[0]):
                    break  # a larger max_batch_size stopped helping at this instance count
                count_best = top
            if count_best is None:
                continue  # nothing at this count met the goal: no evidence about more instances
            if previous_count_best is not None and not self.beats(count_best, self.looked([previous_count_best])[0]):
                break  # one more instance did not help: more will not either (a second look
                # taken since at the previous count's best counts)
            previous_count_best = count_best

    def plan_pipeline(self, measure: Measure) -> None:
        """A pipeline (tsweep.pipeline): one composing model at a time. From the combination
        nearest every stage's own config, walk the neighbours of one stage (an instance more
        or fewer, max_batch_size doubled or halved) holding the others, starting with the
        stage that bounds throughput at the best point so far (its instances the busiest);
        move to the best neighbour that beats the best, and start over from there; stop when
        no stage's move beats it."""
        if not self.grid:
            return
        target = coord(self.default) if self.default is not None else min(self.grid)
        current = min(self.grid, key=lambda c: (*(abs(a - b) for a, b in zip(c, target)), c))
        best = self.best(self.looked([p for v in self.grid[current] for p in self.walk_variant(measure, v)]))
        tried = {current}
        models = [part.model for part in self.grid[current][0].composing]
        while True:
            moved = False
            for k in self.stage_order(best, models):
                tops = {}
                for c in neighbours(current, k):
                    if c in self.grid and c not in tried:
                        tried.add(c)
                        tops[c] = self.best(self.looked([p for v in self.grid[c] for p in self.walk_variant(measure, v)]))
                better = {c: p for c, p in tops.items() if p is not None and (best is None or self.beats(p, self.looked([best])[0]))}
                if better:
                    current = max(better, key=lambda c: (self.score(better[c]), c))
                    best, moved = better[current], True
                    break
            if not moved:
                return

    @staticmethod
    def stage_order(best: Optional[Measurement], models: Sequence[str]) -> List[int]:
        """The composing models' indices, busiest stage first at ``best`` (step order without one)."""
        busy = {model: figures.get("busy", 0.0) for model, figures in stagestats.stages(best.metrics).items()} if best is not None else {}
        return sorted(range(len(models)), key=lambda k: (-busy.get(models[k], 0.0), k))

    def walk_variant(self, measure: Measure, variant: Variant, from_lowest: bool = False) -> List[Measurement]:
        points: List[Measurement] = []
        for batch in self.space.batch_sizes:
            anchor = None if from_lowest else self.best_so_far(batch)
            start = self.levels[0] if anchor is None else self.start_level(variant, batch, anchor)
            best: Best = (lambda twice: None) if from_lowest else (lambda twice, batch=batch: self.confirmed_best(measure, batch) if twice else self.best_so_far(batch))
            points.extend(self.walk(lambda value: measure(Trial(variant, LoadLevel(self.kind, value), batch)), start, best, variant))
        return points

    def start_level(self, variant: Variant, batch: int, anchor: Measurement) -> float:
        """Where a walk starts: the best point's load, or higher where the variant's batches
        fill (:meth:`filling_level`), but not above the level where the best point's p99,
        grown in proportion to load, reaches the budget: a batching variant that fills its
        batches only far above the budget would start with points that cannot count."""
        fill = self.filling_level(variant, batch)
        metric, budget = self.goal.walk_bound
        p99 = anchor.value(metric)
        if self.kind == "concurrency" and budget is not None and p99:
            reach = anchor.load_value * budget / p99
            fill = min(fill, next((v for v in self.levels if v >= reach), self.levels[-1]))
        return max(anchor.load_value, fill)

    def filling_level(self, variant: Variant, batch: int) -> float:
        """The lowest concurrency at which the dynamic batcher can fill every instance's
        batches (instances x max_batch_size inferences in flight); the top level when the
        space stops below that.

        A batching variant's strength shows only there: at lower loads its batches are small
        and it reads like (or worse than) the unbatched config, so a walk that starts low
        and meets a flat step would stop before it got to the answer."""
        batching = [c for c in ([p.config for p in variant.composing] or [variant.config]) if c.HasField("dynamic_batching") and c.max_batch_size > 1]
        if self.kind != "concurrency" or not batching:  # a pipeline: the stage that needs the most in flight
            return self.levels[0]
        needed = max(modelconfig.instance_count(c, self.space.gpus) * c.max_batch_size for c in batching) / max(batch, 1)
        return next((v for v in self.levels if v >= needed), self.levels[-1])

    def walk(self, at: Callable[[float], Measurement], start: float, best: Best, variant: Variant) -> List[Measurement]:
        """One load walk from ``start``: up while gaining inside the budget, down until inside
        it, then bisect the budget boundary.

        ``best()`` is the best point found so far, looked at twice (None for the default
        config's walk, which must find its own best for the verdict); it is only asked for
        when a decision would prune. Lower loads do not carry more throughput than a higher
        one (closed loop: below saturation throughput grows with concurrency, above it stays
        flat; open loop: throughput follows the offered rate). So a point over the budget
        that cannot beat ``best()`` says the whole range below it cannot either, and the
        walk does not go down or bisect there. Going up stops as soon as
        :meth:`load_ceiling` says more load cannot beat ``best()`` either."""
        levels = sorted(set(self.levels) | {start})
        i = levels.index(start)
        first = at(start)
        points = [first]
        if first.status == "failed":
            return points
        if self.inside_budget(first):
            inside, flat = first, False
            for value in levels[i + 1:]:
                ceiling = self.load_ceiling(inside, variant)
                if ceiling is not None and not self.could_beat(ceiling, best):
                    break  # the variant is saturated below the best: more load cannot make it win
                p = at(value)
                points.append(p)
                if p.status == "failed":
                    break
                if not self.inside_budget(p):
                    return points + (self.bisect(at, inside, p) if self.could_win(p, best) else [])
                before = max(points[:-1], key=lambda q: q.throughput or 0.0)
                if not self.beats(p, before):
                    if flat or self.falls(p, before):
                        break  # saturated (flat twice) or overloaded: more load only adds latency
                    flat = True  # one flat step may be noise: look one level further
                else:
                    flat = False
                inside = p
            return points
        outside = first
        while self.could_win(outside, best):
            value = self.load_below(outside, levels)
            if value is None:
                break
            p = at(value)
            points.append(p)
            if p.status == "failed":
                break
            if self.inside_budget(p):
                return points + self.bisect(at, p, outside)
            outside = p
        return points

    def load_below(self, outside: Measurement, levels: Sequence[float]) -> Optional[float]:
        """The next load to try below an over-budget point. In a closed loop past saturation
        every request in flight waits its turn, so latency grows in proportion to
        concurrency: the budget is met near ``concurrency x budget / p99`` (rounded down, so
        inside rather than outside). The step is at least the bisection resolution (25%):
        latency has a floor (one execution), so a smaller step mostly re-measures the same
        p99. An open loop's latency does not scale that way: there it is the next lower level."""
        lower = [v for v in levels if v < outside.load_value]
        if not lower:
            return None
        metric, budget = self.goal.walk_bound
        p99 = outside.value(metric)
        if self.kind != "concurrency" or budget is None or not p99:
            return lower[-1]
        guess = min(outside.load_value * budget / p99, outside.load_value * (1.0 - BISECT_RESOLUTION))
        return max(float(int(guess)), levels[0])

    def crossing(self, inside: Measurement, outside: Measurement) -> Optional[float]:
        """Where p99 reaches the budget between two loads, read off the straight line through
        them (a queue that grows with load grows p99 about linearly); None when that lies
        within the bisection resolution of ``inside``'s load: too close to be worth a point."""
        low, high = inside.load_value, outside.load_value
        metric, budget = self.goal.walk_bound
        p_low, p_high = inside.value(metric), outside.value(metric)
        if budget is not None and p_low is not None and p_high is not None and p_high > p_low:
            at = low + (budget - p_low) / (p_high - p_low) * (high - low)
        else:
            at = (low + high) / 2  # no budget, or the line says nothing: halve the bracket
        at = float(int(at)) if self.kind == "concurrency" else round(at, 3)
        if at - low <= low * BISECT_RESOLUTION or not low < at < high:
            return None
        return at

    def bisect(self, at: Callable[[float], Measurement], inside: Measurement, outside: Measurement) -> List[Measurement]:
        """Find the highest load inside the budget between ``inside`` and ``outside``: each
        step measures where the line through the bracket's ends crosses the budget, for at
        most ``max_bisect_steps`` steps."""
        points: List[Measurement] = []
        while len(points) < self.max_bisect_steps:
            mid = self.crossing(inside, outside)
            if mid is None:
                return points
            p = at(mid)
            points.append(p)
            if p.status == "failed":
                return points
            if not self.inside_budget(p):
                outside = p
            elif self.beats(p, inside):
                inside = p
            else:
                return points  # flat below the boundary: the rest of the bracket adds nothing
        return points

    # -- the best so far, looked at twice -----------------------------------------------

    def looked(self, points: Sequence[Measurement]) -> List[Measurement]:
        """The first looks among ``points``, each with its looks combined if it had two."""
        return [self.evidence.confirmed.get(p.point, p) for p in points if p.repeat == 0]

    def best_so_far(self, batch: int) -> Optional[Measurement]:
        """The best point seen at this client batch size (looks combined)."""
        return self.best([p for p in self.looked(self.evidence.seen) if p.batch_size == batch])

    def confirmed_best(self, measure: Measure, batch: int) -> Optional[Measurement]:
        """:meth:`best_so_far`, after a second look at it if it had only one. When the second
        look brings it down, the new best gets its second look too."""
        while True:
            top = self.best_so_far(batch)
            if top is None or top.point in self.evidence.confirmed:
                return top
            again = measure(Trial(self.by_digest[top.variant_digest], top.load, top.batch_size, repeat=1))
            self.evidence.confirmed[top.point] = repeats.combine([top, again])

    def best_overall(self, measure: Measure, twice: bool) -> Optional[Measurement]:
        tops = [self.confirmed_best(measure, batch) if twice else self.best_so_far(batch) for batch in self.space.batch_sizes]
        return max((t for t in tops if t is not None), key=self.score, default=None)

    # -- judgements ---------------------------------------------------------------------

    def inside_budget(self, p: Measurement) -> bool:
        """Which way a walk goes from ``p``: inside the latency budget when the Judge says so,
        outside when it says so, and by the p99 itself when its interval straddles the
        budget. (Whether ``p`` can be *chosen* is :meth:`meets_goal`: surely inside.)"""
        metric, budget = self.goal.walk_bound
        for c in goal_constraints(self.goal) if budget is not None else ():
            if c.metric == metric:
                verdict = self.judge.within(p, c)
                if verdict is None:
                    return p.value(c.metric) is not None and p.value(c.metric) <= c.max
                return verdict
        return True

    def meets_goal(self, p: Measurement) -> bool:
        return self.judge.meets(p) is True

    def best(self, points: Sequence[Measurement]) -> Optional[Measurement]:
        good = [p for p in points if self.meets_goal(p)]
        return max(good, key=lambda p: p.throughput or 0.0, default=None)

    @staticmethod
    def score(p: Optional[Measurement]) -> float:
        return (p.throughput or 0.0) if p is not None else 0.0

    def beats(self, a: Measurement, b: Measurement) -> bool:
        """``a`` is better than ``b`` by more than 5% and the uncertainty (the Judge's call)."""
        return self.judge.beats(a, b, by=self.min_gain)

    def falls(self, a: Measurement, b: Measurement) -> bool:
        """``a`` is worse than ``b`` by more than 5% and the uncertainty."""
        return self.judge.falls(a, b, by=self.min_gain)

    def could_beat(self, reach: float, best: Best) -> bool:
        """Could a variant whose throughput is at most ``reach`` beat the best so far by 5%?
        When the Judge cannot tell from the best point's interval, the best point is looked
        at a second time and the combined looks decide; still undecided counts as "could"
        (only a sure answer prunes)."""
        top = best(False)
        if top is None:
            return True
        verdict = self.judge.could_reach(reach, top, by=self.min_gain)
        if verdict is not None:
            return verdict
        top = best(True)
        return top is None or self.judge.could_reach(reach, top, by=self.min_gain) is not False

    def could_win(self, p: Measurement, best: Best) -> bool:
        """Can loads at or below ``p``'s beat ``best()``? Only if ``p`` itself could."""
        return p.throughput is not None and self.could_beat(p.throughput, best)

    def load_ceiling(self, p: Measurement, variant: Variant) -> Optional[float]:
        """The most higher loads could get out of ``variant``, judged from its point ``p``;
        None when that cannot be bounded.

        More load raises throughput only through idle capacity or fuller batches (a larger
        batch costs less per inference). So once the batches the server formed at ``p`` are
        as large as they can get (``max_batch_size`` with dynamic batching, else the client's
        batch), the ceiling is the smaller of: the host's CPUs all busy at ``p``'s CPU cost
        per inference (when they were nearly all busy already), and every instance executing
        back to back at ``p``'s execution time."""
        if p.throughput is None or variant.composing:
            return None  # a pipeline's own statistics do not bound its stages
        config = variant.config
        largest = config.max_batch_size if config.HasField("dynamic_batching") and config.max_batch_size > 0 else p.batch_size
        batch = p.server_batch_avg
        if not batch or batch < 0.9 * largest:
            return None  # batches can still grow with load, and get cheaper per inference
        bounds = []
        host = self.host_bound(p)
        if host is not None:
            bounds.append(host)
        execution_ms = server_time_ms(p)
        if execution_ms:
            bounds.append(modelconfig.instance_count(config, self.space.gpus) * batch * 1000.0 / execution_ms)
        return min(bounds, default=None)

    @staticmethod
    def host_bound(p: Measurement) -> Optional[float]:
        """``p``'s throughput with every host CPU busy, if the host was nearly saturated."""
        busy = p.metrics.get("host_cpu_utilization")
        if not busy or busy < HOST_SATURATED or not p.throughput:
            return None
        return p.throughput * 100.0 / min(busy, 100.0)

    def ceiling(self, c: Coord, measured_at: Dict[Coord, List[Measurement]]) -> Optional[float]:
        """The most (instances, mbs) could reach, from the same mbs at fewer instances; None
        when nothing comparable was measured."""
        instances, mbs = c
        fewer = [k for k in measured_at if k[1] == mbs and k[0] < instances]
        if not fewer:
            return None
        base = max(fewer)
        top = self.best(measured_at[base])
        if top is None:
            ok = [p for p in measured_at[base] if p.status != "failed" and p.throughput]
            if not ok or min(p.load_value for p in ok) <= self.levels[0]:
                return 0.0  # over the budget at the lowest load: more instances do not shorten a request
            top = max(ok, key=self.score)  # over the budget at the loads it tried: its throughput still bounds
        bound = self.score(top) * instances / base[0]
        execution_ms, batch = server_time_ms(top), top.server_batch_avg
        if execution_ms and batch:  # every instance busy all the time, batching as measured
            bound = min(bound, instances * batch * 1000.0 / execution_ms)
        host = self.host_bound(top)
        if host is not None:  # every core of the host busy, as much work per request
            bound = min(bound, host)
        return bound

    def cannot_win(self, measure: Measure, c: Coord, measured_at: Dict[Coord, List[Measurement]]) -> bool:
        """The ceiling surely cannot beat the best so far by the 5% that :meth:`beats` asks
        for: at most a tie, which another measurement cannot turn into a better choice."""
        bound = self.ceiling(c, measured_at)
        return bound is not None and not self.could_beat(bound, lambda twice: self.best_overall(measure, twice))


@hookimpl
def tsweep_config_keys():
    return [MAX_BISECT_STEPS]


@hookimpl
def tsweep_search_strategies(options):
    steps = options.get(MAX_BISECT_STEPS.name, MAX_BISECT_STEPS.default)
    return {"adaptive": functools.partial(AdaptiveSearch, max_bisect_steps=steps)}
