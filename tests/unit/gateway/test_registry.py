"""Device registry: private file, user maps, sync points that never move backwards."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from vitalgate.drivers import uuids
from vitalgate.gateway.kinds import DeviceKind, kind_from_services
from vitalgate.gateway.registry import ClockAnchor, DeviceRegistry, RegistryError, SyncPoint

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def test_file_is_private_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "state" / "registry.sqlite3"
    with DeviceRegistry(path) as reg:
        rec = reg.add_device(
            address="aa:bb:cc:dd:ee:01",
            kind=DeviceKind.BLOOD_PRESSURE,
            patient_id=None,
            name="BP-1",
            bonded=True,
            paired_at=T0,
            user_patients={1: "p-anna", 2: "p-ben"},
        )
        assert rec.address == "AA:BB:CC:DD:EE:01"
        assert rec.patient_for_user(2) == "p-ben"
        assert rec.patient_for_user(3) is None
        assert rec.bonded
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for side in path.parent.iterdir():
        assert stat.S_IMODE(side.stat().st_mode) & 0o077 == 0, side
    with DeviceRegistry(path) as reg:
        rec = reg.get("aa:bb:cc:dd:ee:01")
        assert dict(rec.user_patients) == {1: "p-anna", 2: "p-ben"}
        assert rec.paired_at == T0
        assert [d.address for d in reg.devices()] == ["AA:BB:CC:DD:EE:01"]


def test_needs_a_patient(tmp_path: Path) -> None:
    with DeviceRegistry(tmp_path / "r.db") as reg, pytest.raises(RegistryError):
        reg.add_device(address="A", kind=DeviceKind.GLUCOSE, patient_id=None, paired_at=T0)


def test_sync_point_advances_and_never_regresses(tmp_path: Path) -> None:
    with DeviceRegistry(tmp_path / "r.db") as reg:
        reg.add_device(address="G1", kind=DeviceKind.GLUCOSE, patient_id="p1", paired_at=T0)
        assert reg.get("G1").sync == SyncPoint()
        reg.advance_sync("G1", SyncPoint(last_racp_seq=10), at=T0)
        reg.advance_sync("G1", SyncPoint(last_racp_seq=7), at=T0)
        rec = reg.get("G1")
        assert rec.sync.last_racp_seq == 10
        assert rec.sync_count == 2
        assert rec.last_sync == T0
        s1 = datetime(2026, 11, 20, tzinfo=UTC)
        reg.advance_sync("G1", SyncPoint(cgm_session_start=s1, cgm_last_offset_min=50), at=T0)
        reg.advance_sync("G1", SyncPoint(cgm_session_start=s1, cgm_last_offset_min=40), at=T0)
        assert reg.get("G1").sync.cgm_last_offset_min == 50
        s2 = datetime(2026, 11, 23, tzinfo=UTC)
        reg.advance_sync("G1", SyncPoint(cgm_session_start=s2, cgm_last_offset_min=5), at=T0)
        sync = reg.get("G1").sync
        assert (sync.cgm_session_start, sync.cgm_last_offset_min, sync.last_racp_seq) == (
            s2,
            5,
            10,
        )
        reg.reset_sync("G1")
        assert reg.get("G1").sync == SyncPoint()
        with pytest.raises(RegistryError):
            reg.advance_sync("nope", SyncPoint(last_racp_seq=1), at=T0)


def test_status_fields(tmp_path: Path) -> None:
    with DeviceRegistry(tmp_path / "r.db") as reg:
        reg.add_device(address="S1", kind=DeviceKind.WEIGHT_SCALE, patient_id="p1", paired_at=T0)
        reg.mark_seen("S1", T0)
        reg.set_battery("S1", 55)
        reg.record_clock(
            "S1", measured_offset_s=-12.5, checked_at=T0, anchor=ClockAnchor(T0, 3600.25)
        )
        reg.record_error("S1", "connect failed: timeout", at=T0)
        reg.record_error("S1", "connect failed: timeout", at=T0)
        rec = reg.get("S1")
        assert (rec.last_seen, rec.battery_pct, rec.clock_offset_s) == (T0, 55, -12.5)
        assert rec.clock_anchor == ClockAnchor(T0, 3600.25)
        assert (rec.last_error, rec.error_count) == ("connect failed: timeout", 2)
        reg.clear_error("S1")
        assert reg.get("S1").last_error is None
        # Re-pairing keeps the sync point.
        reg.advance_sync("S1", SyncPoint(last_bp_time=datetime(2026, 1, 1)), at=T0)
        reg.add_device(address="S1", kind=DeviceKind.WEIGHT_SCALE, patient_id="p2", paired_at=T0)
        rec = reg.get("S1")
        assert rec.patient_id == "p2"
        assert rec.sync.last_bp_time == datetime(2026, 1, 1)
        assert reg.remove("S1")
        assert not reg.remove("S1")
        assert reg.find("S1") is None


def test_kind_from_services() -> None:
    assert kind_from_services([uuids.BLOOD_PRESSURE_SERVICE.upper()]) == DeviceKind.BLOOD_PRESSURE
    assert kind_from_services([uuids.GLUCOSE_SERVICE, uuids.CGM_SERVICE]) == DeviceKind.CGM
    assert kind_from_services([uuids.BATTERY_SERVICE]) is None
