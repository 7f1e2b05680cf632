"""PDF and CSV reports, read back and checked against the results store.

The store is the real SQLite store filled through its API with synthetic rows (so memory and
GPU metrics can be tested before any collector runs here); the commands are the real CLI in
a subprocess; the PDFs are read back with pypdf and rendered with poppler's pdftoppm. One
test profiles a real model on the embedded Triton server and reports on it.
"""
from __future__ import annotations

import csv
import dataclasses
import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tsweep import analysis, machine, modelconfig, repeats
from tsweep.config import load_config
from tsweep.errors import UsageError
from tsweep.files import inside
from tsweep.pluginmanager import make_plugin_manager
from tsweep.records import Constraint, Measurement, RankedConfig, Variant
from tsweep.run import Run
from tsweep.store import ResultsStore

from tests.support import MODEL_REPOSITORY, run_tsweep, stored, tree

pypdf = pytest.importorskip("pypdf")

UUIDS = ("GPU-aaaa", "GPU-bbbb")
LOADS = (1, 2, 4)
#: name -> (is default, params, throughput factor); the params are each config's coordinates
CONFIGS = {
    "default": (True, {"instances": 1, "max_batch_size": 4, "dynamic_batching": False}, 100.0),
    "0": (False, {"instances": 1, "max_batch_size": 8, "dynamic_batching": True}, 180.0),
    "1": (False, {"instances": 2, "max_batch_size": 8, "dynamic_batching": True}, 260.0),
    "2": (False, {"instances": 2, "max_batch_size": 16, "dynamic_batching": True}, 140.0),
    "3": (False, {"instances": 1, "max_batch_size": 16, "dynamic_batching": True}, 120.0),
}


def point(model: str, variant: str, factor: float, load: int, gpu: bool) -> Measurement:
    """A plausible row: throughput grows with load, p99 grows faster; numbers (and the
    half-widths of their 95% intervals) are distinct."""
    throughput = factor * load + load / 10 + 0.03
    p99 = 1.7 * load + factor / 100 + 0.004
    metrics = {"server_cpu_pct": 20.0 * load + 1.25, "server_memory_mb": 300.0 + factor / 10 + load, "server_batch_avg": 1.5}
    if gpu:
        metrics.update({"gpu_memory_used_mb": 1000.0 + factor + load, "gpu_utilization": 10.0 * load + factor / 100})
        for i, uuid in enumerate(UUIDS):
            metrics.update({f"gpu/{uuid}/utilization": 5.0 * load + i, f"gpu/{uuid}/memory_used_mb": 500.0 + factor / 2 + i,
                            f"gpu/{uuid}/power_w": 60.0 + load + i})  # fmt: skip
    return Measurement(
        model=model, variant=variant, variant_digest=variant, load_kind="concurrency", load_value=load, batch_size=1,
        status="ok", throughput=throughput, latency_avg_ms=p99 * 0.6, latency_p50_ms=p99 * 0.5, latency_p90_ms=p99 * 0.8,
        latency_p95_ms=p99 * 0.9, latency_p99_ms=p99, queue_ms=0.1 * load, compute_input_ms=0.011, compute_infer_ms=0.4 + 0.01 * load,
        compute_output_ms=0.012, client_send_ms=0.021, client_recv_ms=0.013, requests=1000, windows=3, metrics=metrics,
        throughput_ci=0.02 * throughput + 0.11, latency_p99_ci_ms=0.03 * p99 + 0.0021,
    )  # fmt: skip


def config_of(params: dict):
    """A ModelConfig whose coordinates are ``params``."""
    text = f"max_batch_size: {params['max_batch_size']} instance_group [{{count: {params['instances']}}}]"
    return modelconfig.parse(text + (" dynamic_batching {}" if params["dynamic_batching"] else ""))


def fill_store(ck: Path, model: str = "m", gpu: bool = True) -> list:
    """Five measured configs and an unmeasured twin of config 1; returns the rows."""
    store = ResultsStore.open(ck / "results.sqlite")
    rows = []
    for suffix, (default, params, factor) in CONFIGS.items():
        name = f"{model}_config_{suffix}"
        store.add_variant(Variant(model, config_of(params), is_default=default, name=name))
        for load in LOADS:
            rows.append(point(model, name, factor, load, gpu))
            store.add(rows[-1])
    twin = Variant(model, config_of(CONFIGS["1"][1]), name=f"{model}_config_4")
    store.add_variant(twin)
    store.set_meta("server", "tritonserver 2.51.0, test double")
    store.set_meta("machine", '{"cpu": "Test CPU 9000", "cpu_count": 64, "gpus": ["Test GPU, 80 GB"], "os": "Linux"}')
    store.close()
    for r in rows:
        r.variant_params = dict(CONFIGS[r.variant.rsplit("_", 1)[1]][1])
    return rows


def title(metric: str) -> str:
    """A metric's column title as the reports make it from the installed collectors' descriptions."""
    return analysis.known_metrics(make_plugin_manager().metric_infos()).heading(metric)


def pdf_text(path: Path) -> str:
    """All text of a PDF with whitespace runs made single spaces (wrapping is layout)."""
    return " ".join(" ".join(page.extract_text() for page in pypdf.PdfReader(str(path)).pages).split())


def images(path: Path) -> int:
    return sum(len(page.images) for page in pypdf.PdfReader(str(path)).pages)


def best_under(rows, budget):
    """The point with the highest throughput within the latency budget, from the raw rows."""
    return max((r for r in rows if r.latency_p99_ms <= budget), key=lambda r: r.throughput)


def with_ci(value: float, half_width: float, digits: int) -> str:
    """A figure and its 95% interval as every report writes it, spelled out here (not with
    the code's own helper) so that the format itself is checked."""
    margin = "?" if half_width == math.inf else f"{half_width:.{digits}f}"
    return f"{value:.{digits}f} \u00b1{margin}"


def throughput_ci(m: Measurement, digits: int = 1) -> str:
    return with_ci(m.throughput, m.throughput_ci, digits)


def p99_ci(m: Measurement) -> str:
    return with_ci(m.latency_p99_ms, m.latency_p99_ci_ms, 2)


@pytest.fixture
def ck(tmp_path: Path) -> Path:
    return tmp_path / "ck"


