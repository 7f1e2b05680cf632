"""Several models profiled together: a combination is one variant of each model, all loaded
on the run's one server, and a combination point is that combination under one load level
per model, measured in the same windows (:func:`tsweep.together.measure_together`).

Why a module of its own: the single-model path knows one variant and one load; here the
unit of the search, of the store's grouping and of the reports is the set. One
measurement of a combination point is one row per model, each with the point's id in
``combination`` (:attr:`tsweep.records.Measurement.combination`), so that resuming skips a
stored combination point and the reports read the rows back as one.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Dict, List, Mapping, Sequence, Tuple

from tsweep.records import LoadLevel, Measurement, Trial, Variant


@dataclass(frozen=True)
class Combination:
    """One variant per model, in the order the models were listed."""

    members: Tuple[Variant, ...]

    @property
    def models(self) -> Tuple[str, ...]:
        return tuple(v.model for v in self.members)

    @property
    def name(self) -> str:
        """``add_sub_config_1 + mlp_config_default``: the variants, as a person reads them."""
        return " + ".join(v.name for v in self.members)

    def member(self, model: str) -> Variant:
        return next(v for v in self.members if v.model == model)

    def with_member(self, variant: Variant) -> "Combination":
        """This combination with ``variant`` in place of its model's current one."""
        return Combination(tuple(variant if v.model == variant.model else v for v in self.members))


@dataclass(frozen=True)
class CombinationTrial:
    """A combination under one load level per model (``loads``, in the members' order)."""

    combination: Combination
    loads: Tuple[LoadLevel, ...]
    batch_size: int = 1

    @property
    def id(self) -> str:
        """The combination point's id: the same variants (by config) and loads, the same id."""
        text = "|".join(f"{v.model}/{v.digest}/{load}" for v, load in zip(self.combination.members, self.loads))
        return "c" + hashlib.sha256(f"{text}/b{self.batch_size}".encode()).hexdigest()[:10]

    def trials(self) -> List[Trial]:
        """One plain trial per model, as each model's load generator and rows see it."""
        return [Trial(v, load, self.batch_size) for v, load in zip(self.combination.members, self.loads)]

    def keys(self) -> List[str]:
        """The store keys of the point's rows (one per model)."""
        return [Measurement(
            model=t.variant.model, variant=t.variant.name, variant_digest=t.variant.digest, load_kind=t.load.kind,
            load_value=t.load.value, batch_size=t.batch_size, status="", combination=self.id,
        ).key for t in self.trials()]  # fmt: skip


def load_steps(levels: Mapping[str, Sequence[LoadLevel]], models: Sequence[str]) -> List[Tuple[LoadLevel, ...]]:
    """The load steps a combination is walked through: step ``i`` gives each model its own
    ``i``-th level, a model with fewer levels staying at its last one."""
    longest = max(len(levels[m]) for m in models)
    return [tuple(levels[m][min(i, len(levels[m]) - 1)] for m in models) for i in range(longest)]


def grouped(rows: Sequence[Measurement]) -> Dict[str, List[Measurement]]:
    """Rows measured together, by combination point id, in the order they were stored
    (rows measured alone are left out)."""
    points: Dict[str, List[Measurement]] = {}
    for m in rows:
        if m.combination:
            points.setdefault(m.combination, []).append(m)
    return points


def weights(per_model: Mapping[str, Mapping[str, object]], models: Sequence[str]) -> Dict[str, float]:
    """Each model's ``weighting`` (its profile_models entry; 1 when not given)."""
    return {m: float(per_model.get(m, {}).get("weighting", 1) or 1) for m in models}


def weighted_score(scores: Mapping[str, float], weighting: Mapping[str, float]) -> float:
    """The combination's score: each model's objective score weighted by its ``weighting``,
    over the sum of the weights (Model Analyzer's weighting: a weight of 3 makes a model's
    gains count three times another's)."""
    total = sum(weighting.get(m, 1.0) for m in scores)
    return sum(weighting.get(m, 1.0) * s for m, s in scores.items()) / total if total else 0.0
