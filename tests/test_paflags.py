"""perf_analyzer flags Model Analyzer users pass (issue 15, point 2): percentile,
measurement-mode, request-intervals, and the flag refused with one line (CUDA shared memory;
the sequence flags, refused until issue 16, are tested in test_sequences.py). The load
generators' side is in test_loads.py, a profile's in test_profile_e2e.py."""
import csv
from pathlib import Path

import pytest

from tsweep import goals, requestintervals
from tsweep.catalogue import Catalogue
from tsweep.config import load_config
from tsweep.errors import UsageError
from tsweep.judge import goal_constraints
from tsweep.settings import load_settings, method_settings, space_settings

from tests.support import MODEL_REPOSITORY, run_tsweep, stored
from tests.test_reports import pdf_text


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def one_line(exc_info) -> str:
    text = str(exc_info.value)
    assert "\n" not in text
    return text


def test_percentile_picks_the_latency_of_the_budget_and_of_perf_latency_globally_or_per_model(tmp_path):
    text = (
        "latency_budget: 10\nperf_analyzer_flags: {percentile: 95}\n"
        "constraints: {perf_latency: {max: 8}}\nobjectives: [perf_throughput, perf_latency]\n"
        "profile_models:\n  mlp:\n    perf_analyzer_flags: {percentile: 50}\n  add_sub: {}\n"
    )
    config = load_config(write(tmp_path, text), {})
    known = Catalogue()
    overall, mlp = goals.for_model(config, known), goals.for_model(config, known, "mlp")
    assert overall.goal.latency_metric == "latency_p95_ms"
    assert {c.metric for c in overall.constraints} == {"latency_p95_ms"}  # budget and perf_latency merged: the tighter
    assert [c.max for c in overall.constraints] == [8.0]
    assert set(overall.objectives) == {"throughput", "latency_p95_ms"}
    assert mlp.goal.latency_metric == "latency_p50_ms" and set(mlp.objectives) == {"throughput", "latency_p50_ms"}
    assert [c.metric for c in goal_constraints(mlp.goal)] == ["latency_p50_ms"]
    # the explicit names stay what they say
    config = load_config(write(tmp_path, "percentile: 90\nconstraints: {perf_latency_p99: {max: 3}}\n"), {})
    assert [c.metric for c in goals.for_model(config, known).constraints] == ["latency_p99_ms"]
    # the default is Model Analyzer's perf_latency: the p99
    assert goals.for_model(load_config(None, {}), known).goal.latency_metric == "latency_p99_ms"


def test_a_percentile_tsweep_does_not_store_is_one_line(tmp_path):
    with pytest.raises(UsageError) as err:
        load_config(write(tmp_path, "perf_analyzer_flags: {percentile: 85}\n"), {})
    assert one_line(err) == "config key 'percentile' must be one of 50, 90, 95, 99, got 85"


def test_measurement_mode_and_request_count(tmp_path):
    config = load_config(write(tmp_path, "perf_analyzer_flags: {measurement-mode: count_windows, measurement-request-count: 80}\n"), {})
    method = method_settings(config)
    assert method.count_windows and method.min_requests == 80
    assert not method_settings(load_config(None, {})).count_windows
    with pytest.raises(UsageError) as err:
        load_config(write(tmp_path, "perf_analyzer_flags: {measurement-mode: windows}\n"), {})
    assert one_line(err) == "config key 'measurement_mode' must be one of time_windows, count_windows, got 'windows'"


