"""NVIDIA Model Analyzer against tsweep: default settings, same model, space, budget and machine.

    python bench/vs_model_analyzer.py                    # mlp, add_sub, matmul (1.5-2 h on 2 cores)
    python bench/vs_model_analyzer.py --models add_sub   # one model (~25 min on 2 cores)
    python bench/vs_model_analyzer.py --models add_sub --repeat 3 --json out.json   # ~31 min

For every model, one after the other on this machine:

* Model Analyzer ``profile`` in brute mode, then in quick mode (``--skip-ma-quick`` leaves
  quick out), each in a fresh folder with its own checkpoint, output repository and export
  folder;
* ``tsweep profile`` with its default strategy and measurement settings, ``--repeat`` times.

Both tools get the same model repository, the same bounds (instances, max_batch_size,
concurrency), the same p99 budget (Model Analyzer: a ``perf_latency_p99`` constraint; tsweep:
``--latency-budget``), throughput as the objective, and the same tritonserver binary: the one
tsweep finds (``tritonserver`` on PATH, else the embedded one from nvidia-pytriton, with the
backend folder tsweep assembles for it), bound to 127.0.0.1. Everything else is each tool's
default: this compares what a user gets without tuning either tool.

Each run's wall time (the whole process, server start-up and reports included) and number of
measurements (Model Analyzer: entries in its checkpoint; tsweep: rows in results.sqlite) are
recorded, and each run's choice is read back: Model Analyzer's from its exported
results/metrics-model-inference.csv (rows come in its ranking order; the first that satisfies
the constraints is its best config and concurrency) and the config.pbtxt of that variant in
its output model repository; tsweep's from its results store, ranked as ``tsweep analyze``
would.

The tools' own figures cannot be compared (different load generators: perf_analyzer over
gRPC and tsweep's native HTTP client), so one more server referees: every choice is measured
at its chosen load and at 3/4 and 1/2 of it, round by round, interleaved (bench/search.py's
``referee``), and is credited with the best mean throughput whose mean p99 met the budget.
Runs that chose the same config share their rounds at the loads they have in common.
Printed per model: wall time, measurements and refereed throughput of tsweep as ratios of
Model Analyzer brute's and quick's. With ``--repeat N``: how often tsweep chose the same
config as its first run (or one that run reported tied) and the spread of the refereed
throughput of its choices.

Model Analyzer's quick search can go on forever once it has measured everything near a
bound (see ``SearchLoop``); the bench then interrupts it and reads its choice from its
checkpoint, and says so.

Model Analyzer and the perf_analyzer it drives are installed on first use into a venv of their
own, bench/.cache/model-analyzer-venv (see ``ensure_model_analyzer``); later runs reuse it.
Every child's log of the last run is kept in bench/.cache/last-vs-ma/.

Why one file over 400 lines: a bench is a script a reader runs and audits top to bottom
(fetching the peer, running both sides, the referee and the printed ratios); splitting it
would hide the method across modules.
"""
from __future__ import annotations

import argparse
import csv
import ctypes
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from search import Run, mean, referee, summarize

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
CACHE = BENCH / ".cache"
LAST = CACHE / "last-vs-ma"
MA_VENV = CACHE / "model-analyzer-venv"
READY = MA_VENV / "bench-ready.json"
#: Where each model lives: tsweep's examples, and the slow model added for this bench.
REPOSITORIES = (REPO / "examples" / "model_repository", BENCH / "models")
DEFAULT_MODELS = ("mlp", "add_sub", "matmul")
#: p99 budgets (ms) that put the boundary inside the concurrency range on a 2-core VM.
BUDGETS_MS = {"add_sub": 4.0, "mlp": 20.0, "matmul": 50.0}

#: Model Analyzer releases to try, newest first; the first that installs and imports is used.
MA_RELEASES = ("1.58.0", "1.46.0")
#: perf_analyzer's own PyPI wheel, the newest pip accepts for this platform. Its 2.60 build is
#: tagged manylinux_2_38, so pip refuses it where glibc is older (Debian 12 has 2.36); no 2.x
#: build is left then, only the empty 0.1.0 placeholder, which this pin excludes.
PA_WHEEL = "perf-analyzer>=2"
#: The fallback: tritonclient's last manylinux wheel that still ships bin/perf_analyzer.
PA_FALLBACK = "tritonclient[all]==2.51.0"
CUDART = "nvidia-cuda-runtime-cu12"

TARGETS = {"wall_vs_brute": 0.1, "wall_vs_quick": 0.25, "refereed": 0.97}
#: Ceiling for one child (a Model Analyzer or tsweep run); a hung one is stopped, not waited for.
CHILD_TIMEOUT_S = 4 * 3600


class BenchError(Exception):
    """A prerequisite is missing or a step failed; the message says what to do."""


# ----------------------------------------------------------------------------- child processes


