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
   bracket is within 25% or a level inside the budget gains nothing. Lower loads carry no
   more throughput than higher ones, so an over-budget point that does not beat the best so
   far ends the walk there: no bisection below it, no walking down from it.
3. **max_batch_size stops when it stops helping**, per instance count; **instance counts
   stop when one more instance did not beat the previous count's best.** "Beat" means by
   more than 5% and more than the two points' measured noise.
4. **Variants that cannot win are not measured.** Before walking (instances I, max batch
   B), it bounds what the variant could reach from what was measured at (I', B), I' < I:
   perfect scaling of its best throughput (x I / I'); from Triton's statistics, I
   instances each busy 100% of the time at the measured execution time and batch size; and
   the host's CPUs all busy (``host_cpu_utilization``), since on a CPU-only machine client
   and server share the cores. If the bound does not beat the best so far by the 5% a gain
   needs, the variant is skipped. A skip says nothing about a larger max_batch_size (larger
   batches can cost less per inference), so the next one is judged on its own.

The strategy keeps no state between calls: :meth:`AdaptiveSearch.propose` replays the whole
plan against the history and returns the first point the plan needs that is not in it. So
a resumed run continues exactly where it stopped, and the plan reads as straight-line code.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence

from tsweep import modelconfig
from tsweep.plugin import hookimpl
from tsweep.plugins.search.grid import Coord, by_coord
from tsweep.records import ConfigSpace, LoadLevel, Measurement, SearchGoal, Trial, Variant, noise_margin

Measure = Callable[[Trial], Measurement]

#: Bisection stops when the bracket is narrower than this fraction of its lower end.
BISECT_RESOLUTION = 0.25


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


class AdaptiveSearch:
    def __init__(self, space: ConfigSpace, goal: SearchGoal, min_gain: float = 0.05):
        self.space, self.goal, self.min_gain = space, goal, min_gain
        self.default = next((v for v in space.variants if v.is_default), None)
        self.grid: Dict[Coord, List[Variant]] = by_coord(v for v in space.variants if not v.is_default)
        self.kind = space.load_levels[0].kind if space.load_levels else "concurrency"
        self.levels = sorted({lvl.value for lvl in space.load_levels})

    # -- the protocol -------------------------------------------------------------------

    def propose(self, history: Sequence[Measurement]) -> List[Trial]:
        by_key = {m.key: m for m in history}

        def measure(trial: Trial) -> Measurement:
            found = by_key.get(trial.key)
            if found is None:
                raise _Needed(trial)
            return found

        try:
            self.plan(measure)
        except _Needed as needed:
            return [needed.trial]
        return []

    def planned(self) -> int:
        """Upper bound for progress display: the whole space plus the levels bisection may add
        (a bracket within 25% takes at most 3 halvings); it usually needs far less."""
        return len(self.space.variants) * len(self.space.batch_sizes) * (len(self.space.load_levels) + 3)

    # -- the plan -----------------------------------------------------------------------

    def plan(self, measure: Measure) -> None:
        """The whole search as straight-line code; ``measure`` raises for unmeasured points."""
        if not self.levels:
            return
        anchors: Dict[int, Measurement] = {}  # client batch size -> best point so far
        if self.default is not None:
            self.walk_variant(measure, self.default, anchors, from_lowest=True)
        measured_at: Dict[Coord, List[Measurement]] = {}
        previous_count_best: Optional[Measurement] = None
        for instances in sorted({c[0] for c in self.grid}):
            count_best: Optional[Measurement] = None
            for mbs in sorted({c[1] for c in self.grid if c[0] == instances}):
                c = (instances, mbs)
                if self.cannot_win(c, measured_at, anchors):
                    continue  # each batch size has its own bound: a larger one may batch cheaper
                points = [p for v in self.grid[c] for p in self.walk_variant(measure, v, anchors)]
                measured_at[c] = points
                top = self.best(points)
                if top is None:
                    continue  # nothing inside the constraints: larger batches only add latency
                if count_best is None or self.beats(top, count_best):
                    count_best = top
                else:
                    break  # a larger max_batch_size stopped helping at this instance count
            if count_best is None:
                break
            if previous_count_best is not None and not self.beats(count_best, previous_count_best):
                break  # one more instance did not help: more will not either
            previous_count_best = count_best

    def walk_variant(self, measure: Measure, variant: Variant, anchors: Dict[int, Measurement], from_lowest: bool = False) -> List[Measurement]:
        points: List[Measurement] = []
        for batch in self.space.batch_sizes:
            anchor = anchors.get(batch)
            start = self.levels[0] if from_lowest or anchor is None else max(anchor.load_value, self.filling_level(variant, batch))
            walked = self.walk(lambda value: measure(Trial(variant, LoadLevel(self.kind, value), batch)), start, anchor, variant)
            top = self.best(walked)
            if top is not None and (anchor is None or self.score(top) > self.score(anchor)):
                anchors[batch] = top
            points.extend(walked)
        return points

    def filling_level(self, variant: Variant, batch: int) -> float:
        """The lowest concurrency at which the dynamic batcher can fill every instance's
        batches (instances x max_batch_size inferences in flight); the top level when the
        space stops below that.

        A batching variant's strength shows only there: at lower loads its batches are small
        and it reads like (or worse than) the unbatched config, so a walk that starts low
        and meets a flat step would stop before it got to the answer."""
        config = variant.config
        if self.kind != "concurrency" or not config.HasField("dynamic_batching") or config.max_batch_size <= 1:
            return self.levels[0]
        needed = modelconfig.instance_count(config) * config.max_batch_size / max(batch, 1)
        return next((v for v in self.levels if v >= needed), self.levels[-1])

    def walk(
        self, at: Callable[[float], Measurement], start: float, best: Optional[Measurement] = None, variant: Optional[Variant] = None
    ) -> List[Measurement]:
        """One load walk from ``start``: up while gaining inside the budget, down until inside
        it, then bisect the budget boundary.

        ``best`` is the best point found so far (None for the default config's walk, which
        must find its own best for the verdict). Lower loads do not carry more throughput
        than a higher one (closed loop: below saturation throughput grows with concurrency,
        above it stays flat; open loop: throughput follows the offered rate). So a point
        over the budget that does not beat ``best`` says the whole range below it cannot
        either, and the walk does not go down or bisect there. Going up stops as soon as
        :meth:`load_ceiling` says more load cannot beat ``best`` either."""
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
                if best is not None and ceiling is not None and ceiling <= self.score(best) * (1.0 + self.min_gain):
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
        for value in reversed(levels[:i]):
            if not self.could_win(outside, best):
                break
            p = at(value)
            points.append(p)
            if p.status == "failed":
                break
            if self.inside_budget(p):
                return points + self.bisect(at, p, outside)
            outside = p
        return points

    def could_win(self, p: Measurement, best: Optional[Measurement]) -> bool:
        """Can loads at or below ``p``'s beat ``best``? Only if ``p`` itself beats it."""
        return best is None or self.beats(p, best)

    def bisect(self, at: Callable[[float], Measurement], inside: Measurement, outside: Measurement) -> List[Measurement]:
        points: List[Measurement] = []
        while True:
            low, high = inside.load_value, outside.load_value
            if high - low <= low * BISECT_RESOLUTION:
                return points
            mid = float((int(low) + int(high)) // 2) if self.kind == "concurrency" else round((low + high) / 2, 3)
            if not low < mid < high:
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

    # -- judgements ---------------------------------------------------------------------

    def inside_budget(self, p: Measurement) -> bool:
        budget = self.goal.latency_budget_ms
        return budget is None or (p.latency_p99_ms is not None and p.latency_p99_ms <= budget)

    def meets_goal(self, p: Measurement) -> bool:
        if p.status == "failed" or not p.throughput or not self.inside_budget(p):
            return False
        return self.goal.min_throughput is None or p.throughput >= self.goal.min_throughput

    def best(self, points: Sequence[Measurement]) -> Optional[Measurement]:
        good = [p for p in points if self.meets_goal(p)]
        return max(good, key=lambda p: p.throughput or 0.0, default=None)

    @staticmethod
    def score(p: Optional[Measurement]) -> float:
        return (p.throughput or 0.0) if p is not None else 0.0

    def beats(self, a: Measurement, b: Measurement) -> bool:
        """``a`` is better than ``b`` by more than 5% and more than their combined noise."""
        return (a.throughput or 0.0) > (b.throughput or 0.0) * (1.0 + noise_margin(a, b, self.min_gain))

    def falls(self, a: Measurement, b: Measurement) -> bool:
        """``a`` is worse than ``b`` by more than 5% and more than their combined noise."""
        return (a.throughput or 0.0) < (b.throughput or 0.0) * (1.0 - noise_margin(a, b, self.min_gain))

    @staticmethod
    def load_ceiling(p: Measurement, variant: Optional[Variant]) -> Optional[float]:
        """The most higher loads could get out of ``variant``, judged from its point ``p``;
        None when that cannot be bounded.

        More load raises throughput only through idle capacity or fuller batches (a larger
        batch costs less per inference). So once the batches the server formed at ``p`` are
        as large as they can get (``max_batch_size`` with dynamic batching, else the client's
        batch), the ceiling is the smaller of: the host's CPUs all busy at ``p``'s CPU cost
        per inference, and every instance executing back to back at ``p``'s execution time."""
        if variant is None or p.throughput is None:
            return None
        config = variant.config
        largest = config.max_batch_size if config.HasField("dynamic_batching") and config.max_batch_size > 0 else p.batch_size
        batch = p.metrics.get("server_batch_avg")
        if not batch or batch < 0.9 * largest:
            return None  # batches can still grow with load, and get cheaper per inference
        bounds = []
        host_busy = p.metrics.get("host_cpu_utilization")
        if host_busy and host_busy > 0:
            bounds.append(p.throughput * 100.0 / min(host_busy, 100.0))
        execution_ms = server_time_ms(p)
        if execution_ms:
            bounds.append(modelconfig.instance_count(config) * batch * 1000.0 / execution_ms)
        return min(bounds, default=None)

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
            return 0.0  # fewer instances never met the budget; more do not shorten a request
        bound = self.score(top) * instances / base[0]
        execution_ms, batch = server_time_ms(top), top.metrics.get("server_batch_avg")
        if execution_ms and batch:  # every instance busy all the time, batching as measured
            bound = min(bound, instances * batch * 1000.0 / execution_ms)
        host_busy = top.metrics.get("host_cpu_utilization")
        if host_busy and host_busy > 0:  # every core of the host busy, as much work per request
            bound = min(bound, self.score(top) * 100.0 / min(host_busy, 100.0))
        return bound

    def cannot_win(self, c: Coord, measured_at: Dict[Coord, List[Measurement]], anchors: Dict[int, Measurement]) -> bool:
        """The ceiling does not beat the best so far by the 5% that :meth:`beats` asks for:
        at most a tie, which another measurement cannot turn into a better choice."""
        bound = self.ceiling(c, measured_at)
        if bound is None or not anchors:
            return False
        return bound <= max(self.score(a) for a in anchors.values()) * (1.0 + self.min_gain)


@hookimpl
def tsweep_search_strategies():
    return {"adaptive": AdaptiveSearch}
