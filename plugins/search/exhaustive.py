"""Search strategy ``exhaustive``: every listed point, as listed.

Model Analyzer measures a hand-written grid (``run_config_search_disable`` with
``model_config_parameters`` and listed loads) point by point, every one of them, unless
``early_exit_enable`` asks it to skip. Users who wrote such a grid expect every point in
their results, so this is the strategy tsweep picks for them (:func:`tsweep.settings.search_mode`);
``early_exit_enable`` picks ``brute`` instead.

Order: variant by variant as the space lists them (the default config first), each
client batch size, loads from low to high. The one exit: a failed point ends its load walk,
since more load will not make a failing variant succeed (Model Analyzer stops there too).
So each answer holds the next point of every walk (variant and client batch size) still
going, in that order: walks do not depend on one another, a walk's points do.
"""
from __future__ import annotations

from typing import List, Sequence

from tsweep.plugin import hookimpl
from tsweep.records import ConfigSpace, Measurement, SearchGoal, Trial


class ExhaustiveSearch:
    def __init__(self, space: ConfigSpace, goal: SearchGoal):
        self.space, self.goal = space, goal

    def propose(self, history: Sequence[Measurement]) -> List[Trial]:
        by_key = {m.key: m for m in history}
        trials = []
        for variant in self.space.variants:
            for batch in self.space.batch_sizes:
                for load in self.space.load_levels:
                    done = by_key.get(Trial(variant, load, batch).key)
                    if done is None:
                        trials.append(Trial(variant, load, batch))
                        break  # the walk's next point waits for this one (it may fail)
                    if done.status == "failed":
                        break  # more load will not make it succeed
        return trials

    def planned(self) -> int:
        """Every point of the space."""
        return len(self.space.variants) * len(self.space.batch_sizes) * len(self.space.load_levels)


@hookimpl
def tsweep_search_strategies():
    return {"exhaustive": ExhaustiveSearch}