def _children(pid: int) -> List[int]:
    """Direct children of ``pid`` from /proc (Linux), for every thread of it."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def _descendants(pid: int) -> List[int]:
    out, todo = [], [pid]
    while todo:
        for child in _children(todo.pop()):
            out.append(child)
            todo.append(child)
    return out


def _alive(pid: int) -> bool:
    try:  # the third field of /proc/<pid>/stat is the state; Z: exited, not yet reaped
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _stop_tree(proc: subprocess.Popen) -> None:
    """Stop a child and everything it started, by process id.

    Model Analyzer starts tritonserver in a session of its own, so stopping Model Analyzer
    alone would leave the server (and its python backend stubs) running and holding ports.
    """
    try:  # frozen, the child cannot start another process while its tree is listed
        os.kill(proc.pid, signal.SIGSTOP)
    except ProcessLookupError:
        pass
    pids = [proc.pid] + _descendants(proc.pid)

    def alive(pid: int) -> bool:
        return proc.poll() is None if pid == proc.pid else _alive(pid)

    for sig, grace_s in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 5.0)):
        for pid in pids:
            if alive(pid):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        try:
            os.kill(proc.pid, signal.SIGCONT)  # a stopped process acts on SIGTERM once continued
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(alive(p) for p in pids):
            time.sleep(0.2)
    proc.wait()


def run_logged(
    argv: Sequence[str], log: Path, cwd: Path, env: Optional[Dict[str, str]] = None, timeout_s: float = CHILD_TIMEOUT_S,
    stuck: Optional[Callable[[str], bool]] = None,
) -> Tuple[int, float, bool]:
    """Run ``argv`` with stdout and stderr into ``log``; (exit code, wall seconds, interrupted).

    ``stuck`` is shown the log's new text every second; when it answers True the child gets
    SIGINT (Model Analyzer then saves its checkpoint and exits) and ``interrupted`` is True.
    On a timeout or Ctrl-C the child's whole process tree is stopped before the error goes on.
    """
    started = time.monotonic()
    interrupted = False
    with open(log, "w") as out, open(log, errors="replace") as reader:
        out.write("$ " + " ".join(str(a) for a in argv) + "\n")
        out.flush()
        proc = subprocess.Popen([str(a) for a in argv], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd, env=env)
        try:
            while proc.poll() is None:
                if time.monotonic() - started > timeout_s:
                    _stop_tree(proc)
                    raise BenchError(f"{Path(str(argv[0])).name} ran longer than {timeout_s:.0f} s and was stopped (log: {log})")
                if stuck is not None and stuck(reader.read()):
                    interrupted = True
                    left = _descendants(proc.pid)
                    proc.send_signal(signal.SIGINT)
                    try:
                        proc.wait(timeout=120)
                    except subprocess.TimeoutExpired:
                        _stop_tree(proc)
                    for pid in (p for p in left if _alive(p)):  # its server, should it outlive it
                        os.kill(pid, signal.SIGTERM)
                    break
                time.sleep(1.0)
        except BaseException:
            if proc.poll() is None:
                _stop_tree(proc)
            raise
    return proc.wait(), time.monotonic() - started, interrupted


class SearchLoop:
    """Tells when Model Analyzer's quick search has stopped measuring but not stopped.

    Its quick mode walks coordinates that have no upper end and clamps the values to the
    user's bounds, so beyond a bound every step lands on a config it has measured already:
    it logs "Existing measurement found" and steps on, hundreds of times a second, without
    end (seen with 1.58 on add_sub, up to 2 instances and max_batch_size up to 8). A few such
    lines are normal (a config revisited, the concurrency sweep for its reports); thousands
    in a row, with no new "Profiling" line, are the loop.
    """

    def __init__(self, limit: int = 2000):
        self.limit, self.skips, self.partial = limit, 0, ""

    def __call__(self, text: str) -> bool:
        lines = (self.partial + text).split("\n")
        self.partial = lines.pop()
        for line in lines:
            if "] Profiling " in line:
                self.skips = 0
            elif "Existing measurement found" in line:
                self.skips += 1
        return self.skips >= self.limit


def tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])


# ----------------------------------------------------------------------------- installation


@dataclass
class Tools:
    """Model Analyzer and perf_analyzer as installed in their venv."""

    ma_version: str
    pa_version: str
    pa_source: str
    venv: Path

    @property
    def model_analyzer(self) -> Path:
        return self.venv / "bin" / "model-analyzer"

    @property
    def perf_analyzer(self) -> Path:
        return self.venv / "bin" / "perf_analyzer"

    @property
    def cudart_dir(self) -> Path:
        found = sorted(self.venv.glob("lib/python3*/site-packages/nvidia/cuda_runtime/lib"))
        return found[0] if found else self.venv / "missing-cudart"

    def environment(self) -> Dict[str, str]:
        """Model Analyzer's environment: its venv first on PATH and libcudart.so.12 (which
        perf_analyzer links even when no GPU is used) on LD_LIBRARY_PATH."""
        env = dict(os.environ)
        env["PATH"] = os.pathsep.join([str(self.venv / "bin"), env.get("PATH", "")])
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(self.cudart_dir), env.get("LD_LIBRARY_PATH", "")) if p)
        env.pop("PYTHONPATH", None)  # nothing of tsweep's venv may leak into Model Analyzer's
        return env


def check_libb64() -> None:
    """perf_analyzer links Debian's libb64 dynamically; nothing on PyPI provides it."""
    try:
        ctypes.CDLL("libb64.so.0d")
    except OSError:
        raise BenchError("perf_analyzer needs libb64.so.0d: run  apt-get install -y libb64-0d  (as root), then rerun") from None


def _pip(venv: Path, args: Sequence[str], log: Path) -> bool:
    with open(log, "a") as out:
        out.write(f"\n$ pip {' '.join(args)}\n")
        out.flush()
        return subprocess.run([str(venv / "bin" / "python"), "-m", "pip", *args], stdout=out, stderr=subprocess.STDOUT, timeout=1800).returncode == 0


