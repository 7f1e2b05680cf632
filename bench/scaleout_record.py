"""Record the real measurements bench/scaleout_sim.py replays: one real sweep per strategy.

Runs ``tsweep.sweep.profile`` (the local executor: one embedded tritonserver on 127.0.0.1)
on example models with short windows, once with brute and once with adaptive, each into its
own results store under ``bench/.cache/scaleout-sim/<strategy>/``. Besides the store it
writes ``timings.json``: the server's start-up time and, per trial, the real time between
the runner starting it and its result (the progress events), from which the simulation
takes the time to load a variant (a trial that needed a new variant minus one that did
not, medians).

    python bench/scaleout_record.py                 # add_sub and mlp, ~6 min on 2 cores
    python bench/scaleout_record.py --models add_sub --strategies brute
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "model_repository"
CACHE = ROOT / "bench" / ".cache" / "scaleout-sim"
BUDGET_MS = {"add_sub": 4.0, "mlp": 20.0}


class TimingProgress:
    """Progress events with their real times: when the server was up, and per trial when it
    was handed to the executor, when its result came, its measuring time and variant."""

    def __init__(self) -> None:
        self.began = time.monotonic()
        self.server_up_s: Optional[float] = None
        self.trials: List[Dict[str, object]] = []
        self._started = 0.0

    def server_started(self, server) -> None:
        if self.server_up_s is None:
            self.server_up_s = time.monotonic() - self.began

    def model_started(self, model, variants, planned, resumed) -> None:
        pass

    def trial_started(self, trial, done, planned, elapsed_s) -> None:
        self._started = time.monotonic()

    def trial_finished(self, m) -> None:
        self.trials.append(
            {"model": m.model, "digest": m.variant_digest, "duration_s": m.duration_s, "wall_s": time.monotonic() - self._started, "status": m.status}
        )  # fmt: skip


def sweep_settings(strategy: str, models: List[str], args) -> Dict[str, object]:
    """The config keys of the recorded sweep (the simulation builds the same spaces from them)."""
    return {
        "model_repository": str(EXAMPLES), "profile_models": models, "latency_budget": max(BUDGET_MS.get(m, 20.0) for m in models),
        "run_config_search_mode": strategy, "run_config_search_max_instance_count": args.max_instances,
        "run_config_search_max_model_batch_size": args.max_batch, "run_config_search_max_concurrency": args.max_concurrency,
        "measurement_window_s": args.window_s, "max_windows": args.max_windows,
    }  # fmt: skip


def record(strategy: str, models: List[str], args) -> Path:
    from tsweep.config import load_config
    from tsweep.pluginmanager import make_plugin_manager
    from tsweep.run import Run
    from tsweep.sweep import profile
    from tsweep.virtuallanes import load_time_s

    folder = CACHE / strategy
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    settings = sweep_settings(strategy, models, args)
    config = load_config(None, {
        **settings, "output_model_repository_path": str(folder / "out"), "checkpoint_directory": str(folder / "ck"),
        "export_path": str(folder / "export"), "reporters": ["csv"],
    })  # fmt: skip
    progress = TimingProgress()
    began = time.monotonic()
    outcome = profile(Run.build(config, make_plugin_manager(), sweep=True), progress)
    wall = time.monotonic() - began
    timings = {
        "strategy": strategy, "models": models, "settings": settings, "wall_s": wall, "server_start_s": progress.server_up_s or 0.0,
        "measuring_s": outcome.measuring_s, "points": outcome.measured, **load_time_s(progress.trials), "trials": progress.trials,
    }  # fmt: skip
    (folder / "timings.json").write_text(json.dumps(timings, indent=1))
    print(
        f"{strategy}: {outcome.measured} points in {wall:.0f} s ({outcome.measuring_s:.0f} s measuring), server up in "
        f"{timings['server_start_s']:.1f} s, a variant load {timings['load_s']:.2f} s ({timings['loads']} loads); {outcome.store_path}"
    )
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["add_sub", "mlp"])
    parser.add_argument("--strategies", nargs="+", default=["brute", "adaptive"])
    parser.add_argument("--max-instances", type=int, default=2)
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--max-concurrency", type=int, default=16)
    parser.add_argument("--window-s", type=float, default=0.5)
    parser.add_argument("--max-windows", type=int, default=4)
    args = parser.parse_args()
    for strategy in args.strategies:
        record(strategy, args.models, args)


if __name__ == "__main__":
    main()
