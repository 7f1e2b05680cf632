"""How a 50-model sweep scales over 1 to 64 lanes, replayed from real measurements.

    python bench/scaleout_record.py      # once: real brute and adaptive sweeps (~6 min)
    python bench/scaleout_sim.py         # the table, from bench/.cache/scaleout-sim/ (~2-4 min)
    python bench/scaleout_sim.py --models 50 --lanes 1 2 4 8 16 32 64 --json sim.json

Each recorded model is copied under 50 names in all (``add_sub_00``, ``mlp_01``, ...) and
swept by the real strategies over the same spaces, with every result committed to a real
results store in a temporary folder, over :class:`tsweep.virtuallanes.VirtualLanePool`: a
lane hands back the stored measurement of the trial's point after its stored measuring
time, plus the recorded time to load a variant when the lane has another loaded. The
driver's work (the strategy's propose, the Judge, the store commit, dispatching) is real
and timed as it happens, and goes on the virtual clock. Server start-up is the recorded one,
once, since lanes start in parallel.

Per lane count it prints the virtual wall time, the speed-up over one lane, how busy the
lanes were, how much of their time went to loading variants, the driver's share of the wall
time, and what bounds the sweep there: the lanes themselves, the driver's serial decisions,
or the chains of dependent points (a strategy that proposes one point at a time makes each
model a chain; the sweep then cannot end before its longest model, however many lanes).
The row ``inf`` is 1000 lanes: the floor the dependencies and the driver leave.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / ".cache" / "scaleout-sim"
FLOOR_LANES = 1000  # "as many as it could use": what is left is the dependencies and the driver


@dataclasses.dataclass
class Job:
    """One simulated model: its name, the space and strategy it is searched with."""

    model: object  # ModelSpec under the simulated name
    space: object
    strategy: object
    source: str  # the recorded model it copies


@dataclasses.dataclass
class Row:
    lanes: int
    wall_s: float
    utilisation: float
    loading_share: float
    driver_s: float
    decisions: int
    points: int
    points_per_lane: Dict[str, int]
    chain_s: float  # the longest model's span, first trial handed out to last result
    replay: Tuple[int, int, int]  # exact, nearest, missing
    decide_s: float  # of driver_s: the strategies' proposals and the race's rankings
    commit_s: float  # of driver_s: committing results to the store
    busy_s: float  # lane seconds measuring and loading, all lanes
    loads: int


def recorded(strategy: str) -> Tuple[dict, List]:
    """The recorded sweep's timings and measurements (bench/scaleout_record.py's output)."""
    from tsweep.store import ResultsStore

    folder = CACHE / strategy
    timings_file = folder / "timings.json"
    if not timings_file.is_file():
        raise SystemExit(f"no recorded {strategy} sweep in {folder}: run python bench/scaleout_record.py first")
    timings = json.loads(timings_file.read_text())
    with ResultsStore.open_existing(folder / "ck" / "results.sqlite") as store:
        rows = store.measurements()
    return timings, rows


def jobs_for(timings: dict, copies: int, workdir: Path) -> Tuple[List[Job], object]:
    """``copies`` simulated models cycling over the recorded ones, each with the space and
    strategy tsweep builds for the recorded settings, renamed (digests do not change)."""
    from tsweep.config import load_config
    from tsweep.pluginmanager import make_plugin_manager
    from tsweep.run import Run
    from tsweep.sweep import Sweep, name_variants

    settings = {
        **timings["settings"], "output_model_repository_path": str(workdir / "out"), "checkpoint_directory": str(workdir / "ck"),
        "export_path": str(workdir / "export"),
    }  # fmt: skip
    run = Run.build(load_config(None, settings), make_plugin_manager(), sweep=True)
    sweep = Sweep(run)  # checks the inputs and builds the spaces; starts nothing
    jobs = []
    for i in range(copies):
        source = sweep.models[i % len(sweep.models)]
        name = f"{source.name}_{i:02d}"
        model = dataclasses.replace(source, name=name)
        space = sweep.spaces[source.name]
        variants = tuple(dataclasses.replace(v, model=name) for v in name_variants(name, space.variants))
        space = dataclasses.replace(space, model=model, variants=variants)
        goal = run.goals_of(source.name).goal
        jobs.append(Job(model, space, run.profiling().strategy(space, goal), source.name))
    return jobs, run


class Work:
    """What one simulated model still asks for: its strategy's proposals, then the final
    race's rounds (:mod:`tsweep.race`, as the trial runner runs it), then nothing."""

    def __init__(self, job: Job, run, store, variants: Dict[str, object]):
        self.job, self.run, self.store, self.variants = job, run, store, variants
        self.racing = False
        config = run.config
        self.race = config.remeasure_top_configs > 1 and config.remeasure_rounds > 0

    def next(self, history: list) -> list:
        from tsweep import analysis, race
        from tsweep.judge import Judge

        if not self.racing:
            trials = self.job.strategy.propose(history)
            if trials or not self.race:
                return trials
            self.racing = True
        name = self.job.model.name
        config = self.run.config
        ranking = analysis.rank(self.store, self.run, [name])[name]
        judge = Judge.from_history(self.run.goals_of(self.job.source).goal, history)
        return race.next_looks(ranking, history, judge, config.remeasure_top_configs, 1 + config.remeasure_rounds, self.variants)


