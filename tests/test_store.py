"""The results store is a real SQLite file whose rows are committed one by one."""
import sqlite3

import pytest

from tsweep import modelconfig
from tsweep.records import Measurement, Variant
from tsweep.store import SCHEMA_VERSION, ResultsStore


def row(variant="m_config_0", conc=1.0, **kw):
    return Measurement(model="m", variant=variant, variant_digest="d" + variant, load_kind="concurrency",
                       load_value=conc, batch_size=1, status="ok", throughput=10.0, **kw)  # fmt: skip


def test_rows_are_visible_to_another_connection_at_once(tmp_path):
    path = tmp_path / "ck" / "results.sqlite"
    store = ResultsStore.open(path)
    store.add_variant(Variant("m", modelconfig.parse('max_batch_size: 2'), name="m_config_0"))
    store.add(row(metrics={"cpu": 1.5}, window_throughputs=[9.0, 10.0], histogram=b"\x01\x02"))
    other = sqlite3.connect(path)  # as a user's SQLite tool would
    assert other.execute("SELECT variant, throughput FROM measurements").fetchall() == [("m_config_0", 10.0)]
    assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert other.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    (back,) = store.measurements("m")
    assert back.metrics == {"cpu": 1.5} and back.window_throughputs == [9.0, 10.0] and back.histogram == b"\x01\x02"
    assert back.variant_params == {"instances": 1, "max_batch_size": 2, "dynamic_batching": False}  # read from the config
    assert store.has(back.key) and not store.has("m/x/concurrency=1/b1")
    store.close()


def test_server_baseline_keeps_the_first_one_across_reopens(tmp_path):
    path = tmp_path / "results.sqlite"
    with ResultsStore.open(path) as store:
        assert store.server_baseline() == {}
        assert store.save_server_baseline({"server_memory_mb": 120.5, "server_cpu_pct": 0.4})
        assert not store.save_server_baseline({"server_memory_mb": 999.0})  # a resumed run keeps the first
    with ResultsStore.open_existing(path) as store:
        assert store.server_baseline() == {"server_memory_mb": 120.5, "server_cpu_pct": 0.4}


#: The measurements table as tsweep 0.1 (schema version 1) created it: a noise column, no intervals.
V1_MEASUREMENTS = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE measurements (
    id INTEGER PRIMARY KEY, point_key TEXT NOT NULL UNIQUE, model TEXT NOT NULL, variant TEXT NOT NULL,
    variant_digest TEXT NOT NULL, load_kind TEXT NOT NULL, load_value REAL NOT NULL, batch_size INTEGER NOT NULL,
    status TEXT NOT NULL, throughput REAL, latency_avg_ms REAL, latency_p50_ms REAL, latency_p90_ms REAL,
    latency_p95_ms REAL, latency_p99_ms REAL, queue_ms REAL, compute_input_ms REAL, compute_infer_ms REAL,
    compute_output_ms REAL, client_send_ms REAL, client_recv_ms REAL, throughput_noise REAL, requests INTEGER NOT NULL,
    errors INTEGER NOT NULL, windows INTEGER NOT NULL, duration_s REAL NOT NULL, error TEXT NOT NULL, metrics TEXT NOT NULL,
    window_throughputs TEXT NOT NULL, window_p99s_ms TEXT NOT NULL, histogram BLOB NOT NULL,
    repeat INTEGER NOT NULL DEFAULT 0, measured_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
INSERT INTO meta VALUES ('schema_version', '1');
INSERT INTO measurements (point_key, model, variant, variant_digest, load_kind, load_value, batch_size, status,
    throughput, latency_p99_ms, throughput_noise, requests, errors, windows, duration_s, error, metrics,
    window_throughputs, window_p99s_ms, histogram)
VALUES ('m/d/concurrency=4/b1', 'm', 'm_config_0', 'd', 'concurrency', 4, 1, 'ok', 100.0, 2.0, 0.01, 300, 0, 3, 15.0,
    '', '{}', '[99.0, 100.0, 101.0]', '[1.9, 2.0, 2.1]', x'');
"""


def test_a_store_of_schema_version_1_opens_and_gets_intervals_from_its_windows(tmp_path):
    path = tmp_path / "results.sqlite"
    old = sqlite3.connect(path)
    old.executescript(V1_MEASUREMENTS)
    old.close()
    with ResultsStore.open_existing(path) as store:
        (back,) = store.measurements("m")
        assert back.throughput == 100.0 and back.windows == 3
        assert back.throughput_ci == pytest.approx(4.303 / 3**0.5)  # t(2) x sd 1 / sqrt(3)
        assert back.latency_p99_ci_ms == pytest.approx(4.303 * 0.1 / 3**0.5)
        store.add(row(conc=8.0, throughput_ci=1.5, latency_p99_ci_ms=0.2))  # new rows go into the migrated table
        assert [m.throughput_ci for m in store.measurements("m")] == [pytest.approx(4.303 / 3**0.5), 1.5]
        assert store.meta("schema_version") == str(SCHEMA_VERSION)