def _venv_python(venv: Path, code: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, timeout=300)


def _perf_analyzer_version(tools: Tools) -> Optional[str]:
    """``Perf Analyzer Version 2.51.0 ...`` -> ``2.51.0``; None when the binary does not run."""
    if not tools.perf_analyzer.is_file():
        return None
    try:
        done = subprocess.run([str(tools.perf_analyzer), "--version"], capture_output=True, text=True, env=tools.environment(), timeout=60)
    except OSError:
        return None
    words = (done.stdout + done.stderr).split()
    if "Version" not in words:
        return None
    return words[words.index("Version") + 1]


def _installed(venv: Path, distribution: str) -> Optional[str]:
    done = _venv_python(venv, f"from importlib.metadata import version; print(version({distribution!r}))")
    return done.stdout.strip() if done.returncode == 0 else None


def ensure_model_analyzer(releases: Sequence[str], log: Path) -> Tools:
    """Model Analyzer and a perf_analyzer that runs here, in bench/.cache/model-analyzer-venv.

    Installed once (a marker file records what was chosen); later runs only check that
    perf_analyzer still starts. The order matters: Model Analyzer's own dependencies may
    bring a perf_analyzer (1.46's wheel ships one built for glibc 2.38) or none that runs
    (1.58 pulls the empty perf-analyzer 0.1.0), so perf_analyzer is settled last. First
    perf_analyzer's own wheel, the newest 2.x pip accepts for this platform; if there is
    none or its binary does not run, tritonclient 2.51.0's wheel is reinstalled over it
    without dependencies (only the binary and the client library change).
    """
    check_libb64()
    if READY.is_file():
        ready = json.loads(READY.read_text())
        tools = Tools(ready["ma_version"], ready["pa_version"], ready["pa_source"], MA_VENV)
        if ready["ma_version"] in releases and tools.model_analyzer.is_file() and _perf_analyzer_version(tools):
            return tools
        print(f"rebuilding {MA_VENV} (it holds Model Analyzer {ready['ma_version']}, or its perf_analyzer no longer starts)", flush=True)
    shutil.rmtree(MA_VENV, ignore_errors=True)
    print(f"installing Model Analyzer and perf_analyzer into {MA_VENV} (once; pip log: {log})", flush=True)
    done = subprocess.run([sys.executable, "-m", "venv", str(MA_VENV)], capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError(f"could not create a venv at {MA_VENV}: {done.stderr.strip()[-300:]}")
    ma_version = None
    for release in releases:
        print(f"  pip install triton-model-analyzer=={release}", flush=True)
        if not _pip(MA_VENV, ["install", f"triton-model-analyzer=={release}"], log):
            continue
        if _venv_python(MA_VENV, "import model_analyzer.entrypoint").returncode == 0:
            ma_version = release
            break
    if ma_version is None:
        raise BenchError(f"no Model Analyzer release of {', '.join(releases)} installs and imports here (pip log: {log})")
    print(f"  pip install {CUDART}", flush=True)
    if not _pip(MA_VENV, ["install", CUDART], log):
        raise BenchError(f"could not install {CUDART} (libcudart.so.12 for perf_analyzer; pip log: {log})")
    tools = Tools(ma_version, "", "", MA_VENV)
    print(f"  pip install --no-deps '{PA_WHEEL}'", flush=True)
    if _pip(MA_VENV, ["install", "--no-deps", PA_WHEEL], log) and _perf_analyzer_version(tools):
        tools.pa_source = f"perf-analyzer {_installed(MA_VENV, 'perf-analyzer')} wheel"
    else:
        print(f"  no perf-analyzer wheel that runs here; pip install --force-reinstall --no-deps '{PA_FALLBACK}'", flush=True)
        if not _pip(MA_VENV, ["install", "--force-reinstall", "--no-deps", PA_FALLBACK], log):
            raise BenchError(f"could not install {PA_FALLBACK} (pip log: {log})")
        tools.pa_source = f"the {PA_FALLBACK.replace('[all]', '')} wheel"
    version = _perf_analyzer_version(tools)
    if version is None:
        raise BenchError(f"{tools.perf_analyzer} does not run: try  LD_LIBRARY_PATH={tools.cudart_dir} {tools.perf_analyzer} --version")
    if _venv_python(MA_VENV, "import model_analyzer.entrypoint").returncode != 0:
        raise BenchError(f"Model Analyzer {ma_version} no longer imports after perf_analyzer's install (pip log: {log})")
    tools.pa_version = version
    READY.write_text(json.dumps({"ma_version": ma_version, "pa_version": version, "pa_source": tools.pa_source}))
    return tools


# ----------------------------------------------------------------------------- the server


@dataclass
class Server:
    """The tritonserver both tools run, as tsweep's local launcher would start it."""

    path: Path
    backends: Optional[Path]  # the assembled backend folder of the embedded server, else None

    def close(self) -> None:
        if self.backends is not None:
            shutil.rmtree(self.backends, ignore_errors=True)


def find_server() -> Server:
    """tsweep's choice of binary (PATH, else embedded), and for the embedded one the backend
    folder with the python backend stub for this interpreter: the same Python, numpy and
    backend serve both tools' models."""
    from tsweep.errors import UsageError
    from tsweep.plugins.launchers.embedded import assemble_backends, find_server as tsweep_find_server

    try:
        binary = tsweep_find_server(None)
        backends = assemble_backends(binary.embedded_root) if binary.embedded_root else None
    except UsageError as exc:
        raise BenchError(str(exc)) from None
    return Server(binary.path, backends)


def free_ports(count: int) -> List[int]:
    from tsweep.plugins.launchers.local import free_ports as draw

    return draw([None] * count)


# ----------------------------------------------------------------------------- Model Analyzer


def describe(config) -> str:
    """A ModelConfig in a few words: instances, max_batch_size, dynamic batching."""
    instances = sum(group.count or 1 for group in config.instance_group) or 1
    batching = "dyn" if config.HasField("dynamic_batching") else "no dyn"
    return f"{instances} inst, mbs {config.max_batch_size}, {batching}"


def ma_config(model: str, mode: str, repository: Path, args, server: Server, workdir: Path, tools: Tools, budget_ms: float, server_log: Path) -> dict:
    """Model Analyzer's profile config: its defaults, plus only what makes the run comparable
    (bounds, budget, objective) and what this machine needs (the server, its backends,
    loopback addresses, CPU only without a GPU)."""
    from tsweep.gpus import gpu_available

    http, grpc, metrics = free_ports(3)
    flags = {"http-address": "127.0.0.1", "grpc-address": "127.0.0.1", "metrics-address": "127.0.0.1"}
    if server.backends is not None:
        flags["backend-directory"] = str(server.backends)
    # As tsweep's launcher: the python backend stub imports numpy through the first python3
    # on PATH, so this interpreter comes first. Model Analyzer applies this environment to
    # perf_analyzer too, so libcudart.so.12 must be on its LD_LIBRARY_PATH here (the embedded
    # server carries its own renamed copy and is not affected).
    server_env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "LD_LIBRARY_PATH": tools.environment()["LD_LIBRARY_PATH"],
    }
    return {
        "model_repository": str(repository),
        "profile_models": {model: {"cpu_only": True}} if not gpu_available() else [model],
        "run_config_search_mode": mode,
        "run_config_search_max_instance_count": args.max_instances,
        "run_config_search_max_model_batch_size": args.max_batch,
        "run_config_search_max_concurrency": args.max_concurrency,
        "objectives": {"perf_throughput": 10},
        "constraints": {"perf_latency_p99": {"max": budget_ms}},
        "triton_launch_mode": "local",
        "triton_server_path": str(server.path),
        "triton_http_endpoint": f"127.0.0.1:{http}",
        "triton_grpc_endpoint": f"127.0.0.1:{grpc}",
        "triton_metrics_url": f"http://127.0.0.1:{metrics}/metrics",
        "triton_server_flags": flags,
        "triton_server_environment": server_env,
        "triton_output_path": str(server_log),
        "perf_analyzer_path": str(tools.perf_analyzer),
        "output_model_repository_path": str(workdir / "output_model_repository"),
        "checkpoint_directory": str(workdir / "checkpoints"),
        "export_path": str(workdir / "export"),
    }


