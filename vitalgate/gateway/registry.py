"""The device registry: paired devices, their patients, bond state and sync points.

One SQLite file under the gateway's state directory, created with mode 0600 (it links
patients to devices). The sync point of a device -- last RACP sequence number, last BP
timestamp, CGM session and last offset -- only ever moves after the readings it covers are
durably in the outbox; the daemon calls :meth:`DeviceRegistry.advance_sync` after
``Outbox.add`` returned.

The methods are synchronous and short (one transaction each); asyncio callers run them with
``asyncio.to_thread``. One connection is shared under a lock, so the object is thread-safe.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any, Self

from vitalgate.errors import VitalgateError
from vitalgate.gateway.kinds import DeviceKind

__all__ = [
    "ClockAnchor",
    "DeviceRecord",
    "DeviceRegistry",
    "RegistryError",
    "SyncPoint",
]


class RegistryError(VitalgateError):
    """The registry refused an operation (unknown device, bad mapping, unreadable file)."""


@dataclass(frozen=True, slots=True)
class SyncPoint:
    """How far a device's stored records have been durably taken into the outbox."""

    last_racp_seq: int | None = None
    last_bp_time: datetime | None = None  # naive, device-local, as the device sent it
    cgm_session_start: datetime | None = None  # UTC
    cgm_last_offset_min: int | None = None


@dataclass(frozen=True, slots=True)
class ClockAnchor:
    """What a device clock showed at a known gateway time.

    ``raw_offset_s`` is the device's naive wall-clock time minus UTC, in seconds: the UTC offset
    the clock was set to plus its error (a device clock keeps a fixed UTC offset; most do not
    follow daylight-saving changes). After the gateway sets a clock, the anchor is (then, the
    patient's UTC offset then). Readings taken between the anchor and the next measurement are
    corrected by interpolating the raw offset (clocks drift linearly).
    """

    at: datetime  # UTC, gateway time
    raw_offset_s: float
    #: The raw offset just before the gateway set the clock at ``at`` (None: not set then).
    #: Records stamped before the set but downloaded later are placed with it.
    previous_raw_offset_s: float | None = None


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """One paired device as the registry knows it."""

    address: str
    kind: DeviceKind
    patient_id: str | None  # None for a shared device with a user map only
    name: str = ""
    manufacturer: str = ""
    model: str = ""
    serial: str = ""
    firmware: str = ""
    bonded: bool = False
    paired_at: datetime | None = None
    user_patients: Mapping[int, str] = field(default_factory=lambda: MappingProxyType({}))
    sync: SyncPoint = SyncPoint()
    clock_anchor: ClockAnchor | None = None
    clock_offset_s: float | None = None  # last measured error against the patient's local time
    clock_checked_at: datetime | None = None
    last_seen: datetime | None = None
    last_sync: datetime | None = None
    battery_pct: int | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    sync_count: int = 0
    error_count: int = 0

    def patient_for_user(self, user_id: int | None) -> str | None:
        """The patient for a BP/scale user ID; the device's own patient when unmapped."""
        if user_id is not None and user_id in self.user_patients:
            return self.user_patients[user_id]
        return self.patient_id


_SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    address TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    patient_id TEXT,
    name TEXT NOT NULL DEFAULT '',
    manufacturer TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL DEFAULT '',
    serial TEXT NOT NULL DEFAULT '',
    firmware TEXT NOT NULL DEFAULT '',
    bonded INTEGER NOT NULL DEFAULT 0,
    paired_at TEXT,
    last_racp_seq INTEGER,
    last_bp_time TEXT,
    cgm_session_start TEXT,
    cgm_last_offset_min INTEGER,
    clock_anchor_at TEXT,
    clock_anchor_offset_s REAL,
    clock_anchor_previous_offset_s REAL,
    clock_offset_s REAL,
    clock_checked_at TEXT,
    last_seen TEXT,
    last_sync TEXT,
    battery_pct INTEGER,
    last_error TEXT,
    last_error_at TEXT,
    sync_count INTEGER NOT NULL DEFAULT 0,
    error_count INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS user_patients (
    address TEXT NOT NULL REFERENCES devices(address) ON DELETE CASCADE,
    user_id INTEGER NOT NULL,
    patient_id TEXT NOT NULL,
    PRIMARY KEY (address, user_id)
);
PRAGMA user_version = 1;
"""


def _ts(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _dt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _require_utc(name: str, value: datetime | None) -> None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"{name} must be timezone-aware UTC, got {value!r}")


def _create_private(path: Path) -> None:
    """Create ``path`` (and its SQLite side files' directory) with mode 0600 if missing."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


class DeviceRegistry:
    """Paired devices in SQLite. Use as a context manager or call :meth:`close`."""

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        old_umask = os.umask(0o077)  # the -journal / -wal files SQLite creates stay private
        try:
            _create_private(self._path)
            try:
                self._db = sqlite3.connect(
                    self._path, check_same_thread=False, isolation_level=None
                )
                self._db.row_factory = sqlite3.Row
                self._db.execute("PRAGMA foreign_keys = ON")
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = FULL")
                self._db.executescript(_SCHEMA)
            except sqlite3.DatabaseError as exc:
                raise RegistryError(f"cannot open device registry {self._path}: {exc}") from exc
        finally:
            os.umask(old_umask)
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        return self._path

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    # --- pairing ----------------------------------------------------------------------------

    def add_device(
        self,
        *,
        address: str,
        kind: DeviceKind,
        patient_id: str | None,
        name: str = "",
        manufacturer: str = "",
        model: str = "",
        serial: str = "",
        firmware: str = "",
        bonded: bool = False,
        paired_at: datetime,
        user_patients: Mapping[int, str] | None = None,
    ) -> DeviceRecord:
        """Register (or re-register, keeping its sync point) a paired device."""
        _require_utc("paired_at", paired_at)
        users = dict(user_patients or {})
        if patient_id is None and not users:
            raise RegistryError(f"device {address}: needs a patient or a user-ID -> patient map")
        for uid in users:
            if not 0 <= uid <= 254:
                raise RegistryError(f"device {address}: user ID {uid} outside 0..254")
        address = address.upper()
        with self._tx() as db:
            db.execute(
                """INSERT INTO devices (address, kind, patient_id, name, manufacturer, model,
                       serial, firmware, bonded, paired_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(address) DO UPDATE SET kind=excluded.kind,
                       patient_id=excluded.patient_id, name=excluded.name,
                       manufacturer=excluded.manufacturer, model=excluded.model,
                       serial=excluded.serial, firmware=excluded.firmware,
                       bonded=excluded.bonded, paired_at=excluded.paired_at""",
                (
                    address,
                    str(kind),
                    patient_id,
                    name,
                    manufacturer,
                    model,
                    serial,
                    firmware,
                    int(bonded),
                    _ts(paired_at),
                ),
            )
            db.execute("DELETE FROM user_patients WHERE address = ?", (address,))
            db.executemany(
                "INSERT INTO user_patients (address, user_id, patient_id) VALUES (?, ?, ?)",
                [(address, uid, pid) for uid, pid in users.items()],
            )
        return self.get(address)

    def remove(self, address: str) -> bool:
        """Forget a device; True if it was registered."""
        with self._tx() as db:
            cur = db.execute("DELETE FROM devices WHERE address = ?", (address.upper(),))
            return cur.rowcount > 0

    # --- queries ----------------------------------------------------------------------------

    def _record(self, row: sqlite3.Row, users: Mapping[int, str]) -> DeviceRecord:
        anchor = None
        if row["clock_anchor_at"] is not None:
            anchor_at = _dt(row["clock_anchor_at"])
            assert anchor_at is not None
            anchor = ClockAnchor(
                at=anchor_at,
                raw_offset_s=float(row["clock_anchor_offset_s"]),
                previous_raw_offset_s=row["clock_anchor_previous_offset_s"],
            )
        return DeviceRecord(
            address=row["address"],
            kind=DeviceKind(row["kind"]),
            patient_id=row["patient_id"],
            name=row["name"],
            manufacturer=row["manufacturer"],
            model=row["model"],
            serial=row["serial"],
            firmware=row["firmware"],
            bonded=bool(row["bonded"]),
            paired_at=_dt(row["paired_at"]),
            user_patients=MappingProxyType(dict(users)),
            sync=SyncPoint(
                last_racp_seq=row["last_racp_seq"],
                last_bp_time=_dt(row["last_bp_time"]),
                cgm_session_start=_dt(row["cgm_session_start"]),
                cgm_last_offset_min=row["cgm_last_offset_min"],
            ),
            clock_anchor=anchor,
            clock_offset_s=row["clock_offset_s"],
            clock_checked_at=_dt(row["clock_checked_at"]),
            last_seen=_dt(row["last_seen"]),
            last_sync=_dt(row["last_sync"]),
            battery_pct=row["battery_pct"],
            last_error=row["last_error"],
            last_error_at=_dt(row["last_error_at"]),
            sync_count=row["sync_count"],
            error_count=row["error_count"],
        )

    def _users(self, address: str | None = None) -> dict[str, dict[int, str]]:
        sql = "SELECT address, user_id, patient_id FROM user_patients"
        args: tuple[Any, ...] = ()
        if address is not None:
            sql += " WHERE address = ?"
            args = (address,)
        out: dict[str, dict[int, str]] = {}
        for r in self._db.execute(sql, args):
            out.setdefault(r["address"], {})[int(r["user_id"])] = r["patient_id"]
        return out

    def get(self, address: str) -> DeviceRecord:
        """The device with this address; RegistryError if it is not registered."""
        address = address.upper()
        with self._lock:
            row = self._db.execute("SELECT * FROM devices WHERE address = ?", (address,))
            found = row.fetchone()
            if found is None:
                raise RegistryError(f"device {address} is not registered")
            return self._record(found, self._users(address).get(address, {}))

    def find(self, address: str) -> DeviceRecord | None:
        try:
            return self.get(address)
        except RegistryError:
            return None

    def devices(self) -> list[DeviceRecord]:
        """All registered devices, ordered by address."""
        with self._lock:
            users = self._users()
            rows = self._db.execute("SELECT * FROM devices ORDER BY address").fetchall()
            return [self._record(r, users.get(r["address"], {})) for r in rows]

    # --- updates ----------------------------------------------------------------------------

    def _update(self, address: str, **columns: Any) -> None:
        address = address.upper()
        sets = ", ".join(f"{k} = ?" for k in columns)
        with self._tx() as db:
            cur = db.execute(
                f"UPDATE devices SET {sets} WHERE address = ?",  # column names are fixed here
                (*columns.values(), address),
            )
            if cur.rowcount == 0:
                raise RegistryError(f"device {address} is not registered")

    def mark_seen(self, address: str, at: datetime) -> None:
        _require_utc("at", at)
        self._update(address, last_seen=_ts(at))

    def set_identity(
        self,
        address: str,
        *,
        manufacturer: str,
        model: str,
        serial: str,
        firmware: str = "",
    ) -> None:
        self._update(
            address, manufacturer=manufacturer, model=model, serial=serial, firmware=firmware
        )

    def set_bonded(self, address: str, bonded: bool) -> None:
        self._update(address, bonded=int(bonded))

    def set_battery(self, address: str, battery_pct: int) -> None:
        self._update(address, battery_pct=int(battery_pct))

    def record_clock(
        self,
        address: str,
        *,
        measured_offset_s: float | None,
        checked_at: datetime,
        anchor: ClockAnchor | None,
        clear_anchor: bool = False,
    ) -> None:
        """Store the clock offset measured at a sync and the anchor for the next one.

        ``anchor=None`` keeps the stored anchor unless ``clear_anchor`` (the clock was changed
        in a way the gateway could not verify).
        """
        _require_utc("checked_at", checked_at)
        cols: dict[str, Any] = {"clock_checked_at": _ts(checked_at)}
        if measured_offset_s is not None:
            cols["clock_offset_s"] = float(measured_offset_s)
        if anchor is None and clear_anchor:
            cols["clock_anchor_at"] = None
            cols["clock_anchor_offset_s"] = None
            cols["clock_anchor_previous_offset_s"] = None
        if anchor is not None:
            _require_utc("anchor.at", anchor.at)
            cols["clock_anchor_at"] = _ts(anchor.at)
            cols["clock_anchor_offset_s"] = float(anchor.raw_offset_s)
            cols["clock_anchor_previous_offset_s"] = anchor.previous_raw_offset_s
        self._update(address, **cols)

    def advance_sync(self, address: str, sync: SyncPoint, *, at: datetime) -> None:
        """Record a new sync point. Call only after the readings it covers are in the outbox.

        A sync point never moves backwards: a lower RACP sequence number than the stored one
        is ignored (a device that reset its memory starts again from the gateway's view with
        :meth:`reset_sync`).
        """
        _require_utc("at", at)
        address = address.upper()
        with self._tx() as db:
            row = db.execute("SELECT * FROM devices WHERE address = ?", (address,)).fetchone()
            if row is None:
                raise RegistryError(f"device {address} is not registered")
            current = self._record(row, {}).sync
            seq = sync.last_racp_seq
            if seq is None or (current.last_racp_seq is not None and seq < current.last_racp_seq):
                seq = current.last_racp_seq
            bp = sync.last_bp_time
            if bp is None or (current.last_bp_time is not None and bp < current.last_bp_time):
                bp = current.last_bp_time
            session, offset = sync.cgm_session_start, sync.cgm_last_offset_min
            if session is None:
                session, offset = current.cgm_session_start, current.cgm_last_offset_min
            elif (
                session == current.cgm_session_start
                and current.cgm_last_offset_min is not None
                and (offset is None or offset < current.cgm_last_offset_min)
            ):
                offset = current.cgm_last_offset_min
            db.execute(
                """UPDATE devices SET last_racp_seq = ?, last_bp_time = ?,
                       cgm_session_start = ?, cgm_last_offset_min = ?, last_sync = ?,
                       sync_count = sync_count + 1 WHERE address = ?""",
                (seq, _ts(bp), _ts(session), offset, _ts(at), address),
            )

    def reset_sync(self, address: str) -> None:
        """Forget a device's sync point (its memory was cleared or it was replaced)."""
        self._update(
            address,
            last_racp_seq=None,
            last_bp_time=None,
            cgm_session_start=None,
            cgm_last_offset_min=None,
        )

    def record_error(self, address: str, reason: str, *, at: datetime) -> None:
        """Remember the last thing that went wrong with a device (no health values in it)."""
        _require_utc("at", at)
        address = address.upper()
        with self._tx() as db:
            db.execute(
                """UPDATE devices SET last_error = ?, last_error_at = ?,
                       error_count = error_count + 1 WHERE address = ?""",
                (reason[:500], _ts(at), address),
            )

    def clear_error(self, address: str) -> None:
        self._update(address, last_error=None, last_error_at=None)


def utc_now() -> datetime:
    """The system's current UTC time (used by CLI paths that have no injected clock)."""
    return datetime.now(UTC)
