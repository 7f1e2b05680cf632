"""The GPU path on a real NVIDIA GPU: what the test suite can only check with an NVML stand-in.

Run it on a machine with an NVIDIA driver, a GPU and tsweep installed with its server extra
(the embedded tritonserver, or one on PATH):

    python bench/gpu_check.py                 # GPU 0, about 3-5 minutes
    python bench/gpu_check.py --gpus 1        # another GPU (index as nvidia-smi numbers it, or UUID)
    python bench/gpu_check.py --json out.json

It runs the real CLI three times and checks what the tests check with the stand-in:

1. ``tsweep profile --gpus 99``: exit code 2, one line listing the GPUs NVML sees, nothing
   written;
2. ``tsweep profile`` of examples/model_repository's add_sub with the automatic space (one and
   two instances, max_batch_size 8) on the chosen GPU: the generated variants must be
   KIND_GPU (the python backend runs a KIND_GPU instance as a stub process bound to that
   GPU), and every stored point must carry per-GPU figures for the chosen GPU and no other;
   and the server must have seen as many GPUs as were chosen (its log's "Collecting metrics
   for GPU" lines: CUDA_VISIBLE_DEVICES hides the others);
3. the GPU CSV: one row per point, for the chosen GPU.

Then it prints one line per point: config, instances x kind, concurrency, throughput, p99,
GPU memory used, GPU utilization and power (NVML) and Triton's GPU memory figure. add_sub
computes with numpy on the CPU, so expect GPU utilization near 0 and GPU memory that grows
with the instance count (each KIND_GPU stub holds a CUDA context): the point is the path,
not the model. The figures go in docs/performance.md, section "The GPU path".
"""
from __future__ import annotations

import argparse
import csv
import json
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "examples" / "model_repository"


