"""Search strategies replayed many times on a measured surface, with the machine's own noise.

    python bench/search.py --models add_sub --keep runs/        # real runs, stores kept
    python bench/search_replay.py add_sub 4 runs/add_sub/*/ck/results.sqlite --seeds 100

One real ``bench/search.py`` run is one draw: on a 2-core VM whose points wobble by 10-20%
from one look to the next, whether adaptive's choice beats brute's in that draw is largely
luck. This replays the strategies on what real runs measured, many times over, so that a
change to a strategy can be judged by its average and its bad tail, in seconds.

* The surface: every point in the given stores (any strategy's, re-measurements included),
  averaged per (config, load), then made nondecreasing in load, throughput and p99 alike, as
  a closed loop is (pool adjacent violators: a lucky point is averaged with its neighbours
  instead of becoming the truth); loads between measured ones are interpolated linearly,
  throughput stays flat and p99 grows in proportion above the highest (a saturated closed
  loop), throughput shrinks in proportion below the lowest.
* The noise: each replayed measurement draws the window sequence of a real point (as ratios
  to that point's mean) and a real look-to-look factor (a point measured in several runs,
  each run's figure over their mean), and is judged by tsweep's rule (stable when the last 3
  windows agree within 10%, else the last 3 of at most 5).
* The score of a choice is its config's *true* value: the surface's best throughput inside
  the budget over every concurrency in the range. That is what a user deploying the chosen
  config gets; which load the search happened to report it at does not matter.

Printed per strategy: mean points (x brute's), the chosen configs' mean value (x brute's), its
10th percentile (the bad tail), and how many choices were reported at a load whose true p99
is more than 10% over the budget (chosen on a lucky p99).

A replay is only as good as its surface: points measured once carry their noise into it.
The real bench (``bench/search.py``) stays the judge; this tells whether a change helps on
average before paying 25 minutes for one more draw.
"""
from __future__ import annotations

import argparse
import bisect
import dataclasses
import random
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "model_repository"
AVERAGED = ("throughput", "latency_p99_ms", "latency_avg_ms", "compute_input_ms", "compute_infer_ms", "compute_output_ms", "queue_ms")

Curve = List[Tuple[float, object]]  # (load, mean Measurement), by load


def mean_point(rows):
    first = rows[0]
    m = dataclasses.replace(first, metrics=dict(first.metrics))
    for name in AVERAGED:
        values = [getattr(r, name) for r in rows if getattr(r, name) is not None]
        setattr(m, name, sum(values) / len(values) if values else None)
    for key in set().union(*(r.metrics for r in rows)):
        values = [r.metrics[key] for r in rows if key in r.metrics]
        m.metrics[key] = sum(values) / len(values)
    return m


def nondecreasing(values: List[float], weights: List[int]) -> List[float]:
    """The closest nondecreasing sequence (weighted least squares: pool adjacent violators).
    One lucky point between two ordinary neighbours is averaged with them instead of
    becoming the surface's peak."""
    blocks: List[List[float]] = []  # [mean, weight, count]
    for v, w in zip(values, weights):
        blocks.append([v, float(w), 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            (m2, w2, n2), (m1, w1, n1) = blocks.pop(), blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, n1 + n2])
    return [m for m, _, n in blocks for _ in range(n)]