def test_summary_pdf_states_the_verdict_and_the_top_configs_of_the_store(ck: Path, workdir: Path):
    rows = fill_store(ck)
    budget = 6.5  # excludes concurrency 4 of every config
    result = run_tsweep("analyze", "--checkpoint-directory", str(ck), "--latency-budget", str(budget),
                        "--num-configs-per-model", "2", "--export-path", "out", cwd=workdir)  # fmt: skip
    assert result.returncode == 0, result.stderr
    path = workdir / "out" / "reports" / "summaries" / "m" / "result_summary.pdf"
    assert "wrote out/reports/summaries/m/result_summary.pdf" in result.stdout.splitlines()
    text = pdf_text(path)

    best = best_under(rows, budget)
    assert best.variant == "m_config_1"
    verdict = next(line for line in result.stdout.splitlines() if line.startswith("Best config for m:"))
    assert verdict in text  # the very sentence the CLI printed
    assert f"m_config_1, {throughput_ci(best)} infer/s at p99 {p99_ci(best)} ms (concurrency=2" in verdict
    assert "It is the same config as m_config_4, measured once." in text
    assert "Machine: Test CPU 9000 x 64 CPUs; GPUs: Test GPU, 80 GB; Linux" in text
    assert "Server: tritonserver 2.51.0, test double" in text and "Mode: online" in text
    assert f"Constraints: p99 latency <= {budget:g} ms" in text and "Objectives: throughput (weight 1)" in text

    # the table: the top 2 and the default, in rank order, at their chosen point
    table = text[text.index("Configs at their chosen load"):]
    shown = ["m_config_1", "m_config_0", "m_config_default"]
    assert [table.index(name) for name in shown] == sorted(table.index(name) for name in shown)
    ranking = result.stdout[result.stdout.index("Ranking of m"):]
    for name in shown:
        chosen = max((r for r in rows if r.variant == name and r.latency_p99_ms <= budget), key=lambda r: r.throughput)
        # throughput and p99 with their intervals, side by side, then memory and utilization
        assert f"{throughput_ci(chosen)} {p99_ci(chosen)} {chosen.metrics['gpu_memory_used_mb']:.1f} {chosen.metrics['gpu_utilization']:.1f}" in table, name
        # the CLI's ranking: the same figures, the ± of a column one above the other
        (line,) = [line for line in ranking.splitlines() if line.split()[1:2] == [name]]
        assert re.search(re.escape(throughput_ci(chosen)) + r"\s+" + re.escape(p99_ci(chosen)), line), line
    lines = [line for line in ranking.splitlines() if re.match(r"\s+\d+\s", line)]
    assert len({line.index("\u00b1") for line in lines}) == 1 and len({line.rindex("\u00b1") for line in lines}) == 1
    assert ("Error bars and \u00b1 figures are 95% confidence intervals of throughput and p99 latency (from batch means over each "
            "point's measurement windows, combined over the looks at a point measured more than once)") in text  # fmt: skip
    assert "m_config_2" not in table and "m_config_3" not in table  # ranked 3rd and 4th: not shown
    assert "The best 2 configs and the default (online mode: throughput against p99 latency)" in text
    assert title("gpu_memory_used_mb") in table and title("gpu_utilization") in table
    assert "Memory vs p99 latency" not in text  # chart titles are pictures, not text
    assert images(path) == 2  # the mode's chart and the memory chart


def test_summary_falls_back_to_server_memory_and_says_when_there_is_none(ck: Path, workdir: Path, tmp_path: Path):
    fill_store(ck, gpu=False)
    result = run_tsweep("analyze", "--checkpoint-directory", str(ck), "--mode", "offline", "--export-path", "out", cwd=workdir)
    assert result.returncode == 0, result.stderr
    text = pdf_text(workdir / "out" / "reports" / "summaries" / "m" / "result_summary.pdf")
    assert title("server_memory_mb") in text and title("server_cpu_pct") in text and "GPU" not in text.replace("GPUs: Test GPU", "")
    assert "Mode: offline" in text and "offline mode: throughput at each load" in text

    bare = tmp_path / "bare"
    store = ResultsStore.open(bare / "results.sqlite")
    store.add_variant(Variant("m", modelconfig.parse(""), {}, is_default=True, name="m_config_default"))
    # a single window: intervals infinite, which the chart draws without bars and the text as "±?"
    store.add(Measurement(model="m", variant="m_config_default", variant_digest="d", load_kind="request_rate", load_value=50,
                          batch_size=1, status="unstable", throughput=49.5, latency_p99_ms=2.5, windows=1,
                          throughput_ci=math.inf, latency_p99_ci_ms=math.inf))  # fmt: skip
    store.close()
    result = run_tsweep("analyze", "--checkpoint-directory", str(bare), "--export-path", "bare_out", cwd=workdir)
    assert result.returncode == 0, result.stderr
    path = workdir / "bare_out" / "reports" / "summaries" / "m" / "result_summary.pdf"
    text = pdf_text(path)
    assert "No memory metric was recorded" in text and "Machine: not recorded" in text
    assert ("Best config for m: m_config_default, 49.5 \u00b1? infer/s at p99 2.50 \u00b1? ms (request_rate=50, client batch 1; "
            "95% intervals), which is the default config.") in text  # fmt: skip
    assert "request_rate=50 b1 49.5 \u00b1? 2.50 \u00b1?" in text[text.index("Configs at their chosen load"):]
    assert images(path) == 1  # the main chart, drawn all the same
    assert re.search(r"49\.5 \u00b1\?\s+2\.50 \u00b1\?", result.stdout)
    (line,) = read_csv(workdir / "bare_out" / "results" / "metrics-model-inference.csv")
    assert line["Throughput 95% CI (+/- infer/sec)"] == "inf" and line["p99 Latency 95% CI (+/- ms)"] == "inf"


