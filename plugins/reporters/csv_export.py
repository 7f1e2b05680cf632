"""Reporter ``csv``: the measured points as CSV files under ``results/``, Model Analyzer's names.

* ``metrics-model-inference.csv``: one row per measured point (latencies in ms), each look
  at a point its own row with its own 95% confidence intervals (half-widths beside
  throughput and p99).
* ``metrics-model-gpu.csv``: one row per point per GPU (``gpu/<uuid>/<metric>`` values),
  written when a GPU collector recorded any; memory, utilization and power under Model
  Analyzer's titles (``GPU Memory Usage (MB)``, ...).
* ``metrics-model-process.csv``: tsweep's own, for machines without a GPU (and beside the
  GPU file on those with one): one row per point with the server process's CPU and RAM
  (``server_cpu_pct``, ``server_memory_mb``), written when a collector recorded them.
* ``metrics-server-only.csv``: the idle server's baseline, one row for the process and
  one per GPU, written when a collector took one.
* ``metrics-combinations.csv``: models profiled together, a row per combination with every
  model's figures (:mod:`tsweep.plugins.reporters.together`); the per-point file's
  ``Combination`` column links each row to its combination point.

The file names follow Model Analyzer's export, so spreadsheets and scripts built on it keep
working, and so do Model Analyzer's keys that rename them (``filename_model_inference``,
``filename_model_gpu``, ``filename_server_only``: config keys this plugin declares). The
columns are tsweep's (docs/reports.md) unless ``inference_output_fields``,
``gpu_output_fields`` or ``server_output_fields`` chose others by Model Analyzer's field tags
(resolved by the Run: :mod:`tsweep.outputfields`).
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from tsweep import catalogue, outputfields
from tsweep.judge import Judge
from tsweep.plugin import ConfigKey, UsageError, hookimpl, write_atomic
from tsweep.verdict import percentile_label
from tsweep.records import SearchGoal

from tsweep.plugins.reporters import stages, together
from tsweep.plugins.reporters.resources import PROCESS, split_gpus

#: What identifies a look at a point, before its figures.
IDENTITY = [
    ("Model", lambda m: m.model),
    ("Model Config", lambda m: m.variant),
    ("Instances", lambda m: m.variant_params.get("instances", "")),
    ("Max Batch Size", lambda m: m.variant_params.get("max_batch_size", "")),
    ("Dynamic Batching", lambda m: m.variant_params.get("dynamic_batching", "")),
    ("Load Kind", lambda m: m.load_kind),
    ("Load Value", lambda m: f"{m.load_value:g}"),
    ("Client Batch Size", lambda m: m.batch_size),
    ("Status", lambda m: m.status),
]
#: After the figures: how the look went.
BOOKKEEPING = [
    ("Requests", lambda m: m.requests),
    ("Errors", lambda m: m.errors),
    ("Error", lambda m: m.error),
    ("Repeat", lambda m: m.repeat),  # 0 for the first look at a point, 1, 2, ... for re-measurements
    ("Client", lambda m: m.client),  # which client measured it: native http, tritonclient grpc, ... (TLS, shared memory)
    ("Combination", lambda m: m.combination),  # models profiled together: the rows of one point share it
]


def figure_columns():
    """A column per core metric of the catalogue, its interval's half-width beside it, then
    the derived metrics a point may carry (an open loop's lateness)."""
    found = []
    for info in catalogue.columns():
        found.append((info.csv_title, lambda m, name=info.name: m.value(name)))
        if info.interval:  # half-width; see _cell for None and inf
            found.append((info.interval_title, lambda m, name=info.interval: getattr(m, name)))
    for info in catalogue.DERIVED:
        if info.rankable:
            found.append((info.csv_title, lambda m, name=info.name: m.value(name)))
    return found


COLUMNS = IDENTITY + figure_columns() + BOOKKEEPING


def _cell(value):
    """Empty for not measured (a failed point's intervals too); ``inf`` for an interval that
    one window left nothing to estimate from (``float()`` and pandas read it back as such)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return "inf" if value == math.inf else f"{value:.4f}"
    return value


#: What identifies a point in the per-resource files.
POINT = [
    ("Model", lambda m: m.model),
    ("Model Config", lambda m: m.variant),
    ("Load Kind", lambda m: m.load_kind),
    ("Load Value", lambda m: f"{m.load_value:g}"),
    ("Client Batch Size", lambda m: m.batch_size),
]

def _csv(header, rows) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows([[_cell(v) for v in row] for row in rows])
    return buf.getvalue()


#: Model Analyzer's titles of the per-GPU figures (its gpu_used_memory, gpu_utilization and
#: gpu_power_usage columns, in its order), so that a sheet built on its GPU file reads ours.
GPU_TITLES = {"memory_used_mb": "GPU Memory Usage (MB)", "utilization": "GPU Utilization (%)", "power_w": "GPU Power Usage (W)"}


def _metric_columns(dicts, known, titles=None):
    """The metric names found in ``dicts`` and their column titles: those ``titles`` names
    first, in its order, with its titles; the rest sorted, titled by the catalogue."""
    titles = titles or {}
    found = {k for d in dicts for k in d}
    names = [n for n in titles if n in found] + sorted(found - set(titles))
    return names, [titles.get(n) or known.heading(n) for n in names]


#: The last column: the latency percentile the model's verdict read (``percentile``), e.g. p95.
JUDGED_LATENCY = "Verdict Latency"


#: A column per token metric of the catalogue, after the verdict's: only in a file with a
#: streamed point (generative models), so other runs' files keep their columns.
TOKEN_COLUMNS = [(info.csv_title, lambda m, name=info.name: m.value(name)) for info in catalogue.TOKEN]


def inference_csv(measurements, latency_of=lambda model: "latency_p99_ms") -> str:
    """A row per look; ``latency_of(model)`` names the latency metric its verdict read; the
    token columns when some look was streamed."""
    streamed = any(m.value("ttft_avg_ms") is not None or m.value("output_tokens_avg") is not None for m in measurements)
    tokens = TOKEN_COLUMNS if streamed else []
    rows = [[*(get(m) for _, get in COLUMNS), percentile_label(latency_of(m.model)), *(get(m) for _, get in tokens)] for m in measurements]
    return _csv([*(name for name, _ in COLUMNS), JUDGED_LATENCY, *(name for name, _ in tokens)], rows)


def gpu_csv(measurements, known):
    """A row per (point, GPU), or None when no point has a per-GPU metric."""
    per_point = [(m, split_gpus(m.metrics)[0]) for m in measurements]
    names, titles = _metric_columns([v for _, gpus in per_point for v in gpus.values()], known, GPU_TITLES)
    if not names:
        return None
    rows = [[*(get(m) for _, get in POINT), uuid, *(values.get(n) for n in names)]
            for m, gpus in per_point for uuid, values in sorted(gpus.items())]  # fmt: skip
    return _csv([*(name for name, _ in POINT), "GPU UUID", *titles], rows)


def process_csv(measurements, known):
    """A row per point with the server process's metrics, or None when there are none."""
    per_point = [(m, {k: v for k, v in m.metrics.items() if k in PROCESS}) for m in measurements]
    names, titles = _metric_columns([values for _, values in per_point], known)
    if not names:
        return None
    rows = [[*(get(m) for _, get in POINT), *(values.get(n) for n in names)] for m, values in per_point]
    return _csv([*(name for name, _ in POINT), *titles], rows)


#: A pipeline's per-stage figures (ensembles and BLS models), one row per point and stage.
STAGES_FILE = "metrics-pipeline-stages.csv"


def stages_csv(measurements):
    """A row per (point, composing model), or None when no point is a pipeline's."""
    rows = stages.csv_rows(measurements)
    return _csv(stages.CSV_HEADER, rows) if rows else None


def server_only_csv(baseline, known):
    """The idle server: a row for the process (GPU UUID empty), then one per GPU."""
    if not baseline:
        return None
    gpus, rest = split_gpus(baseline)
    scopes = ([("", rest)] if rest else []) + sorted(gpus.items())
    names, titles = _metric_columns([values for _, values in scopes], known, GPU_TITLES if gpus else None)
    return _csv(["Model", "GPU UUID", *titles], [["triton-server", uuid, *(values.get(n) for n in names)] for uuid, values in scopes])


def chosen_columns(fields, known):
    """``(title, field, interval field)`` per chosen column: a metric measured with a 95%
    interval gets its half-width's column right after it, as in tsweep's own columns."""
    found = []
    for f in fields:
        found.append((f.title, f, None))
        interval = known.info(f.name).interval if f.metric and f.name in known else ""
        if interval:
            found.append((known.info(f.name).interval_title, None, interval))
    return found


def verdicts(measurements, context):
    """``satisfies_constraints`` of each point, by the Judge of its model's rows and its
    model's constraints (as the ranking decides)."""
    by_model = {}
    for m in measurements:
        by_model.setdefault(m.model, []).append(m)
    judges = {model: Judge.from_history(SearchGoal(), rows) for model, rows in by_model.items()}
    return [outputfields.satisfies(m, context.goals_of(m.model)[1], judges[m.model]) for m in measurements]


def chosen_inference_csv(measurements, fields, context) -> str:
    """The inference file with the columns ``inference_output_fields`` chose."""
    columns = chosen_columns(fields, context.metrics)
    rows = [[outputfields.cell(f, m, said) if f else getattr(m, interval) for _, f, interval in columns]
            for m, said in zip(measurements, verdicts(measurements, context))]  # fmt: skip
    return _csv([title for title, _, _ in columns], rows)


def chosen_gpu_csv(measurements, fields, context):
    """The per-GPU file with the columns ``gpu_output_fields`` chose, or None without GPU values."""
    said = verdicts(measurements, context)
    rows = [[outputfields.cell(f, m, ok, values, uuid) for f in fields]
            for m, ok in zip(measurements, said) for uuid, values in sorted(split_gpus(m.metrics)[0].items())]  # fmt: skip
    return _csv([f.title for f in fields], rows) if rows else None


def chosen_server_csv(baseline, fields):
    """The idle server's file with the columns ``server_output_fields`` chose."""
    if not baseline:
        return None
    gpus, rest = split_gpus(baseline)
    scopes = ([("", rest)] if rest else []) + sorted(gpus.items())
    return _csv([f.title for f in fields], [[outputfields.cell(f, None, "", values, uuid) for f in fields] for uuid, values in scopes])


ALL_COMMANDS = ("profile", "analyze", "report")
#: Model Analyzer's keys for the export's file names, with its defaults.
FILE_NAMES = (
    ConfigKey("filename_model_inference", "metrics-model-inference.csv", "File name (under results/) of the per-point CSV.", commands=ALL_COMMANDS),
    ConfigKey("filename_model_gpu", "metrics-model-gpu.csv", "File name (under results/) of the per-GPU CSV.", commands=ALL_COMMANDS),
    ConfigKey("filename_server_only", "metrics-server-only.csv", "File name (under results/) of the idle server's CSV.", commands=ALL_COMMANDS),
)


class CsvReporter:
    def __init__(self, inference: str = "metrics-model-inference.csv", gpu: str = "metrics-model-gpu.csv", server_only: str = "metrics-server-only.csv"):
        self.inference, self.gpu, self.server_only = inference, gpu, server_only

    def write(self, measurements, ranking, export_dir: Path, context):
        known, chosen = context.metrics, context.output_fields
        files = {
            self.inference: chosen_inference_csv(measurements, chosen["inference"], context) if "inference" in chosen
            else inference_csv(measurements, context.latency_of),
            self.gpu: chosen_gpu_csv(measurements, chosen["gpu"], context) if "gpu" in chosen else gpu_csv(measurements, known),
            "metrics-model-process.csv": process_csv(measurements, known),
            STAGES_FILE: stages_csv(measurements),
            self.server_only: chosen_server_csv(context.server_baseline, chosen["server"]) if "server" in chosen
            else server_only_csv(context.server_baseline, known),
        }  # fmt: skip
        if context.combinations:
            header, rows = together.csv_rows(context)
            files[together.CSV_NAME] = _csv(header, rows)
        results = Path(export_dir) / "results"
        return [write_atomic(results / name, text) for name, text in files.items() if text is not None]


def _file_name(options, key: str) -> str:
    name = str(options.get(key, next(k.default for k in FILE_NAMES if k.name == key)))
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise UsageError(f"config key {key!r} must be a plain file name (it is written under results/), got {name!r}")
    return name


@hookimpl
def tsweep_config_keys():
    return list(FILE_NAMES)


@hookimpl
def tsweep_reporters(options):
    names = [_file_name(options, k.name) for k in FILE_NAMES]
    if len(set(names + ["metrics-model-process.csv"])) < len(names) + 1:
        raise UsageError(f"the CSV file names must differ from each other and from metrics-model-process.csv, got {', '.join(names)}")
    return {"csv": CsvReporter(*names)}
