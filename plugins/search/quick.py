"""Search strategy ``quick``: hill-climbing over instance count x max_batch_size.

Every config visited gets a load walk (as in ``brute``, with its early exit) and a score: its
best point that surely meets the latency budget and minimum throughput. The
climb starts at the generated variant closest to the model's own config (after measuring
the default itself, for comparison), walks every neighbour (one instance more or fewer,
max_batch_size doubled or halved), moves to the best neighbour if it beats the current
config (by 5% and by more than the uncertainty: the Judge decides), and stops when none does.

The strategy keeps no state: it replays the climb from the history on every call, so a
resumed run continues where it stopped.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

from tsweep.plugin import hookimpl
from tsweep.plugins.search.grid import Coord, by_coord, coord, neighbours
from tsweep.judge import Judge
from tsweep.plugins.search.brute import best_in_goal, next_in_walks
from tsweep.records import ConfigSpace, Measurement, SearchGoal, Trial, Variant

class QuickSearch:
    def __init__(self, space: ConfigSpace, goal: SearchGoal, min_gain: float = 0.05):
        self.space, self.goal, self.min_gain = space, goal, min_gain
        self.default = next((v for v in space.variants if v.is_default), None)
        self.grid: Dict[Coord, List[Variant]] = by_coord(v for v in space.variants if not v.is_default)

    def _walks(self, variants: Sequence[Variant], by_key: Dict[str, Measurement], judge: Judge) -> Tuple[List[Trial], List[Measurement]]:
        """The next trial of each of these variants' walks that can go on, or none and all their points."""
        trials: List[Trial] = []
        points: List[Measurement] = []
        for variant in variants:
            walks, walked = next_in_walks(self.space, variant, by_key, judge, self.min_gain)
            trials.extend(walks)
            points.extend(walked)
        return trials, ([] if trials else points)

    def _start(self) -> Optional[Coord]:
        if not self.grid:
            return None
        target = coord(self.default) if self.default else min(self.grid)
        return min(self.grid, key=lambda c: (*(abs(a - b) for a, b in zip(c, target)), c))

    def _neighbours(self, c: Coord) -> List[Coord]:
        """One component's axis at a time (a single model has one component)."""
        return [n for n in neighbours(c) if n in self.grid and n != c]

    def propose(self, history: Sequence[Measurement]) -> List[Trial]:
        """The next trial of every walk the climb needs now: the default's (for comparison
        only), the current config's and every neighbour's (all walked whatever the current
        one shows) are independent; the climb moves only once they are all finished. The
        first is what one lane measures first, so a one-lane run climbs as it always did."""
        by_key = {m.key: m for m in history}
        judge = Judge.from_history(self.goal, history)
        trials: List[Trial] = []
        if self.default is not None:
            trials.extend(self._walks([self.default], by_key, judge)[0])
        current = self._start()
        if current is None:
            return trials
        pending, points = self._walks(self.grid[current], by_key, judge)
        best = best_in_goal(points, judge)
        while True:
            tops = {}
            for n in self._neighbours(current):
                walks, points = self._walks(self.grid[n], by_key, judge)
                pending.extend(walks)
                tops[n] = best_in_goal(points, judge)
            if pending:
                return trials + pending
            better = {n: p for n, p in tops.items() if p is not None and (best is None or judge.beats(p, best, by=self.min_gain))}
            if not better:
                return trials
            current = max(better, key=lambda n: (better[n].throughput or 0.0, n))
            best = better[current]

    def planned(self) -> int:
        """Upper bound for progress display: at most the whole space."""
        return len(self.space.variants) * len(self.space.batch_sizes) * len(self.space.load_levels)


@hookimpl
def tsweep_search_strategies():
    return {"quick": QuickSearch}
