"""Several models profiled together, end to end: the real CLI, the embedded Triton with both
models loaded at once, the SQLite rows, the CSV and the PDFs read back."""
from __future__ import annotations

import csv
import re
import shutil
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest

from tests.support import MODEL_REPOSITORY, run_tsweep, stored

pypdf = pytest.importorskip("pypdf")

pytestmark = [pytest.mark.server, pytest.mark.slow]

#: Tiny method: windows of 0.2 s, two or three of them.
METHOD = ["--measurement-window-s", "0.2", "--min-windows", "2", "--max-windows", "3", "--remeasure-top-configs", "0"]
BEST = re.compile(r"^Best combination of (\w+) and (\w+) profiled together: (\w+) \+ (\w+), every model's constraints met", re.M)


def pdf_text(path: Path) -> str:
    return " ".join(" ".join(page.extract_text() for page in pypdf.PdfReader(str(path)).pages).split())


def measured_at(row) -> float:
    return datetime.strptime(row["measured_at"], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def test_add_sub_and_mlp_share_the_server_and_the_windows(workdir: Path):
    (workdir / "config.yaml").write_text("profile_models:\n  add_sub: {weighting: 1}\n  mlp: {weighting: 3}\n")
    args = [
        "profile", "-f", "config.yaml", "--model-repository", str(MODEL_REPOSITORY), "--output-model-repository-path", "out",
        "--run-config-profile-models-concurrently-enable", "--run-config-search-mode", "brute",
        "--run-config-search-max-instance-count", "1", "--run-config-search-min-model-batch-size", "4",
        "--run-config-search-max-model-batch-size", "4", "--concurrency", "1,2", *METHOD,
    ]  # fmt: skip
    first = run_tsweep(*args, cwd=workdir)
    assert first.returncode == 0, first.stderr
    rows = stored(workdir)
    # two variants each (the default, 1 instance x max_batch_size 4): 4 combinations x 2 load steps, a row per model
    assert len(rows) == 16 and all(r["status"] in ("ok", "unstable") and r["throughput"] > 0 for r in rows)
    points = {}
    for r in rows:
        points.setdefault(r["combination"], []).append(r)
    assert len(points) == 8 and all(sorted(r["model"] for r in pair) == ["add_sub", "mlp"] for pair in points.values())
    for a, b in points.values():  # measured in the same windows: as many, over the same seconds
        assert a["windows"] == b["windows"] >= 2 and a["load_value"] == b["load_value"]
        assert a["duration_s"] == b["duration_s"] and abs(measured_at(a) - measured_at(b)) < a["duration_s"]
    combos = {tuple(sorted(r["variant"] for r in pair)) for pair in points.values()}
    assert len(combos) == 4

    found = BEST.search(first.stdout)
    assert found, first.stdout
    best = f"{found.group(3)} + {found.group(4)}"
    with open(workdir / "results" / "metrics-combinations.csv") as f:
        ranked = list(csv.DictReader(f))
    assert len(ranked) == 4 and ranked[0]["Combination"] == best and ranked[0]["Satisfies Constraints"] == "yes"
    assert {r["mlp Weighting"] for r in ranked} == {"3.0000"} and {r["add_sub Weighting"] for r in ranked} == {"1.0000"}
    chosen = ranked[0]["Combination Point"]
    for model in ("add_sub", "mlp"):  # the CSV's figures are the stored row's of that point
        (row,) = [r for r in points[chosen] if r["model"] == model]
        assert float(ranked[0][f"{model} Throughput (infer/sec)"]) == pytest.approx(row["throughput"], abs=1e-3)
    with open(workdir / "results" / "metrics-model-inference.csv") as f:
        assert sorted(r["Combination"] for r in csv.DictReader(f)) == sorted(r["combination"] for r in rows)

    summary = pdf_text(workdir / "reports" / "summaries" / "Models Profiled Together" / "result_summary.pdf")
    assert "Summary: add_sub, mlp profiled together" in summary and "Verdict for the set" in summary
    assert f"The chosen combination: {best} (combination point {chosen})" in summary
    assert "weighting add_sub 1, mlp 3" in summary
    detailed = pdf_text(workdir / "reports" / "detailed" / best.replace(" + ", "+") / "detailed_report.pdf")
    assert f"Detailed report: {best}" in detailed and "2 load steps measured" in detailed and chosen in detailed

    again = run_tsweep(*args, cwd=workdir)  # every combination point is stored: nothing measured again
    assert again.returncode == 0, again.stderr
    assert "0 points measured (0 stable) in 0 s of measuring; 16 reused from checkpoints/results.sqlite" in again.stderr
    assert len(stored(workdir)) == 16 and BEST.search(again.stdout).group(3, 4) == found.group(3, 4)


FRAGILE = '''"""add_sub that will not start with batches over 4: a model that fails in some configs."""
import json

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        if json.loads(args["model_config"])["max_batch_size"] > 4:
            raise pb_utils.TritonModelException("fragile cannot take batches over 4")

    def execute(self, requests):
        responses = []
        for request in requests:
            a = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            b = pb_utils.get_input_tensor_by_name(request, "INPUT1").as_numpy()
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", a + b), pb_utils.Tensor("OUTPUT1", a - b)]))
        return responses
'''


def test_a_combination_that_cannot_be_loaded_is_stored_failed_and_the_search_goes_on(workdir: Path, tmp_path: Path):
    repo = tmp_path / "models"
    shutil.copytree(MODEL_REPOSITORY / "add_sub", repo / "add_sub")
    shutil.copytree(MODEL_REPOSITORY / "add_sub", repo / "fragile")
    (repo / "fragile" / "1" / "model.py").write_text(FRAGILE)
    (repo / "fragile" / "config.pbtxt").write_text((repo / "add_sub" / "config.pbtxt").read_text().replace("max_batch_size: 8", "max_batch_size: 4"))
    result = run_tsweep(
        "profile", "--model-repository", str(repo), "--profile-models", "add_sub,fragile", "--output-model-repository-path", "out",
        "--run-config-profile-models-concurrently-enable", "--run-config-search-mode", "brute",
        "--run-config-search-max-instance-count", "1", "--run-config-search-min-model-batch-size", "8",
        "--run-config-search-max-model-batch-size", "8", "--concurrency", "1", *METHOD,
        cwd=workdir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = stored(workdir)
    # fragile's variant with max_batch_size 8 fails to load: both combinations holding it fail, every model's row
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(rows) == 8 and len(failed) == 4
    assert {r["variant"] for r in failed if r["model"] == "fragile"} == {"fragile_config_0"}
    assert all(r["error"].startswith("the combination failed to load together: fragile_config_0 of fragile:") for r in failed)
    assert all("fragile cannot take batches over 4" in r["error"] for r in failed)
    assert len({r["combination"] for r in failed}) == 2 and all(r["windows"] == 0 for r in failed)
    ok = [r for r in rows if r["status"] != "failed"]
    assert {r["variant"] for r in ok if r["model"] == "fragile"} == {"fragile_config_default"} and len(ok) == 4
    assert re.search(r"^Best combination of add_sub and fragile profiled together: \w+ \+ fragile_config_default,", result.stdout, re.M)
    assert "failed: fragile_config_0 concurrency=1 b1: the combination failed to load together" in result.stderr
    summary = pdf_text(workdir / "reports" / "summaries" / "Models Profiled Together" / "result_summary.pdf")
    assert "Failed rows of combination points (4)" in summary and "fragile cannot take batches over 4" in summary
    conn = sqlite3.connect(workdir / "checkpoints" / "results.sqlite")
    assert conn.execute("SELECT COUNT(*) FROM measurements WHERE combination = ''").fetchone()[0] == 0
    conn.close()