def ma_checkpoint(checkpoints: Path, model: str) -> Dict[str, dict]:
    """The model's measurements in Model Analyzer's newest checkpoint (JSON), per variant:
    each variant holds a pair [run config, {perf_analyzer command: measurement}]."""
    files = sorted(checkpoints.glob("*.ckpt"), key=lambda p: int(p.stem) if p.stem.isdigit() else -1)
    if not files:
        raise BenchError(f"Model Analyzer wrote no checkpoint in {checkpoints}")
    state = json.loads(files[-1].read_text())
    variants = state.get("ResultManager.results", {}).get("_results", {}).get(model, {})
    return {name: entry[1] for name, entry in variants.items() if isinstance(entry, list) and len(entry) > 1}


def count_ma_measurements(checkpoints: Path, model: str) -> int:
    return sum(len(measurements) for measurements in ma_checkpoint(checkpoints, model).values())


def ma_choice_from_checkpoint(checkpoints: Path, model: str, budget_ms: float) -> dict:
    """The best point in Model Analyzer's checkpoint, ranked as it ranks with throughput as
    the only objective: the highest throughput among points whose p99 meets the budget (the
    lowest p99 when none does). Used when a run was stopped before it exported its results,
    and as a check of the CSV reading otherwise."""
    points = []
    for variant, measurements in ma_checkpoint(checkpoints, model).items():
        for measurement in measurements.values():
            for per_model in measurement.get("_model_config_measurements", []):
                metrics = {name: value["_value"] for name, value in per_model["_non_gpu_data"]}
                concurrency = per_model["_model_specific_pa_params"]["concurrency-range"]
                points.append((variant, int(concurrency), float(metrics["perf_throughput"]), float(metrics["perf_latency_p99"])))
    if not points:
        raise BenchError(f"Model Analyzer's checkpoint in {checkpoints} has no measurement of {model}")
    inside = [p for p in points if p[3] <= budget_ms]
    variant, concurrency, throughput, p99 = max(inside, key=lambda p: p[2]) if inside else min(points, key=lambda p: p[3])
    return {"variant": variant, "concurrency": concurrency, "throughput": throughput, "p99_ms": p99, "meets_budget": bool(inside)}