def test_main_chart_follows_the_mode():
    from tsweep.plugins.reporters.summary_pdf import main_chart

    rows = [point("m", "m_config_0", 180.0, load, gpu=False) for load in LOADS]
    ranked = [RankedConfig(1, "m_config_0", "m", rows[1], True, 1.0)]
    limits = [Constraint("latency_p99_ms", max=5.0), Constraint("throughput", min=200.0)]
    online = main_chart(ranked, rows, "online", limits)
    assert online.series[0].xs == [r.latency_p99_ms for r in rows] and online.series[0].ys == [r.throughput for r in rows]
    # error bars both ways: p99's interval along x, throughput's along y
    assert online.series[0].xerr == [r.latency_p99_ci_ms for r in rows] and online.series[0].yerr == [r.throughput_ci for r in rows]
    assert [(ref.value, ref.vertical) for ref in online.refs] == [(5.0, True), (200.0, False)]
    offline = main_chart(ranked, rows, "offline", limits)
    assert offline.series[0].xs == [1, 2, 4] and offline.x_label.startswith("Concurrency")
    assert offline.series[0].xerr == [None] * 3 and offline.series[0].yerr == [r.throughput_ci for r in rows]  # load is exact
    assert [(ref.value, ref.vertical) for ref in offline.refs] == [(200.0, False)]


def drawn(monkeypatch, draw) -> list:
    """The matplotlib axes a chart function drew, kept instead of turned into PNG bytes."""
    from tsweep.plugins.reporters import plots

    figures = []
    monkeypatch.setattr(plots, "_png", lambda fig: figures.append(fig) or b"png")
    assert draw() == b"png"
    return figures[0].axes


def bars(ax) -> dict:
    """The error bars on ``ax``: {"x": [(low, high), ...], "y": [...]} from the drawn segments."""
    from matplotlib.container import ErrorbarContainer

    found = {"x": [], "y": []}
    for container in (c for c in ax.containers if isinstance(c, ErrorbarContainer)):
        for collection in container.lines[2]:
            for (x0, y0), (x1, y1) in collection.get_segments():
                if x0 == x1:
                    found["y"].append((round(y0, 6), round(y1, 6)))
                else:
                    found["x"].append((round(x0, 6), round(x1, 6)))
    return found


def test_charts_draw_the_intervals_and_skip_infinite_ones(monkeypatch):
    from tsweep.plugins.reporters import detailed_pdf, plots
    from tsweep.plugins.reporters.summary_pdf import main_chart

    rows = [point("m", "m_config_0", 180.0, load, gpu=False) for load in LOADS]
    rows[0].throughput_ci = math.inf  # one window: no throughput interval, p99's kept
    rows[2].throughput_ci = rows[2].latency_p99_ci_ms = math.inf
    ranked = [RankedConfig(1, "m_config_0", "m", rows[1], True, 1.0)]
    (ax,) = drawn(monkeypatch, lambda: plots.lines(main_chart(ranked, rows, "online", [Constraint("latency_p99_ms", max=9.0)])))
    found = bars(ax)
    assert found["y"] == [(round(rows[1].throughput - rows[1].throughput_ci, 6), round(rows[1].throughput + rows[1].throughput_ci, 6))]
    assert found["x"] == [(round(r.latency_p99_ms - r.latency_p99_ci_ms, 6), round(r.latency_p99_ms + r.latency_p99_ci_ms, 6)) for r in rows[:2]]
    assert [tuple(line.get_ydata()) for line in ax.get_lines()][0] == tuple(r.throughput for r in rows)  # every point drawn
    assert all(math.isfinite(v) for v in (*ax.get_xlim(), *ax.get_ylim())) and ax.get_xlim()[1] < 20

    left, right = drawn(monkeypatch, lambda: detailed_pdf.load_chart(rows))  # throughput left, p99 right
    assert len(bars(left)["y"]) == 1 and len(bars(right)["y"]) == 2 and not bars(left)["x"] and not bars(right)["x"]
    assert plots.drawable([1.0, None, math.inf, math.nan], 5) == [1.0, None, None, None, None]


def test_detailed_reports_list_every_load_level_also_for_a_twin(ck: Path, workdir: Path):
    rows = fill_store(ck)
    # a second look at one point: both reports show it once, with the looks' combined intervals
    first = next(r for r in rows if r.variant == "m_config_1" and r.load_value == 2)
    look = dataclasses.replace(first, repeat=1, throughput=first.throughput * 1.03, throughput_ci=first.throughput_ci * 1.5,
                               latency_p99_ms=first.latency_p99_ms * 0.98, latency_p99_ci_ms=first.latency_p99_ci_ms * 0.7, id=None)  # fmt: skip
    with ResultsStore.open(ck / "results.sqlite") as store:
        store.add(look)
    rows = repeats.merge(rows + [look])
    combined = next(r for r in rows if r.variant == "m_config_1" and r.load_value == 2)
    assert combined.looks == 2 and combined.throughput_ci < first.throughput_ci
    result = run_tsweep("report", "--checkpoint-directory", str(ck), "--report-model-configs", "m_config_1,m_config_4",
                        "--export-path", "out", cwd=workdir)  # fmt: skip
    assert result.returncode == 0, result.stderr
    for name in ("m_config_1", "m_config_4"):
        assert f"wrote out/reports/detailed/{name}/detailed_report.pdf" in result.stdout.splitlines()
    assert not (workdir / "out" / "reports" / "summaries").exists()  # report writes no summary
    own = pdf_text(workdir / "out" / "reports" / "detailed" / "m_config_1" / "detailed_report.pdf")
    twin = pdf_text(workdir / "out" / "reports" / "detailed" / "m_config_4" / "detailed_report.pdf")
    assert "It was measured as m_config_1, the very same config." in twin and "measured as" not in own
    assert "Config m_config_1 of model m (instances=2, max_batch_size=8, dynamic_batching=True). 3 load levels measured" in own
    top = max((r for r in rows if r.variant == "m_config_1"), key=lambda r: r.throughput)
    assert f"Highest throughput: {throughput_ci(top)} infer/s at concurrency=4, client batch 1, p99 {p99_ci(top)} ms." in own
    assert "with their 95% confidence intervals as error bars" in own

    table = own[own.index("Every measured load level"):]
    own_cli = result.stdout[: result.stdout.index("m_config_4 (measured as m_config_1")]
    positions = []
    for r in (r for r in rows if r.variant == "m_config_1"):
        network = r.latency_avg_ms - (r.queue_ms + r.compute_input_ms + r.compute_infer_ms + r.compute_output_ms + r.client_send_ms + r.client_recv_ms)
        cells = [throughput_ci(r), p99_ci(r), f"{r.latency_p50_ms:.2f}", f"{r.latency_avg_ms:.2f}",
                 f"{r.queue_ms:.3f}", f"{r.compute_infer_ms:.3f}", f"{network:.3f}", f"{r.metrics['gpu_utilization']:.1f}",
                 f"{r.metrics['gpu_memory_used_mb']:.1f}"]  # fmt: skip
        assert re.search(r"\s".join(map(re.escape, cells[:4])), table), cells  # one row, in column order
        for cell in cells[4:]:
            assert cell in table, cell
        positions.append(table.index(cells[0]))
        # the CLI's table of load levels: the same point, the same intervals (2 digits there)
        (line,) = [line for line in own_cli.splitlines() if line.strip().startswith(f"concurrency={r.load_value:g} b1")]
        assert re.search(re.escape(throughput_ci(r, 2)) + r"\s+" + re.escape(f"{r.latency_p50_ms:.2f}") + r"\s+" + re.escape(p99_ci(r)), line), line
        assert line.endswith("ok (2 looks)" if r is combined else "ok")
    assert positions == sorted(positions)  # by load
    assert images(workdir / "out" / "reports" / "detailed" / "m_config_1" / "detailed_report.pdf") == 4  # load, breakdown, memory, utilization


