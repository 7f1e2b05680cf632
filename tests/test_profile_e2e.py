"""`tsweep profile` end to end: real CLI, real embedded Triton, real SQLite, real CSV."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from tests.support import EXAMPLES, MODEL_REPOSITORY, TINY_SWEEP, run_tsweep, stored

pytestmark = [pytest.mark.server, pytest.mark.slow]

BEST = re.compile(
    r"^Best config for (\w+): (\w+), ([\d.]+) \u00b1(?:[\d.]+|\?) infer/s at p99 ([\d.]+) \u00b1(?:[\d.]+|\?) ms "
    r"\(((?:concurrency|request_rate)=[\d.]+), client batch 1; 95% intervals\)", re.M
)


def test_quick_sweep_ranks_stores_and_resumes(workdir: Path):
    args = [*TINY_SWEEP, "--latency-budget", "50", "--measurement-window-s", "0.3"]
    first = run_tsweep(*args, cwd=workdir)
    assert first.returncode == 0, first.stderr
    rows = stored(workdir)
    # default + (1 instance x max_batch_size 8) = 2 variants, x 2 concurrency levels
    assert [(r["variant"], r["load_value"]) for r in rows] == [
        ("add_sub_config_default", 1.0), ("add_sub_config_default", 2.0), ("add_sub_config_0", 1.0), ("add_sub_config_0", 2.0)
    ]
    assert all(r["status"] in ("ok", "unstable") and r["throughput"] > 0 and r["requests"] > 0 for r in rows)
    assert all(0 < r["latency_p50_ms"] <= r["latency_p99_ms"] for r in rows)
    assert all(r["compute_infer_ms"] > 0 and r["queue_ms"] >= 0 for r in rows)  # server-side breakdown
    assert re.search(r"^4 points measured \((\d) stable\) in \d+ s of measuring, [\d.]+ s per point; 0 reused from", first.stderr, re.M)
    assert "[  4/4 " in first.stderr and "add_sub_config_0 (instances=1, max_batch_size=8, dynamic_batching=True) concurrency=2" in first.stderr

    model, best, throughput, p99, load = BEST.search(first.stdout).groups()
    assert model == "add_sub"
    best_rows = [r for r in rows if r["variant"] == best and r["latency_p99_ms"] <= 50]
    assert max(r["throughput"] for r in best_rows) == pytest.approx(float(throughput), abs=0.06)
    assert max(r["throughput"] for r in rows if r["latency_p99_ms"] <= 50) == pytest.approx(float(throughput), abs=0.06)

    with open(workdir / "results" / "metrics-model-inference.csv") as f:
        assert len(list(csv.DictReader(f))) == 4
    assert sorted(p.name for p in (workdir / "out").iterdir() if not p.name.startswith(".")) == ["add_sub_config_0", "add_sub_config_default"]
    assert (workdir / "checkpoints" / "tritonserver.log").is_file()

    again = run_tsweep(*args, cwd=workdir)  # same command: everything is already measured
    assert again.returncode == 0, again.stderr
    assert "0 points measured (0 stable) in 0 s of measuring; 4 reused from checkpoints/results.sqlite" in again.stderr
    assert len(stored(workdir)) == 4
    assert BEST.search(again.stdout).group(2) == best


def test_seed_style_command_on_mlp(workdir: Path):
    """The README's main job, verbatim."""
    result = run_tsweep(
        "profile", "--model-repository", str(MODEL_REPOSITORY), "--profile-models", "mlp",
        "--triton-launch-mode", "local", "--output-model-repository-path", "OUT",
        "--override-output-model-repository", "--latency-budget", "10", "-f", str(EXAMPLES / "quickstart.yaml"),
        cwd=workdir, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = stored(workdir)
    variants = {r["variant"] for r in rows}
    # default + 2 instances x 3 batch sizes; the adaptive search (the default) skips those that cannot win
    assert "mlp_config_default" in variants and variants <= {"mlp_config_default", *(f"mlp_config_{n}" for n in range(6))}
    assert len(variants) >= 3
    found = BEST.search(result.stdout)
    assert found, result.stdout
    best, throughput, p99 = found.group(2), float(found.group(3)), float(found.group(4))
    assert best in variants and p99 <= 10
    # a point looked at more than once (the search's second look, the race) ranks with its
    # looks combined, each weighted by its interval (inverse variance)
    looks = {}
    for r in rows:
        looks.setdefault((r["variant"], r["load_value"], r["batch_size"]), []).append(r)
    assert all(sorted(r["repeat"] for r in group) == list(range(len(group))) for group in looks.values())
    assert all(r["repeat"] <= 3 for r in rows)  # the race stops at 1 + remeasure_rounds looks

    def combined(group):
        finite = [r for r in group if r["throughput_ci"] is not None and 0 < r["throughput_ci"] < float("inf")]
        if len(group) == 1 or not finite:
            return group[0]["throughput"]
        weights = [1 / r["throughput_ci"] ** 2 for r in finite]
        return sum(w * r["throughput"] for w, r in zip(weights, finite)) / sum(weights)

    assert any(key[0] == best and abs(combined(group) - throughput) < 0.06 for key, group in looks.items())
    assert f"Ranking of mlp ({len(variants)} configs measured)" in result.stdout


def test_remote_mode_attaches_and_loads_variants_explicitly(tmp_path: Path, workdir: Path):
    """A server the user runs (here: started by the test) serving tsweep's output repository."""
    from tsweep import repository
    from tsweep.plugins.launchers.local import LocalLauncher
    from tsweep.records import LaunchSettings

    out = tmp_path / "served"
    repository.prepare_output(out, override=False)
    users_server = LocalLauncher(LaunchSettings(model_repository=out, log_dir=tmp_path / "log", ready_timeout_s=60))
    server = users_server.start()
    try:
        result = run_tsweep(
            "profile", "--model-repository", str(MODEL_REPOSITORY), "--profile-models", "add_sub",
            "--triton-launch-mode", "remote", "--triton-http-endpoint", server.http_url.removeprefix("http://"),
            "--output-model-repository-path", str(out), "--run-config-search-disable",
            "--concurrency", "2", "--measurement-window-s", "0.3", cwd=workdir,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert f"remote at {server.http_url}" in result.stderr
        (row,) = stored(workdir)
        assert row["variant"] == "add_sub_config_default" and row["throughput"] > 0
        assert (out / "add_sub_config_default" / "config.pbtxt").is_file()
    finally:
        users_server.stop()


@pytest.mark.parametrize(
    "extra, kind, values",
    [
        (["--client-protocol", "grpc", "--concurrency", "1,2"], "concurrency", [1.0, 2.0]),
        (["--request-rate", "50,100", "--request-distribution", "constant"], "request_rate", [50.0, 100.0]),
    ],
    ids=["grpc", "open-loop"],
)
def test_protocols_and_load_kinds(workdir: Path, extra, kind, values):
    result = run_tsweep(
        "profile", "--model-repository", str(MODEL_REPOSITORY), "--profile-models", "add_sub",
        "--output-model-repository-path", "out", "--run-config-search-disable", "--measurement-window-s", "0.5",
        "--measurement-request-count", "20", *extra, cwd=workdir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = stored(workdir)
    assert [(r["load_kind"], r["load_value"]) for r in rows] == [(kind, v) for v in values]
    assert all(r["status"] in ("ok", "unstable") and r["errors"] == 0 for r in rows), [dict(r) for r in rows]
    if kind == "request_rate":
        for r in rows:
            assert r["throughput"] == pytest.approx(r["load_value"], rel=0.25)  # it sends what was asked
    assert BEST.search(result.stdout) or "Best config for add_sub: add_sub_config_default" in result.stdout


def test_manual_space_from_model_config_parameters(workdir: Path):
    (workdir / "manual.yaml").write_text(
        "profile_models:\n"
        "  add_sub:\n"
        "    model_config_parameters:\n"
        "      max_batch_size: [2, 8]\n"
        "      dynamic_batching:\n"
        "        max_queue_delay_microseconds: [200]\n"
        "    parameters:\n"
        "      concurrency: [2]\n"
        "measurement_window_s: 0.3\n"
    )
    result = run_tsweep("profile", "--model-repository", str(MODEL_REPOSITORY), "--output-model-repository-path", "out",
                        "-f", "manual.yaml", cwd=workdir)  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = stored(workdir)
    assert [(r["variant"], r["load_value"]) for r in rows if r["repeat"] == 0] == [  # the search, then maybe the race
        ("add_sub_config_default", 2.0), ("add_sub_config_0", 2.0), ("add_sub_config_1", 2.0)
    ]
    written = (workdir / "out" / "add_sub_config_1" / "config.pbtxt").read_text()
    assert "max_batch_size: 8" in written and "max_queue_delay_microseconds: 200" in written
    assert "dynamic_batching.max_queue_delay_microseconds=200" in result.stderr  # shown in progress


@pytest.mark.slow
def test_the_tutorials_command_lines_with_a_model_analyzer_style_config(workdir: Path):
    """examples/perf.yaml with the seed tutorial's profile and report commands, model-analyzer
    replaced by tsweep: per-model shape flag, a {start, stop, step} concurrency range, a list
    objective, the latency budget as a flag; then the detailed reports of two configs."""
    perf = Path(__file__).resolve().parents[1] / "examples" / "perf.yaml"
    output = workdir / "output"
    result = run_tsweep("profile", "--model-repository", str(MODEL_REPOSITORY), "--profile-models", "mlp",
                        "--triton-launch-mode=local", "--output-model-repository-path", f"{output}/", "-f", str(perf),
                        "--override-output-model-repository", "--latency-budget", "10", cwd=workdir)  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = stored(workdir)
    assert {r["variant"] for r in rows} == {"mlp_config_default", "mlp_config_0"}  # the manual space, nothing else
    assert {1.0, 4.0} <= {r["load_value"] for r in rows} and all(1 <= r["load_value"] <= 4 for r in rows)  # the range (bisected inside)
    assert "max_queue_delay_microseconds: 100" in (output / "mlp_config_0" / "config.pbtxt").read_text()
    report = run_tsweep("report", "--report-model-configs", "mlp_config_default,mlp_config_0", "--export-path", str(workdir),
                        "--config-file", str(perf), cwd=workdir)  # fmt: skip
    assert report.returncode == 0, report.stderr
    pdfs = sorted(p.relative_to(workdir).as_posix() for p in (workdir / "reports").rglob("*.pdf"))
    assert [p for p in pdfs if "detailed" in p] == [f"reports/detailed/{n}/detailed_report.pdf" for n in ("mlp_config_0", "mlp_config_default")]
    pypdf = pytest.importorskip("pypdf")
    text = pypdf.PdfReader(workdir / "reports" / "detailed" / "mlp_config_0" / "detailed_report.pdf").pages[0].extract_text()
    assert "mlp_config_0" in text and "max_batch_size=8" in text