def read_ma_choice(export: Path, model: str) -> dict:
    """Model Analyzer's best config and concurrency from its exported inference CSV.

    Its rows come in ranking order: configs best first, and within a config the measurements
    that satisfy the constraints (best first) before those that do not. So the first row that
    satisfies them is the best config at its best concurrency. When none does, Model Analyzer
    still ranks, and the first row is its pick.
    """
    path = export / "results" / "metrics-model-inference.csv"
    if not path.is_file():
        raise BenchError(f"Model Analyzer exported no {path}")
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("Model") == model]
    if not rows:
        raise BenchError(f"{path} has no row for {model}")
    best = next((r for r in rows if r["Satisfies Constraints"].strip() == "Yes"), rows[0])
    return {
        "variant": best["Model Config Path"],
        "concurrency": int(float(best["Concurrency"])),
        "throughput": float(best["Throughput (infer/sec)"]),
        "p99_ms": float(best["p99 Latency (ms)"]),
        "meets_budget": best["Satisfies Constraints"].strip() == "Yes",
    }


FINISHED = "finished.json"


def finished_run(workdir: Path, resume: bool) -> Optional[dict]:
    """With --resume, what ``mark_finished`` recorded of a run that finished in ``workdir``
    before (its wall time, ...); else None, and ``workdir`` is made anew (what an unfinished
    run left there is removed)."""
    marker = workdir / FINISHED
    if resume and marker.is_file():
        print(f"  reusing the run that finished in {workdir}", flush=True)
        return json.loads(marker.read_text())
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    return None


def mark_finished(workdir: Path, facts: dict) -> None:
    (workdir / FINISHED).write_text(json.dumps(facts))


def run_model_analyzer(model: str, mode: str, repository: Path, args, tools: Tools, server: Server, workdir: Path, budget_ms: float):
    """One ``model-analyzer profile`` in a fresh folder; (Run, Trial of its choice, description,
    whether the bench had to stop its search loop)."""
    from tsweep import modelconfig
    from tsweep.records import LoadLevel, Trial, Variant

    tag = f"ma_{mode}"
    facts = finished_run(workdir, args.resume)
    if facts is None:
        (workdir / "export").mkdir()
        config = ma_config(model, mode, repository, args, server, workdir, tools, budget_ms, LAST / f"{model}-{tag}-tritonserver.log")
        config_path = workdir / "config.yaml"
        config_path.write_text(json.dumps(config, indent=2))  # JSON is YAML
        shutil.copy(config_path, LAST / f"{model}-{tag}-config.yaml")
        log = LAST / f"{model}-{tag}.log"
        loop = SearchLoop()
        rc, wall, looped = run_logged([tools.model_analyzer, "profile", "-f", config_path], log, workdir, tools.environment(), stuck=loop)
        if looped:
            print(
                f"  Model Analyzer {mode} went on proposing configs it had measured ({loop.skips} in a row without a "
                f"measurement): stopped with SIGINT after {wall:.0f} s; its choice is read from its checkpoint",
                flush=True,
            )
        elif rc != 0:
            raise BenchError(f"Model Analyzer ({mode}) failed with exit code {rc}: {tail(log, 3)} (log: {log})")
        facts = {"wall_s": wall, "stopped_looping": looped}
        mark_finished(workdir, facts)
    wall, looped = float(facts["wall_s"]), bool(facts["stopped_looping"])
    points = count_ma_measurements(workdir / "checkpoints", model)
    from_checkpoint = ma_choice_from_checkpoint(workdir / "checkpoints", model, budget_ms)
    if looped:
        choice = from_checkpoint
    else:
        choice = read_ma_choice(workdir / "export", model)
        if (choice["variant"], choice["concurrency"]) != (from_checkpoint["variant"], from_checkpoint["concurrency"]):
            print(
                f"  note: Model Analyzer's CSV ranks {choice['variant']} at concurrency {choice['concurrency']} first, its checkpoint's "
                f"best point is {from_checkpoint['variant']} at {from_checkpoint['concurrency']}; the CSV's is taken",
                flush=True,
            )
    if not choice["meets_budget"]:
        print(f"  no measurement of Model Analyzer {mode} met the budget; its first-ranked row is taken", flush=True)
    pbtxt = workdir / "output_model_repository" / choice["variant"] / "config.pbtxt"
    if not pbtxt.is_file():
        raise BenchError(f"Model Analyzer chose {choice['variant']} but {pbtxt} does not exist")
    parsed = modelconfig.parse(pbtxt.read_text(), str(pbtxt))
    variant = Variant(model=model, config=parsed, name=f"{model}_{tag}")
    load = LoadLevel("concurrency", float(choice["concurrency"]))
    run = Run(
        tag, points, wall, float("nan"), choice["variant"], variant.digest, str(load),
        choice["throughput"], choice["p99_ms"], [], workdir / "checkpoints",
    )  # fmt: skip
    return run, Trial(variant, load, 1), describe(parsed), looped


# ----------------------------------------------------------------------------- tsweep