def test_report_for_a_config_never_measured_writes_nothing(ck: Path, workdir: Path):
    fill_store(ck)
    before = tree(workdir)
    result = run_tsweep("report", "--checkpoint-directory", str(ck), "--report-model-configs", "m_config_1,m_config_9", cwd=workdir)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: config 'm_config_9' was never measured: measured configs are m_config_0,")
    assert tree(workdir) == before


@pytest.mark.parametrize("model", ["<b>", "a&b", "_x$1$"])
def test_names_with_markup_stay_literal(ck: Path, workdir: Path, model: str):
    fill_store(ck, model=model)
    result = run_tsweep("analyze", "--checkpoint-directory", str(ck), "--export-path", "out", cwd=workdir)
    assert result.returncode == 0, result.stderr
    text = pdf_text(workdir / "out" / "reports" / "summaries" / model / "result_summary.pdf")
    assert f"Summary: {model}" in text and f"Best config for {model}: {model}_config_1," in text
    result = run_tsweep("report", "--checkpoint-directory", str(ck), "--report-model-configs", f"{model}_config_1", "--export-path", "out", cwd=workdir)
    assert result.returncode == 0, result.stderr
    text = pdf_text(workdir / "out" / "reports" / "detailed" / f"{model}_config_1" / "detailed_report.pdf")
    assert f"Detailed report: {model}_config_1" in text and f"of model {model} (" in text


def test_reports_write_only_below_the_export_path(tmp_path: Path):
    assert inside(tmp_path, "reports", "m", "x.pdf") == tmp_path / "reports" / "m" / "x.pdf"
    for bad in ("..", "a/../../b", ".", ""):
        with pytest.raises(UsageError):
            inside(tmp_path, "reports", bad, "x.pdf")