def dispatch(pool, store, jobs: Sequence[Job], run, costs: Dict[str, float]) -> Dict[str, Tuple[float, float]]:
    """Search (and race) every job over ``pool`` until none asks for more, committing each
    result to ``store`` as it comes. A model is asked for more once everything it asked for
    is in (today's strategies propose one trial at a time; a race round's looks go out
    together). Each idle lane takes the first model (in order) with a trial to hand out,
    preferring a trial of the variant it has loaded. Returns each model's first-submit and
    last-finish virtual times; adds the real seconds spent deciding (the strategies, the
    race's ranking) and committing to ``costs["decide_s"]`` and ``costs["commit_s"]``.

    This is the scheduling the trial runner of issue 17 follows; once that runner is merged
    the simulation drives it instead (see docs/scale-out.md)."""
    work = {j.model.name: Work(j, run, store, {v.digest: v for v in j.space.variants}) for j in jobs}
    history: Dict[str, list] = {j.model.name: [] for j in jobs}
    flying: Dict[str, set] = {j.model.name: set() for j in jobs}
    queued: Dict[str, list] = {j.model.name: [] for j in jobs}  # handed out, not yet on a lane
    done: set = set()
    span: Dict[str, Tuple[float, float]] = {}
    pool.start()
    while True:
        idle = pool.idle()
        for job in jobs:
            if not idle:
                break
            name = job.model.name
            if name in done:
                continue
            if not queued[name] and not flying[name]:  # everything asked for is in: ask again
                stored = {m.key for m in history[name]}
                began = time.perf_counter()
                queued[name] = [t for t in work[name].next(history[name]) if t.key not in stored]
                costs["decide_s"] += time.perf_counter() - began
                if not queued[name]:
                    done.add(name)
                    continue
            while queued[name] and idle:
                trial = queued[name].pop(0)
                lane = next((la for la in idle if pool.loaded(la) == trial.variant.digest), idle[0])
                idle.remove(lane)
                pool.submit(lane, job.model, trial, None)
                flying[name].add(trial.key)
                span.setdefault(name, (pool.clock.now, pool.clock.now))
        if not any(flying.values()):
            if len(done) == len(jobs):
                break
            continue
        for f in pool.wait():
            began = time.perf_counter()
            store.add(f.measurement)
            costs["commit_s"] += time.perf_counter() - began
            history[f.model].append(f.measurement)
            flying[f.model].discard(f.trial.key)
            span[f.model] = (span[f.model][0], pool.clock.now)
    pool.stop()
    return span


def simulate(lanes: int, timings: dict, rows: List, copies: int) -> Row:
    from tsweep.store import ResultsStore
    from tsweep.virtuallanes import Replay, VirtualLanePool

    with tempfile.TemporaryDirectory(prefix="tsweep-sim-") as tmp:
        workdir = Path(tmp)
        jobs, run = jobs_for(timings, copies, workdir)
        sources = {j.model.name: j.source for j in jobs}
        replay = Replay(rows, lambda model: sources[model])
        pool = VirtualLanePool(lanes, replay, timings["load_s"], timings["server_start_s"])
        with ResultsStore.open(workdir / "sim.sqlite") as store:
            for job in jobs:
                for v in job.space.variants:
                    store.add_variant(v)
            costs = {"decide_s": 0.0, "commit_s": 0.0}
            span = dispatch(pool, store, jobs, run, costs)
            points = store.count()
    busy = sum(b.measuring_s + b.loading_s for b in pool.books.values())
    loading = sum(b.loading_s for b in pool.books.values())
    return Row(
        lanes, pool.wall_s(), pool.utilisation(), loading / busy if busy else 0.0, pool.driver_s, pool.decisions, points,
        dict(pool.points_per_lane()), max(end - start for start, end in span.values()), (replay.exact, replay.nearest, replay.missing),
        costs["decide_s"], costs["commit_s"], busy, sum(b.loads for b in pool.books.values()),
    )  # fmt: skip