def test_request_intervals_set_the_gaps_and_one_load_level_at_their_mean_rate(tmp_path):
    gaps = write(tmp_path, "100000\n200000\n\n500000\n", "gaps.txt")
    config = load_config(write(tmp_path, f"perf_analyzer_flags: {{request-intervals: {gaps}}}\n"), {})
    assert load_settings(config, "mlp").intervals_us == (100000.0, 200000.0, 500000.0)
    space = space_settings(config, "mlp")
    assert space.request_rate == (3 / 0.8,) and space.concurrency == ()
    assert requestintervals.mean_rate((250.0, 250.0)) == 4000.0
    # a model's own file
    own = write(tmp_path, "1000\n", "own.txt")
    config = load_config(write(tmp_path, f"profile_models:\n  mlp:\n    perf_analyzer_flags: {{request-intervals: {own}}}\n  add_sub: {{}}\n"), {})
    assert load_settings(config, "mlp").intervals_us == (1000.0,) and space_settings(config, "mlp").request_rate == (1000.0,)
    assert load_settings(config, "add_sub").intervals_us == () and space_settings(config, "add_sub").request_rate == ()


@pytest.mark.parametrize(
    "content, message",
    [
        ("100\n2oo\n", "request_intervals: line 2 of {path} is '2oo', not a gap in microseconds: write one number >= 0 per line"),
        ("100\n\n-5\n", "request_intervals: line 3 of {path} is '-5', not a gap in microseconds: write one number >= 0 per line"),
        ("0\n0\n", "request_intervals: {path} holds no gap above 0 microseconds: write one gap per line, in microseconds"),
        (None, "request_intervals: cannot read {path}: No such file or directory; give a file of gaps in microseconds, one per line"),
    ],
)  # fmt: skip
def test_a_bad_request_intervals_file_is_one_line_with_the_line_number(tmp_path, content, message):
    path = tmp_path / "gaps.txt"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UsageError) as err:
        load_config(write(tmp_path, f"perf_analyzer_flags: {{request-intervals: {path}}}\n"), {})
    assert one_line(err) == message.format(path=path)


@pytest.mark.parametrize(
    "text, message",
    [
        ("request_rate: 10\nperf_analyzer_flags: {{request-intervals: {gaps}}}\n", "request_intervals and request_rate both set"),
        ("perf_analyzer_flags: {{request-intervals: {gaps}, request-distribution: poisson}}\n", "request_intervals and request_distribution both set"),
        ("concurrency: 2\nrequest_intervals: {gaps}\n", "request_intervals and concurrency both set"),
        ("profile_models:\n  mlp:\n    perf_analyzer_flags: {{request-intervals: {gaps}}}\n    parameters: {{request_rate: 5}}\n",
         "request_intervals and request_rate of model 'mlp' both set"),
        ("request_intervals: {gaps}\nprofile_models:\n  mlp:\n    parameters: {{concurrency: 5}}\n",
         "request_intervals and parameters or request-distribution of model 'mlp' both set its load: remove one of them"),
        ("request_intervals: {gaps}\nprofile_models:\n  mlp:\n    perf_analyzer_flags: {{request-distribution: poisson}}\n",
         "request_intervals and parameters or request-distribution of model 'mlp' both set its load: remove one of them"),
    ],
)  # fmt: skip
def test_request_intervals_replace_rates_and_their_spacing(tmp_path, text, message):
    gaps = write(tmp_path, "1000\n", "gaps.txt")
    with pytest.raises(UsageError) as err:
        load_config(write(tmp_path, text.format(gaps=gaps)), {})
    assert one_line(err).startswith(message)


def test_cuda_shared_memory_is_refused_without_a_gpu(tmp_path, monkeypatch):
    """No GPU here: NVML finds none, which is what the line says. Where one is (faked at the
    one function that asks NVML), tsweep still has no CUDA shared memory and says so."""
    from tsweep import gpus

    path = write(tmp_path, "perf_analyzer_flags: {shared-memory: cuda}\n")
    if not gpus.gpu_available():
        with pytest.raises(UsageError) as err:
            load_config(path, {})
        assert one_line(err) == "perf_analyzer flag 'shared-memory: cuda' needs a GPU and NVML sees none on this machine: use shared-memory none or system"
    monkeypatch.setattr(gpus, "gpu_available", lambda: True)
    with pytest.raises(UsageError) as err:
        load_config(path, {})
    assert one_line(err) == "perf_analyzer flag 'shared-memory: cuda' is not supported by tsweep's load generators: use shared-memory none or system"


