"""The results store: one SQLite file, one row per measured point, committed at once.

It is the checkpoint (a rerun skips every point already here), the input of ``analyze`` and
``report``, and a file a user can open with any SQLite tool. WAL mode and a commit per row
mean a crash or ``kill -9`` loses at most the measurement in flight.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, Optional

from tsweep.errors import StorageError, UsageError
from tsweep.records import Measurement, Variant
from tsweep import intervals, modelconfig

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS variants (
    name TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    digest TEXT NOT NULL,
    is_default INTEGER NOT NULL,
    params TEXT NOT NULL,
    config_pbtxt TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS measurements (
    id INTEGER PRIMARY KEY,
    point_key TEXT NOT NULL UNIQUE,
    model TEXT NOT NULL,
    variant TEXT NOT NULL,
    variant_digest TEXT NOT NULL,
    load_kind TEXT NOT NULL,
    load_value REAL NOT NULL,
    batch_size INTEGER NOT NULL,
    status TEXT NOT NULL,
    throughput REAL,
    latency_avg_ms REAL,
    latency_p50_ms REAL,
    latency_p90_ms REAL,
    latency_p95_ms REAL,
    latency_p99_ms REAL,
    queue_ms REAL,
    compute_input_ms REAL,
    compute_infer_ms REAL,
    compute_output_ms REAL,
    client_send_ms REAL,
    client_recv_ms REAL,
    throughput_ci REAL,
    latency_p99_ci_ms REAL,
    requests INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    windows INTEGER NOT NULL,
    duration_s REAL NOT NULL,
    error TEXT NOT NULL,
    metrics TEXT NOT NULL,
    window_throughputs TEXT NOT NULL,
    window_p99s_ms TEXT NOT NULL,
    histogram BLOB NOT NULL,
    repeat INTEGER NOT NULL DEFAULT 0,
    measured_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
"""

_COLUMNS = [
    "model", "variant", "variant_digest", "load_kind", "load_value", "batch_size", "status",
    "throughput", "latency_avg_ms", "latency_p50_ms", "latency_p90_ms", "latency_p95_ms",
    "latency_p99_ms", "queue_ms", "compute_input_ms", "compute_infer_ms", "compute_output_ms",
    "client_send_ms", "client_recv_ms", "throughput_ci", "latency_p99_ci_ms", "requests", "errors", "windows", "duration_s", "error",
    "repeat",
]  # fmt: skip


