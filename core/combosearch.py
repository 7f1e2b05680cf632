"""Which combinations to measure, when several models are profiled together.

A combination is one variant per model (:mod:`tsweep.combination`); the space is the
product of the models' variants, which grows too fast to measure whole beyond a few models.
Three walks, over an :class:`Evaluator` that measures a combination (its load steps) and
scores it from everything measured so far:

* ``brute``: every combination (small spaces; Model Analyzer's brute).
* ``quick``: hill-climbing from the models' default configs: measure every neighbour of
  the best combination so far (one model's instances or max_batch_size one step away), move
  to the best one while it is better, stop when none is (Model Analyzer's quick search
  climbs the same way).
* ``adaptive``: one model at a time: the model furthest from its goal (missing its
  constraints most, else scoring lowest) tries its neighbours while the others keep their
  variants; a better combination is taken and the furthest model is asked again; a model
  whose neighbours do not help is done until another model's move changes the picture.
  It spends the measurements on the model that holds the set back.

The walks know nothing of servers: a unit test drives them over a synthetic table.
"""
from __future__ import annotations

import itertools
import math
from typing import Dict, List, Mapping, Optional, Protocol, Sequence, Set, Tuple

from tsweep.combination import Combination
from tsweep.records import Variant

#: The modes that walk combinations; another run_config_search_mode is refused with these.
MODES = ("adaptive", "quick", "brute")
#: A combination's value: (meets every model's constraints, -how far it misses, score).
Value = Tuple[bool, float, float]
#: The coordinates a neighbour moves one step along.
STEPPED = ("instances", "max_batch_size")


class Evaluator(Protocol):
    def walk(self, combination: Combination) -> None:
        """Measure the combination (its load steps; stored ones are not measured again)."""
        ...

    def value(self, combination: Combination) -> Optional[Value]:
        """The combination's best load step by everything measured so far; None when none
        of its steps was measured successfully."""
        ...

    def standing(self, combination: Combination) -> Dict[str, Tuple[float, float]]:
        """Each model's (constraint miss, objective score) in the combination's best step."""
        ...


def start(variants: Mapping[str, Sequence[Variant]]) -> Combination:
    """Every model's default config (else its first variant): where the climbs begin."""
    return Combination(tuple(next((v for v in vs if v.is_default), vs[0]) for vs in variants.values()))


def neighbours(combination: Combination, variants: Mapping[str, Sequence[Variant]], model: Optional[str] = None) -> List[Combination]:
    """The combinations one step away: one model's variant moved one step along instances or
    max_batch_size (the next value its variants take), the rest of its config the same.
    A variant off such a grid (the model's own config without dynamic batching, a manual
    space's variants) steps to the variants nearest to it by those two coordinates, so the
    climb can leave the default config for the grid. ``model`` limits the moves to that model's."""
    found: List[Combination] = []
    for name, options in variants.items():
        if model is not None and name != model:
            continue
        current = combination.member(name)
        near = _grid_neighbours(current, options) or _nearest(current, options)
        found.extend(combination.with_member(v) for v in near)
    return found


def _grid_neighbours(current: Variant, options: Sequence[Variant]) -> List[Variant]:
    here = current.coordinates
    near = []
    for axis in STEPPED:
        values = sorted({getattr(v.coordinates, axis) for v in options})
        at = values.index(getattr(here, axis))
        for step in (at - 1, at + 1):
            if 0 <= step < len(values):
                target = {**{a: getattr(here, a) for a in STEPPED}, axis: values[step]}
                match = [
                    v for v in options
                    if all(getattr(v.coordinates, a) == target[a] for a in STEPPED)
                    and (v.coordinates.kind, v.coordinates.dynamic_batching, v.coordinates.values)
                    == (here.kind, here.dynamic_batching, here.values)
                ]  # fmt: skip
                near.extend(match[:1])
    return near


def _nearest(current: Variant, options: Sequence[Variant]) -> List[Variant]:
    here = current.coordinates

    def distance(v: Variant) -> float:
        there = v.coordinates
        return abs(there.instances - here.instances) + abs(math.log2(max(there.max_batch_size, 1)) - math.log2(max(here.max_batch_size, 1)))

    others = [v for v in options if v.name != current.name]
    closest = min((distance(v) for v in others), default=None)
    return [v for v in others if distance(v) == closest]


def _better(a: Optional[Value], b: Optional[Value]) -> bool:
    """True when ``a`` beats ``b`` (an unmeasured or failed combination beats nothing)."""
    if a is None:
        return False
    return b is None or a > b


def search(mode: str, variants: Mapping[str, Sequence[Variant]], evaluator: Evaluator) -> List[Combination]:
    """Walk the combinations of ``variants`` (``{model: its variants}``, in the models'
    order) by ``mode``; returns the combinations measured, in order."""
    if mode not in MODES:
        raise ValueError(f"unknown combination search {mode!r}: choose from {', '.join(MODES)}")
    seen: List[Combination] = []
    visited: Set[Tuple[str, ...]] = set()

    def measure(c: Combination) -> None:
        key = tuple(v.name for v in c.members)
        if key not in visited:
            visited.add(key)
            seen.append(c)
            evaluator.walk(c)

    def fresh(cs: Sequence[Combination]) -> List[Combination]:
        return [c for c in cs if tuple(v.name for v in c.members) not in visited]

    if mode == "brute":
        for members in itertools.product(*variants.values()):
            measure(Combination(tuple(members)))
        return seen
    current = start(variants)
    measure(current)
    if mode == "quick":
        while True:
            candidates = fresh(neighbours(current, variants))
            for c in candidates:
                measure(c)
            best = max(candidates, key=lambda c: evaluator.value(c) or (False, float("-inf"), float("-inf")), default=None)
            if best is None or not _better(evaluator.value(best), evaluator.value(current)):
                return seen
            current = best
    done: Set[str] = set()
    while len(done) < len(variants):
        standing = evaluator.standing(current)
        waiting = [m for m in variants if m not in done]
        # furthest from its goal: missing its constraints most, else the lowest score
        model = max(waiting, key=lambda m: (standing.get(m, (float("inf"), 0.0))[0], -standing.get(m, (0.0, 0.0))[1]))
        candidates = fresh(neighbours(current, variants, model))
        for c in candidates:
            measure(c)
        best = max(candidates, key=lambda c: evaluator.value(c) or (False, float("-inf"), float("-inf")), default=None)
        if best is not None and _better(evaluator.value(best), evaluator.value(current)):
            current, done = best, set()
        else:
            done.add(model)
    return seen
