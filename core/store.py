"""The results store: one SQLite file, one row per measured point, committed at once.

It is the checkpoint (a rerun skips every point already here), the input of ``analyze`` and
``report``, and a file a user can open with any SQLite tool. WAL mode and a commit per row
mean a crash or ``kill -9`` loses at most the measurement in flight.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, Optional, Tuple

from tsweep.errors import StorageError, UsageError
from tsweep.records import DISPLAYED, Measurement, Variant
from tsweep import catalogue, intervals, modelconfig

#: 1: tsweep 0.1's first store; 2: 95% intervals (throughput_ci, latency_p99_ci_ms);
#: 3: the metric catalogue's derived server_batch_avg is a column (was a key of ``metrics``);
#: 4: ``client``, which client measured the point (empty in older rows);
#: 5: ``combination``, the combination point of models measured together (empty in older rows);
#: 6: ``variants.composing``, a pipeline's composing variants as JSON (empty for single models);
#: 7: ``lane``, the lane that measured the point (empty in older rows).
SCHEMA_VERSION = 7

#: The columns that say which point a row is.
_IDENTITY = [
    ("model", "TEXT NOT NULL"), ("variant", "TEXT NOT NULL"), ("variant_digest", "TEXT NOT NULL"),
    ("load_kind", "TEXT NOT NULL"), ("load_value", "REAL NOT NULL"), ("batch_size", "INTEGER NOT NULL"),
    ("status", "TEXT NOT NULL"),
]  # fmt: skip
#: How the point was measured and what went wrong.
_BOOKKEEPING = [
    ("requests", "INTEGER NOT NULL DEFAULT 0"), ("errors", "INTEGER NOT NULL DEFAULT 0"),
    ("windows", "INTEGER NOT NULL DEFAULT 0"), ("duration_s", "REAL NOT NULL DEFAULT 0"),
    ("error", "TEXT NOT NULL DEFAULT ''"), ("repeat", "INTEGER NOT NULL DEFAULT 0"),
    ("client", "TEXT NOT NULL DEFAULT ''"), ("combination", "TEXT NOT NULL DEFAULT ''"),
    ("lane", "TEXT NOT NULL DEFAULT ''"),
]  # fmt: skip


def _metric_columns() -> List[Tuple[str, str]]:
    """A REAL column per core metric of the catalogue, and one per interval half-width."""
    found = []
    for m in catalogue.columns():
        found.append((m.name, "REAL"))
        if m.interval:
            found.append((m.interval, "REAL"))
    return found


#: Every scalar column of ``measurements``, as (name, SQL type); the row's Measurement
#: fields of the same names. The collectors' metrics, the per-window figures and the
#: histogram follow as JSON and a blob.
_TYPED = _IDENTITY + _metric_columns() + _BOOKKEEPING
_COLUMNS = [name for name, _ in _TYPED]

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS variants (
    name TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    digest TEXT NOT NULL,
    is_default INTEGER NOT NULL,
    params TEXT NOT NULL,
    config_pbtxt TEXT NOT NULL,
    composing TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS measurements (
    id INTEGER PRIMARY KEY,
    point_key TEXT NOT NULL UNIQUE,
    {", ".join(f"{name} {kind}" for name, kind in _TYPED)},
    metrics TEXT NOT NULL,
    window_throughputs TEXT NOT NULL,
    window_p99s_ms TEXT NOT NULL,
    histogram BLOB NOT NULL,
    measured_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
"""


