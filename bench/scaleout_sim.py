"""How a 50-model sweep scales over 1 to 64 lanes, replayed from real measurements.

    python bench/scaleout_record.py      # once: real brute and adaptive sweeps (~6 min)
    python bench/scaleout_sim.py         # the table, from bench/.cache/scaleout-sim/ (~2-4 min)
    python bench/scaleout_sim.py --models 50 --lanes 1 2 4 8 16 32 64 --json sim.json

Each recorded model is copied under 50 names in all (``add_sub_00``, ``mlp_01``, ...) and
swept by tsweep's own trial runner (:class:`tsweep.trials.TrialRunner`: every model's
search, then the final race) with the real strategies over the same spaces, every result
committed to a real results store in a temporary folder, over
:class:`tsweep.virtuallanes.VirtualLanePool`: a lane hands back the stored measurement of the trial's point after its stored measuring
time, plus the recorded time to load a variant when the lane has another loaded. The
driver's work (the strategy's propose, the Judge, the store commit, dispatching) is real
and timed as it happens, and goes on the virtual clock. Server start-up is the recorded one,
once, since lanes start in parallel.

Per lane count it prints the virtual wall time, the speed-up over one lane, how busy the
lanes were, how much of their time went to loading variants, the driver's share of the wall
time, and what bounds the sweep there: the lanes themselves, the driver's serial decisions,
or the chains of dependent points (a load walk's next level waits on its last, adaptive's
next step on its last, a race round on the one before; the sweep cannot end before its
longest chain, however many lanes).
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
from typing import Dict, List, Tuple

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
    """One simulated sweep's figures (virtual seconds unless said otherwise)."""

    lanes: int
    wall_s: float
    utilisation: float
    loading_share: float
    driver_s: float
    decisions: int
    points: int
    points_per_lane: Dict[str, int]
    chain_s: float  # the longest model's span, its first trial sent to its last result (its race comes after every search)
    replay: Tuple[int, int, int]  # exact, nearest, missing
    decide_s: float  # of driver_s: everything but the commits (proposals, the race's rankings, dispatch)
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


def jobs_for(timings: dict, copies: int, workdir: Path) -> Tuple[List[Job], object, Dict[str, Tuple[str, str]]]:
    """``copies`` simulated models cycling over the recorded ones, each with the space and
    strategy tsweep builds for the recorded settings, renamed; and, by each copy's variant
    digest, the recorded model and digest it replays.

    Each copy's configs carry one more parameter naming the copy, so that its variants'
    digests are its own: copies with equal configs would otherwise share digests, as two
    real models with the same config.pbtxt do."""
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
    jobs, sources = [], {}
    for i in range(copies):
        source = sweep.models[i % len(sweep.models)]
        name = f"{source.name}_{i:02d}"
        model = dataclasses.replace(source, name=name)
        space = sweep.spaces[source.name]
        variants = []
        for v in name_variants(source.name, space.variants):
            config = type(v.config)()
            config.CopyFrom(v.config)
            config.parameters["tsweep_simulated_copy"].string_value = name
            copy = dataclasses.replace(v, model=name, name=v.name.replace(source.name, name, 1), config=config)
            sources[copy.digest] = (source.name, v.digest)
            variants.append(copy)
        space = dataclasses.replace(space, model=model, variants=tuple(variants))
        goal = run.goals_of(source.name).goal
        jobs.append(Job(model, space, run.profiling().strategy(space, goal), source.name))
    return jobs, run, sources


class TimedStore:
    """The results store, with the real time spent committing results counted."""

    def __init__(self, store):
        self._store, self.commit_s = store, 0.0

    def add(self, m):
        began = time.perf_counter()
        try:
            return self._store.add(m)
        finally:
            self.commit_s += time.perf_counter() - began

    def __getattr__(self, name):
        return getattr(self._store, name)


def simulate(lanes: int, timings: dict, rows: List, copies: int) -> Row:
    """One simulated sweep: tsweep's trial runner (the one ``tsweep profile`` runs) searches
    every copy, then races them, over ``lanes`` virtual lanes, into a real store."""
    from tsweep.progress import Progress
    from tsweep.store import ResultsStore
    from tsweep.trials import TrialRunner
    from tsweep.virtuallanes import Replay, VirtualLanePool

    with tempfile.TemporaryDirectory(prefix="tsweep-sim-") as tmp:
        workdir = Path(tmp)
        jobs, run, sources = jobs_for(timings, copies, workdir)
        replay = Replay(rows, lambda model, digest: sources[digest])
        pool = VirtualLanePool(lanes, replay, timings["load_s"], timings["server_start_s"])
        with ResultsStore.open(workdir / "sim.sqlite") as real_store:
            store = TimedStore(real_store)
            variants = {}
            for job in jobs:
                for v in job.space.variants:
                    store.add_variant(v)
                    variants.setdefault(job.model.name, {})[v.digest] = v
            source_of = {job.model.name: job.source for job in jobs}
            runner = TrialRunner(store, pool, lambda model: run.goals_of(source_of[model]).goal, Progress(), pool.start())
            runner.search_all([(job.model, job.strategy, len(job.space.variants)) for job in jobs])
            if run.config.remeasure_top_configs > 1 and run.config.remeasure_rounds:
                runner.race_all([job.model for job in jobs], run, variants)
            pool.stop()
            points = real_store.count()
    busy = sum(b.measuring_s + b.loading_s for b in pool.books.values())
    loading = sum(b.loading_s for b in pool.books.values())
    return Row(
        lanes, pool.wall_s(), pool.utilisation(), loading / busy if busy else 0.0, pool.driver_s, pool.decisions, points,
        dict(pool.points_per_lane()), max(end - start for start, end in pool.spans.values()), (replay.exact, replay.nearest, replay.missing),
        pool.driver_s - store.commit_s, store.commit_s, busy, sum(b.loads for b in pool.books.values()),
    )  # fmt: skip


def bound(row: Row, floor: Row) -> str:
    """What keeps the wall time from falling further at this lane count: the lanes while they
    are at least 80% busy; the driver when its serial work is half the wall time or more; the
    chains of dependent points when the wall time is within 15% of the floor's (1000 lanes);
    else lanes partly idle for want of independent trials (the chains, not yet at their floor)."""
    if row.utilisation >= 0.8:
        return "lanes (busy)"
    if row.driver_s >= 0.5 * row.wall_s:
        return "driver's decisions"
    if row.wall_s <= 1.15 * floor.wall_s:
        return "longest model's chain" + (" + driver" if row.driver_s > 0.2 * row.wall_s else "")
    return "lanes, partly idle (chains)"


def table(strategy: str, rows: List[Row], floor: Row) -> str:
    one = rows[0].wall_s
    lines = [f"  {'lanes':>5} {'wall':>9} {'speed-up':>8} {'busy':>5} {'loading':>7} {'driver':>7} {'longest':>8}  bound"]
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
        f"  driver per point (real): {driver * 1000:.1f} ms, of which committing {commit * 1000:.1f} ms and deciding and dispatching {decide * 1000:.1f} ms; "
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
