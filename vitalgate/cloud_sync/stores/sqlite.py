"""An embedded SQLite reading store, for a single home or the demo.

One table, ``readings``, keyed by ``reading_id`` (so a re-delivered reading overwrites itself),
indexed on ``(patient, kind, measured_at_ns)`` for range queries. Values are kept as one orjson
object per row (every kind has different value fields); ``flags`` as the schema's bitmask.

The database runs in WAL mode with ``synchronous=NORMAL``: a committed write survives a crash
of the process; after a power loss the last transactions before the crash may be lost (the
ingest acknowledges MQTT messages only after ``write`` returns, so the broker re-delivers them).
Pass ``synchronous="FULL"`` to survive power loss as well. The database file and its ``-wal``
and ``-shm`` companions are created with mode 0600 (SQLite gives its companions the database
file's mode).

Thread-safety: one connection guarded by a lock; ``write`` is meant to run in
``asyncio.to_thread`` while readers use the same store from other threads.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Literal

import orjson

from vitalgate.cloud_sync.store import DeviceLatest, ReadingSeries, StoredReading
from vitalgate.cloud_sync.stores.base import (
    FlagCodec,
    StoreRejectedError,
    StoreUnavailableError,
    build_series,
    datetime_to_ns,
    default_flag_codec,
    ns_to_datetime,
    to_utc_ns,
)
from vitalgate.readings import ReadingKind

__all__ = ["SqliteStore"]

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
"""

_UPSERT = """
INSERT INTO readings
    (reading_id, kind, patient, gateway, device, measured_at_ns, values_json, flags)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (reading_id) DO UPDATE SET
    kind = excluded.kind, patient = excluded.patient, gateway = excluded.gateway,
    device = excluded.device, measured_at_ns = excluded.measured_at_ns,
    values_json = excluded.values_json, flags = excluded.flags
"""


class SqliteStore:
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
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    self._conn.executemany(_UPSERT, rows)
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except (sqlite3.IntegrityError, OverflowError) as exc:
                raise StoreRejectedError(f"SQLite refused the batch: {exc}") from exc
            except sqlite3.Error as exc:
                raise StoreUnavailableError(f"SQLite write failed: {exc}") from exc

    def _fetch(self, sql: str, params: Sequence[object]) -> list[tuple[object, ...]]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreUnavailableError(f"SQLite query failed: {exc}") from exc

    def query(
        self, patient_id: str, kind: ReadingKind, start: datetime, end: datetime
    ) -> ReadingSeries:
        kind = ReadingKind(kind)
        rows = self._fetch(
            "SELECT measured_at_ns, reading_id, device, values_json, flags FROM readings"
            " WHERE patient = ? AND kind = ? AND measured_at_ns >= ? AND measured_at_ns < ?"
            " ORDER BY measured_at_ns, reading_id",
            (patient_id, str(kind), to_utc_ns(start, "start"), to_utc_ns(end, "end")),
        )
        times: list[int] = []
        ids: list[str] = []
        devices: list[str] = []
        flags: list[frozenset[str]] = []
        columns: dict[str, list[float | None]] = {}
        loads = orjson.loads
        decode_flags = self._codec.flags
        for i, (t, rid, device, values_json, mask) in enumerate(rows):
            times.append(int(t))  # type: ignore[call-overload]
            ids.append(str(rid))
            devices.append(str(device))
            flags.append(decode_flags(int(mask)))  # type: ignore[call-overload]
            values: dict[str, float] = loads(values_json)  # type: ignore[arg-type]
            for name, value in values.items():
                column = columns.get(name)
                if column is None:
                    column = columns[name] = [None] * i
                column.append(value)
            for column in columns.values():
                if len(column) == i:
                    column.append(None)
        return build_series(
            kind, patient_id, times, columns, reading_ids=ids, device_ids=devices, flags=flags
        )

    def patients(self) -> list[str]:
        return [str(p) for (p,) in self._fetch("SELECT DISTINCT patient FROM readings", ())]

    def latest(self, patient_id: str) -> list[DeviceLatest]:
        rows = self._fetch(
            "SELECT kind, device, gateway, MAX(measured_at_ns) FROM readings"
            " WHERE patient = ? GROUP BY kind, device ORDER BY kind, device",
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
            self._conn.close()
