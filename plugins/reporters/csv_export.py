"""Reporter ``csv``: every measured point as a row of ``results/metrics-model-inference.csv``.

The file name and the idea (one row per inference point, latencies in ms) follow Model
Analyzer's export, so spreadsheets and scripts built on it keep working; the columns are
tsweep's and are described in docs/.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from tsweep.files import write_atomic
from tsweep.plugin import hookimpl

COLUMNS = [
    ("Model", lambda m: m.model),
    ("Model Config", lambda m: m.variant),
    ("Instances", lambda m: m.variant_params.get("instances", "")),
    ("Max Batch Size", lambda m: m.variant_params.get("max_batch_size", "")),
    ("Dynamic Batching", lambda m: m.variant_params.get("dynamic_batching", "")),
    ("Load Kind", lambda m: m.load_kind),
    ("Load Value", lambda m: f"{m.load_value:g}"),
    ("Client Batch Size", lambda m: m.batch_size),
    ("Status", lambda m: m.status),
    ("Throughput (infer/sec)", lambda m: m.throughput),
    ("p99 Latency (ms)", lambda m: m.latency_p99_ms),
    ("p95 Latency (ms)", lambda m: m.latency_p95_ms),
    ("p90 Latency (ms)", lambda m: m.latency_p90_ms),
    ("p50 Latency (ms)", lambda m: m.latency_p50_ms),
    ("Avg Latency (ms)", lambda m: m.latency_avg_ms),
    ("Server Queue (ms)", lambda m: m.queue_ms),
    ("Server Compute Input (ms)", lambda m: m.compute_input_ms),
    ("Server Compute Infer (ms)", lambda m: m.compute_infer_ms),
    ("Server Compute Output (ms)", lambda m: m.compute_output_ms),
    ("Requests", lambda m: m.requests),
    ("Errors", lambda m: m.errors),
    ("Error", lambda m: m.error),
]


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return value


class CsvReporter:
    def write(self, measurements, ranking, export_dir: Path, context):
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow([name for name, _ in COLUMNS])
        for m in measurements:
            writer.writerow([_cell(get(m)) for _, get in COLUMNS])
        return [write_atomic(Path(export_dir) / "results" / "metrics-model-inference.csv", buf.getvalue())]


@hookimpl
def tsweep_reporters():
    return {"csv": CsvReporter()}