def read_csv(path: Path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_gpu_process_and_inference_csvs_match_the_store(ck: Path, workdir: Path):
    rows = fill_store(ck)
    result = run_tsweep("analyze", "--checkpoint-directory", str(ck), "--export-path", "out", cwd=workdir)
    assert result.returncode == 0, result.stderr
    results = workdir / "out" / "results"
    assert sorted(p.name for p in results.iterdir()) == ["metrics-model-gpu.csv", "metrics-model-inference.csv", "metrics-model-process.csv"]
    inference = read_csv(results / "metrics-model-inference.csv")
    assert len(inference) == len(rows)
    columns = list(inference[0])  # each interval's half-width right after its figure
    assert columns[columns.index("Throughput (infer/sec)") + 1] == "Throughput 95% CI (+/- infer/sec)"
    assert columns[columns.index("p99 Latency (ms)") + 1] == "p99 Latency 95% CI (+/- ms)"
    assert [(float(i["Throughput 95% CI (+/- infer/sec)"]), float(i["p99 Latency 95% CI (+/- ms)"])) for i in inference] == [
        (pytest.approx(r.throughput_ci, abs=1e-4), pytest.approx(r.latency_p99_ci_ms, abs=1e-4)) for r in rows
    ]

    gpu = read_csv(results / "metrics-model-gpu.csv")
    assert len(gpu) == len(rows) * len(UUIDS)
    assert list(gpu[0]) == ["Model", "Model Config", "Load Kind", "Load Value", "Client Batch Size", "GPU UUID",
                            "GPU Memory Usage (MB)", "GPU Utilization (%)", "GPU Power Usage (W)"]  # Model Analyzer's titles and order
    for r in rows:
        for uuid in UUIDS:
            (line,) = [g for g in gpu if g["Model Config"] == r.variant and g["Load Value"] == f"{r.load_value:g}" and g["GPU UUID"] == uuid]
            assert float(line["GPU Utilization (%)"]) == pytest.approx(r.metrics[f"gpu/{uuid}/utilization"])
            assert float(line["GPU Memory Usage (MB)"]) == pytest.approx(r.metrics[f"gpu/{uuid}/memory_used_mb"])
            assert float(line["GPU Power Usage (W)"]) == pytest.approx(r.metrics[f"gpu/{uuid}/power_w"])

    process = read_csv(results / "metrics-model-process.csv")
    assert list(process[0]) == ["Model", "Model Config", "Load Kind", "Load Value", "Client Batch Size",
                                title("server_cpu_pct"), title("server_memory_mb")]  # not server_batch_avg: Triton's, not the process's
    assert [(p["Model Config"], float(p[title("server_cpu_pct")]), float(p[title("server_memory_mb")])) for p in process] == [
        (r.variant, pytest.approx(r.metrics["server_cpu_pct"]), pytest.approx(r.metrics["server_memory_mb"])) for r in rows
    ]


def test_cpu_only_store_writes_no_gpu_csv_and_the_baseline_becomes_server_only_csv(ck: Path, tmp_path: Path):
    from tsweep.plugin import ReportContext
    from tsweep.plugins.reporters.csv_export import CsvReporter

    rows = fill_store(ck, gpu=False)
    out = tmp_path / "out"
    written = CsvReporter().write(rows, [], out, ReportContext())
    assert sorted(p.name for p in written) == ["metrics-model-inference.csv", "metrics-model-process.csv"]

    # a point measured in one window (infinite intervals) and a failed one (none at all)
    lone = dataclasses.replace(rows[0], load_value=8, throughput_ci=math.inf, latency_p99_ci_ms=math.inf)
    lost = Measurement(model="m", variant="m_config_3", variant_digest="m_config_3", load_kind="concurrency", load_value=16.0,
                       batch_size=1, status="failed", error="tritonserver died")  # fmt: skip
    CsvReporter().write([lone, lost], [], out, ReportContext())
    intervals = [(l["Load Value"], l["Throughput 95% CI (+/- infer/sec)"], l["p99 Latency 95% CI (+/- ms)"])
                 for l in read_csv(out / "results" / "metrics-model-inference.csv")]  # fmt: skip
    assert intervals == [("8", "inf", "inf"), ("16", "", "")]

    baseline = {"server_cpu_pct": 0.5, "server_memory_mb": 250.0, "gpu/GPU-aaaa/memory_used_mb": 410.0, "gpu/GPU-aaaa/utilization": 0.0}
    known = analysis.known_metrics(make_plugin_manager().metric_infos())  # the titles, as the core passes them
    written = CsvReporter().write(rows, [], out, ReportContext(server_baseline=baseline, metrics=known))
    assert out / "results" / "metrics-server-only.csv" in written
    lines = read_csv(out / "results" / "metrics-server-only.csv")
    assert [(l["Model"], l["GPU UUID"]) for l in lines] == [("triton-server", ""), ("triton-server", "GPU-aaaa")]
    assert float(lines[0]["Server RAM (RSS) (MB)"]) == 250.0 and lines[0]["GPU Memory Usage (MB)"] == ""
    assert float(lines[1]["GPU Memory Usage (MB)"]) == 410.0 and lines[1]["Server CPU (% of one core)"] == ""


def test_machine_description_reads_cpuinfo(tmp_path: Path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Fancy  CPU @ 3.0GHz\n\nprocessor\t: 1\nmodel name\t: Fancy  CPU @ 3.0GHz\n")
    assert machine.cpu_model(info) == "Fancy CPU @ 3.0GHz"
    described = machine.describe()
    assert described["cpu_count"] >= 1 and isinstance(described["gpus"], list)
    assert machine.summary({"cpu": "X", "cpu_count": 2, "gpus": []}) == "X x 2 CPUs; GPUs: none"


def render_first_page(pdf: Path, out: Path):
    """The first page as PNG via poppler; returns (width, height, fraction of non-white pixels)."""
    from PIL import Image

    subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", "-singlefile", str(pdf), str(out)], check=True, timeout=60)
    img = Image.open(f"{out}.png").convert("L")
    inked = sum(img.histogram()[:200])  # pixels darker than light grey
    return img.width, img.height, inked / (img.width * img.height)


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="pdftoppm (Debian poppler-utils) is not installed")
def test_reports_render_as_pages_with_content(ck: Path, workdir: Path, tmp_path: Path):
    fill_store(ck)
    assert run_tsweep("analyze", "--checkpoint-directory", str(ck), "--latency-budget", "6.5", cwd=workdir).returncode == 0
    assert run_tsweep("report", "--checkpoint-directory", str(ck), "--report-model-configs", "m_config_1", cwd=workdir).returncode == 0
    width, height, inked = render_first_page(workdir / "reports" / "summaries" / "m" / "result_summary.pdf", tmp_path / "summary")
    assert height > width and inked > 0.02  # portrait, with charts on it
    width, height, inked = render_first_page(workdir / "reports" / "detailed" / "m_config_1" / "detailed_report.pdf", tmp_path / "detailed")
    assert width > height and inked > 0.02  # landscape


@pytest.mark.server
@pytest.mark.slow
def test_real_profile_then_report(workdir: Path):
    """A small real sweep: the summary's verdict and table are the CLI's and the store's."""
    args = ["--model-repository", str(MODEL_REPOSITORY), "--profile-models", "add_sub", "--output-model-repository-path", "out",
            "--run-config-search-max-instance-count", "1", "--run-config-search-min-model-batch-size", "8",
            "--run-config-search-max-model-batch-size", "8", "--concurrency", "1,2", "--measurement-window-s", "0.3"]  # fmt: skip
    result = run_tsweep("profile", *args, cwd=workdir)
    assert result.returncode == 0, result.stderr
    text = pdf_text(workdir / "reports" / "summaries" / "add_sub" / "result_summary.pdf")
    verdict = next(line for line in result.stdout.splitlines() if line.startswith("Best config for add_sub:"))
    assert verdict in text
    assert "CPUs; GPUs:" in text and "Server: tritonserver" in text
    with ResultsStore.open_existing(workdir / "checkpoints" / "results.sqlite") as store:
        store_rows = store.measurements()
    known = analysis.known_metrics(make_plugin_manager().metric_infos())
    rows = repeats.merge(store_rows, known)  # re-measured points count once, by the run's rules (memory: the peak look)
    best = re.match(r"Best config for add_sub: (\w+),", verdict).group(1)
    # the process collector runs everywhere: server RAM is the memory shown, and exported
    memory = title("server_memory_mb")
    chosen = next(r for r in rows if r.variant == best and f"{throughput_ci(r)} infer/s at p99 {p99_ci(r)} ms" in verdict)
    assert math.isfinite(chosen.throughput_ci) and math.isfinite(chosen.latency_p99_ci_ms)  # measured over several windows
    table = text[text.index("Configs at their chosen load"):]
    assert f"{throughput_ci(chosen)} {p99_ci(chosen)}" in table
    assert memory in text and f"{chosen.metrics['server_memory_mb']:.1f}" in text[text.index("Configs at their chosen load"):]
    # profile details each model's best num_configs_per_model configs, as Model Analyzer does
    run = Run.build(load_config(None, {"checkpoint_directory": str(workdir / "checkpoints")}), make_plugin_manager())
    with ResultsStore.open_existing(workdir / "checkpoints" / "results.sqlite") as store:
        top = [r.variant for r in analysis.rank(store, run, ["add_sub"])["add_sub"][:3]]
    detailed_dirs = sorted(p.parent.name for p in (workdir / "reports" / "detailed").rglob("detailed_report.pdf"))
    assert best in top and detailed_dirs == sorted(top)
    for name in top:
        assert f"wrote reports/detailed/{name}/detailed_report.pdf" in result.stdout.splitlines()
        assert f"Detailed report: {name}" in pdf_text(workdir / "reports" / "detailed" / name / "detailed_report.pdf")
    # skip_detailed_reports turns that off (the rerun resumes: every point is in the store)
    (workdir / "skip.yaml").write_text("skip_detailed_reports: true\n")
    skipped = run_tsweep("profile", *args, "-f", "skip.yaml", "--export-path", "skipped", cwd=workdir)
    assert skipped.returncode == 0, skipped.stderr
    assert (workdir / "skipped" / "reports" / "summaries" / "add_sub" / "result_summary.pdf").is_file()
    assert not (workdir / "skipped" / "reports" / "detailed").exists()
    process = read_csv(workdir / "results" / "metrics-model-process.csv")
    assert len(process) == len(store_rows) and all(float(p[memory]) > 0 for p in process)
    assert read_csv(workdir / "results" / "metrics-server-only.csv")[0]["Model"] == "triton-server"
    report = run_tsweep("report", "--report-model-configs", best, cwd=workdir)
    assert report.returncode == 0, report.stderr
    detailed = pdf_text(workdir / "reports" / "detailed" / best / "detailed_report.pdf")
    for r in (r for r in rows if r.variant == best):
        assert f"{throughput_ci(r)} {p99_ci(r)} {r.latency_p50_ms:.2f} {r.latency_avg_ms:.2f}" in detailed
    inference = read_csv(workdir / "results" / "metrics-model-inference.csv")
    assert len(inference) == len(store_rows)
    for r, line in zip(store_rows, inference):  # each look its own row, with its own intervals
        assert float(line["Throughput 95% CI (+/- infer/sec)"]) == pytest.approx(r.throughput_ci, abs=1e-4)
        assert float(line["p99 Latency 95% CI (+/- ms)"]) == pytest.approx(r.latency_p99_ci_ms, abs=1e-4)


def test_summary_lists_the_failed_points_and_why(ck: Path, workdir: Path):
    fill_store(ck, gpu=False)
    lost = Measurement(model="m", variant="m_config_3", variant_digest="m_config_3", load_kind="concurrency", load_value=8.0,
                       batch_size=1, status="failed", error="tritonserver died during this point (killed by SIGKILL); it was restarted")  # fmt: skip
    with ResultsStore.open(ck / "results.sqlite") as store:
        store.add(lost)
    result = run_tsweep("analyze", "--checkpoint-directory", str(ck), "--export-path", "out", cwd=workdir)
    assert result.returncode == 0, result.stderr
    text = pdf_text(workdir / "out" / "reports" / "summaries" / "m" / "result_summary.pdf")
    assert "Failed points (1)" in text
    assert "m_config_3 concurrency=8 b1 tritonserver died during this point (killed by SIGKILL); it was restarted" in text


def test_progress_lines_show_each_points_intervals(capsys):
    from tsweep.cli import ConsoleProgress

    m = point("m", "m_config_1", 260.0, 2, gpu=False)
    ConsoleProgress().trial_finished(m)
    ConsoleProgress().trial_finished(dataclasses.replace(m, status="unstable", windows=1, throughput_ci=math.inf, latency_p99_ci_ms=math.inf))
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].strip() == f"{throughput_ci(m)} infer/s, p99 {p99_ci(m)} ms (ok, 3 windows, 0.0 s)"
    assert lines[1].strip() == f"{m.throughput:.1f} \u00b1? infer/s, p99 {m.latency_p99_ms:.2f} \u00b1? ms (unstable, 1 windows, 0.0 s)"