def run_tsweep(model: str, tag: str, repository: Path, args, workdir: Path, budget_ms: float):
    """One ``tsweep profile`` with its defaults (strategy and measurement) in a fresh folder;
    (Run, description of its choice, digests of its choice and the configs it called tied)."""
    from tsweep import modelconfig
    from tsweep.store import ResultsStore

    command = [
        sys.executable, "-m", "tsweep", "profile", "--model-repository", repository, "--profile-models", model,
        "--output-model-repository-path", workdir / "output_model_repository",
        "--checkpoint-directory", workdir / "checkpoints", "--export-path", workdir / "export",
        "--latency-budget", budget_ms,
        "--run-config-search-max-instance-count", args.max_instances,
        "--run-config-search-max-model-batch-size", args.max_batch,
        "--run-config-search-max-concurrency", args.max_concurrency,
    ]  # fmt: skip
    facts = finished_run(workdir, args.resume)
    if facts is None:
        log = LAST / f"{model}-{tag}.log"
        rc, wall, _ = run_logged(command, log, workdir)
        server_log = workdir / "checkpoints" / "tritonserver.log"
        if server_log.is_file():
            shutil.copy(server_log, LAST / f"{model}-{tag}-tritonserver.log")
        if rc != 0:
            raise BenchError(f"tsweep profile failed with exit code {rc}: {tail(log, 3)} (log: {log})")
        facts = {"wall_s": wall}
        mark_finished(workdir, facts)
    wall = float(facts["wall_s"])
    store_path = workdir / "checkpoints" / "results.sqlite"
    run = summarize(model, tag, store_path, wall, argparse.Namespace(budget_ms=budget_ms))
    with ResultsStore.open_existing(store_path) as store:
        digests = {v["name"]: str(v["digest"]) for v in store.variants(model)}
        text = store._conn.execute("SELECT config_pbtxt FROM variants WHERE name = ?", (run.best,)).fetchone()[0]
    tied = {digests[name] for name in run.tied_with if name in digests}
    return run, describe(modelconfig.parse(text)), tied


# ----------------------------------------------------------------------------- report


def pool_equal_choices(runs: List[Run]) -> None:
    """Give runs that chose the same config (same digest) the same refereed figures.

    The referee measures each run's choice separately, so two runs with the same answer would
    otherwise get different values from noise alone (10-20% between looks on these VMs). At
    every load both measured, their rounds are pooled: the same config at the same load,
    measured more often. Each run keeps its own loads (its chosen one, 3/4 and 1/2 of it).
    """
    groups: Dict[str, List[Run]] = {}
    for r in runs:
        groups.setdefault(r.best_digest, []).append(r)
    for group in (g for g in groups.values() if len(g) > 1):
        throughput: Dict[float, List[float]] = {}
        p99: Dict[float, List[float]] = {}
        for r in group:
            for load, values in r.refereed.items():
                throughput.setdefault(load, []).extend(values)
                p99.setdefault(load, []).extend(r.refereed_p99_ms[load])
        for r in group:
            for load in r.refereed:
                r.refereed[load], r.refereed_p99_ms[load] = list(throughput[load]), list(p99[load])


def ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(b) else float("nan")


def geomean(values: List[float]) -> float:
    """Geometric mean; nan when a value is missing or 0 (a choice with no load inside the budget)."""
    if not values or any(not v > 0 for v in values):
        return float("nan")
    return math.exp(mean([math.log(v) for v in values]))


def verdict(value: float, target: float, at_most: bool) -> str:
    if math.isnan(value):
        return "n/a"
    ok = value <= target if at_most else value >= target
    return f"{'meets' if ok else 'misses'} {'<=' if at_most else '>='} {target:g}"


