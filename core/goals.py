"""The user's objectives and constraints, from config keys and flags to typed values.

A model's own ``objectives`` or ``constraints`` (in its ``profile_models`` entry) replace the
global ones for that model, as in Model Analyzer; ``latency_budget`` and ``min_throughput``
hold for every model, and the tighter of them and a model's own bound on its latency or
throughput is the goal its search aims at.

Which latency: ``percentile`` (perf_analyzer's flag, globally or in a model's own
perf_analyzer_flags) picks the percentile the latency budget and Model Analyzer's
``perf_latency`` objective or constraint read; 99 by default. This is the one place that
turns it into a metric (:func:`latency_metric`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Dict, List, Mapping, Optional, Tuple

from tsweep.catalogue import Catalogue
from tsweep.config import Config, canonical_metric
from tsweep.errors import UsageError
from tsweep.judge import goal_constraints
from tsweep.records import Constraint, Objective, SearchGoal


@dataclass(frozen=True)
class Goals:
    """What one model (or the overall ranking) is ranked by and searched for."""

    objectives: Mapping[str, float]
    constraints: Tuple[Constraint, ...]
    goal: SearchGoal


def for_model(config: Config, known: Catalogue, model: Optional[str] = None) -> Goals:
    """The goals of ``model`` (the global ones for None or a model without its own)."""
    own: Mapping[str, Any] = config.per_model.get(model, {}) if model else {}
    goal = search_goal(config, model)
    explicit = _constraints(own.get("constraints", config.constraints), known, goal.latency_metric)
    for c in explicit if "constraints" in own else ():  # a model's own bounds sharpen its search goal
        if c.metric == goal.latency_metric and c.max is not None:
            goal = replace(goal, latency_budget_ms=_tighter(goal.latency_budget_ms, c.max, min))
        if c.metric == "throughput" and c.min is not None:
            goal = replace(goal, min_throughput=_tighter(goal.min_throughput, c.min, max))
    goal = token_bound(config, model, explicit, goal)
    objectives = _objectives(own.get("objectives", config.objectives), known, goal.latency_metric)
    constraints = _tightest(explicit + goal_constraints(goal))
    ranked = tuple(Objective(metric, weight, known[metric].higher_is_better) for metric, weight in objectives.items())
    goal = replace(goal, objectives=ranked, constraints=constraints)
    return Goals(objectives=objectives, constraints=constraints, goal=goal)


#: Token latencies a streamed model's load walk may keep inside a bound, in the order one is
#: chosen: time to first token grows with load (requests queue for admission), so it is the
#: bound a walk meets first; inter-token latency grows more slowly (each step serves more).
TOKEN_LATENCIES = tuple(f"{kind}_{stat}_ms" for kind in ("ttft", "itl") for stat in ("p99", "p90", "p50", "avg"))


def token_bound(config: Config, model: Optional[str], explicit: List[Constraint], goal: SearchGoal) -> SearchGoal:
    """A streamed model's walk bound: the tightest max on the first of :data:`TOKEN_LATENCIES`
    its constraints (own, else global) bound, so the adaptive search bisects against the
    time to first token a budget names, not against the end-to-end latency (which then
    limits the ranking only). Unchanged for a model that is not streamed."""
    from tsweep.settings import is_streamed

    if not is_streamed(config, model or ""):
        return goal
    for metric in TOKEN_LATENCIES:
        bounds = [c.max for c in explicit if c.metric == metric and c.max is not None]
        if bounds:
            return replace(goal, token_metric=metric, token_budget_ms=min(bounds))
    return goal


def _tightest(constraints: List[Constraint]) -> Tuple[Constraint, ...]:
    """One constraint per metric, with the tightest bounds given (a budget flag and an explicit
    bound on the same metric must not hide one another)."""
    merged: Dict[str, Constraint] = {}
    for c in constraints:
        old = merged.get(c.metric)
        if old is None:
            merged[c.metric] = c
            continue
        low = max((v for v in (old.min, c.min) if v is not None), default=None)
        high = min((v for v in (old.max, c.max) if v is not None), default=None)
        merged[c.metric] = Constraint(c.metric, low, high)
    return tuple(merged.values())


def _tighter(current: Optional[float], bound: float, pick) -> float:
    return bound if current is None else pick(current, bound)


def latency_metric(config: Config, model: Optional[str] = None) -> str:
    """The latency metric the budget and ``perf_latency`` read for ``model``: its own
    perf_analyzer_flags' percentile, else the global one."""
    own = config.per_model.get(model, {}).get("load", {}) if model else {}
    return f"latency_p{own.get('percentile', config.percentile)}_ms"


def has_own_percentile(config: Config, model: str) -> bool:
    return "percentile" in config.per_model.get(model, {}).get("load", {})


def _metric(name: str, where: str, latency: str) -> str:
    """Our metric for a name in objectives or constraints; Model Analyzer's ``perf_latency``
    is the latency the percentile picks."""
    return latency if name == "perf_latency" else canonical_metric(name, where)


def _objectives(given: Mapping[str, Any], known: Catalogue, latency: str) -> Dict[str, float]:
    result = {}
    for name, weight in given.items():
        metric = _known(_metric(name, "objectives", latency), known, "objective")
        try:
            result[metric] = float(weight)
        except (TypeError, ValueError):
            raise UsageError(f"objective {name!r} needs a numeric weight, got {weight!r}") from None
    return result


def _constraints(given: Mapping[str, Any], known: Catalogue, latency: str) -> List[Constraint]:
    found: List[Constraint] = []
    for name, bounds in given.items():
        metric = _known(_metric(name, "constraints", latency), known, "constraint")
        if not isinstance(bounds, dict) or not bounds or set(bounds) - {"min", "max"}:
            raise UsageError(f"constraint {name!r} must be a mapping with min and/or max, got {bounds!r}")
        try:
            found.append(Constraint(metric, _num(bounds.get("min")), _num(bounds.get("max"))))
        except (TypeError, ValueError):
            raise UsageError(f"constraint {name!r} bounds must be numbers, got {bounds!r}") from None
    return found


def search_goal(config: Config, model: Optional[str] = None) -> SearchGoal:
    return SearchGoal(latency_budget_ms=config.latency_budget, min_throughput=config.min_throughput, latency_metric=latency_metric(config, model))


def _num(value):
    return None if value is None else float(value)


def _known(metric: str, known: Catalogue, what: str) -> str:
    """``metric`` when the catalogue lets it be an objective or a constraint."""
    rankable = known.rankable()
    if metric not in rankable:
        raise UsageError(f"unknown {what} metric {metric!r}: choose from {', '.join(sorted(rankable))}")
    return metric
