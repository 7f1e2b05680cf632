"""Collector metrics end to end: a real profile stores them, analyze ranks by them."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.support import MODEL_REPOSITORY, run_tsweep

pytestmark = [pytest.mark.server, pytest.mark.slow]


def stored(workdir: Path):
    conn = sqlite3.connect(workdir / "checkpoints" / "results.sqlite")
    rows = conn.execute("SELECT variant, metrics FROM measurements ORDER BY id").fetchall()
    (baseline,) = conn.execute("SELECT value FROM meta WHERE key = 'server_baseline'").fetchone()
    conn.close()
    return {variant: json.loads(metrics) for variant, metrics in rows}, json.loads(baseline)


def ranking_lines(stdout: str):
    """{variant: the ranking table's constraints cell} from `tsweep analyze`."""
    cells = {}
    for line in stdout.splitlines():
        parts = line.split()
        if parts and parts[0].isdigit() and len(parts) > 1:
            cells[parts[1]] = line.rsplit("  ", 1)[-1].strip()
    return cells


def test_constraint_on_server_memory_decides_what_passes(workdir: Path):
    profile = run_tsweep(
        "profile", "--model-repository", str(MODEL_REPOSITORY), "--profile-models", "add_sub",
        "--output-model-repository-path", "out", "--concurrency", "2", "--measurement-window-s", "0.5",
        "--run-config-search-max-instance-count", "2", "--run-config-search-min-model-batch-size", "8",
        "--run-config-search-max-model-batch-size", "8", "--monitoring-interval", "0.25",
        "--run-config-search-mode", "brute", "--remeasure-top-configs", "0",  # every variant once, whatever wins
        cwd=workdir,
    )  # fmt: skip
    assert profile.returncode == 0, profile.stderr
    assert profile.stderr.count("no GPU metrics") <= 1
    memory, baseline = stored(workdir)
    assert set(memory) == {"add_sub_config_default", "add_sub_config_0", "add_sub_config_1"}  # 1 and 2 instances
    used = {variant: m["server_memory_mb"] for variant, m in memory.items()}
    print(f"baseline {baseline}\nserver_memory_mb {used}")
    assert all(m["server_cpu_pct"] > 0 and "triton_cpu_utilization" in m for m in memory.values())
    # the idle server, before any model was loaded, holds less than any loaded config
    assert 0 < baseline["server_memory_mb"] < min(used.values())
    # two instances run two python stubs: more resident memory than one
    assert used["add_sub_config_1"] > used["add_sub_config_0"]

    limit = (used["add_sub_config_0"] + used["add_sub_config_1"]) / 2
    config = workdir / "limit.yaml"
    config.write_text(f"constraints:\n  cpu_used_ram:\n    max: {limit}\n")  # Model Analyzer's name
    analyze = run_tsweep("analyze", "-f", str(config), cwd=workdir)
    assert analyze.returncode == 0, analyze.stderr
    cells = ranking_lines(analyze.stdout)
    assert cells["add_sub_config_1"].startswith("misses server_memory_mb"), analyze.stdout
    assert cells["add_sub_config_0"].startswith("meets"), analyze.stdout

    unconstrained = ranking_lines(run_tsweep("analyze", cwd=workdir).stdout)
    assert unconstrained["add_sub_config_1"].startswith("meets")  # the constraint made the difference

    objective = workdir / "objective.yaml"
    objective.write_text("objectives:\n  server_memory_mb: 1\n")  # less memory ranks first
    first = ranking_lines(run_tsweep("analyze", "-f", str(objective), cwd=workdir).stdout)
    assert min(used, key=used.get) == next(iter(first))