def tsweep(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tsweep", *args], cwd=cwd, capture_output=True, text=True, timeout=1800)


def fail(message: str) -> None:
    print(f"FAIL: {message}")
    sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpus", default="0", help="the gpus value to profile with (default 0)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the working folder (its path is printed)")
    args = parser.parse_args()

    from tsweep import gpus

    seen, why = gpus.seen()
    if not seen:
        fail(f"no GPU to check: {why}")
    chosen = gpus.select(args.gpus.split(","))
    others = {g.uuid for g in seen} - set(chosen)
    print(f"NVML sees {', '.join(f'{g.index} ({g.uuid})' for g in seen)}; checking gpus={args.gpus} -> {', '.join(chosen)}")

    work = Path(tempfile.mkdtemp(prefix="tsweep-gpu-check-"))
    print(f"working folder: {work}")

    # 1. an unknown GPU: one line, exit 2, nothing written
    before = sorted(work.rglob("*"))
    bad = tsweep("profile", "--model-repository", str(MODELS), "--profile-models", "add_sub", "--gpus", "99", cwd=work)
    lines = bad.stderr.strip().splitlines()
    if bad.returncode != 2 or len(lines) != 1 or "gpus names '99'" not in lines[0] or sorted(work.rglob("*")) != before:
        fail(f"--gpus 99 should exit 2 with one line and write nothing; got {bad.returncode}: {bad.stderr.strip()}")
    print(f"ok  unknown GPU: {lines[0]}")

    # 2. a short profile on the chosen GPU
    run = tsweep(
        "profile", "--model-repository", str(MODELS), "--profile-models", "add_sub", "--gpus", args.gpus,
        "--output-model-repository-path", "out", "--concurrency", "1,4,16", "--run-config-search-mode", "brute",
        "--run-config-search-max-instance-count", "2", "--run-config-search-min-model-batch-size", "8",
        "--run-config-search-max-model-batch-size", "8", "--remeasure-top-configs", "0", "--monitoring-interval", "0.25",
        "--export-path", "export", cwd=work,
    )  # fmt: skip
    if run.returncode != 0:
        fail(f"profile failed ({run.returncode}): {run.stderr.strip()[-2000:]}")
    kinds = {p.parent.name: "KIND_GPU" in p.read_text() for p in (work / "out").glob("add_sub_config_*/config.pbtxt")}
    generated = {name: on_gpu for name, on_gpu in kinds.items() if not name.endswith("_default")}
    if not generated or not all(generated.values()):
        fail(f"the generated variants should be KIND_GPU: {kinds}")
    print(f"ok  generated variants are KIND_GPU: {', '.join(sorted(generated))}")

    conn = sqlite3.connect(work / "checkpoints" / "results.sqlite")
    rows = conn.execute("SELECT variant, load_value, status, throughput, latency_p99_ms, metrics, error FROM measurements ORDER BY id").fetchall()
    conn.close()
    figures = []
    for variant, load, status, throughput, p99, metrics, error in rows:
        metrics = json.loads(metrics)
        if status == "failed":
            fail(f"{variant} at concurrency {load:g} failed: {error}")
        uuids = {k.split("/")[1] for k in metrics if k.startswith("gpu/")}
        if uuids != set(chosen) or uuids & others:
            fail(f"{variant} at concurrency {load:g} holds figures of GPUs {sorted(uuids)}, not {sorted(chosen)}")
        figures.append({
            "config": variant, "concurrency": load, "throughput": throughput, "p99_ms": p99,
            **{k: metrics.get(k) for k in ("gpu_memory_used_mb", "gpu_utilization", "gpu_power_w", "triton_gpu_memory_used_mb", "triton_gpu_utilization")},
        })  # fmt: skip
    print(f"ok  {len(rows)} points, each with figures of the chosen GPU(s) only")
    log = (work / "checkpoints" / "tritonserver.log").read_text(errors="replace")
    server_gpus = [line for line in log.splitlines() if "Collecting metrics for GPU" in line]
    if server_gpus and len(server_gpus) != len(chosen):
        fail(f"the server saw {len(server_gpus)} GPUs, not the {len(chosen)} chosen: {server_gpus}")
    print(f"ok  the server saw {len(server_gpus)} GPU(s)" if server_gpus else "note: the server log names no GPU it collects metrics for")
    if not any(f["triton_gpu_memory_used_mb"] is not None for f in figures):
        print("note: Triton exported no GPU metrics (a server built without GPU support?)")

    # 3. the GPU CSV
    with open(work / "export" / "results" / "metrics-model-gpu.csv", newline="") as f:
        gpu_rows = list(csv.DictReader(f))
    if len(gpu_rows) != len(rows) * len(chosen) or {r["GPU UUID"] for r in gpu_rows} != set(chosen):
        fail(f"metrics-model-gpu.csv should hold {len(rows)} x {len(chosen)} rows for {chosen}, has {len(gpu_rows)}")
    print(f"ok  metrics-model-gpu.csv: {len(gpu_rows)} rows")

    print(f"\n{'config':<24} {'conc':>4} {'infer/s':>9} {'p99 ms':>8} {'GPU MB':>9} {'GPU %':>6} {'GPU W':>7} {'Triton GPU MB':>14}")
    for f in figures:
        cells = [f.get(k) for k in ("throughput", "p99_ms", "gpu_memory_used_mb", "gpu_utilization", "gpu_power_w", "triton_gpu_memory_used_mb")]
        text = ["-" if v is None else f"{v:.1f}" for v in cells]
        print(f"{f['config']:<24} {f['concurrency']:>4g} {text[0]:>9} {text[1]:>8} {text[2]:>9} {text[3]:>6} {text[4]:>7} {text[5]:>14}")
    if args.json:
        args.json.write_text(json.dumps({"gpus": list(chosen), "points": figures}, indent=2))
    if not args.keep:
        subprocess.run(["rm", "-rf", "--", str(work)], check=False)
    print("\nall checks passed")


if __name__ == "__main__":
    main()