class Surface:
    """What the stores measured, as a function of (config digest, load kind, batch, load)."""

    def __init__(self, stores: List[Path], model: str):
        from tsweep.store import ResultsStore

        grouped: Dict[tuple, Dict[float, list]] = defaultdict(lambda: defaultdict(list))
        self.windows: List[Tuple[List[float], List[float]]] = []
        for path in stores:
            with ResultsStore.open_existing(path) as store:
                for m in store.measurements(model):
                    if m.status == "failed" or not m.throughput or not m.latency_p99_ms:
                        continue
                    grouped[(m.variant_digest, m.load_kind, m.batch_size)][m.load_value].append(m)
                    if len(m.window_throughputs) >= 3 and len(m.window_p99s_ms) == len(m.window_throughputs):
                        mt = statistics.mean(m.window_throughputs)
                        mp = statistics.mean(m.window_p99s_ms)
                        self.windows.append(([w / mt for w in m.window_throughputs], [w / mp for w in m.window_p99s_ms]))
        self.curves: Dict[tuple, Curve] = {}
        self.factors: List[Tuple[float, float]] = []
        for key, by_load in grouped.items():
            curve = sorted((load, mean_point(rows)) for load, rows in by_load.items())
            weights = [len(by_load[load]) for load, _ in curve]
            for name in ("throughput", "latency_p99_ms"):  # a closed loop: both grow with load
                for (_, m), v in zip(curve, nondecreasing([getattr(m, name) for _, m in curve], weights)):
                    setattr(m, name, v)
            self.curves[key] = curve
            for rows in by_load.values():
                if len(rows) > 1:
                    mt = statistics.mean(r.throughput for r in rows)
                    mp = statistics.mean(r.latency_p99_ms for r in rows)
                    self.factors += [(r.throughput / mt, r.latency_p99_ms / mp) for r in rows]
        if not self.windows:
            raise SystemExit(f"no measured points of {model} with windows in {', '.join(map(str, stores))}")

    def at(self, digest: str, kind: str, batch: int, load: float):
        curve = self.curves.get((digest, kind, batch))
        if not curve:
            return None
        loads = [x for x, _ in curve]
        i = bisect.bisect_left(loads, load)
        if i < len(loads) and loads[i] == load:
            return dataclasses.replace(curve[i][1], metrics=dict(curve[i][1].metrics))
        if i == 0:
            p = dataclasses.replace(curve[0][1], metrics=dict(curve[0][1].metrics))
            p.throughput *= load / loads[0]
            return p
        if i == len(loads):
            p = dataclasses.replace(curve[-1][1], metrics=dict(curve[-1][1].metrics))
            p.latency_p99_ms *= load / loads[-1]
            return p
        (x0, a), (x1, b) = curve[i - 1], curve[i]
        t = (load - x0) / (x1 - x0)
        p = dataclasses.replace(a, metrics=dict(a.metrics))
        for name in AVERAGED:
            va, vb = getattr(a, name), getattr(b, name)
            setattr(p, name, va + (vb - va) * t if va is not None and vb is not None else va)
        for key in set(a.metrics) & set(b.metrics):
            p.metrics[key] = a.metrics[key] + (b.metrics[key] - a.metrics[key]) * t
        return p

    def value(self, digest: str, kind: str, batch: int, budget_ms: float, top: int) -> float:
        """The config's best throughput inside the budget over loads 1..top."""
        points = (self.at(digest, kind, batch, float(c)) for c in range(1, top + 1))
        return max((p.throughput for p in points if p is not None and p.latency_p99_ms <= budget_ms), default=0.0)


class NoisyMeasure:
    """Measures a trial on the surface the way tsweep's method would on a noisy machine."""

    def __init__(self, surface: Surface, rng: random.Random, precision=(0.05, 0.10), min_windows=3, max_windows=10):
        self.surface, self.rng = surface, rng
        self.precision, self.min_windows, self.max_windows = precision, min_windows, max_windows

    def __call__(self, trial):
        from tsweep.intervals import of_values

        true = self.surface.at(trial.variant.digest, trial.load.kind, trial.batch_size, trial.load.value)
        if true is None:
            raise SystemExit(f"{trial.variant.name} was never measured in the stores: no surface to replay it on")
        thr_ratios, p99_ratios = self.rng.choice(self.surface.windows)
        ft, fp = self.rng.choice(self.surface.factors) if self.surface.factors else (1.0, 1.0)
        thr, p99, status = [], [], "unstable"
        for rt, rp in list(zip(thr_ratios, p99_ratios))[: self.max_windows]:
            thr.append(true.throughput * rt * ft)
            p99.append(true.latency_p99_ms * rp * fp)
            if len(thr) >= self.min_windows:  # tsweep's rule, on per-window figures
                if of_values(thr).relative <= self.precision[0] and of_values(p99).relative <= self.precision[1]:
                    status = "ok"
                    break
        judged_t, judged_p = of_values(thr), of_values(p99)
        return dataclasses.replace(
            true, metrics=dict(true.metrics), variant=trial.variant.name, variant_digest=trial.variant.digest,
            load_value=trial.load.value, batch_size=trial.batch_size, repeat=trial.repeat, id=None, status=status,
            throughput=judged_t.value, latency_p99_ms=judged_p.value, throughput_ci=judged_t.half_width,
            latency_p99_ci_ms=judged_p.half_width, window_throughputs=thr, window_p99s_ms=p99, windows=len(thr),
        )  # fmt: skip


