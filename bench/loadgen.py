"""tsweep's native load generator versus perf_analyzer, on the same embedded Triton server.

    python bench/loadgen.py                       # add_sub and mlp, concurrency 1 4 16 64, 2 s windows
    python bench/loadgen.py --quick               # concurrency 1 16, 1 s windows
    python bench/loadgen.py --models add_sub --concurrency 1 8 --window-s 3

One tritonserver (tsweep's LocalLauncher, loopback only) serves the models with their own
config from examples/model_repository (no dynamic batching added). For every model and
concurrency level both clients measure one point, one after the other (order alternating per
level), each as a child process:

* tsweep: ``bench/_tsweep_point.py`` = ``tsweep.measure.measure`` driving the native HTTP
  generator, stable when the last 3 windows agree within 10% on throughput and p99;
* perf_analyzer 2.51.0 (from the tritonclient wheel), the same window length, 10% stability
  on throughput and p99 (``--percentile 99``), at most the same number of windows, the same
  tensors (``--input-data``, written from tsweep's seeded random samples) in the same wire
  encoding (binary tensors by default, as tsweep).

Client CPU time and peak RSS come from ``os.wait4`` on each child (exact, includes start-up;
called in a small spawning helper, see ``_SPAWN_HELPER``);
requests are counted by the server (success count delta over the child's life), so both
clients are charged the same way. Ratios are tsweep / perf_analyzer; a summary ratio over
several points is their geometric mean.

perf_analyzer is fetched on first use into bench/.cache (pip download of the tritonclient
wheel, which ships the binary, and of nvidia-cuda-runtime-cu12 for libcudart.so.12, which
it links although no GPU is used). It also needs Debian's libb64-0d.

Why one file over 400 lines: a bench is a script a reader runs and audits top to bottom
(fetching the peer, running both sides, the referee and the printed ratios); splitting it
would hide the method across modules.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import re
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
CACHE = BENCH / ".cache"
EXAMPLES = REPO / "examples" / "model_repository"

TRITONCLIENT = "tritonclient==2.51.0"
LAST_RUN = CACHE / "last-run"
PA_BIN = CACHE / "perf_analyzer" / "perf_analyzer"
CUDART = "nvidia-cuda-runtime-cu12"
CUDART_LIB = CACHE / "cudart" / "nvidia" / "cuda_runtime" / "lib"
#: Platform tags to try for the tritonclient wheel, oldest first (2.51.0 is tagged manylinux1).
PLATFORMS = ("manylinux1_x86_64", "manylinux2014_x86_64", "manylinux_2_28_x86_64")

TOLERANCE = 0.10
STABLE_WINDOWS = 3
WARMUP_S = 0.5


class BenchError(Exception):
    """A setup step failed; the message says what to do."""


# ----------------------------------------------------------------------------- perf_analyzer


def _pip_download(spec: str, platform_tag: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--platform", platform_tag, spec, "-d", str(CACHE)]
    print(f"  $ {shlex.join(cmd)}", flush=True)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def _wheel(pattern: str) -> Optional[Path]:
    found = sorted(CACHE.glob(pattern))
    return found[-1] if found else None


def _fetch_perf_analyzer() -> None:
    wheel = _wheel("tritonclient-2.51.0-*x86_64*.whl")
    if wheel is None:
        errors = []
        for tag in PLATFORMS:
            r = _pip_download(TRITONCLIENT, tag)
            if r.returncode == 0:
                break
            errors.append(f"{tag}: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
        wheel = _wheel("tritonclient-2.51.0-*x86_64*.whl")
        if wheel is None:
            raise BenchError(f"could not download {TRITONCLIENT} (the wheel that ships perf_analyzer): " + "; ".join(errors))
    with zipfile.ZipFile(wheel) as zf:
        members = [n for n in zf.namelist() if n.endswith("/bin/perf_analyzer")]
        if not members:
            raise BenchError(f"{wheel.name} has no bin/perf_analyzer")
        PA_BIN.parent.mkdir(parents=True, exist_ok=True)
        tmp = PA_BIN.with_suffix(".part")
        with zf.open(members[0]) as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)
        tmp.chmod(0o755)
        tmp.replace(PA_BIN)


def _fetch_cudart() -> None:
    wheel = _wheel("nvidia_cuda_runtime_cu12-*.whl")
    if wheel is None:
        r = _pip_download(CUDART, "manylinux2014_x86_64")
        wheel = _wheel("nvidia_cuda_runtime_cu12-*.whl")
        if wheel is None:
            raise BenchError(f"could not download {CUDART} (for libcudart.so.12): {(r.stderr or r.stdout).strip()[-300:]}")
    with zipfile.ZipFile(wheel) as zf:
        members = [n for n in zf.namelist() if n.startswith("nvidia/cuda_runtime/lib/libcudart.so")]
        if not members:
            raise BenchError(f"{wheel.name} has no nvidia/cuda_runtime/lib/libcudart.so*")
        zf.extractall(CACHE / "cudart", members)


def perf_analyzer_env() -> Dict[str, str]:
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(CUDART_LIB), env.get("LD_LIBRARY_PATH", "")) if p)
    return env


def ensure_perf_analyzer() -> str:
    """Fetch perf_analyzer and libcudart into bench/.cache if missing; return its version line."""
    if platform.system() != "Linux" or platform.machine() != "x86_64":
        raise BenchError(f"perf_analyzer ships for Linux x86_64 only, this is {platform.system()} {platform.machine()}")
    CACHE.mkdir(parents=True, exist_ok=True)
    if not PA_BIN.is_file():
        print(f"perf_analyzer not in {PA_BIN.parent}: fetching it from the {TRITONCLIENT} wheel", flush=True)
        _fetch_perf_analyzer()
    if not list(CUDART_LIB.glob("libcudart.so.12*")):
        print(f"libcudart.so.12 not in {CUDART_LIB}: fetching it from the {CUDART} wheel", flush=True)
        _fetch_cudart()
    env = perf_analyzer_env()
    ldd = subprocess.run(["ldd", str(PA_BIN)], capture_output=True, text=True, env=env, timeout=60)
    missing = [line.split("=>")[0].strip() for line in ldd.stdout.splitlines() if "not found" in line]
    if any(m.startswith("libb64") for m in missing):
        raise BenchError("perf_analyzer needs libb64.so.0d: run  apt-get update && apt-get install -y libb64-0d  (as root), then rerun")
    if missing:
        raise BenchError(f"perf_analyzer cannot find {', '.join(missing)} (ldd {PA_BIN}, LD_LIBRARY_PATH={env['LD_LIBRARY_PATH']})")
    r = subprocess.run([str(PA_BIN), "--version"], capture_output=True, text=True, env=env, timeout=60)
    version = (r.stdout + r.stderr).strip()
    if "Version" not in version:
        raise BenchError(f"perf_analyzer --version failed (exit {r.returncode}): {version[-500:]}")
    return version


# ----------------------------------------------------------------------------- child processes


#: Runs one child and reports its wait4 rusage. A separate small process does the spawning
#: because on Linux a child's ru_maxrss starts at the RSS of the process that forked it (the
#: high-water mark survives exec): spawned from this process (~80 MB with tsweep, numpy and the
#: launcher loaded) every child would report at least that. From this helper the floor is ~8 MB.
_SPAWN_HELPER = r"""
import json, os, signal, sys, time
spec = json.loads(sys.argv[1])
fo = os.open(spec["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
fe = os.open(spec["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
t0 = time.monotonic()
pid = os.posix_spawn(spec["argv"][0], spec["argv"], os.environ, file_actions=[
    (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
    (os.POSIX_SPAWN_DUP2, fo, 1), (os.POSIX_SPAWN_DUP2, fe, 2)])
deadline, killed = t0 + spec["timeout_s"], False
while True:
    got, status, ru = os.wait4(pid, os.WNOHANG)
    if got:
        break
    if time.monotonic() > deadline:
        os.kill(pid, signal.SIGKILL)
        got, status, ru = os.wait4(pid, 0)
        killed = True
        break
    time.sleep(0.05)
print(json.dumps({"rc": os.waitstatus_to_exitcode(status), "killed": killed, "wall_s": time.monotonic() - t0,
                  "utime_s": ru.ru_utime, "stime_s": ru.ru_stime, "maxrss_kb": ru.ru_maxrss}))
"""


def run_child(argv: Sequence[str], env: Dict[str, str], workdir: Path, tag: str, timeout_s: float) -> dict:
    """Run ``argv`` to completion (killed after ``timeout_s``); CPU and peak RSS from wait4."""
    out, err = workdir / f"{tag}.out", workdir / f"{tag}.err"
    spec = {"argv": [str(a) for a in argv], "out": str(out), "err": str(err), "timeout_s": timeout_s}
    helper = subprocess.run(
        [sys.executable, "-S", "-c", _SPAWN_HELPER, json.dumps(spec)],
        capture_output=True, text=True, env=env, cwd=workdir, timeout=timeout_s + 60,
    )  # fmt: skip
    if helper.returncode != 0:
        raise BenchError(f"spawn helper failed for {argv[0]}: {helper.stderr.strip()[-500:]}")
    ru = json.loads(helper.stdout)
    return {
        "rc": ru["rc"],
        "killed": ru["killed"],
        "proc_wall_s": ru["wall_s"],
        "cpu_s": ru["utime_s"] + ru["stime_s"],
        "utime_s": ru["utime_s"],
        "stime_s": ru["stime_s"],
        "maxrss_mb": ru["maxrss_kb"] / 1024.0,  # Linux reports kB
        "stdout": out.read_text(errors="replace"),
        "stderr": err.read_text(errors="replace"),
    }


def child_timeout(window_s: float, max_windows: int) -> float:
    """Generous (perf_analyzer's passes can last several windows), but bounded: a client still
    running then is killed and reported as such, its CPU and RSS up to that moment."""
    return 20.0 + 4.0 * window_s * max_windows


_PASS = re.compile(r"Pass \[(\d+)\] throughput: ([\d.eE+-]+) infer/sec\. p99 latency: (\d+) usec")


def pa_command(pa: str, url: str, model: str, concurrency: int, window_s: float, max_windows: int, data: Optional[Path], encoding: str, async_mode: bool, csv_path: Path) -> List[str]:
    host_port = url.split("://", 1)[-1]
    argv = [
        pa, "-m", model, "-u", host_port, "-i", "http", "-b", "1",
        "--concurrency-range", str(concurrency),
        "--measurement-interval", str(int(round(window_s * 1000))),
        "--stability-percentage", str(int(TOLERANCE * 100)),
        "--max-trials", str(max_windows),
        "--percentile", "99",
        "--input-tensor-format", encoding, "--output-tensor-format", encoding,
        "-f", str(csv_path), "-v",
    ]  # fmt: skip
    if data is not None:
        argv += ["--input-data", str(data)]
    if async_mode:
        argv.append("--async")
    return argv


def parse_pa(res: dict, csv_path: Path) -> dict:
    text = res["stdout"]
    passes = [(float(t), int(p) / 1000.0) for _, t, p in _PASS.findall(text)]
    point = {"windows": len(passes), "window_throughputs": [t for t, _ in passes], "p50_ms": None, "requests": None}
    count = re.search(r"Request count: (\d+)", text)
    if count:
        point["requests"] = int(count.group(1))
    if res["rc"] == 0 and csv_path.is_file():
        with open(csv_path, newline="") as f:
            row = next(csv.DictReader(f))
        point.update(status="ok", throughput=float(row["Inferences/Second"]), p50_ms=float(row["p50 latency"]) / 1000, p99_ms=float(row["p99 latency"]) / 1000)
    elif passes:
        last = passes[-STABLE_WINDOWS:]  # like tsweep: an unstable point reports its last windows
        point.update(status="unstable", throughput=sum(t for t, _ in last) / len(last), p99_ms=sum(p for _, p in last) / len(last))
    else:
        tail = (res["stdout"] + res["stderr"]).strip().splitlines()[-3:]
        point.update(status="failed", throughput=None, p99_ms=None, error=" | ".join(tail))
    if res["killed"]:
        point["status"] = "killed"
    return point


# ----------------------------------------------------------------------------- one point


class Bench:
    def __init__(self, args, url: str, repo: Path, workdir: Path, pa_env: Dict[str, str], data_files: Dict[str, Optional[Path]]):
        self.args, self.url, self.repo, self.workdir, self.pa_env, self.data_files = args, url, repo, workdir, pa_env, data_files
        from tsweep.triton import TritonHTTP

        self.client = TritonHTTP(url)
        self.pa_commands: List[str] = []
        self.seq = 0

    def _stats(self, model: str):
        return self.client.stats(model)

    def tsweep_point(self, model: str, concurrency: int, window_s: float, max_windows: int, timeout_s: Optional[float] = None) -> dict:
        self.seq += 1
        data = self.data_files.get(model)
        argv = [
            sys.executable, str(BENCH / "_tsweep_point.py"), "--url", self.url, "--model", model,
            "--config", str(self.repo / model / "config.pbtxt"), "--concurrency", str(concurrency),
            "--window-s", str(window_s), "--warmup-s", str(min(WARMUP_S, window_s)), "--tolerance", str(TOLERANCE),
            "--stable-windows", str(STABLE_WINDOWS), "--max-windows", str(max_windows), "--encoding", self.args.encoding,
        ]  # fmt: skip
        if data is not None:
            argv += ["--input-data", str(data)]
        before = self._stats(model)
        res = run_child(argv, dict(os.environ), self.workdir, f"{self.seq:03d}-tsweep-{model}-c{concurrency}", timeout_s or child_timeout(window_s, max_windows))
        served = self._stats(model) - before
        lines = [l for l in res["stdout"].splitlines() if l.startswith("{")]
        point = json.loads(lines[-1]) if lines else {"status": "failed", "throughput": None, "p50_ms": None, "p99_ms": None, "windows": 0, "error": res["stderr"].strip()[-500:]}
        if res["killed"]:
            point["status"] = "killed"
        return self._finish("tsweep", point, res, served)

    def pa_point(self, model: str, concurrency: int, window_s: float, max_windows: int, timeout_s: Optional[float] = None, request_count: int = 0) -> dict:
        self.seq += 1
        tag = f"{self.seq:03d}-pa-{model}-c{concurrency}{'-count' if request_count else ''}"
        csv_path = self.workdir / f"{tag}.csv"
        argv = pa_command(str(PA_BIN), self.url, model, concurrency, window_s, max_windows, self.data_files.get(model), self.args.encoding, self.args.pa_async, csv_path)
        if request_count:  # one pass of exactly this many requests, no stability check
            argv += ["--request-count", str(request_count)]
        self.pa_commands.append(shlex.join(argv))
        before = self._stats(model)
        res = run_child(argv, self.pa_env, self.workdir, tag, timeout_s or child_timeout(window_s, max_windows))
        served = self._stats(model) - before
        point = parse_pa(res, csv_path)
        point["wall_s"] = res["proc_wall_s"]
        return self._finish("perf_analyzer", point, res, served)

    @staticmethod
    def _finish(client: str, point: dict, res: dict, stats) -> dict:
        served = stats.success_count
        if served:  # what the server did per request: equal work on both sides is the premise
            point["server_queue_us"] = stats.queue_ns / served / 1e3
            point["server_infer_us"] = stats.compute_infer_ns / served / 1e3
            point["server_request_us"] = stats.success_ns / served / 1e3
        point.update(
            client=client, rc=res["rc"], proc_wall_s=res["proc_wall_s"], cpu_s=res["cpu_s"], utime_s=res["utime_s"], stime_s=res["stime_s"],
            maxrss_mb=res["maxrss_mb"], served=served, cpu_per_1k=(res["cpu_s"] / served * 1000) if served else None,
        )  # fmt: skip
        if client == "tsweep" and point.get("load_cpu_s") is not None and point.get("completed_total"):
            point["load_cpu_per_1k"] = point["load_cpu_s"] / point["completed_total"] * 1000
        return point


# ----------------------------------------------------------------------------- report


def ratio(a, b) -> Optional[float]:
    return a / b if a is not None and b not in (None, 0) else None


def geomean(values: Sequence[Optional[float]]) -> Optional[float]:
    vals = [v for v in values if v is not None and v > 0]
    return math.exp(sum(math.log(v) for v in vals) / len(vals)) if vals else None


def _f(v, fmt="{:.2f}", width=9) -> str:
    return ("-" if v is None else fmt.format(v)).rjust(width)


HEADER = (
    f"{'conc':>5}  {'client':<14}{'status':<9}{'win':>4}{'infer/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
    f"{'srv us':>8}{'served':>9}{'cpu s':>8}{'cpu s/1k':>10}{'wall s':>8}{'rss MB':>8}"
)


def point_row(conc, p: dict) -> str:
    return (
        f"{conc:>5}  {p['client']:<14}{p['status']:<9}{p.get('windows') or 0:>4}{_f(p.get('throughput'), '{:.0f}', 10)}"
        f"{_f(p.get('p50_ms'), '{:.3f}')}{_f(p.get('p99_ms'), '{:.3f}')}{_f(p.get('server_request_us'), '{:.0f}', 8)}{p['served']:>9}{_f(p['cpu_s'], '{:.2f}', 8)}"
        f"{_f(p.get('cpu_per_1k'), '{:.4f}', 10)}{_f(p['proc_wall_s'], '{:.1f}', 8)}{_f(p['maxrss_mb'], '{:.0f}', 8)}"
    )


def ratio_row(t: dict, a: dict) -> str:
    return (
        f"{'':>5}  {'ratio t/pa':<14}{'':<9}{'':>4}{_f(ratio(t.get('throughput'), a.get('throughput')), '{:.2f}', 10)}"
        f"{_f(ratio(t.get('p50_ms'), a.get('p50_ms')))}{_f(ratio(t.get('p99_ms'), a.get('p99_ms')))}{'':>8}{'':>9}{'':>8}"
        f"{_f(ratio(t.get('cpu_per_1k'), a.get('cpu_per_1k')), '{:.3f}', 10)}{_f(ratio(t['proc_wall_s'], a['proc_wall_s']), '{:.2f}', 8)}"
        f"{_f(ratio(t['maxrss_mb'], a['maxrss_mb']), '{:.2f}', 8)}"
    )


def progress(model: str, conc: int, p: dict) -> None:
    print(
        f"  {model} c={conc:<4} {p['client']:<14} {p['status']:<9} {_f(p.get('throughput'), '{:.0f}', 7)} infer/s  "
        f"p50 {_f(p.get('p50_ms'), '{:.3f}', 6)} ms  {p['cpu_s']:.2f} s CPU for {p['served']} req  wall {p['proc_wall_s']:.1f} s  "
        f"server infer {_f(p.get('server_infer_us'), '{:.0f}', 4)} us, queue {_f(p.get('server_queue_us'), '{:.0f}', 4)} us",
        flush=True,
    )


def verdict(value: Optional[float], ok) -> str:
    if value is None:
        return "MISS (no value)"
    return "PASS" if ok(value) else "MISS"


# ----------------------------------------------------------------------------- main


def write_input_data(repo: Path, model: str, workdir: Path) -> Optional[Path]:
    """tsweep's own seeded random samples as a perf_analyzer --input-data file (both clients use it)."""
    try:
        from tsweep.inputs import samples
    except ImportError:
        return None  # older tsweep: each client makes its own random data
    from tsweep.modelconfig import read

    _, data = samples(read(repo / model / "config.pbtxt"), {}, "random")
    path = workdir / f"{model}.input.json"
    path.write_text(json.dumps({"data": [{name: arr.reshape(-1).tolist() for name, arr in sample.items()} for sample in data]}))
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description="tsweep's native load generator vs perf_analyzer on the same embedded Triton.")
    ap.add_argument("--quick", action="store_true", help="concurrency 1 and 16 only, 1 s windows (under 3 minutes)")
    ap.add_argument("--models", nargs="+", default=["add_sub", "mlp"], help="models from examples/model_repository")
    ap.add_argument("--concurrency", nargs="+", type=int, help="levels (default 1 4 16 64; --quick: 1 16)")
    ap.add_argument("--window-s", type=float, help="measurement window for both clients (default 2; --quick: 1)")
    ap.add_argument("--max-windows", type=int, default=10, help="most windows per point, both clients (default 10)")
    ap.add_argument("--memory-concurrency", type=int, default=1024, help="concurrency of the peak-RSS test on add_sub (0: skip)")
    ap.add_argument("--memory-seconds", type=float, help="the peak-RSS test stops each client after this long (default 10; --quick: 6)")
    ap.add_argument("--encoding", choices=("binary", "json"), default="binary", help="tensor encoding on the wire, both clients")
    ap.add_argument("--pa-async", action="store_true", help="run perf_analyzer with --async (default: its own default, sync)")
    ap.add_argument("--json", type=Path, help="also write all points to this file")
    args = ap.parse_args()
    levels = args.concurrency or ([1, 16] if args.quick else [1, 4, 16, 64])
    window_s = args.window_s or (1.0 if args.quick else 2.0)
    started = time.monotonic()

    try:
        version = ensure_perf_analyzer()
    except BenchError as exc:
        print(f"bench/loadgen.py: {exc}", file=sys.stderr)
        return 2
    print(f"perf_analyzer: {PA_BIN} ({version.splitlines()[-1]})")

    # Many connections (perf_analyzer sync mode: one thread + socket each) need file descriptors.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536, hard))

    from tsweep import repository
    from tsweep.plugins.launchers.local import LocalLauncher
    from tsweep.records import LaunchSettings, Variant
    from tsweep.triton import TritonHTTP

    models = list(dict.fromkeys(args.models + (["add_sub"] if args.memory_concurrency else [])))
    results: Dict[str, list] = {}
    memory: Dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="tsweep-bench-") as tmp:
        tmpdir = Path(tmp)
        out = tmpdir / "repo"
        repository.prepare_output(out, override=False)
        for spec in repository.find_models(str(EXAMPLES), models):
            # The model's own config, unchanged: no dynamic_batching is added.
            repository.write_variant(out, spec, Variant(spec.name, spec.config, {}, name=spec.name))
        shutil.rmtree(LAST_RUN, ignore_errors=True)  # each child's output and the server log stay here
        launcher = LocalLauncher(LaunchSettings(model_repository=out, log_dir=LAST_RUN / "log"))
        server = launcher.start()
        try:
            client = TritonHTTP(server.http_url)
            for name in models:
                client.load_model(name)
            print(f"server: {server.description} at {server.http_url}; models {', '.join(models)} (own configs, no dynamic batching)")
            print(f"method: windows of {window_s:g} s, stable = last {STABLE_WINDOWS} within {TOLERANCE:.0%} on throughput and p99, at most {args.max_windows} windows; encoding {args.encoding}\n", flush=True)
            work = LAST_RUN / "runs"
            work.mkdir(parents=True)
            data_files = {m: write_input_data(out, m, work) for m in models}
            bench = Bench(args, server.http_url, out, work, perf_analyzer_env(), data_files)
            i = 0
            for model in args.models:
                results[model] = []
                for conc in levels:
                    runs = [bench.tsweep_point, bench.pa_point]
                    if i % 2:
                        runs.reverse()  # alternate who goes first: drift on a shared host hits both
                    i += 1
                    got = {}
                    for run in runs:
                        p = run(model, conc, window_s, args.max_windows)
                        got[p["client"]] = p
                        time.sleep(0.5)
                        progress(model, conc, p)
                    if conc == 1 and got["perf_analyzer"].get("p50_ms") is None:
                        # An unstable perf_analyzer prints no summary (no p50): measure the c=1 latency once more
                        # as one pass of as many requests as tsweep's judged windows held.
                        count = min(50000, max(1000, int(got["tsweep"].get("requests") or 0)))
                        print(f"  perf_analyzer gave no p50 (unstable: no summary); p50 from one pass of --request-count {count}", flush=True)
                        retry = bench.pa_point(model, conc, window_s, args.max_windows, request_count=count)
                        progress(model, conc, retry)
                        got["perf_analyzer"]["p50_retry"] = retry
                        if retry.get("p50_ms") is not None:
                            got["perf_analyzer"]["p50_ms"] = retry["p50_ms"]
                    results[model].append((conc, got["tsweep"], got["perf_analyzer"]))
            if args.memory_concurrency:
                n = args.memory_concurrency
                # Same rule as every point, and both clients stopped (SIGKILL) after the same run time if
                # not done by then: perf_analyzer keeps every request's timestamps, so its RSS grows the
                # longer it runs, and at this concurrency one of its passes lasts far longer than a window.
                cap = args.memory_seconds or (6.0 if args.quick else 10.0)
                for run in (bench.tsweep_point, bench.pa_point):
                    p = run("add_sub", n, window_s, args.max_windows, cap)
                    memory[p["client"]] = p
                    progress("add_sub", n, p)
                    time.sleep(1.0)
        except Exception:
            print(f"\nfailed; server log {LAST_RUN / 'log' / 'tritonserver.log'} ends with:", file=sys.stderr)
            lines = (LAST_RUN / "log" / "tritonserver.log").read_text(errors="replace").splitlines() if (LAST_RUN / "log" / "tritonserver.log").is_file() else []
            print("\n".join(lines[-15:]), file=sys.stderr)
            raise
        finally:
            launcher.stop()

    # -- report ------------------------------------------------------------------------------
    print()
    for model, rows in results.items():
        print(f"== {model} ==")
        print(HEADER)
        for conc, t, a in rows:
            print(point_row(conc, t))
            print(point_row(conc, a))
            print(ratio_row(t, a))
        print()
    if memory:
        print(f"== add_sub, concurrency {args.memory_concurrency}: peak RSS test (same rule; a client not done after "
              f"{args.memory_seconds or (6.0 if args.quick else 10.0):g} s is stopped) ==")  # fmt: skip
        print(HEADER)
        print(point_row(args.memory_concurrency, memory["tsweep"]))
        print(point_row(args.memory_concurrency, memory["perf_analyzer"]))
        print(ratio_row(memory["tsweep"], memory["perf_analyzer"]))
        print()

    print("perf_analyzer command line (first point; the others differ only in -m, --concurrency-range, -f, --input-data,")
    print("and --request-count N is added for the extra c=1 latency pass):")
    print(f"  LD_LIBRARY_PATH={CUDART_LIB} {bench.pa_commands[0] if bench.pa_commands else '(none run)'}\n")

    points = [(t, a) for rows in results.values() for _, t, a in rows]
    thr = [ratio(t.get("throughput"), a.get("throughput")) for t, a in points]
    cpu = [ratio(t.get("cpu_per_1k"), a.get("cpu_per_1k")) for t, a in points]
    cpu_load = [ratio(t.get("load_cpu_per_1k"), a.get("cpu_per_1k")) for t, a in points]
    wall = [ratio(t["proc_wall_s"], a["proc_wall_s"]) for t, a in points]
    p50 = [ratio(t.get("p50_ms"), a.get("p50_ms")) for rows in results.values() for conc, t, a in rows if conc == 1]
    stable_t = sum(t["status"] == "ok" for t, _ in points)
    stable_a = sum(a["status"] == "ok" for _, a in points)

    def span(vals):
        vals = [v for v in vals if v is not None]
        return f"[{min(vals):.2f} .. {max(vals):.2f}, {len(vals)} points]" if vals else "[no points]"

    g_thr, g_cpu, g_cpu_load, g_wall, g_p50 = geomean(thr), geomean(cpu), geomean(cpu_load), geomean(wall), geomean(p50)
    mem = ratio(memory["tsweep"]["maxrss_mb"], memory["perf_analyzer"]["maxrss_mb"]) if memory else None
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    print("Ratios tsweep / perf_analyzer (geometric mean over points; range in brackets):")
    print(f"  throughput: {fmt(g_thr)} (target >= 1.0, {verdict(g_thr, lambda v: v >= 1.0)}) {span(thr)}")
    print(f"  client CPU s per 1,000 requests (wait4, whole process): {fmt(g_cpu)} (target <= 0.2, {verdict(g_cpu, lambda v: v <= 0.2)}) {span(cpu)}")
    print(f"    same, tsweep's measure() only (no Python start-up/imports): {fmt(g_cpu_load)} {span(cpu_load)}")
    # "within 10%" is two-sided: a geometric mean could hide one model 15% low and another 15% high,
    # so the verdict takes the point furthest from 1.
    worst_p50 = max((v for v in p50 if v is not None), key=lambda v: abs(v - 1), default=None)
    print(f"  p50 latency at concurrency 1: {fmt(g_p50)} (target within 10%, {verdict(worst_p50, lambda v: abs(v - 1) <= 0.10)} "
          f"on the furthest point, {fmt(worst_p50)}) {span(p50)}")  # fmt: skip
    print(f"  wall time to a stable point (process wall): {fmt(g_wall)} (target <= 0.5, {verdict(g_wall, lambda v: v <= 0.5)}) {span(wall)}; "
          f"stable points: tsweep {stable_t}/{len(points)}, perf_analyzer {stable_a}/{len(points)}")  # fmt: skip
    if memory:
        print(f"  client peak RSS at concurrency {args.memory_concurrency} on add_sub: {fmt(mem)} (target <= 0.5, {verdict(mem, lambda v: v <= 0.5)}) "
              f"[{memory['tsweep']['maxrss_mb']:.0f} MB vs {memory['perf_analyzer']['maxrss_mb']:.0f} MB]")  # fmt: skip
    else:
        print("  client peak RSS: skipped (--memory-concurrency 0)")
    print(f"\nbench wall time {time.monotonic() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"levels": levels, "window_s": window_s, "results": results, "memory": memory, "pa_commands": bench.pa_commands}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
