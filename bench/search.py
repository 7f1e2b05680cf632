"""Search strategies against each other: brute, quick, adaptive and optuna under the same budget.

    python bench/search.py                          # mlp and add_sub (~25 min on 2 cores)
    python bench/search.py --max-batch 32 --max-concurrency 64   # a larger space
    python bench/search.py --models mlp --repeat    # and run adaptive a second time
    python bench/search.py --models pipeline        # the ensemble preprocess -> mlp (stages searched together)
    python bench/search.py --json out.json --keep runs/   # and keep every store to inspect
    python bench/search.py --together add_sub mlp   # two models profiled together: brute, quick, adaptive

For every model each strategy runs as a real ``tsweep profile`` (its own embedded Triton,
its own results store) over the same space and latency budget. Printed per strategy, as a
ratio of brute's:

* measurements: rows in the results store (points measured);
* wall time: the whole ``tsweep profile`` process, server start-up included;
* best throughput, as measured during the search: the best config's point, as the ranking
  of that store reports it;
* best throughput, refereed: the search's figure favours whoever measured more points (the
  maximum of many noisy points is biased upwards), and a point whose p99 met the budget by
  luck. So at the end one more server measures every strategy's chosen config at its
  chosen load and at 3/4 and 1/2 of it, interleaved round by round; a config's refereed
  throughput is the best mean among those loads whose mean p99 is inside the budget. The
  refereed p99 at the chosen load is printed too: above the budget, the search's figure
  was luck.

With ``--repeat`` adaptive runs twice and the bench reports whether the second run chose the
same config, or one the first run reported as tied with its winner.

``--together add_sub mlp`` is the two-model concurrent case instead: brute, quick and adaptive
each run ``tsweep profile --run-config-profile-models-concurrently-enable`` over the same
space (each model's own budget as its constraint). Points are combination points (a row
per model each); the refereed value of a choice is its combination measured again at its
chosen load step and at half each model's load, round by round on one more server: at the
better of the two where every model's mean p99 met its budget, each model's mean throughput
over the best any choice reached for that model, averaged (every model counts the same); 0
when neither step met the budgets.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "model_repository"
STRATEGIES = ("brute", "quick", "adaptive", "optuna")
#: Budgets that put the boundary inside the concurrency range on a 2-core VM.
BUDGETS_MS = {"mlp": 20.0, "add_sub": 4.0, "pipeline": 20.0}
#: The ensemble case (preprocess -> mlp): its space is the product of both stages' spaces, so
#: it gets smaller bounds per stage (brute walks every combination).
PIPELINE_BOUNDS = {"max_instances": 2, "max_batch": 8}


@dataclass
class Run:
    strategy: str
    points: int
    wall_s: float
    measuring_s: float
    best: str
    best_digest: str
    best_load: str
    best_throughput: float
    best_p99_ms: float
    tied_with: List[str]
    store: Path
    refereed: Dict[float, List[float]] = field(default_factory=dict)  # load -> throughput per round
    refereed_p99_ms: Dict[float, List[float]] = field(default_factory=dict)

    def refereed_best(self, budget_ms: float):
        """(throughput, load) of the refereed load with the highest mean throughput whose mean
        p99 met the budget; (0, None) when none did."""
        inside = [(mean(t), load) for load, t in self.refereed.items() if mean(self.refereed_p99_ms[load]) <= budget_ms]
        return max(inside, default=(0.0, None))


def run_profile(command: List[str], workdir: Path, what: str) -> float:
    """Run one ``tsweep profile`` command in ``workdir`` (its output kept in profile.log);
    returns its wall time in seconds, or stops the bench with the end of its stderr."""
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, cwd=workdir)
    wall = time.monotonic() - started
    (workdir / "profile.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"{what} failed:\n{done.stderr[-2000:]}")
    return wall


def profile(model: str, strategy: str, args, workdir: Path) -> Run:
    workdir.mkdir(parents=True)
    if model == "pipeline":  # the ensemble case: each stage's space smaller, their product searched
        args = argparse.Namespace(**{**vars(args), **{k: min(getattr(args, k), v) for k, v in PIPELINE_BOUNDS.items()}})
    command = [
        sys.executable, "-m", "tsweep", "profile", "--model-repository", str(EXAMPLES), "--profile-models", model,
        "--output-model-repository-path", str(workdir / "out"), "--checkpoint-directory", str(workdir / "ck"),
        "--export-path", str(workdir / "export"), "--latency-budget", str(budget(model, args)),
        "--run-config-search-mode", strategy, "--run-config-search-max-instance-count", str(args.max_instances),
        "--run-config-search-max-model-batch-size", str(args.max_batch), "--run-config-search-max-concurrency",
        str(args.max_concurrency), "--measurement-window-s", str(args.window_s), "--max-windows", str(args.max_windows),
    ]  # fmt: skip
    wall = run_profile(command, workdir, f"tsweep profile ({strategy})")
    return summarize(model, strategy, workdir / "ck" / "results.sqlite", wall, args)


def summarize(model: str, strategy: str, store_path: Path, wall: float, args) -> Run:
    from tsweep import analysis
    from tsweep.config import load_config
    from tsweep.pluginmanager import make_plugin_manager
    from tsweep.run import Run as TsweepRun  # bench/search.py has a Run of its own: a strategy's run
    from tsweep.store import ResultsStore

    config = load_config(None, {"latency_budget": budget(model, args)})
    with ResultsStore.open_existing(store_path) as store:
        rows = store.measurements(model)
        top = analysis.rank(store, TsweepRun.build(config, make_plugin_manager()), [model])[model][0]
        digest = next(v["digest"] for v in store.variants(model) if v["name"] == top.variant)
    return Run(
        strategy, len(rows), wall, sum(m.duration_s for m in rows), top.variant, str(digest), str(top.best.load),
        top.best.throughput or 0.0, top.best.latency_p99_ms or 0.0, list(top.tied_with), store_path,
    )  # fmt: skip


def referee_loads(kind: str, value: float) -> List[float]:
    """The chosen load and two below it (3/4 and 1/2): a choice whose p99 met the budget only
    by luck at its load still gets the throughput it gives inside the budget."""
    loads = {value, value * 0.75, value * 0.5}
    if kind == "concurrency":
        loads = {float(max(1, int(v))) for v in loads}
    return sorted(loads, reverse=True)


def chosen_trial(model: str, run: Run):
    """The config and load ``run`` chose, read back from its results store, as a Trial of a
    variant named after the strategy (each choice is served as its own model)."""
    from tsweep.records import LoadLevel, Trial, Variant
    from tsweep.store import ResultsStore

    with ResultsStore.open_existing(run.store) as store:
        m = next(m for m in store.measurements(model) if m.variant == run.best and str(m.load) == run.best_load)
        stored = store.variant(run.best)
    # an ensemble's composing variants are renamed too: two stores' preprocess_config_0 differ
    parts = tuple(dataclasses.replace(p, name=f"{p.model}_{run.strategy}") for p in stored.composing)
    variant = Variant(model, stored.config, name=f"{model}_{run.strategy}", composing=parts, by_own_name=stored.by_own_name)
    return Trial(variant, LoadLevel(m.load_kind, m.load_value), m.batch_size)


def referee(model: str, runs: List[Run], args, workdir: Path, chosen: Optional[Dict] = None, repository_path: Path = EXAMPLES) -> None:
    """Measure each run's chosen config at its chosen load and two lower ones again,
    interleaved by round (every strategy's choice once per round).

    ``chosen`` (strategy -> Trial) gives the choice of runs that have no tsweep results store,
    e.g. another tool's; the others are read from their store. ``repository_path`` is the
    model repository that holds ``model`` (its files are copied next to each choice's config).
    """
    from tsweep import pipeline, repository
    from tsweep.config import load_config
    from tsweep.pluginmanager import make_plugin_manager
    from tsweep.plugins.launchers.local import LocalLauncher
    from tsweep.records import LaunchSettings, LoadLevel, Trial
    from tsweep.session import ServerSession
    from tsweep.executor import run_trial
    from tsweep.settings import load_settings, method_settings

    spec = pipeline.attach(repository.find_models(str(repository_path), (model,)), str(repository_path), {}, {})[0]
    chosen = dict(chosen or {})
    for run in runs:
        if run.strategy not in chosen:
            chosen[run.strategy] = chosen_trial(model, run)
    out = workdir / "referee-out"
    repository.prepare_output(out, override=True)
    config = load_config(None, {"measurement_window_s": args.window_s, "max_windows": args.max_windows})
    launcher = LocalLauncher(LaunchSettings(model_repository=out, log_dir=workdir / "referee-log", ready_timeout_s=120))
    session = ServerSession(launcher, out, 120, lambda server: [])
    generator = make_plugin_manager().load_generator(config.client_protocol)
    session.start()
    try:
        for _ in range(args.referee_rounds):
            for run in runs:
                trial = chosen[run.strategy]
                for value in referee_loads(trial.load.kind, trial.load.value):
                    at = Trial(trial.variant, LoadLevel(trial.load.kind, value), trial.batch_size)
                    m = run_trial(at, spec, session, load_settings(config), generator, method_settings(config))
                    run.refereed.setdefault(value, []).append(m.throughput or 0.0)
                    run.refereed_p99_ms.setdefault(value, []).append(m.latency_p99_ms or float("inf"))
    finally:
        session.stop()


def mean(values: List[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def budget(model: str, args) -> float:
    return args.budget_ms or BUDGETS_MS.get(model, 20.0)


def report(model: str, runs: List[Run], budget_ms: float) -> List[dict]:
    brute = next(r for r in runs if r.strategy == "brute")
    print(f"\n{model}  (budget p99 <= {budget_ms:g} ms)")
    header = (
        f"  {'strategy':10} {'points':>6} {'x brute':>8} {'wall s':>7} {'x brute':>8} {'best config':22} {'load':15} {'infer/s':>8} "
        f"{'x brute':>8} {'p99 there':>9} {'refereed':>9} {'at':>5} {'x brute':>8}"
    )
    print(header)
    rows = []
    brute_refereed = brute.refereed_best(budget_ms)[0]
    for r in runs:
        refereed, at = r.refereed_best(budget_ms)
        chosen = max(r.refereed, default=None)  # the chosen load is the highest refereed
        row = {
            "model": model, "strategy": r.strategy, "points": r.points, "points_ratio": r.points / brute.points,
            "wall_s": r.wall_s, "wall_ratio": r.wall_s / brute.wall_s, "best": r.best, "load": r.best_load,
            "best_throughput": r.best_throughput, "best_ratio": r.best_throughput / brute.best_throughput,
            "refereed": refereed, "refereed_load": at, "tied_with": r.tied_with,
            "refereed_ratio": refereed / brute_refereed if brute_refereed else float("nan"),
            "refereed_p99_at_chosen_ms": mean(r.refereed_p99_ms[chosen]) if chosen is not None else float("nan"),
        }  # fmt: skip
        rows.append(row)
        print(
            f"  {r.strategy:10} {r.points:6d} {row['points_ratio']:8.2f} {r.wall_s:7.0f} {row['wall_ratio']:8.2f} "
            f"{r.best:22} {r.best_load:15} {r.best_throughput:8.1f} {row['best_ratio']:8.2f} {row['refereed_p99_at_chosen_ms']:9.2f} "
            f"{refereed:9.1f} {'-' if at is None else f'{at:g}':>5} {row['refereed_ratio']:8.2f}"
        )
    return rows


TOGETHER_STRATEGIES = ("brute", "quick", "adaptive")


@dataclass
class TogetherRun:
    strategy: str
    points: int
    wall_s: float
    best: str
    best_point: str
    throughputs: Dict[str, float]
    store: Path
    #: step ("chosen" or "half") -> model -> throughput (and p99) per round
    refereed: Dict[str, Dict[str, List[float]]] = field(default_factory=dict)
    refereed_p99_ms: Dict[str, Dict[str, List[float]]] = field(default_factory=dict)


def together_config(models: List[str], args, workdir: Path) -> Path:
    path = workdir / "together.yaml"
    path.write_text("profile_models:\n" + "".join(
        f"  {m}: {{constraints: {{perf_latency_p99: {{max: {budget(m, args):g}}}}}}}\n" for m in models))
    return path


def profile_together(models: List[str], strategy: str, args, workdir: Path) -> TogetherRun:
    workdir.mkdir(parents=True)
    command = [
        sys.executable, "-m", "tsweep", "profile", "-f", str(together_config(models, args, workdir)), "--model-repository", str(EXAMPLES),
        "--output-model-repository-path", str(workdir / "out"), "--checkpoint-directory", str(workdir / "ck"),
        "--export-path", str(workdir / "export"), "--run-config-profile-models-concurrently-enable",
        "--run-config-search-mode", strategy, "--run-config-search-max-instance-count", str(args.max_instances),
        "--run-config-search-max-model-batch-size", str(args.max_batch), "--run-config-search-max-concurrency",
        str(args.max_concurrency), "--measurement-window-s", str(args.window_s), "--max-windows", str(args.max_windows),
    ]  # fmt: skip
    wall = run_profile(command, workdir, f"tsweep profile together ({strategy})")
    from tsweep import analysis
    from tsweep.config import load_config
    from tsweep.pluginmanager import make_plugin_manager
    from tsweep.run import Run as TsweepRun
    from tsweep.store import ResultsStore

    config = load_config(together_config(models, args, workdir), {})
    with ResultsStore.open_existing(workdir / "ck" / "results.sqlite") as store:
        rows = [m for model in models for m in store.measurements(model)]
        best = analysis.rank_together(store, TsweepRun.build(config, make_plugin_manager()), models)[0]
    points = len({m.combination for m in rows})
    return TogetherRun(strategy, points, wall, best.name, best.point, {m.model: m.throughput or 0.0 for m in best.rows}, workdir / "ck" / "results.sqlite")


def referee_together(models: List[str], runs: List[TogetherRun], args, workdir: Path) -> None:
    """Measure each run's chosen combination at its chosen load step again, every model's
    variant served under a name of its own, interleaved by round."""
    from tsweep import modelconfig, repository
    from tsweep.combination import Combination, CombinationTrial
    from tsweep.config import load_config
    from tsweep.executor import run_combination
    from tsweep.pluginmanager import make_plugin_manager
    from tsweep.plugins.launchers.local import LocalLauncher
    from tsweep.records import LaunchSettings, LoadLevel, Variant
    from tsweep.session import ServerSession
    from tsweep.settings import load_settings, method_settings
    from tsweep.store import ResultsStore

    specs = repository.find_models(str(EXAMPLES), tuple(models))
    chosen = {}
    for run in runs:
        with ResultsStore.open_existing(run.store) as store:
            rows = sorted((m for m in store.measurements() if m.combination == run.best_point), key=lambda m: models.index(m.model))
            members = []
            for m in rows:
                text = store._conn.execute("SELECT config_pbtxt FROM variants WHERE name = ?", (m.variant,)).fetchone()[0]
                members.append(Variant(m.model, modelconfig.parse(text), name=f"{m.model}_{run.strategy}"))
        combination = Combination(tuple(members))
        half = tuple(LoadLevel(m.load_kind, max(1.0, float(int(m.load_value / 2))) if m.load_kind == "concurrency" else m.load_value / 2) for m in rows)
        chosen[run.strategy] = {"chosen": CombinationTrial(combination, tuple(m.load for m in rows), rows[0].batch_size),
                                "half": CombinationTrial(combination, half, rows[0].batch_size)}  # fmt: skip
    out = workdir / "referee-out"
    repository.prepare_output(out, override=True)
    config = load_config(None, {"measurement_window_s": args.window_s, "max_windows": args.max_windows})
    session = ServerSession(LocalLauncher(LaunchSettings(model_repository=out, log_dir=workdir / "referee-log", ready_timeout_s=120)), out, 120, lambda s: [])
    generator = make_plugin_manager().load_generator(config.client_protocol)
    session.start()
    try:
        for _ in range(args.referee_rounds):
            for run in runs:
                for step, point in chosen[run.strategy].items():
                    for m in run_combination(point, specs, session, lambda name: load_settings(config), generator, method_settings(config)):
                        run.refereed.setdefault(step, {}).setdefault(m.model, []).append(m.throughput or 0.0)
                        run.refereed_p99_ms.setdefault(step, {}).setdefault(m.model, []).append(m.latency_p99_ms or float("inf"))
    finally:
        session.stop()


def report_together(models: List[str], runs: List[TogetherRun], args) -> List[dict]:
    """A choice's refereed value: at the better of its chosen load step and the step at half
    each model's load, among those where every model's mean p99 met its budget, the mean over
    models of its mean throughput over the best any choice reached (0: no step met them)."""
    best_of = {m: max(mean(t[m]) for r in runs for t in r.refereed.values()) for m in models}

    def value(r: TogetherRun):
        inside = [(mean([mean(r.refereed[step][m]) / best_of[m] for m in models]), step) for step in r.refereed
                  if all(mean(r.refereed_p99_ms[step][m]) <= budget(m, args) for m in models)]  # fmt: skip
        return max(inside, default=(0.0, "-"))

    brute = next(r for r in runs if r.strategy == "brute")
    print(f"\n{' + '.join(models)} profiled together  (budgets: {', '.join(f'{m} p99 <= {budget(m, args):g} ms' for m in models)})")
    print(f"  {'strategy':10} {'points':>6} {'x brute':>8} {'wall s':>7} {'x brute':>8} {'refereed':>8} {'at':>7} {'x brute':>8}  best combination")
    rows = []
    for r in runs:
        refereed, step = value(r)
        row = {"models": models, "strategy": r.strategy, "points": r.points, "points_ratio": r.points / brute.points, "wall_s": r.wall_s,
               "wall_ratio": r.wall_s / brute.wall_s, "best": r.best, "refereed": refereed, "refereed_step": step,
               "refereed_ratio": refereed / value(brute)[0] if value(brute)[0] else float("nan"),
               "refereed_throughputs": {s: {m: mean(t[m]) for m in models} for s, t in r.refereed.items()},
               "refereed_p99_ms": {s: {m: mean(t[m]) for m in models} for s, t in r.refereed_p99_ms.items()}}  # fmt: skip
        rows.append(row)
        print(f"  {r.strategy:10} {r.points:6d} {row['points_ratio']:8.2f} {r.wall_s:7.0f} {row['wall_ratio']:8.2f} "
              f"{refereed:8.3f} {step:>7} {row['refereed_ratio']:8.2f}  {r.best}")  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mlp", "add_sub"])
    parser.add_argument("--budget-ms", type=float, default=None, help="one budget for every model (default: per model)")
    parser.add_argument("--max-instances", type=int, default=3)
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--max-concurrency", type=int, default=32)
    parser.add_argument("--window-s", type=float, default=1.0)
    parser.add_argument("--max-windows", type=int, default=5, help="per point; unstable points are kept, as in profile")
    parser.add_argument("--referee-rounds", type=int, default=4)
    parser.add_argument("--repeat", action="store_true", help="run adaptive a second time and compare its choice")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--keep", type=Path, default=None, help="keep every run's store and logs in this (new) folder")
    parser.add_argument("--together", nargs="+", default=None, help="profile these models together instead (the concurrent case)")
    args = parser.parse_args()
    if args.together:
        with tempfile.TemporaryDirectory(prefix="tsweep-bench-together-") as scratch:
            tmp = Path(str(args.keep) if args.keep is not None else scratch)
            runs = []
            for strategy in TOGETHER_STRATEGIES:
                print(f"together: {strategy} ...", file=sys.stderr, flush=True)
                runs.append(profile_together(args.together, strategy, args, tmp / strategy))
            print("together: referee ...", file=sys.stderr, flush=True)
            referee_together(args.together, runs, args, tmp)
            results = report_together(args.together, runs, args)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
        return

    results: List[dict] = []
    if args.keep is not None:
        args.keep.mkdir(parents=True)  # refuses an existing folder: no run mixes with an old one
    with tempfile.TemporaryDirectory(prefix="tsweep-bench-search-") as scratch:
        tmp = str(args.keep) if args.keep is not None else scratch
        for i, model in enumerate(args.models):
            order = STRATEGIES if i % 2 == 0 else tuple(reversed(STRATEGIES))
            runs = []
            for strategy in order:
                print(f"{model}: {strategy} ...", file=sys.stderr, flush=True)
                runs.append(profile(model, strategy, args, Path(tmp) / model / strategy))
            runs.sort(key=lambda r: STRATEGIES.index(r.strategy))
            print(f"{model}: referee ...", file=sys.stderr, flush=True)
            referee(model, runs, args, Path(tmp) / model)
            results.extend(report(model, runs, budget(model, args)))
            if args.repeat:
                first = next(r for r in runs if r.strategy == "adaptive")
                again = profile(model, "adaptive", args, Path(tmp) / model / "adaptive-again")
                same = again.best_digest == first.best_digest
                tied = again.best in first.tied_with or first.best in again.tied_with
                verdict = "same config" if same else "a config tied with the first choice" if tied else "a different config"
                print(f"  adaptive again: {again.best} at {again.best_load}, {again.best_throughput:.1f} infer/s: {verdict}")
                results.append({"model": model, "strategy": "adaptive-again", "best": again.best, "verdict": verdict})
    adaptive = [r for r in results if r["strategy"] == "adaptive"]
    if adaptive:
        def geo(key: str) -> float:  # nan when a ratio is missing or 0 (no refereed load met the budget)
            values = [r[key] for r in adaptive]
            return math.exp(mean([math.log(v) for v in values])) if all(v > 0 for v in values) else float("nan")

        print(
            f"\nadaptive vs brute (geometric mean over models): refereed best {geo('refereed_ratio'):.2f}x "
            f"(target >= 0.97), search best {geo('best_ratio'):.2f}x, measurements {geo('points_ratio'):.2f}x "
            f"(target <= 0.3), wall time {geo('wall_ratio'):.2f}x"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
