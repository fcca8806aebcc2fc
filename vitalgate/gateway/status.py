"""``vitalgate status`` / ``vitalgate devices``: what the registry knows, per device.

Shows identity, patient(s), last seen, last sync and sync point, battery, clock offset and the
last error. No health values are stored in the registry, so none are shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from vitalgate.gateway.registry import DeviceRecord

__all__ = ["format_status", "status_rows", "status_to_json"]


def _ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    seconds = int((now - moment).total_seconds())
    if seconds < 0:
        return moment.strftime("%Y-%m-%d %H:%M:%SZ")
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def _patients(record: DeviceRecord) -> str:
    users = ", ".join(f"user {u}: {p}" for u, p in sorted(record.user_patients.items()))
    if record.patient_id and users:
        return f"{record.patient_id} ({users})"
    return record.patient_id or users


def _sync_point(record: DeviceRecord) -> str:
    s = record.sync
    if s.last_racp_seq is not None:
        return f"seq {s.last_racp_seq}"
    if s.cgm_last_offset_min is not None:
        return f"offset {s.cgm_last_offset_min} min"
    if s.last_bp_time is not None:
        return f"until {s.last_bp_time.isoformat(sep=' ')}"
    return "-"


def status_rows(records: Sequence[DeviceRecord], now: datetime) -> list[dict[str, str]]:
    """One row of display strings per device."""
    rows = []
    for r in records:
        clock = "-" if r.clock_offset_s is None else f"{r.clock_offset_s:+.1f} s"
        rows.append(
            {
                "address": r.address,
                "kind": str(r.kind),
                "name": r.name or r.model or "-",
                "patient": _patients(r),
                "bonded": "yes" if r.bonded else "no",
                "last_seen": _ago(r.last_seen, now),
                "last_sync": _ago(r.last_sync, now),
                "sync_point": _sync_point(r),
                "battery": "-" if r.battery_pct is None else f"{r.battery_pct}%",
                "clock_offset": clock,
                "last_error": r.last_error or "-",
            }
        )
    return rows


def format_status(records: Sequence[DeviceRecord], now: datetime) -> str:
    """A plain-text table (one line per device, the error on its own line when present)."""
    if not records:
        return "no devices registered (pair one with `vitalgate pair`)"
    rows = status_rows(records, now)
    columns = (
        "address",
        "kind",
        "name",
        "patient",
        "last_seen",
        "last_sync",
        "sync_point",
        "battery",
        "clock_offset",
    )
    widths = {c: max(len(c), *(len(row[c]) for row in rows)) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns)]
    for row in rows:
        lines.append("  ".join(row[c].ljust(widths[c]) for c in columns).rstrip())
        if row["last_error"] != "-":
            lines.append(f"    last error: {row['last_error']}")
    return "\n".join(lines)


def status_to_json(records: Sequence[DeviceRecord]) -> list[dict[str, Any]]:
    """Machine-readable status (ISO times, numbers as numbers)."""

    def ts(value: datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    return [
        {
            "address": r.address,
            "kind": str(r.kind),
            "name": r.name,
            "manufacturer": r.manufacturer,
            "model": r.model,
            "serial": r.serial,
            "patient_id": r.patient_id,
            "user_patients": {str(k): v for k, v in r.user_patients.items()},
            "bonded": r.bonded,
            "last_seen": ts(r.last_seen),
            "last_sync": ts(r.last_sync),
            "last_racp_seq": r.sync.last_racp_seq,
            "last_bp_time": ts(r.sync.last_bp_time),
            "cgm_session_start": ts(r.sync.cgm_session_start),
            "cgm_last_offset_min": r.sync.cgm_last_offset_min,
            "battery_pct": r.battery_pct,
            "clock_offset_s": r.clock_offset_s,
            "clock_checked_at": ts(r.clock_checked_at),
            "last_error": r.last_error,
            "last_error_at": ts(r.last_error_at),
            "sync_count": r.sync_count,
            "error_count": r.error_count,
        }
        for r in records
    ]