def report_model(
    model: str, budget_ms: float, runs: List[Run], described: Dict[str, str], tied: Dict[str, set], referee_s: float, stopped: List[str]
) -> dict:
    """Print one model's table and ratios; return them for --json. ``stopped``: Model Analyzer
    runs whose endless search the bench interrupted (their wall time ends there)."""
    print(f"\n{model}  (p99 budget {budget_ms:g} ms; every time is the whole run)")
    print(
        f"  {'run':10} {'points':>6} {'wall s':>7}  {'chosen config':28} {'its load':15} {'its infer/s':>11} {'its p99':>8}"
        f"  {'refereed':>9} {'at':>4} {'p99 there':>9}"
    )
    # Equal configs (same digest, whichever tool wrote them) get the same letter.
    letters: Dict[str, str] = {}
    for r in runs:
        letters.setdefault(r.best_digest, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[len(letters) % 26])
    rows = {}
    for r in runs:
        refereed, at = r.refereed_best(budget_ms)
        p99_at = mean(r.refereed_p99_ms[at]) if at is not None else float("nan")
        rows[r.strategy] = {
            "points": r.points, "wall_s": r.wall_s, "variant": r.best, "config": described[r.strategy], "digest": r.best_digest,
            "load": r.best_load, "throughput": r.best_throughput, "p99_ms": r.best_p99_ms,
            "refereed": refereed, "refereed_load": at, "refereed_p99_ms": p99_at,
            "refereed_rounds": {str(k): v for k, v in r.refereed.items()},
            "refereed_p99_rounds_ms": {str(k): v for k, v in r.refereed_p99_ms.items()},
        }  # fmt: skip
        print(
            f"  {r.strategy:10} {r.points:6d} {r.wall_s:7.0f}  {letters[r.best_digest]} {described[r.strategy][:26]:26} "
            f"{r.best_load:15} {r.best_throughput:11.1f} "
            f"{r.best_p99_ms:8.2f}  {refereed:9.1f} {'-' if at is None else f'{at:g}':>4} {p99_at:9.2f}"
        )
    print(f"  (a letter marks equal configs; referee: {referee_s:.0f} s)")
    for tag in stopped:
        print(f"  {tag}: its search did not end; stopped by the bench, so its wall time and points are up to then (no report sweep)")
    ts_runs = [r for r in runs if r.strategy.startswith("tsweep")]
    ts = {
        "wall_s": mean([r.wall_s for r in ts_runs]),
        "points": mean([float(r.points) for r in ts_runs]),
        "refereed": mean([rows[r.strategy]["refereed"] for r in ts_runs]),
    }
    for tag in stopped:
        rows[tag]["stopped_looping"] = True
    result = {"budget_ms": budget_ms, "runs": rows, "referee_s": referee_s, "ratios": {}}
    many = f" (mean of {len(ts_runs)} tsweep runs)" if len(ts_runs) > 1 else ""
    for ma in (r for r in runs if r.strategy.startswith("ma_")):
        mode = ma.strategy[3:]
        ratios = {
            "wall": ratio(ts["wall_s"], ma.wall_s),
            "points": ratio(ts["points"], float(ma.points)),
            "refereed": ratio(ts["refereed"], rows[ma.strategy]["refereed"]),
        }
        result["ratios"][ma.strategy] = ratios
        print(
            f"  tsweep / MA {mode:5}: wall {ratios['wall']:.3f}x ({verdict(ratios['wall'], TARGETS['wall_vs_' + mode], True)}), "
            f"points {ratios['points']:.2f}x, refereed {ratios['refereed']:.3f}x ({verdict(ratios['refereed'], TARGETS['refereed'], False)}){many}"
        )
    if len(ts_runs) > 1:
        first = ts_runs[0]
        same = sum(1 for r in ts_runs[1:] if r.best_digest == first.best_digest)
        tie = sum(
            1 for r in ts_runs[1:]
            if r.best_digest != first.best_digest and (r.best_digest in tied[first.strategy] or first.best_digest in tied[r.strategy])
        )  # fmt: skip
        values = [rows[r.strategy]["refereed"] for r in ts_runs]
        lo, hi = min(values), max(values)
        spread = ratio(hi - lo, mean(values))
        result["repeat"] = {
            "runs": len(ts_runs), "same_as_first": same, "tied_with_first": tie, "refereed_min": lo, "refereed_max": hi,
            "min_over_max": ratio(lo, hi), "spread_over_mean": spread,
        }  # fmt: skip
        print(
            f"  tsweep repeated: {same + tie + 1}/{len(ts_runs)} runs chose run 1's config (run 1 itself, {same} more the same, "
            f"{tie} one tied with it); refereed min {lo:.1f}, max {hi:.1f} infer/s: min/max {ratio(lo, hi):.3f}, "
            f"(max-min)/mean {100 * spread:.1f}%"
        )
    return result


# ----------------------------------------------------------------------------- main


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not usage + message
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def repository_of(model: str) -> Optional[Path]:
    for repository in REPOSITORIES:
        if (repository / model / "config.pbtxt").is_file():
            return repository
    return None


