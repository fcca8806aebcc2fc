"""An embedded SQLite reading store, for a single home or the demo.

One table, ``readings``, keyed by ``reading_id`` (so a re-delivered reading overwrites itself),
indexed on ``(patient, kind, measured_at_ns)`` for range queries; a small ``device_latest``
table, kept in the same write transaction, answers "the newest reading per device". Values are
kept as one orjson object per row (every kind has different value fields); ``flags`` as the
schema's bitmask.

The database runs in WAL mode with ``synchronous=NORMAL``: a committed write survives a crash
of the process; after a power loss the last transactions before the crash may be lost (the
ingest acknowledges MQTT messages only after ``write`` returns, so the broker re-delivers them).
Pass ``synchronous="FULL"`` to survive power loss as well. The database file and its ``-wal``
and ``-shm`` companions are created with mode 0600 (SQLite gives its companions the database
file's mode).

Range reads parse every row's values with one orjson call over the joined objects. The
downsampled read (``downsample``) is one SQL statement: a ``GROUP BY`` over integer time buckets
and, when quantiles are asked for, a histogram of the values from which the order statistics
are read exactly.

Thread-safety: writes go through one connection guarded by a lock (``write`` is meant to run
in ``asyncio.to_thread``); reads take a connection of their own from a small pool (WAL lets
readers run beside each other and beside the writer), so the dashboard's concurrent reads of
one page run side by side, each seeing every write committed before it began. An in-memory
store (``:memory:``) has one connection for everything.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import queue
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Literal, cast

import numpy as np
import orjson

from vitalgate.cloud_sync.store import BinnedSeries, DeviceLatest, ReadingSeries, StoredReading
from vitalgate.cloud_sync.stores.base import (
    FlagCodec,
    OneFieldFromMany,
    StoreRejectedError,
    StoreUnavailableError,
    binned_from_rows,
    check_downsample_fields,
    datetime_to_ns,
    default_flag_codec,
    empty_binned,
    ns_to_datetime,
    quantile_ranks,
    quantile_value,
    to_utc_ns,
)
from vitalgate.readings import ReadingKind

__all__ = ["SqliteStore"]

#: Read connections a store opens at most (the dashboard reads a page on 4 threads).
MAX_READERS = 4

_SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    reading_id     TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,
    patient        TEXT NOT NULL,
    gateway        TEXT NOT NULL,
    device         TEXT NOT NULL,
    measured_at_ns INTEGER NOT NULL,
    values_json    BLOB NOT NULL,
    flags          INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS readings_patient_kind_time
    ON readings (patient, kind, measured_at_ns);
CREATE TABLE IF NOT EXISTS device_latest (
    patient        TEXT NOT NULL,
    kind           TEXT NOT NULL,
    device         TEXT NOT NULL,
    gateway        TEXT NOT NULL,
    measured_at_ns INTEGER NOT NULL,
    PRIMARY KEY (patient, kind, device)
);
"""

# The newest reading per (patient, kind, device), kept by ``write`` in the same transaction, so
# ``latest`` reads a handful of rows instead of grouping all of a patient's readings.
_LATEST_UPSERT = """
INSERT INTO device_latest (patient, kind, device, gateway, measured_at_ns) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (patient, kind, device) DO UPDATE SET
    gateway = excluded.gateway, measured_at_ns = excluded.measured_at_ns
WHERE excluded.measured_at_ns >= device_latest.measured_at_ns
"""
# Fills ``device_latest`` once for a database written before it existed.
_LATEST_BACKFILL = """
INSERT OR IGNORE INTO device_latest (patient, kind, device, gateway, measured_at_ns)
SELECT patient, kind, device, gateway, MAX(measured_at_ns) FROM readings
GROUP BY patient, kind, device
"""

