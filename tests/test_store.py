"""The results store is a real SQLite file whose rows are committed one by one."""
import sqlite3

from tsweep import modelconfig
from tsweep.records import Measurement, Variant
from tsweep.store import ResultsStore


def row(variant="m_config_0", conc=1.0, **kw):
    return Measurement(model="m", variant=variant, variant_digest="d" + variant, load_kind="concurrency",
                       load_value=conc, batch_size=1, status="ok", throughput=10.0, **kw)  # fmt: skip


def test_rows_are_visible_to_another_connection_at_once(tmp_path):
    path = tmp_path / "ck" / "results.sqlite"
    store = ResultsStore.open(path)
    store.add_variant(Variant("m", modelconfig.parse('max_batch_size: 2'), {"max_batch_size": 2}, name="m_config_0"))
    store.add(row(metrics={"cpu": 1.5}, window_throughputs=[9.0, 10.0], histogram=b"\x01\x02"))
    other = sqlite3.connect(path)  # as a user's SQLite tool would
    assert other.execute("SELECT variant, throughput FROM measurements").fetchall() == [("m_config_0", 10.0)]
    assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert other.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    (back,) = store.measurements("m")
    assert back.metrics == {"cpu": 1.5} and back.window_throughputs == [9.0, 10.0] and back.histogram == b"\x01\x02"
    assert back.variant_params == {"max_batch_size": 2}
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
