"""One sweep on 1 lane and on 2 lanes of a private Ray cluster on 127.0.0.1: the wall-time ratio.

    python bench/scaleout.py                  # sleepy, brute, ~4-5 min on 2 cores
    python bench/scaleout.py --order 2 1 --sleep-ms 4 --budget-ms 30 --keep runs/

Both runs are the same real ``tsweep profile`` command (executor ray, cluster_address local:
each run starts its own Ray cluster bound to 127.0.0.1 and stops it at the end) but for
``--lanes``. Each lane is a Ray actor with its own embedded tritonserver and load generator.
The model is bench/models/sleepy, whose service time is a sleep (little CPU), so on a 2-core
machine the two lanes can overlap instead of fighting for the cores; a CPU-bound model here
would measure the cores, not the scheduling.

Printed per run: the wall time of the whole command (Ray and servers starting included),
the span from the first point stored to the last (the sweep itself), the points measured
and how many each lane measured (the store's ``lane`` column), and the config ranked first.
Then the ratios 2 lanes / 1 lane (wall, span, and span per point: noise can make the two
searches take a few different points) and whether both chose the same config (digest).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "bench" / "models"
LAST = ROOT / "bench" / ".cache" / "last-scaleout"


@dataclass
class Outcome:
    lanes: int
    wall_s: float
    span_s: float
    points: int
    per_lane: Dict[str, int]
    top_variant: str
    top_digest: str
    top_figure: str
    podium: List[str]  # the first three configs, with their figures


def repository(sleep_ms: float, into: Path) -> Path:
    """A model repository holding only sleepy, its wait set to ``sleep_ms``."""
    repo = into / "models"
    shutil.copytree(MODELS / "sleepy", repo / "sleepy")
    config = repo / "sleepy" / "config.pbtxt"
    text = config.read_text()
    config.write_text(re.sub(r'string_value: "[0-9.]+"', f'string_value: "{sleep_ms:g}"', text))
    return repo


def command(repo: Path, workdir: Path, lanes: int, args) -> List[str]:
    return [
        sys.executable, "-m", "tsweep", "profile", "--model-repository", str(repo), "--profile-models", "sleepy",
        "--output-model-repository-path", str(workdir / "out"), "--checkpoint-directory", str(workdir / "ck"),
        "--export-path", str(workdir / "export"), "--run-config-search-mode", args.strategy,
        "--run-config-search-max-instance-count", str(args.max_instances), "--run-config-search-max-model-batch-size", str(args.max_batch),
        "--run-config-search-max-concurrency", str(args.max_concurrency), "--measurement-window-s", str(args.window_s),
        "--max-windows", str(args.max_windows), "--latency-budget", str(args.budget_ms),
        "--executor", "ray", "--lanes", str(lanes), "--cluster-address", "local",
    ]  # fmt: skip


def run(lanes: int, repo: Path, base: Path, args) -> Outcome:
    workdir = base / f"lanes-{lanes}"
    workdir.mkdir(parents=True)
    started = time.monotonic()
    done = subprocess.run(command(repo, workdir, lanes, args), capture_output=True, text=True, cwd=workdir)
    wall = time.monotonic() - started
    LAST.mkdir(parents=True, exist_ok=True)
    (LAST / f"lanes-{lanes}.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"tsweep profile on {lanes} lane(s) failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return read_outcome(lanes, wall, workdir / "ck" / "results.sqlite", args)


def read_outcome(lanes: int, wall: float, store_path: Path, args) -> Outcome:
    """What the run stored: its points, the lane of each, the span of their commits, its choice."""
    from tsweep import analysis
    from tsweep.config import load_config
    from tsweep.pluginmanager import make_plugin_manager
    from tsweep.run import Run
    from tsweep.store import ResultsStore

    config = load_config(None, {"latency_budget": args.budget_ms})
    with ResultsStore.open_existing(store_path) as store:
        rows = store.measurements("sleepy")
        ranking = analysis.rank(store, Run.build(config, make_plugin_manager()), ["sleepy"])["sleepy"]
        top = ranking[0]
        digest = next(v["digest"] for v in store.variants("sleepy") if v["name"] == top.variant)
    with sqlite3.connect(f"file:{store_path}?mode=ro", uri=True) as conn:  # when each point was committed
        stamps = [r[0] for r in conn.execute("SELECT measured_at FROM measurements ORDER BY id")]
    times = [dt.datetime.fromisoformat(s.replace("Z", "+00:00")) for s in stamps]
    span = (times[-1] - times[0]).total_seconds() if len(times) > 1 else 0.0
    per_lane = Counter(getattr(m, "lane", "") or "?" for m in rows)
    def figure(r) -> str:
        return f"{r.best.load}: {r.best.throughput or 0:.0f} infer/s, p99 {r.best.latency_p99_ms or 0:.1f} ms" if r.best else "no point in the goal"

    def shape(r) -> str:
        params = r.best.variant_params if r.best else {}
        return f"{params.get('instances', '?')} instance(s), max batch {params.get('max_batch_size', '?')}"

    podium = [f"{r.variant} ({shape(r)}) at {figure(r)}" for r in ranking[:3]]
    return Outcome(lanes, wall, span, len(rows), dict(sorted(per_lane.items())), top.variant, str(digest), figure(top), podium)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--order", type=int, nargs="+", default=[1, 2], help="lane counts, run in this order")
    parser.add_argument("--sleep-ms", type=float, default=20.0, help="sleepy's wait per execution")
    parser.add_argument("--strategy", default="brute")
    parser.add_argument("--max-instances", type=int, default=2)
    parser.add_argument("--max-batch", type=int, default=4)
    parser.add_argument("--max-concurrency", type=int, default=8)
    parser.add_argument("--window-s", type=float, default=0.5)
    parser.add_argument("--max-windows", type=int, default=4)
    parser.add_argument("--budget-ms", type=float, default=100.0)
    parser.add_argument("--keep", type=Path, help="keep every run's folder here")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="tsweep-scaleout-")) if args.keep is None else args.keep
    base.mkdir(parents=True, exist_ok=True)
    try:
        repo = repository(args.sleep_ms, base)
        load = os.getloadavg()
        print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} cores)", flush=True)
        outcomes = {}
        for lanes in args.order:
            o = run(lanes, repo, base, args)
            outcomes[lanes] = o
            lanes_text = ", ".join(f"{k}: {v}" for k, v in o.per_lane.items())
            print(
                f"{lanes} lane(s): {o.wall_s:.0f} s wall, {o.span_s:.0f} s from first point to last, {o.points} points ({lanes_text}); "
                f"first: {o.top_variant} at {o.top_figure}",
                flush=True,
            )
            for place, line in enumerate(o.podium, 1):
                print(f"    {place}. {line}")
        load = os.getloadavg()
        print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        if 1 in outcomes and 2 in outcomes:
            one, two = outcomes[1], outcomes[2]
            same = "the same config" if one.top_digest == two.top_digest else f"different configs ({one.top_variant} vs {two.top_variant})"
            per_point = (two.span_s / max(1, two.points - 1)) / (one.span_s / max(1, one.points - 1))
            print(
                f"2 lanes / 1 lane: wall {two.wall_s / one.wall_s:.2f}, first-to-last point {two.span_s / one.span_s:.2f}, "
                f"per point {per_point:.2f}; "
                f"points {two.points} vs {one.points}; both chose {same}"
            )
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