# The downsampled read of k fields. ``selected`` is the (time - offset, value of each field) of
# each reading in range without an excluded flag; each field comes out of the JSON object once
# per row (SQLite 3.40 takes JSON as text only). Bins are a GROUP BY over integer time buckets
# (floor division that stays right before the offset: SQL's % truncates toward zero), with
# AVG/MIN/MAX/COUNT of each field (kind 0 rows). A field with quantiles adds the histogram of its
# values (kind 1 + its index) to the same statement, from which the order statistics are read
# exactly.
_SELECTED = """
    SELECT measured_at_ns - :offset_ns AS t, {values}
    FROM readings
    WHERE patient = :patient AND kind = :kind
      AND measured_at_ns >= :start_ns AND measured_at_ns < :end_ns
      AND (flags & :exclude) = 0
"""


@functools.cache
def _downsample_sql(k: int, histograms: tuple[int, ...]) -> str:
    """The statement for ``k`` fields (parameters ``:path0`` ..), histograms of those listed."""
    values = ", ".join(
        f"json_extract(CAST(values_json AS TEXT), :path{i}) AS v{i}" for i in range(k)
    )
    selected = _SELECTED.format(values=values)
    aggregates = ", ".join(f"AVG(v{i}), MIN(v{i}), MAX(v{i}), COUNT(v{i})" for i in range(k))
    any_value = " OR ".join(f"v{i} IS NOT NULL" for i in range(k))
    bins = f"SELECT 0, t - ((t % :bin_ns) + :bin_ns) % :bin_ns AS b, {aggregates}"
    if not histograms:
        # LIMIT -1 keeps SQLite from flattening the subquery, which would extract a field once
        # per aggregate instead of once per row.
        return f"{bins} FROM ({selected} LIMIT -1) WHERE {any_value} GROUP BY b ORDER BY b"
    # Used more than once, the CTE is materialized (SQLite >= 3.35 does so unasked; the keyword
    # MATERIALIZED would be a syntax error before 3.35): each field is extracted once per row.
    padding = ", NULL" * (4 * k - 4)
    parts = [f"{bins} FROM selected WHERE {any_value} GROUP BY b"]
    parts += [
        f"SELECT {1 + i}, NULL, v{i}, NULL, NULL, COUNT(*){padding}"
        f" FROM selected WHERE v{i} IS NOT NULL GROUP BY v{i}"
        for i in histograms
    ]
    return f"WITH selected AS ({selected}) " + " UNION ALL ".join(parts) + " ORDER BY 1, 2, 3"


_UPSERT = """
INSERT INTO readings
    (reading_id, kind, patient, gateway, device, measured_at_ns, values_json, flags)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (reading_id) DO UPDATE SET
    kind = excluded.kind, patient = excluded.patient, gateway = excluded.gateway,
    device = excluded.device, measured_at_ns = excluded.measured_at_ns,
    values_json = excluded.values_json, flags = excluded.flags
"""