def test_model_analyzers_skip_keys_leave_out_the_pdfs(ck: Path, workdir: Path):
    """skip_summary_reports and skip_detailed_reports, keys the two PDF reporter plugins
    declare: the CSVs and the console output stay, the PDFs are not written."""
    fill_store(ck)
    (workdir / "skip.yaml").write_text("skip_summary_reports: true\nskip_detailed_reports: true\n")
    result = run_tsweep("analyze", "--checkpoint-directory", str(ck), "--export-path", "out", "-f", "skip.yaml", cwd=workdir)
    assert result.returncode == 0, result.stderr
    report = run_tsweep("report", "--checkpoint-directory", str(ck), "--report-model-configs", "m_config_1", "--export-path", "out",
                        "-f", "skip.yaml", cwd=workdir)  # fmt: skip
    assert report.returncode == 0, report.stderr
    assert "m_config_1" in report.stdout  # every load level, printed
    assert (workdir / "out" / "results" / "metrics-model-inference.csv").is_file()
    assert not list((workdir / "out").rglob("*.pdf"))
    plain = run_tsweep("analyze", "--checkpoint-directory", str(ck), "--export-path", "plain", cwd=workdir)
    assert plain.returncode == 0 and list((workdir / "plain").rglob("result_summary.pdf"))  # without the keys, there is one


def test_num_top_model_configs_writes_a_summary_ranking_all_models_together(ck: Path, workdir: Path):
    """Model Analyzer's num_top_model_configs: one more summary, in its folder name, ranking
    the configs of every model together; not written without the key."""
    fill_store(ck)
    with ResultsStore.open(ck / "results.sqlite") as store:  # a second model, faster than every config of m
        store.add_variant(Variant("n", config_of(CONFIGS["default"][1]), is_default=True, name="n_config_default"))
        fast = [point("n", "n_config_default", 400.0, load, gpu=True) for load in LOADS]
        for m in fast:
            store.add(m)
    result = run_tsweep("analyze", "--checkpoint-directory", str(ck), "--export-path", "out", "--num-top-model-configs", "2", cwd=workdir)
    assert result.returncode == 0, result.stderr
    path = workdir / "out" / "reports" / "summaries" / "Best Configs Across All Models" / "result_summary.pdf"
    assert f"wrote {path.relative_to(workdir)}" in result.stdout.splitlines()
    text = pdf_text(path)
    assert "Summary: best configs across all models" in text
    assert f"Best config across all models: n_config_default of model n, {throughput_ci(fast[-1])} infer/s" in text
    assert "The best 2 configs of all models, ranked together" in text
    table = text[text.index("Configs at their chosen load"):]
    assert "n_config_default" in table and "m_config_1" in table and "m_config_0" not in table and "m_config_default" not in table
    assert images(path) == 2  # the main chart and the memory chart
    plain = run_tsweep("analyze", "--checkpoint-directory", str(ck), "--export-path", "plain", cwd=workdir)
    assert plain.returncode == 0, plain.stderr
    assert not (workdir / "plain" / "reports" / "summaries" / "Best Configs Across All Models").exists()