def bound(row: Row, floor: Row) -> str:
    """What keeps the wall time from falling further at this lane count."""
    if row.utilisation >= 0.8:
        return "lanes (busy)"
    if row.driver_s >= 0.5 * (row.wall_s - floor.wall_s + row.driver_s) and row.driver_s > 0.3 * row.wall_s:
        return "driver's decisions"
    if row.wall_s <= 1.15 * floor.wall_s:
        return "longest model's chain" + (" + driver" if row.driver_s > 0.2 * row.wall_s else "")
    return "lanes, partly idle (chains)"


def table(strategy: str, rows: List[Row], floor: Row) -> str:
    one = rows[0].wall_s
    lines = [f"  {'lanes':>5} {'wall':>9} {'speed-up':>8} {'busy':>5} {'loading':>7} {'driver':>7} {'chain':>8}  bound"]
    for r in [*rows, floor]:
        label = "inf" if r is floor else str(r.lanes)
        lines.append(
            f"  {label:>5} {fmt_s(r.wall_s):>9} {one / r.wall_s:8.1f} {r.utilisation:5.0%} {r.loading_share:7.0%} "
            f"{r.driver_s / r.wall_s:7.1%} {fmt_s(r.chain_s):>8}  {bound(r, floor)}"
        )
    return "\n".join(lines)


def limits(results: List[Row], exact: int, nearest: int, missing: int) -> str:
    """The driver's and the store's cost per point, and the lane count at which the driver
    would be busy all the time (points arriving as fast as it can take them)."""
    points = sum(r.points for r in results)
    driver = sum(r.driver_s for r in results) / points
    decide = sum(r.decide_s for r in results) / points
    commit = sum(r.commit_s for r in results) / points
    one = results[0]
    lane_per_point = one.busy_s / one.points  # lane seconds per point, loads included
    loads = one.loads / one.points
    return (
        f"  {one.points} points per sweep; replayed exactly {exact}, from the nearest stored load {nearest}, missing {missing}\n"
        f"  driver per point (real): {driver * 1000:.1f} ms, of which deciding {decide * 1000:.1f} ms and committing {commit * 1000:.1f} ms; "
        f"a lane spends {lane_per_point:.2f} s per point ({loads:.2f} loads per point on 1 lane), so the driver alone "
        f"would keep up with about {lane_per_point / driver:.0f} lanes\n"
    )


def fmt_s(s: float) -> str:
    return f"{s / 60:.1f} min" if s >= 120 else f"{s:.0f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=50, help="simulated models (copies of the recorded ones)")
    parser.add_argument("--lanes", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64])
    parser.add_argument("--strategies", nargs="+", default=["adaptive", "brute"])
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args()
    out = {}
    for strategy in args.strategies:
        timings, rows = recorded(strategy)
        print(
            f"{strategy}: recorded {timings['points']} points of {', '.join(timings['models'])} in {timings['wall_s']:.0f} s "
            f"({timings['measuring_s']:.0f} s measuring); server start {timings['server_start_s']:.1f} s; "
            f"variant load {timings['load_s']:.2f} s (median of {timings['loads']}); {args.models} models simulated",
            flush=True,
        )
        check = simulate(1, timings, rows, len(timings["models"]))  # the recorded sweep itself, replayed
        print(
            f"  check: the recorded sweep replayed on 1 lane: {check.points} points (recorded {timings['points']}), "
            f"{check.wall_s:.0f} s (recorded {timings['wall_s']:.0f} s, reports included)",
            flush=True,
        )
        results = [simulate(n, timings, rows, args.models) for n in args.lanes]
        floor = simulate(FLOOR_LANES, timings, rows, args.models)
        print(table(strategy, results, floor))
        exact, nearest, missing = results[0].replay
        print(limits(results, exact, nearest, missing), flush=True)
        out[strategy] = {"timings": {k: v for k, v in timings.items() if k != "trials"}, "check": dataclasses.asdict(check), "rows": [dataclasses.asdict(r) for r in results], "floor": dataclasses.asdict(floor)}
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    sys.exit(main())
