"""The GPU path end to end: a real profile on the embedded tritonserver with ``gpus: [1]``.

No GPU here, so NVML is the stand-in of tests/nvml_stand_in.py, put into ``sys.modules`` in
place of pynvml (the narrowest boundary: the driver's answers). It sees two GPUs whose
figures change with every read. Everything else is real: the config, choosing the run's
GPUs, the automatic space (cpu_only keeps KIND_CPU, which this CPU-only server can run),
the server, the sampling collector, the SQLite store, the CSVs and both PDFs, read back.
"""
from __future__ import annotations

import csv
import json
import sqlite3
import sys
from pathlib import Path

import pytest

from tsweep.config import load_config
from tsweep.pluginmanager import make_plugin_manager
from tsweep.run import Run
from tsweep.sweep import profile

from tests.nvml_stand_in import stand_in
from tests.support import run_tsweep

pypdf = pytest.importorskip("pypdf")
pytestmark = [pytest.mark.server, pytest.mark.slow]

READS = 400  # more reads than a short profile takes: every sample differs
GPUS = [
    {"uuid": "GPU-a", "util": [99], "used": [9_000_000_000], "total": 16_000_000_000, "mw": [300_000]},
    {"uuid": "GPU-b", "util": [(7 * i) % 100 for i in range(READS)], "used": [1_000_000_000 + 1_000_000 * i for i in range(READS)],
     "total": 24_000_000_000, "mw": [60_000 + 100 * i for i in range(READS)]},
]  # fmt: skip
PER_GPU = {"gpu/GPU-b/utilization", "gpu/GPU-b/memory_used_mb", "gpu/GPU-b/power_w"}


def pdf_text(path: Path) -> str:
    return " ".join(" ".join(page.extract_text() for page in pypdf.PdfReader(str(path)).pages).split())


def test_only_the_chosen_gpu_is_measured_stored_and_reported(tmp_path, model_repo, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", stand_in(GPUS))
    config_file = tmp_path / "gpu.yaml"
    config_file.write_text(
        f"model_repository: {model_repo}\nprofile_models:\n  add_sub: {{cpu_only: true}}\ngpus: [1]\n"
        f"output_model_repository_path: {tmp_path / 'out'}\ncheckpoint_directory: {tmp_path / 'ck'}\nexport_path: {tmp_path / 'export'}\n"
        "concurrency: [1, 2]\nrun_config_search_max_instance_count: 1\nrun_config_search_min_model_batch_size: 8\n"
        "run_config_search_max_model_batch_size: 8\nrun_config_search_mode: brute\nremeasure_top_configs: 0\n"
        "measurement_window_s: 0.5\nmonitoring_interval: 0.1\n"
    )  # fmt: skip
    config = load_config(config_file, {})
    outcome = profile(Run.build(config, make_plugin_manager(autoload=False), sweep=True))

    # the space: cpu_only keeps KIND_CPU although the run has a GPU
    assert "kind: KIND_CPU" in (tmp_path / "out" / "add_sub_config_0" / "config.pbtxt").read_text()

    # the store: per-GPU figures of GPU-b only, and aggregates that are GPU-b's
    conn = sqlite3.connect(tmp_path / "ck" / "results.sqlite")
    rows = [(v, c, json.loads(m)) for v, c, m in conn.execute("SELECT variant, load_value, metrics FROM measurements WHERE status != 'failed'")]
    (baseline,) = conn.execute("SELECT value FROM meta WHERE key = 'server_baseline'").fetchone()
    conn.close()
    assert len(rows) == 4  # default and config_0, at concurrency 1 and 2
    for _, _, metrics in rows:
        assert {k for k in metrics if k.startswith("gpu/")} == PER_GPU
        assert metrics["gpu_memory_total_mb"] == pytest.approx(24000.0)  # GPU-b's alone
        assert metrics["gpu_memory_used_mb"] == pytest.approx(metrics["gpu/GPU-b/memory_used_mb"])
        assert metrics["gpu_utilization"] == pytest.approx(metrics["gpu/GPU-b/utilization"])
        assert metrics["gpu_power_w"] == pytest.approx(metrics["gpu/GPU-b/power_w"]) and 60.0 <= metrics["gpu_power_w"] < 100.0
    assert len({m["gpu/GPU-b/memory_used_mb"] for _, _, m in rows}) == len(rows)  # read during each point, not once
    assert {k for k in json.loads(baseline) if k.startswith("gpu/")} == PER_GPU

    # the GPU CSV: one row per point for the one GPU, Model Analyzer's titles, the stored figures
    results = tmp_path / "export" / "results"
    assert results / "metrics-model-gpu.csv" in outcome.reports
    with open(results / "metrics-model-gpu.csv", newline="") as f:
        lines = list(csv.DictReader(f))
    assert sorted((l["Model Config"], float(l["Load Value"]), l["GPU UUID"]) for l in lines) == sorted((v, c, "GPU-b") for v, c, _ in rows)
    for variant, load, metrics in rows:
        (line,) = [l for l in lines if l["Model Config"] == variant and float(l["Load Value"]) == load]
        assert float(line["GPU Memory Usage (MB)"]) == pytest.approx(metrics["gpu/GPU-b/memory_used_mb"], abs=1e-4)
        assert float(line["GPU Utilization (%)"]) == pytest.approx(metrics["gpu/GPU-b/utilization"], abs=1e-4)
        assert float(line["GPU Power Usage (W)"]) == pytest.approx(metrics["gpu/GPU-b/power_w"], abs=1e-4)
    with open(results / "metrics-server-only.csv", newline="") as f:
        assert [l["GPU UUID"] for l in csv.DictReader(f)] == ["", "GPU-b"]

    # the summary PDF: GPU memory and utilization of each config at its chosen load
    summary = pdf_text(tmp_path / "export" / "reports" / "summaries" / "add_sub" / "result_summary.pdf")
    assert "GPU memory used (MB)" in summary and "GPU utilization (%)" in summary
    for r in outcome.rankings["add_sub"]:
        best = r.best.metrics
        assert f"{best['gpu_memory_used_mb']:.1f} {best['gpu_utilization']:.1f}" in summary, r.variant

    # the detailed PDF, written by the real CLI from the store: the same figures at every load
    report = run_tsweep("report", "--report-model-configs", "add_sub_config_0", "--checkpoint-directory", str(tmp_path / "ck"),
                        "--export-path", str(tmp_path / "export"), cwd=tmp_path)  # fmt: skip
    assert report.returncode == 0, report.stderr
    detailed = pdf_text(tmp_path / "export" / "reports" / "detailed" / "add_sub_config_0" / "detailed_report.pdf")
    assert "GPU utilization (%)" in detailed and "GPU memory used (MB)" in detailed
    for variant, _, metrics in rows:
        if variant == "add_sub_config_0":
            assert f"{metrics['gpu_utilization']:.1f} {metrics['gpu_memory_used_mb']:.1f}" in detailed