PLOTS_YAML = """\
plots:
  thr_v_lat: {title: Throughput vs. Latency, x_axis: perf_latency_p99, y_axis: perf_throughput, monotonic: true}
  ram_v_lat: {title: RAM vs. Latency, x_axis: perf_latency_p99, y_axis: cpu_used_ram}
report_model_configs:
  m_config_1:
    plots:
      util: {title: Utilization vs. load, x_axis: concurrency, y_axis: gpu_utilization}
  m_config_0:
"""


def test_model_analyzers_plots_key_chooses_the_charts_of_both_reports(ck: Path, workdir: Path):
    """plots, with Model Analyzer's metric tags, replaces the summary's charts and the detailed
    report's resource charts; report_model_configs' mapping form gives a config its own."""
    fill_store(ck)
    (workdir / "plots.yaml").write_text(PLOTS_YAML)
    result = run_tsweep("analyze", "--checkpoint-directory", str(ck), "--export-path", "out", "-f", "plots.yaml", cwd=workdir)
    assert result.returncode == 0, result.stderr
    summary = workdir / "out" / "reports" / "summaries" / "m" / "result_summary.pdf"
    text = pdf_text(summary)
    assert "Plot thr_v_lat: Throughput (infer/s) against p99 latency (ms); only the points that raise it along x (monotonic)." in text
    assert f"Plot ram_v_lat: {title('server_memory_mb')} against p99 latency (ms)." in text
    assert "Throughput vs. Latency (The best 3 configs and the default)" in text and "online mode: throughput against p99" not in text
    assert images(summary) == 2
    report = run_tsweep("report", "--checkpoint-directory", str(ck), "--export-path", "out", "-f", "plots.yaml", cwd=workdir)
    assert report.returncode == 0, report.stderr
    own = pdf_text(workdir / "out" / "reports" / "detailed" / "m_config_1" / "detailed_report.pdf")
    assert f"Plot util: {title('gpu_utilization')} against Concurrency (requests in flight)." in own and "Plot thr_v_lat" not in own
    shared = pdf_text(workdir / "out" / "reports" / "detailed" / "m_config_0" / "detailed_report.pdf")
    assert "Plot thr_v_lat:" in shared and "Plot ram_v_lat:" in shared
    assert images(workdir / "out" / "reports" / "detailed" / "m_config_1" / "detailed_report.pdf") == 3  # load, breakdown, util
    assert images(workdir / "out" / "reports" / "detailed" / "m_config_0" / "detailed_report.pdf") == 4  # load, breakdown, 2 chosen


@pytest.mark.parametrize("plots, message", [
    ("{p: {x_axis: perf_latency_p99, y_axis: perf_thruput}}", "unknown metric 'perf_thruput' for y_axis of plot 'p' in plots: did you mean 'perf_throughput'?"),
    ("{p: {x_axis: perf_latency_p99}}", "plot 'p' in plots needs y_axis: a metric such as perf_latency_p99 or perf_throughput"),
    ("{p: {x_axis: concurrency, y_axis: perf_throughput, colour: red}}", "plot 'p' in plots has unknown key 'colour': use title, x_axis, y_axis, monotonic"),
])  # fmt: skip
def test_a_wrong_plot_is_one_line_and_writes_nothing(ck: Path, workdir: Path, plots: str, message: str):
    fill_store(ck)
    (workdir / "plots.yaml").write_text(f"plots: {plots}\n")
    before = tree(workdir)
    result = run_tsweep("analyze", "--checkpoint-directory", str(ck), "--export-path", "out", "-f", "plots.yaml", cwd=workdir)
    assert result.returncode == 2 and result.stderr.splitlines() == [f"error: {message}"]
    assert tree(workdir) == before


def test_a_monotonic_plot_keeps_only_the_points_that_raise_y(monkeypatch):
    from tsweep.plotspec import PlotSpec
    from tsweep.plugins.reporters import configured

    rows = [point("m", "m_config_0", 180.0, load, gpu=False) for load in (1, 2, 4, 8)]
    rows[2].throughput = rows[0].throughput - 1  # a dip: not higher than the points before it
    known = analysis.known_metrics(())
    for monotonic, kept in ((True, [rows[0], rows[1], rows[3]]), (False, rows)):
        spec = PlotSpec("p", "T", "latency_p99_ms", "throughput", monotonic)
        (ax,) = drawn(monkeypatch, lambda: configured.chart(spec, [("m_config_0", list(reversed(rows)))], [Constraint("latency_p99_ms", max=9.0)], known))
        line = ax.get_lines()[0]
        assert list(line.get_xdata()) == [r.latency_p99_ms for r in kept] and list(line.get_ydata()) == [r.throughput for r in kept]
        assert len(bars(ax)["y"]) == len(kept)  # each kept point's throughput interval


#: Model Analyzer's default inference_output_fields (config_defaults.py), as a user writes them.
MA_INFERENCE_FIELDS = "model_name,batch_size,concurrency,model_config_path,instance_group,max_batch_size,satisfies_constraints,perf_throughput,perf_latency_p99"


