"""Search strategy ``brute``: the whole space, with Model Analyzer's two early exits.

* A load walk stops when raising the load no longer buys throughput: neither of the last two
  points beats the best before them by more than 5% and by more than the uncertainty of the
  difference (the :class:`tsweep.judge.Judge` decides). A failed point ends its walk too
  (more load will not make it succeed).
* At each instance count, max_batch_size is tried in increasing order and stops when it
  stops improving: when a batch size's best point (surely inside the latency budget and
  minimum throughput) does not beat the best of the smaller ones at that count, by the same
  rule. A batch size with no point inside the goal counts as not improving.

Everything else is measured: every instance count, every variant of a manual space that is
not on the (instances, max_batch_size) grid, and the default config. A pipeline's
combinations (tsweep.pipeline) have no one instance axis, so each is walked (its load walk
keeps its early exit); tsweep.pipeline caps how many there may be.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

from tsweep.plugin import hookimpl
from tsweep.plugins.search.grid import by_coord, is_pipeline
from tsweep.judge import Judge
from tsweep.records import ConfigSpace, Measurement, SearchGoal, Trial, Variant


def walk_finished(points: Sequence[Measurement], judge: Judge, min_gain: float) -> bool:
    """True when a load walk (points in load order) should not go higher.

    One of the last two points must beat the best before them by more than ``min_gain``
    (5%, as Model Analyzer users expect) *and* by more than the uncertainty of the
    difference: on a noisy machine a 6% "gain" between points known to +-5% is not a gain.
    """
    if any(p.status == "failed" for p in points):
        return True
    if len(points) < 3:
        return False
    before = max(points[:-2], key=lambda p: p.throughput or 0.0)
    recent = max(points[-2:], key=lambda p: p.throughput or 0.0)
    return not judge.beats(recent, before, by=min_gain)


def next_in_walks(space: ConfigSpace, variant, by_key: Dict[str, Measurement], judge: Judge, min_gain: float) -> Tuple[List[Trial], List[Measurement]]:
    """The next unmeasured trial of each of ``variant``'s load walks that can go on (one walk
    per client batch size: they do not depend on one another), or none and the walks'
    points when every walk is finished. The first is the one a single lane measures first."""
    trials: List[Trial] = []
    points: List[Measurement] = []
    for batch in space.batch_sizes:
        walked: List[Measurement] = []
        for load in space.load_levels:
            trial = Trial(variant, load, batch)
            done = by_key.get(trial.key)
            if done is None:
                if not walk_finished(walked, judge, min_gain):
                    trials.append(trial)
                break
            walked.append(done)
        points.extend(walked)
    return trials, ([] if trials else points)


def best_in_goal(points: Sequence[Measurement], judge: Judge) -> Optional[Measurement]:
    """The highest-throughput point that surely meets the goal (latency budget, minimum throughput)."""
    good = [p for p in points if judge.meets(p) is True]
    return max(good, key=lambda p: p.throughput or 0.0, default=None)


class BruteSearch:
    def __init__(self, space: ConfigSpace, goal: SearchGoal, min_gain: float = 0.05):
        self.space, self.goal, self.min_gain = space, goal, min_gain
        # a pipeline's combinations have no single instance axis to stop along: each is walked
        grid = {} if is_pipeline(space.variants) else by_coord(v for v in space.variants if not v.is_default)
        self.rows: Dict[int, List[Tuple[int, List[Variant]]]] = {}  # instances -> [(mbs, variants)] by mbs
        for (instances, mbs), variants in sorted(grid.items()):
            self.rows.setdefault(instances, []).append((mbs, variants))
        on_grid = {v.name for row in self.rows.values() for _, vs in row for v in vs}
        self.others = [v for v in space.variants if v.name not in on_grid]

    def propose(self, history: Sequence[Measurement]) -> List[Trial]:
        """The next trial of every walk that can go on now, in the order one lane measures
        them: the variants off the grid, then each instance count's row. A row moves to its
        next max_batch_size only once every walk at the current one is finished (its break
        rule reads their best); rows, variants and client batch sizes are independent."""
        by_key: Dict[str, Measurement] = {m.key: m for m in history}
        judge = Judge.from_history(self.goal, history)
        trials: List[Trial] = []
        for variant in self.others:
            trials.extend(next_in_walks(self.space, variant, by_key, judge, self.min_gain)[0])
        for row in self.rows.values():
            row_best: Optional[Measurement] = None
            for _, variants in row:
                points: List[Measurement] = []
                pending: List[Trial] = []
                for variant in variants:
                    walks, walked = next_in_walks(self.space, variant, by_key, judge, self.min_gain)
                    pending.extend(walks)
                    points.extend(walked)
                if pending:
                    trials.extend(pending)
                    break  # this max_batch_size's walks go on first
                top = best_in_goal(points, judge)
                if top is None or (row_best is not None and not judge.beats(top, row_best, by=self.min_gain)):
                    break  # max_batch_size stopped improving at this instance count
                row_best = top
        return trials

    def planned(self) -> int:
        """Upper bound of trials, for progress display."""
        return len(self.space.variants) * len(self.space.batch_sizes) * len(self.space.load_levels)


@hookimpl
def tsweep_search_strategies():
    return {"brute": BruteSearch}