def space_and_goal(model: str, args):
    from tsweep import goals, repository
    from tsweep.config import load_config
    from tsweep.pluginmanager import make_plugin_manager
    from tsweep.settings import space_settings
    from tsweep.sweep import name_variants

    config = load_config(None, {
        "latency_budget": args.budget_ms, "run_config_search_max_instance_count": args.max_instances,
        "run_config_search_max_model_batch_size": args.max_batch, "run_config_search_max_concurrency": args.max_concurrency,
    })  # fmt: skip
    hooks = make_plugin_manager()
    spec = repository.find_models(str(EXAMPLES), (model,))[0]
    space = hooks.config_space(spec, space_settings(config, model))
    return dataclasses.replace(space, variants=tuple(name_variants(model, space.variants))), goals.search_goal(config), hooks


def replay(factory, space, goal, measure) -> Tuple[int, Optional[object]]:
    """Drive one strategy to its end; the number of points and the best one inside the goal."""
    strategy, history = factory(space, goal), []
    while trials := strategy.propose(history):
        history.extend(measure(t) for t in trials)
    from tsweep import repeats

    points = repeats.merge(history)
    good = [m for m in points if m.status != "failed" and m.latency_p99_ms <= goal.latency_budget_ms]
    return len(history), max(good, key=lambda m: m.throughput, default=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("budget_ms", type=float)
    parser.add_argument("stores", nargs="+", type=Path)
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--strategies", nargs="+", default=["brute", "quick", "adaptive", "optuna"])
    parser.add_argument("--max-instances", type=int, default=3)
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--max-concurrency", type=int, default=32)
    parser.add_argument("--optuna-max-trials", type=int, default=None, help="optuna's study budget (default: 10%% of the space)")
    args = parser.parse_args()

    space, goal, hooks = space_and_goal(args.model, args)
    if args.optuna_max_trials:  # the optuna strategy's own key, as a config file would set it
        hooks = hooks.configured({"optuna_max_trials": args.optuna_max_trials})
    surface = Surface(args.stores, args.model)
    kind = space.load_levels[0].kind
    values = {v.digest: surface.value(v.digest, kind, 1, args.budget_ms, args.max_concurrency) for v in space.variants}
    ranked = sorted(((values[v.digest], v.name) for v in space.variants), reverse=True)
    print(f"{args.model}, budget p99 <= {args.budget_ms:g} ms: {len(surface.windows)} window sequences, {len(surface.factors)} look-to-look factors")
    print("  true values: " + ", ".join(f"{name.removeprefix(args.model + '_')} {value:.0f}" for value, name in ranked[:6]) + ", ...")
    results = {}
    for name in args.strategies:
        factory = hooks.search_strategy(name)
        points, scores, lucky = [], [], 0
        for seed in range(args.seeds):
            n, best = replay(factory, space, goal, NoisyMeasure(surface, random.Random(seed)))
            points.append(n)
            scores.append(values[best.variant_digest] if best else 0.0)
            true = surface.at(best.variant_digest, best.load_kind, best.batch_size, best.load_value) if best else None
            lucky += bool(true and true.latency_p99_ms > 1.1 * args.budget_ms)
        results[name] = (points, scores, lucky)
    if "brute" not in results:
        raise SystemExit("include brute in --strategies: the ratios are against it")
    brute_points, brute_scores, _ = results["brute"]
    bp, bs = statistics.mean(brute_points), statistics.mean(brute_scores)
    print(f"  {'strategy':10} {'points':>7} {'x brute':>8} {'value':>9} {'x brute':>8} {'p10 x brute':>12} {'lucky p99':>10}")
    for name, (points, scores, lucky) in results.items():
        p10 = sorted(scores)[len(scores) // 10] / bs
        print(
            f"  {name:10} {statistics.mean(points):7.1f} {statistics.mean(points) / bp:8.2f} {statistics.mean(scores):9.0f} "
            f"{statistics.mean(scores) / bs:8.3f} {p10:12.2f} {lucky:7d}/{args.seeds}"
        )


if __name__ == "__main__":
    main()