def migrate(conn: sqlite3.Connection) -> None:
    """Bring a store written by an older tsweep to :data:`SCHEMA_VERSION`, in one transaction.

    Columns the catalogue added since are added (empty); version 2's ``server_batch_avg``,
    a key of the ``metrics`` JSON then, moves into its column. A version-1 row's intervals
    are derived when it is read (:meth:`ResultsStore._iter`), from its stored windows."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    rows = conn.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]
    version = int(row[0]) if row else (1 if rows else SCHEMA_VERSION)  # no version at all: the very first stores
    have = {r[1] for r in conn.execute("PRAGMA table_info(measurements)")}
    missing = [(name, kind) for name, kind in _TYPED if name not in have]
    variant_columns = {r[1] for r in conn.execute("PRAGMA table_info(variants)")}
    if version == SCHEMA_VERSION and not missing and row and "composing" in variant_columns:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        for name, kind in missing:
            conn.execute(f"ALTER TABLE measurements ADD COLUMN {name} {kind}")
        if "composing" not in variant_columns:
            conn.execute("ALTER TABLE variants ADD COLUMN composing TEXT NOT NULL DEFAULT ''")
        if version < 3:
            moved = conn.execute("SELECT id, metrics FROM measurements WHERE metrics LIKE '%server_batch_avg%'").fetchall()
            for rid, text in moved:
                metrics = json.loads(text)
                value = metrics.pop("server_batch_avg", None)
                conn.execute("UPDATE measurements SET server_batch_avg = ?, metrics = ? WHERE id = ?", (value, json.dumps(metrics), rid))
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _composing_json(variant: Variant) -> str:
    """A pipeline variant's composing variants, as the ``composing`` column keeps them."""
    if not variant.composing:
        return ""
    parts = [
        {"name": p.name, "model": p.model, "is_default": p.is_default, "values": dict(p.values), "config": modelconfig.dumps(p.config)}
        for p in variant.composing
    ]
    return json.dumps({"by_own_name": variant.by_own_name, "parts": parts})


def _composing_of(text: str) -> Tuple[Tuple[Variant, ...], bool]:
    if not text:
        return (), False
    data = json.loads(text)
    parts = tuple(Variant(p["model"], modelconfig.parse(p["config"]), p["values"], p["is_default"], p["name"]) for p in data["parts"])
    return parts, bool(data["by_own_name"])


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
            migrate(conn)
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
            "INSERT OR REPLACE INTO variants (name, model, digest, is_default, params, config_pbtxt, composing) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                variant.name, variant.model, variant.digest, int(variant.is_default), json.dumps(dict(variant.params)),
                modelconfig.dumps(variant.config), _composing_json(variant),
            ),
        )  # fmt: skip

    def variants(self, model: Optional[str] = None) -> List[Dict[str, object]]:
        sql = "SELECT name, model, digest, is_default, params FROM variants"
        rows = self._conn.execute(sql + (" WHERE model = ?" if model else "") + " ORDER BY rowid", (model,) if model else ())
        return [
            {"name": n, "model": m, "digest": d, "is_default": bool(i), "params": json.loads(p)} for n, m, d, i, p in rows
        ]

    def variant(self, name: str) -> Optional[Variant]:
        """The stored variant ``name`` with its config, as the search wrote it (to measure it
        again later); None when no such variant was stored."""
        row = self._conn.execute("SELECT model, is_default, params, config_pbtxt, composing FROM variants WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        model, is_default, params, text, composing = row
        parts, by_own_name = _composing_of(composing)
        own = {k: v for k, v in json.loads(params).items() if not any(k.startswith(f"{p.model}.") for p in parts)}
        values = {k: v for k, v in own.items() if k not in DISPLAYED}
        return Variant(model, modelconfig.parse(text), values, bool(is_default), name, parts, by_own_name)

    #: The meta key listing the points measured after the search (``tsweep report
    #: --complete-load-curves``), as a JSON list of point keys.
    MEASURED_LATER = "measured_later"

    def mark_measured_later(self, keys) -> None:
        """Remember that the points ``keys`` were measured after the search."""
        self.set_meta(self.MEASURED_LATER, json.dumps(sorted(self.measured_later() | set(keys))))

    def measured_later(self) -> frozenset:
        """The point keys measured after the search (empty for a store without any)."""
        return frozenset(json.loads(self.meta(self.MEASURED_LATER) or "[]"))

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

    def clients(self) -> List[str]:
        """The clients that measured the stored points (e.g. ``native http``), for the reports."""
        rows = self._conn.execute("SELECT DISTINCT client FROM measurements WHERE client != '' ORDER BY client")
        return [r[0] for r in rows]

    def count(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]