# ------------------------------------------------------------------ on the embedded server

ONE_POINT = [
    "profile", "--model-repository", str(MODEL_REPOSITORY), "--profile-models", "add_sub",
    "--output-model-repository-path", "out", "--run-config-search-disable",
    "--remeasure-top-configs", "0", "--measurement-window-s", "0.3",
]  # fmt: skip


def verdict_latency(workdir: Path, export: str = ".") -> set:
    with open(workdir / export / "results" / "metrics-model-inference.csv") as f:
        return {row["Verdict Latency"] for row in csv.DictReader(f)}


@pytest.mark.server
@pytest.mark.slow
def test_percentile_decides_the_budget_from_the_stored_percentiles(workdir: Path):
    """One real point, then the same stored point judged against a budget between its p50 and
    its p99 (both read from the store): with percentile 50 it meets the budget, with 99 it
    does not; the console, the CSV and the summary PDF name the percentile."""
    config = write(workdir, "perf_analyzer_flags: {percentile: 50}\n", "p50.yaml")
    first = run_tsweep(*ONE_POINT, "--concurrency", "4", "-f", str(config), cwd=workdir)
    assert first.returncode == 0, first.stderr
    (row,) = stored(workdir)
    assert row["status"] in ("ok", "unstable") and row["latency_p50_ms"] > 0
    assert row["latency_p99_ms"] > row["latency_p50_ms"], "the point's p99 and p50 coincide: no budget can tell them apart"
    assert " at p50 " in first.stdout and verdict_latency(workdir) == {"p50"}

    budget = (row["latency_p50_ms"] + row["latency_p99_ms"]) / 2
    outcomes = {}
    for percentile in (50, 99):
        export = f"p{percentile}"
        result = run_tsweep("analyze", "--checkpoint-directory", "checkpoints", "--latency-budget", repr(budget),
                            "--percentile", str(percentile), "--export-path", export, cwd=workdir)  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert verdict_latency(workdir, export) == {f"p{percentile}"}
        outcomes[percentile] = result.stdout
        summary = pdf_text(workdir / export / "reports" / "summaries" / "add_sub" / "result_summary.pdf")
        assert f"Constraints: p{percentile} latency <= {budget:g} ms" in summary
    # p50 <= budget < p99, as stored: the percentile decides
    assert "Best config for add_sub: add_sub_config_default, " in outcomes[50] and f" at p50 {row['latency_p50_ms']:.2f} ms " in outcomes[50]
    assert "The latency budget and latency constraints read the p50 latency (percentile 50)." in pdf_text(
        workdir / "p50" / "reports" / "summaries" / "add_sub" / "result_summary.pdf")
    assert f"No config of add_sub surely meets the constraints (p99 latency <= {budget:g} ms" in outcomes[99]


@pytest.mark.server
@pytest.mark.slow
def test_a_profile_on_request_intervals_stores_the_files_mean_rate(workdir: Path):
    """The open loop on a file of gaps (10, 20 and 30 ms: 50 sends/s on average): the point
    is stored under that rate, read from the file; the gaps themselves are what the load
    generator plans (test_loads.py checks its schedule)."""
    gaps = write(workdir, "10000\n20000\n30000\n", "gaps.txt")
    config = write(workdir, f"perf_analyzer_flags: {{request-intervals: {gaps}}}\n", "gaps.yaml")
    result = run_tsweep(*ONE_POINT, "--measurement-request-count", "20", "-f", str(config), cwd=workdir)
    assert result.returncode == 0, result.stderr
    (row,) = stored(workdir)
    assert row["load_kind"] == "request_rate" and row["load_value"] == pytest.approx(3 / 0.06)
    assert row["requests"] > 0 and row["errors"] == 0
