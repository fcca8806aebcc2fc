"""A small SQLite store of clinical alerts for the dashboard (list, acknowledge).

Alerts arrive from the gateways on ``vitalgate/v1/<gateway_id>/alerts``
(:func:`vitalgate.gateway.alerts.decode_alert_message`); whoever subscribes calls
:meth:`AlertStore.record_payload` (or :meth:`AlertStore.upsert`). An alert is keyed by its stable
``alert_id``: an update (more readings, a deeper episode, its end) overwrites the record but keeps
an acknowledgement. The file is created with mode 0600 (it holds health data).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from vitalgate.errors import StoreError
from vitalgate.gateway.alerts import Alert, AlertRule, Severity, decode_alert_message

__all__ = ["AlertRecord", "AlertStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    alert_id        TEXT PRIMARY KEY,
    patient         TEXT NOT NULL,
    gateway         TEXT NOT NULL,
    rule            TEXT NOT NULL,
    severity        TEXT NOT NULL,
    first_at_us     INTEGER NOT NULL,
    last_at_us      INTEGER NOT NULL,
    value           REAL NOT NULL,
    unit            TEXT NOT NULL,
    summary         TEXT NOT NULL,
    count           INTEGER NOT NULL,
    device          TEXT NOT NULL,
    ended           INTEGER NOT NULL,
    acked_by        TEXT,
    acked_at_us     INTEGER
);
CREATE INDEX IF NOT EXISTS alerts_patient_time ON alerts (patient, last_at_us);
"""

_UPSERT = """
INSERT INTO alerts (alert_id, patient, gateway, rule, severity, first_at_us, last_at_us, value,
                    unit, summary, count, device, ended)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (alert_id) DO UPDATE SET
    severity = excluded.severity, first_at_us = MIN(first_at_us, excluded.first_at_us),
    last_at_us = MAX(last_at_us, excluded.last_at_us), value = excluded.value,
    summary = excluded.summary, count = MAX(count, excluded.count),
    ended = MAX(ended, excluded.ended)
"""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


def _us(when: datetime) -> int:
    return (when - _EPOCH) // _ONE_US


def _dt(us: int) -> datetime:
    return datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000)


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """An alert as the dashboard lists it."""

    alert: Alert
    gateway_id: str
    acked_by: str | None
    acked_at: datetime | None

    @property
    def open(self) -> bool:
        return self.acked_by is None


class AlertStore:
    """Alerts in one SQLite file; safe to share between threads."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            if str(self.path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
                os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            self._conn = sqlite3.connect(
                str(self.path), check_same_thread=False, isolation_level=None, timeout=30.0
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open alert store {self.path}: {exc}") from exc

    def upsert(self, alert: Alert, gateway_id: str) -> None:
        row = (
            alert.alert_id,
            alert.patient_id,
            gateway_id,
            str(alert.rule),
            str(alert.severity),
            _us(alert.first_at),
            _us(alert.last_at),
            alert.value,
            alert.unit,
            alert.summary,
            alert.count,
            alert.device_id,
            int(alert.ended),
        )
        with self._lock:
            try:
                self._conn.execute(_UPSERT, row)
            except sqlite3.Error as exc:
                raise StoreError(f"alert store write failed: {exc}") from exc

    def record_payload(self, payload: bytes) -> Alert:
        """Decode an alerts-topic payload and store it; raises SchemaError for bad payloads."""
        gateway_id, alert = decode_alert_message(payload)
        self.upsert(alert, gateway_id)
        return alert

    def acknowledge(self, alert_id: str, username: str, at: datetime) -> bool:
        """Mark an alert acknowledged; False when unknown or already acknowledged."""
        with self._lock:
            try:
                cur = self._conn.execute(
                    "UPDATE alerts SET acked_by = ?, acked_at_us = ?"
                    " WHERE alert_id = ? AND acked_by IS NULL",
                    (username, _us(at), alert_id),
                )
            except sqlite3.Error as exc:
                raise StoreError(f"alert store write failed: {exc}") from exc
            return cur.rowcount == 1

    def patient_of(self, alert_id: str) -> str | None:
        rows = self._fetch("SELECT patient FROM alerts WHERE alert_id = ?", (alert_id,))
        return str(rows[0][0]) if rows else None

    def _fetch(self, sql: str, params: tuple[object, ...]) -> list[tuple[object, ...]]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"alert store query failed: {exc}") from exc

    def list(
        self, patient_id: str | None = None, *, open_only: bool = False, limit: int = 200
    ) -> list[AlertRecord]:
        """Alerts, newest first."""
        where = []
        params: list[object] = []
        if patient_id is not None:
            where.append("patient = ?")
            params.append(patient_id)
        if open_only:
            where.append("acked_by IS NULL")
        sql = (
            "SELECT alert_id, patient, gateway, rule, severity, first_at_us, last_at_us, value,"
            " unit, summary, count, device, ended, acked_by, acked_at_us FROM alerts"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY last_at_us DESC LIMIT ?"
        )
        params.append(int(limit))
        out = []
        for row in self._fetch(sql, tuple(params)):
            (aid, pid, gw, rule, sev, f, last, value, unit, summary, count, dev, ended, by, at) = (
                row
            )
            alert = Alert(
                alert_id=str(aid),
                patient_id=str(pid),
                rule=AlertRule(str(rule)),
                severity=Severity(str(sev)),
                first_at=_dt(int(f)),  # type: ignore[call-overload]
                last_at=_dt(int(last)),  # type: ignore[call-overload]
                value=float(value),  # type: ignore[arg-type]
                unit=str(unit),
                summary=str(summary),
                count=int(count),  # type: ignore[call-overload]
                device_id=str(dev),
                ended=bool(ended),
            )
            out.append(
                AlertRecord(
                    alert=alert,
                    gateway_id=str(gw),
                    acked_by=None if by is None else str(by),
                    acked_at=None if at is None else _dt(int(at)),  # type: ignore[call-overload]
                )
            )
        return out

    def open_counts(self) -> dict[str, int]:
        """Unacknowledged alerts per patient."""
        rows = self._fetch(
            "SELECT patient, COUNT(*) FROM alerts WHERE acked_by IS NULL GROUP BY patient", ()
        )
        return {str(p): int(n) for p, n in rows}  # type: ignore[call-overload]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