class SqliteStore(OneFieldFromMany):
    """The :class:`~vitalgate.cloud_sync.store.ReadingStore` in one SQLite file."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        flag_codec: FlagCodec | None = None,
    ) -> None:
        self.path = Path(path)
        self._codec = flag_codec if flag_codec is not None else default_flag_codec()
        self._lock = threading.Lock()
        self._idle_readers: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._readers: list[sqlite3.Connection] = []
        self._closed = False
        try:
            if str(self.path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # Create the file 0600 before SQLite opens it; its -wal/-shm follow this mode.
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                os.close(fd)
            self._conn = sqlite3.connect(
                str(self.path), check_same_thread=False, isolation_level=None, timeout=30.0
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(f"PRAGMA synchronous={synchronous}")
            self._conn.executescript(_SCHEMA)
            if self._conn.execute("SELECT 1 FROM device_latest LIMIT 1").fetchone() is None:
                self._conn.execute(_LATEST_BACKFILL)
        except (OSError, sqlite3.Error) as exc:
            raise StoreUnavailableError(f"cannot open SQLite store {self.path}: {exc}") from exc

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    def write(self, readings: Sequence[StoredReading]) -> None:
        mask = self._codec.mask
        dumps = orjson.dumps
        rows = [
            (
                r.reading_id,
                str(r.kind),
                r.patient_id,
                r.gateway_id,
                r.device_id,
                datetime_to_ns(r.measured_at),
                dumps(r.values),
                mask(r.flags) if r.flags else 0,
            )
            for r in readings
        ]
        newest: dict[tuple[object, object, object], tuple[object, ...]] = {}
        for row in rows:
            key = (row[2], row[1], row[4])  # patient, kind, device
            have = newest.get(key)
            if have is None or row[5] >= have[4]:  # type: ignore[operator]
                newest[key] = (row[2], row[1], row[4], row[3], row[5])
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    self._conn.executemany(_UPSERT, rows)
                    self._conn.executemany(_LATEST_UPSERT, newest.values())
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except (sqlite3.IntegrityError, OverflowError) as exc:
                raise StoreRejectedError(f"SQLite refused the batch: {exc}") from exc
            except sqlite3.Error as exc:
                raise StoreUnavailableError(f"SQLite write failed: {exc}") from exc

    def _fetch(
        self, sql: str, params: Sequence[object] | Mapping[str, object]
    ) -> list[tuple[object, ...]]:
        if str(self.path) == ":memory:":
            with self._lock:
                try:
                    return self._conn.execute(sql, params).fetchall()
                except sqlite3.Error as exc:
                    raise StoreUnavailableError(f"SQLite query failed: {exc}") from exc
        conn = self._take_reader()
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"SQLite query failed: {exc}") from exc
        finally:
            self._idle_readers.put(conn)

    def _take_reader(self) -> sqlite3.Connection:
        """An idle read connection; a new one while fewer than MAX_READERS are open."""
        try:
            return self._idle_readers.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._closed:
                raise StoreUnavailableError(f"SQLite store {self.path} is closed")
            if len(self._readers) < MAX_READERS:
                try:
                    conn = sqlite3.connect(
                        str(self.path), check_same_thread=False, isolation_level=None, timeout=30.0
                    )
                    conn.execute("PRAGMA query_only = ON")
                except sqlite3.Error as exc:
                    raise StoreUnavailableError(
                        f"cannot open SQLite store {self.path}: {exc}"
                    ) from exc
                self._readers.append(conn)
                return conn
        try:
            return self._idle_readers.get(timeout=60.0)
        except queue.Empty:
            raise StoreUnavailableError("SQLite store: no read connection came free") from None

    def query(
        self,
        patient_id: str,
        kind: ReadingKind,
        start: datetime,
        end: datetime,
        *,
        reading_ids: bool = True,
    ) -> ReadingSeries:
        kind = ReadingKind(kind)
        rows = self._fetch(
            f"SELECT measured_at_ns, {'reading_id' if reading_ids else 'NULL'}, device,"
            " values_json, flags FROM readings"
            " WHERE patient = ? AND kind = ? AND measured_at_ns >= ? AND measured_at_ns < ?"
            " ORDER BY measured_at_ns, reading_id",
            (patient_id, str(kind), to_utc_ns(start, "start"), to_utc_ns(end, "end")),
        )
        if not rows:
            return ReadingSeries(
                kind=kind, patient_id=patient_id, times_ns=np.empty(0, np.int64), values={}
            )
        times, ids, devices, blobs, masks = zip(*rows, strict=True)
        # One JSON document for all rows: one orjson call, then one list per field.
        objects: list[dict[str, float | None]] = orjson.loads(
            b"[" + b",".join(b if isinstance(b, bytes) else str(b).encode() for b in blobs) + b"]"
        )
        names = dict.fromkeys(itertools.chain.from_iterable(objects))
        mask = np.array(masks, dtype=np.int64)
        unique, inverse = np.unique(mask, return_inverse=True)
        decoded = [self._codec.flags(int(m)) for m in unique.tolist()]
        return ReadingSeries(
            kind=kind,
            patient_id=patient_id,
            times_ns=np.array(times, dtype=np.int64),
            values={
                name: np.array([o.get(name) for o in objects], dtype=np.float64) for name in names
            },
            reading_ids=tuple(str(r) for r in ids) if reading_ids else (),
            device_ids=tuple(str(d) for d in devices),
            flags=tuple(map(decoded.__getitem__, inverse.reshape(-1).tolist())),
        )

    def downsample_fields(
        self,
        patient_id: str,
        kind: ReadingKind,
        fields: Sequence[str],
        start: datetime,
        end: datetime,
        *,
        bin_s: int,
        offset_s: int = 0,
        exclude_flags: Iterable[str] = (),
        quantiles: Mapping[str, Sequence[float]] | None = None,
    ) -> dict[str, BinnedSeries]:
        """The downsampled read as one SQL ``GROUP BY`` over integer time buckets."""
        kind = ReadingKind(kind)
        every = check_downsample_fields(
            fields, start, end, bin_s=bin_s, offset_s=offset_s, quantiles=quantiles
        )
        args = every[0]  # the range and the bins are the same for every field
        params: dict[str, object] = {
            "patient": patient_id,
            "kind": str(kind),
            "start_ns": args.start_ns,
            "end_ns": args.end_ns,
            "offset_ns": args.offset_ns,
            "bin_ns": args.bin_ns,
            "exclude": self._codec.query_mask(exclude_flags),
        }
        params.update({f"path{i}": f"$.{a.field}" for i, a in enumerate(every)})
        histograms = tuple(i for i, a in enumerate(every) if a.quantiles)
        rows = self._fetch(_downsample_sql(len(every), histograms), params)
        n_bins = next((i for i, row in enumerate(rows) if row[0] != 0), len(rows))
        bin_rows, histogram_rows = rows[:n_bins], rows[n_bins:]
        out: dict[str, BinnedSeries] = {}
        for i, field_args in enumerate(every):
            at = 2 + 4 * i
            offset_ns = field_args.offset_ns  # the SQL bins are relative to the offset
            mine = [
                (cast(int, row[1]) + offset_ns, *row[at : at + 4])
                for row in bin_rows
                if row[at + 3]
            ]
            if not mine:
                nan = {q: math.nan for q in field_args.quantiles}
                out[field_args.field] = empty_binned(kind, patient_id, field_args, nan)
                continue
            found: dict[float, float] = {}
            if field_args.quantiles:
                histogram = np.array(
                    [(row[2], row[5]) for row in histogram_rows if row[0] == 1 + i],
                    dtype=np.float64,
                )
                values = histogram[:, 0]
                cumulative = np.cumsum(histogram[:, 1].astype(np.int64))
                n = int(cumulative[-1])
                for q in field_args.quantiles:
                    first, last, t = quantile_ranks(n, q)
                    a, b = values[np.searchsorted(cumulative, [first, last], side="right")]
                    found[q] = quantile_value(float(a), float(b), t)
            out[field_args.field] = binned_from_rows(kind, patient_id, field_args, mine, found)
        return out

    def count_flagged(
        self, patient_id: str, kind: ReadingKind, flag: str, start: datetime, end: datetime
    ) -> dict[str, int]:
        rows = self._fetch(
            "SELECT device, COUNT(*) FROM readings WHERE patient = ? AND kind = ?"
            " AND measured_at_ns >= ? AND measured_at_ns < ? AND (flags & ?) != 0"
            " GROUP BY device ORDER BY device",
            (
                patient_id,
                str(ReadingKind(kind)),
                to_utc_ns(start, "start"),
                to_utc_ns(end, "end"),
                self._codec.query_mask((flag,)),
            ),
        )
        return {str(device): int(n) for device, n in rows}  # type: ignore[call-overload]

    def patients(self) -> list[str]:
        return [str(p) for (p,) in self._fetch("SELECT DISTINCT patient FROM readings", ())]

    def latest(self, patient_id: str) -> list[DeviceLatest]:
        rows = self._fetch(
            "SELECT kind, device, gateway, measured_at_ns FROM device_latest"
            " WHERE patient = ? ORDER BY kind, device",
            (patient_id,),
        )
        return [
            DeviceLatest(
                patient_id=patient_id,
                kind=ReadingKind(str(kind)),
                device_id=str(device),
                gateway_id=str(gateway),
                measured_at=ns_to_datetime(int(t)),  # type: ignore[call-overload]
            )
            for kind, device, gateway, t in rows
        ]

    def count(self) -> int:
        """The number of stored readings (for tests and operators)."""
        ((n,),) = self._fetch("SELECT COUNT(*) FROM readings", ())
        assert isinstance(n, int)
        return n

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for conn in self._readers:
                conn.close()
            self._readers.clear()
            self._conn.close()
