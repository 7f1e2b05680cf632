"""The metric catalogue is the one declaration of every metric: what lists metrics follows it."""
import dataclasses
import shutil
import sqlite3
from pathlib import Path
from typing import Optional

import pytest

from tsweep import catalogue, repeats
from tsweep.catalogue import Catalogue
from tsweep.pluginmanager import make_plugin_manager
from tsweep.plugins.reporters.csv_export import inference_csv
from tsweep.records import COUNT, INTERVAL, MAX, MEAN, Measurement, MetricInfo
from tsweep.store import SCHEMA_VERSION, ResultsStore

FIXTURES = Path(__file__).parent / "fixtures"


def float_fields():
    return {f.name for f in dataclasses.fields(Measurement) if f.type in ("Optional[float]", Optional[float])}


def test_every_core_metric_is_a_measurement_field_and_back():
    core = {m.name for m in catalogue.CORE}
    intervals = {m.interval for m in catalogue.CORE if m.interval}
    assert float_fields() == core | intervals


def test_the_store_and_the_csv_have_a_column_per_core_metric(tmp_path):
    with ResultsStore.open(tmp_path / "r.sqlite") as store:
        columns = {row[1] for row in store._conn.execute("PRAGMA table_info(measurements)")}
    for m in catalogue.CORE:
        assert m.name in columns and (m.interval is None or m.interval in columns)
    header = inference_csv([]).splitlines()[0]
    for m in catalogue.CORE:
        assert m.csv_title in header
        if m.interval:
            assert m.interval_title in header


def test_the_built_in_collectors_describe_their_metrics_once_and_titles_come_from_there():
    infos = make_plugin_manager().metric_infos()
    names = [i.name for i in infos]
    assert len(names) == len(set(names))
    known = Catalogue(infos)
    assert not set(names) & {m.name for m in (*catalogue.CORE, *catalogue.DERIVED)}
    assert known.heading("server_memory_mb") == "Server RAM (RSS) (MB)"
    assert known["server_memory_mb"].looks == MAX  # a peak: the highest look
    assert known.heading("made_up") == "made_up"
    assert "looks" not in known.rankable() and "throughput" in known.rankable()


def test_a_plugin_cannot_redefine_a_core_metric():
    known = Catalogue([MetricInfo("throughput", "req/min", False, "Mine")])
    assert known["throughput"].unit == "infer/s"


def look(throughput, ci, memory, cpu, repeat, batch=1.0):
    return Measurement("m", "v", "d", "concurrency", 4, 1, "ok", throughput=throughput, throughput_ci=ci,
                       latency_p99_ms=2.0, latency_p99_ci_ms=0.1, server_batch_avg=batch,
                       metrics={"server_memory_mb": memory, "server_cpu_pct": cpu}, repeat=repeat)  # fmt: skip


def test_looks_combine_by_each_metrics_own_rule():
    known = Catalogue(make_plugin_manager().metric_infos())
    merged = repeats.combine([look(100.0, 10.0, 300.0, 80.0, 0, 1.0), look(110.0, 10.0, 320.0, 100.0, 1, 2.0)], known)
    assert merged.throughput == pytest.approx(105.0) and merged.throughput_ci < 10.0  # INTERVAL
    assert merged.server_batch_avg == pytest.approx(1.5)  # MEAN
    assert merged.metrics["server_memory_mb"] == 320.0  # MAX: a peak
    assert merged.metrics["server_cpu_pct"] == pytest.approx(90.0)  # MEAN
    assert merged.looks == 2
    assert [known.combine_rule(n) for n in ("throughput", "server_batch_avg", "looks", "gpu/GPU-1/memory_used_mb")] == [INTERVAL, MEAN, COUNT, MAX]  # per GPU: as gpu_memory_used_mb


def test_a_store_written_by_schema_2_opens_and_reads_back(tmp_path):
    """tests/fixtures/store-schema2.sqlite was written by tsweep 0.1 (schema 2, commit 36065ef);
    server_batch_avg lived in the metrics JSON then and is a column now."""
    path = tmp_path / "results.sqlite"
    shutil.copy(FIXTURES / "store-schema2.sqlite", path)
    with ResultsStore.open_existing(path) as store:
        rows = store.measurements("add_sub")
        assert store.meta("schema_version") == str(SCHEMA_VERSION)
        assert len(rows) == 5 and [r.status for r in rows].count("failed") == 1
        first = rows[0]
        assert first.throughput == 1445.1 and first.throughput_ci == 267.6 and first.latency_p99_ci_ms == 0.5
        assert first.server_batch_avg == 1.0 and "server_batch_avg" not in first.metrics
        assert first.metrics == {"server_cpu_pct": 80.0, "server_memory_mb": 300.0}
        assert rows[3].repeat == 1 and rows[3].server_batch_avg == 1.8
        assert store.server_baseline() == {"server_cpu_pct": 1.5, "server_memory_mb": 210.0}
        assert [v["name"] for v in store.variants("add_sub")] == ["add_sub_config_default", "add_sub_config_0"]
        store.add(dataclasses.replace(first, load_value=8.0, id=None))  # the migrated table takes new rows
        assert store.measurements("add_sub")[-1].server_batch_avg == 1.0
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT COUNT(*) FROM measurements WHERE metrics LIKE '%server_batch_avg%'").fetchone() == (0,)
    raw.close()