def main() -> int:
    parser = Parser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    where = ", ".join(str(r.relative_to(REPO)) for r in REPOSITORIES)
    budgets = ", ".join(f"{m} {b:g}" for m, b in BUDGETS_MS.items())
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), help=f"models from {where}")
    parser.add_argument("--budget-ms", type=positive_float, default=None, help=f"p99 budget for every model (default: {budgets})")
    parser.add_argument("--max-instances", type=positive_int, default=2, help="run_config_search_max_instance_count (default 2)")
    parser.add_argument("--max-batch", type=positive_int, default=8, help="run_config_search_max_model_batch_size (default 8)")
    parser.add_argument("--max-concurrency", type=positive_int, default=16, help="run_config_search_max_concurrency (default 16)")
    parser.add_argument("--repeat", type=positive_int, default=1, help="tsweep runs per model (default 1; 3 for the repeatability figures)")
    parser.add_argument("--skip-ma-quick", action="store_true", help="leave out Model Analyzer's quick mode")
    parser.add_argument("--referee-rounds", type=positive_int, default=4)
    parser.add_argument("--referee-window-s", type=positive_float, default=1.0, help="window of the referee's measurements (default 1)")
    parser.add_argument("--referee-max-windows", type=positive_int, default=5, help="at most this many windows per refereed point (default 5)")
    parser.add_argument(
        "--ma-version", default=None, help=f"Model Analyzer release to install (default: the first of {', '.join(MA_RELEASES)} that works)"
    )
    parser.add_argument("--json", type=Path, default=None, help="write every figure to this file")
    parser.add_argument("--keep", type=Path, default=None, help="keep every run's folder in this new folder")
    parser.add_argument(
        "--resume", action="store_true",
        help="with --keep DIR of an interrupted bench (same options): reuse the runs that finished there, redo the others",
    )  # fmt: skip
    args = parser.parse_args()

    repositories = {}
    for model in args.models:
        found = repository_of(model)
        if found is None:
            parser.error(f"no model {model!r} in {' or '.join(str(r) for r in REPOSITORIES)}")
        repositories[model] = found
    if args.resume and args.keep is None:
        parser.error("--resume needs --keep DIR: the folder of the interrupted bench")
    if args.resume and not args.keep.is_dir():
        parser.error(f"--resume: --keep {args.keep} is not a folder")
    if args.keep is not None and args.keep.exists() and not args.resume:
        parser.error(f"--keep {args.keep} exists: give a new folder, so that no run mixes with an old one (or add --resume)")
    if args.json is not None and not args.json.resolve().parent.is_dir():
        parser.error(f"--json {args.json}: folder {args.json.resolve().parent} does not exist")
    if platform.system() != "Linux" or platform.machine() != "x86_64":
        raise BenchError(f"perf_analyzer's wheels are for Linux x86_64; this is {platform.system()} {platform.machine()}")
    try:
        import tsweep  # noqa: F401  (only to check it is there)
    except ImportError:
        raise BenchError("tsweep is not importable: run this with the python of the venv where tsweep is installed") from None

    shutil.rmtree(LAST, ignore_errors=True)
    LAST.mkdir(parents=True)
    started = time.monotonic()
    tools = ensure_model_analyzer((args.ma_version,) if args.ma_version else MA_RELEASES, LAST / "setup-pip.log")
    print(f"Model Analyzer {tools.ma_version}, perf_analyzer {tools.pa_version} (from {tools.pa_source}), in {MA_VENV}", flush=True)
    server = find_server()
    print(f"server for both: {server.path}" + (f" (backends {server.backends})" if server.backends else ""), flush=True)
    print(
        f"space for both: instances <= {args.max_instances}, max_batch_size <= {args.max_batch}, concurrency <= {args.max_concurrency}; "
        f"logs in {LAST}",
        flush=True,
    )

    results: Dict[str, object] = {
        "model_analyzer": tools.ma_version, "perf_analyzer": tools.pa_version, "perf_analyzer_from": tools.pa_source,
        "server": str(server.path),
        "space": {"max_instances": args.max_instances, "max_batch": args.max_batch, "max_concurrency": args.max_concurrency},
        "repeat": args.repeat, "models": {},
    }  # fmt: skip
    referee_args = argparse.Namespace(window_s=args.referee_window_s, max_windows=args.referee_max_windows, referee_rounds=args.referee_rounds)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=args.resume)
    scratch = tempfile.TemporaryDirectory(prefix="tsweep-vs-ma-")
    root = args.keep.resolve() if args.keep is not None else Path(scratch.name)
    try:
        for model in args.models:
            repository, budget_ms = repositories[model], args.budget_ms or BUDGETS_MS.get(model, 20.0)
            runs: List[Run] = []
            chosen, described, tied = {}, {}, {}
            stopped: List[str] = []  # Model Analyzer runs whose search loop the bench stopped
            modes = ("brute",) if args.skip_ma_quick else ("brute", "quick")
            for mode in modes:
                print(f"{model}: Model Analyzer {mode} ...", flush=True)
                run, trial, text, looped = run_model_analyzer(model, mode, repository, args, tools, server, root / model / f"ma_{mode}", budget_ms)
                runs.append(run)
                if looped:
                    stopped.append(run.strategy)
                chosen[run.strategy], described[run.strategy], tied[run.strategy] = trial, text, set()
                print(f"  {run.wall_s:.0f} s, {run.points} measurements; chose {run.best} ({text}) at {run.best_load}", flush=True)
            for i in range(args.repeat):
                tag = "tsweep" if i == 0 else f"tsweep_{i + 1}"
                print(f"{model}: tsweep{'' if i == 0 else f' (run {i + 1})'} ...", flush=True)
                run, text, tied_digests = run_tsweep(model, tag, repository, args, root / model / tag, budget_ms)
                runs.append(run)
                described[tag], tied[tag] = text, tied_digests
                print(f"  {run.wall_s:.0f} s, {run.points} measurements; chose {run.best} ({text}) at {run.best_load}", flush=True)
            print(f"{model}: referee ({len(runs)} choices, {args.referee_rounds} rounds) ...", flush=True)
            referee_started = time.monotonic()
            try:
                referee(model, runs, referee_args, root / model, chosen=chosen, repository_path=repository)
                pool_equal_choices(runs)
            finally:
                server_log = root / model / "referee-log" / "tritonserver.log"
                if server_log.is_file():
                    shutil.copy(server_log, LAST / f"{model}-referee-tritonserver.log")
            results["models"][model] = report_model(model, budget_ms, runs, described, tied, time.monotonic() - referee_started, stopped)
    finally:
        server.close()
        scratch.cleanup()

    models = results["models"]
    if len(models) > 1:
        print("\nover all models (geometric mean of the ratios):")
        summary = {}
        for tag in ("ma_brute", "ma_quick"):
            per = [m["ratios"][tag] for m in models.values() if tag in m["ratios"]]
            if not per:
                continue
            g = {k: geomean([p[k] for p in per]) for k in ("wall", "points", "refereed")}
            summary[tag] = g
            print(
                f"  tsweep / MA {tag[3:]:5}: wall {g['wall']:.3f}x ({verdict(g['wall'], TARGETS['wall_vs_' + tag[3:]], True)}), "
                f"points {g['points']:.2f}x, refereed {g['refereed']:.3f}x ({verdict(g['refereed'], TARGETS['refereed'], False)})"
            )
        results["summary"] = summary
    total = time.monotonic() - started
    results["total_s"] = total
    print(f"\ntotal {total / 60:.1f} min")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


def _terminate(signum, frame):
    """SIGTERM ends the bench as Ctrl-C does, so that its children are stopped too."""
    raise KeyboardInterrupt


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    signal.signal(signal.SIGTERM, _terminate)
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"vs_model_analyzer.py: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("vs_model_analyzer.py: interrupted", file=sys.stderr)
        sys.exit(130)