class ResultsStore:
    """Open with :meth:`open` (creates the file) or :meth:`open_existing` (for analyze/report)."""

    def __init__(self, conn: sqlite3.Connection, path: Path):
        self._conn = conn
        self.path = path

    @classmethod
    def open(cls, path: Path) -> "ResultsStore":
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), isolation_level=None, timeout=30)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(measurements)")}
            if "repeat" not in columns:  # a store written before re-measurement existed
                conn.execute("ALTER TABLE measurements ADD COLUMN repeat INTEGER NOT NULL DEFAULT 0")
            for name in ("throughput_ci", "latency_p99_ci_ms"):  # version 1 had no intervals
                if name not in columns:
                    conn.execute(f"ALTER TABLE measurements ADD COLUMN {name} REAL")
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        except sqlite3.OperationalError as exc:
            conn.close()
            raise StorageError(f"cannot set up the results store {path}: {exc}: choose another --checkpoint-directory or free space") from None
        return cls(conn, path)

    @classmethod
    def open_existing(cls, path: Path) -> "ResultsStore":
        if not path.is_file():
            raise UsageError(f"no results store at {path}: run 'tsweep profile' first or point --checkpoint-directory at its folder")
        return cls.open(path)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "ResultsStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # facts about the run --------------------------------------------------------------
    def set_meta(self, key: str, value: str) -> None:
        """Remember one fact about the run (e.g. the machine it measured on) for later commands."""
        self._conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def meta(self, key: str) -> Optional[str]:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    # variants -------------------------------------------------------------------------
    def _write(self, sql: str, params) -> sqlite3.Cursor:
        """One committed write; a full or read-only disk is the user's to fix, not a bug."""
        try:
            return self._conn.execute(sql, params)
        except sqlite3.OperationalError as exc:
            if any(word in str(exc) for word in ("full", "readonly", "disk I/O")):
                raise StorageError(
                    f"cannot write the results store {self.path}: {exc}; the points stored so far are intact: free space, then rerun to resume"
                ) from None
            raise

    def add_variant(self, variant: Variant) -> None:
        self._write(
            "INSERT OR REPLACE INTO variants VALUES (?, ?, ?, ?, ?, ?)",
            (variant.name, variant.model, variant.digest, int(variant.is_default), json.dumps(dict(variant.params)), modelconfig.dumps(variant.config)),
        )

    def variants(self, model: Optional[str] = None) -> List[Dict[str, object]]:
        sql = "SELECT name, model, digest, is_default, params FROM variants"
        rows = self._conn.execute(sql + (" WHERE model = ?" if model else "") + " ORDER BY rowid", (model,) if model else ())
        return [
            {"name": n, "model": m, "digest": d, "is_default": bool(i), "params": json.loads(p)} for n, m, d, i, p in rows
        ]

    # measurements ---------------------------------------------------------------------
    def add(self, m: Measurement) -> int:
        """Insert one measurement and commit it (autocommit); returns its row id."""
        values = [getattr(m, c) for c in _COLUMNS]
        cur = self._write(
            f"INSERT INTO measurements (point_key, {', '.join(_COLUMNS)}, metrics, window_throughputs, window_p99s_ms, histogram) "
            f"VALUES (?, {', '.join('?' * len(_COLUMNS))}, ?, ?, ?, ?)",
            [m.key, *values, json.dumps(m.metrics), json.dumps(m.window_throughputs), json.dumps(m.window_p99s_ms), m.histogram],
        )
        m.id = cur.lastrowid
        return m.id

    def has(self, point_key: str) -> bool:
        return self._conn.execute("SELECT 1 FROM measurements WHERE point_key = ?", (point_key,)).fetchone() is not None

    def measurements(self, model: Optional[str] = None) -> List[Measurement]:
        return list(self._iter(model))

    def _iter(self, model: Optional[str]) -> Iterator[Measurement]:
        cols = ", ".join(["id", *_COLUMNS, "metrics", "window_throughputs", "window_p99s_ms", "histogram"])
        sql = f"SELECT {cols} FROM measurements" + (" WHERE model = ?" if model else "") + " ORDER BY id"
        params = {v["name"]: v["params"] for v in self.variants(model)}
        for row in self._conn.execute(sql, (model,) if model else ()):
            rid, *values, metrics, windows, p99s, hist = row
            m = Measurement(**dict(zip(_COLUMNS, values)))
            m.id = rid
            m.metrics = json.loads(metrics)
            m.window_throughputs = json.loads(windows)
            m.window_p99s_ms = json.loads(p99s)
            m.histogram = bytes(hist)
            if m.status != "failed" and m.throughput_ci is None and m.latency_p99_ci_ms is None:
                # a row of schema version 1: its intervals from the per-window figures it kept
                if m.window_throughputs:
                    m.throughput_ci = intervals.of_values(m.window_throughputs).half_width
                if m.window_p99s_ms:
                    m.latency_p99_ci_ms = intervals.of_values(m.window_p99s_ms).half_width
            m.variant_params = dict(params.get(m.variant, {}))
            yield m

    # the server-only baseline ------------------------------------------------------------
    def save_server_baseline(self, metrics: Mapping[str, float]) -> bool:
        """Keep the idle server's metrics; returns False when a baseline is already stored.

        The first baseline is kept: like every measured point, it is not measured again when
        a run resumes, and it stays the reference for the rows measured alongside it.
        """
        cur = self._write("INSERT OR IGNORE INTO meta VALUES ('server_baseline', ?)", (json.dumps(dict(metrics)),))
        return cur.rowcount == 1

    def server_baseline(self) -> Dict[str, float]:
        """The stored baseline, ``{}`` when none was sampled (no collectors, older store)."""
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'server_baseline'").fetchone()
        return json.loads(row[0]) if row else {}

    def count(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]