def test_model_analyzers_output_fields_choose_the_csv_and_console_columns(ck: Path, workdir: Path):
    rows = fill_store(ck)
    with ResultsStore.open(ck / "results.sqlite") as store:
        store.save_server_baseline({"server_memory_mb": 250.0, "gpu/GPU-aaaa/memory_used_mb": 410.0})
    (workdir / "fields.yaml").write_text(
        f"inference_output_fields: {MA_INFERENCE_FIELDS}\n"
        "gpu_output_fields: [model_name, gpu_uuid, concurrency, model_config_path, gpu_used_memory, gpu_utilization]\n"
        "server_output_fields: [model_name, gpu_uuid, gpu_used_memory, cpu_used_ram]\n"
    )
    budget = 6.5
    result = run_tsweep("analyze", "--checkpoint-directory", str(ck), "--export-path", "out", "-f", "fields.yaml",
                        "--latency-budget", str(budget), cwd=workdir)  # fmt: skip
    assert result.returncode == 0, result.stderr
    results = workdir / "out" / "results"
    inference = read_csv(results / "metrics-model-inference.csv")
    assert list(inference[0]) == ["Model", "Client Batch Size", "Concurrency", "Model Config", "Instances", "Max Batch Size",
                                  "Satisfies Constraints", "Throughput (infer/sec)", "Throughput 95% CI (+/- infer/sec)",
                                  "p99 Latency (ms)", "p99 Latency 95% CI (+/- ms)"]  # fmt: skip
    for r, line in zip(rows, inference):
        high, low = r.latency_p99_ms + r.latency_p99_ci_ms, r.latency_p99_ms - r.latency_p99_ci_ms
        said = "Yes" if high <= budget else "No" if low > budget else "Unsure"
        assert (line["Model Config"], line["Concurrency"], line["Instances"], line["Max Batch Size"], line["Satisfies Constraints"]) == (
            r.variant, f"{r.load_value:g}", str(r.variant_params["instances"]), str(r.variant_params["max_batch_size"]), said)
        assert float(line["Throughput (infer/sec)"]) == pytest.approx(r.throughput, abs=1e-4)
    assert {line["Satisfies Constraints"] for line in inference} == {"Yes", "No"}
    gpu = read_csv(results / "metrics-model-gpu.csv")
    assert list(gpu[0]) == ["Model", "GPU UUID", "Concurrency", "Model Config", title("gpu_memory_used_mb"), title("gpu_utilization")]
    assert [(g["GPU UUID"], float(g[title("gpu_memory_used_mb")])) for g in gpu] == [
        (uuid, pytest.approx(r.metrics[f"gpu/{uuid}/memory_used_mb"])) for r in rows for uuid in UUIDS]
    server = read_csv(results / "metrics-server-only.csv")
    assert [list(line.values()) for line in server] == [["triton-server", "", "", "250.0000"], ["triton-server", "GPU-aaaa", "410.0000", ""]]
    header = next(line for line in result.stdout.splitlines() if line.strip().startswith("#"))  # the console ranking too
    assert header.split() == "# Model Client Batch Size Concurrency Model Config Instances Max Batch Size Satisfies Constraints " \
        "Throughput (infer/sec) p99 Latency (ms)".split()


def test_an_unknown_output_field_is_one_line_and_writes_nothing(ck: Path, workdir: Path):
    fill_store(ck)
    before = tree(workdir)
    result = run_tsweep("analyze", "--checkpoint-directory", str(ck), "--inference-output-fields", "model_name,perf_throughpt", cwd=workdir)
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["error: unknown field 'perf_throughpt' in inference_output_fields: did you mean 'perf_throughput'?"]
    (workdir / "gpu.yaml").write_text("server_output_fields: [model_name, concurrency]\n")  # the idle server has no load
    result = run_tsweep("analyze", "--checkpoint-directory", str(ck), "-f", "gpu.yaml", cwd=workdir)
    assert result.returncode == 2 and result.stderr.startswith("error: unknown field 'concurrency' in server_output_fields")
    assert tree(workdir) == sorted([*before, "gpu.yaml"])


@pytest.mark.server
@pytest.mark.slow
def test_report_completes_a_thin_load_curve_on_a_real_server(workdir: Path):
    """A config measured at two load levels: report --complete-load-curves measures the third
    against a server started as profile would, stores it marked as measured later, and the
    detailed report marks it; a second run measures nothing."""
    common = (f"model_repository: {MODEL_REPOSITORY}\nprofile_models: add_sub\noutput_model_repository_path: out\n"
              "run_config_search_disable: true\nremeasure_top_configs: 0\nmeasurement_window_s: 0.3\n")  # fmt: skip
    (workdir / "sweep.yaml").write_text(common + "concurrency: [1, 2]\n")
    (workdir / "complete.yaml").write_text(common + "concurrency: [1, 2, 4]\n")
    profile = run_tsweep("profile", "-f", "sweep.yaml", cwd=workdir)
    assert profile.returncode == 0, profile.stderr
    before = stored(workdir)
    assert sorted(r["load_value"] for r in before) == [1.0, 2.0]
    args = ["report", "-f", "complete.yaml", "--report-model-configs", "add_sub_config_default", "--complete-load-curves", "--export-path", "later"]
    report = run_tsweep(*args, cwd=workdir)
    assert report.returncode == 0, report.stderr
    after = stored(workdir)
    (added,) = [r for r in after if r["id"] not in {b["id"] for b in before}]
    assert (added["variant"], added["load_kind"], added["load_value"]) == ("add_sub_config_default", "concurrency", 4.0)
    with ResultsStore.open_existing(workdir / "checkpoints" / "results.sqlite") as store:
        assert store.measured_later() == {added["point_key"]}
    assert "completed the load curves of add_sub_config_default: 1 more level(s) measured, marked as measured later" in report.stderr
    assert any(line.strip().startswith("concurrency=4 b1") for line in report.stdout.splitlines())
    text = pdf_text(workdir / "later" / "reports" / "detailed" / "add_sub_config_default" / "detailed_report.pdf")
    assert "3 load levels measured" in text and "1 measured later by tsweep report --complete-load-curves, marked (later) in the table" in text
    table = text[text.index("Every measured load level"):]
    assert "concurrency=4 (later)" in table and "concurrency=2 (later)" not in table and "concurrency=1 (later)" not in table
    again = run_tsweep(*args, cwd=workdir)
    assert again.returncode == 0, again.stderr
    assert "completed the load curves" not in again.stderr and len(stored(workdir)) == len(after)
