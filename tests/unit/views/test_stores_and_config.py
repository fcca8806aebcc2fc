"""The alerts store, the patients config, and the views' page data on the sample store."""

from __future__ import annotations

import stat
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from vitalgate.cloud_sync.stores.sqlite import SqliteStore
from vitalgate.errors import ConfigError, SchemaError
from vitalgate.gateway.alerts import AlertEngine, encode_alert_message
from vitalgate.readings import CgmReading, DeviceIdentity, ReadingKind
from vitalgate.signal import bp as bp_signal
from vitalgate.signal import cgm as cgm_signal
from vitalgate.views.alerts_store import AlertStore
from vitalgate.views.pagedata import page_data, patient_status
from vitalgate.views.patients import (
    PatientInfo,
    clinical_mask,
    device_identity,
    load_patients,
    local_day_range,
)

from .conftest import LAST_DAY, PATIENT

DEV = DeviceIdentity(address="AA:BB:CC:DD:EE:FF", manufacturer="M", model="CGM", serial="9")


def _low_episode() -> list[CgmReading]:
    t0 = datetime(2026, 11, 18, 3, 0, tzinfo=UTC)
    return [
        CgmReading(
            patient_id="p-001", device=DEV, measured_at=t0 + timedelta(minutes=5 * i),
            received_at=t0, glucose_mg_dl=g, time_offset_min=5 * i, sequence_number=5 * i,
        )
        for i, g in enumerate([66, 62, 60, 61, 64, 90])
    ]  # fmt: skip


def test_alert_store_upsert_keeps_ack(tmp_path: Path) -> None:
    store = AlertStore(tmp_path / "alerts.db")
    assert stat.S_IMODE((tmp_path / "alerts.db").stat().st_mode) == 0o600
    onset, end = AlertEngine().feed(_low_episode())
    store.record_payload(encode_alert_message("gw-1", onset, onset.last_at))
    assert store.open_counts() == {"p-001": 1}
    assert store.acknowledge(onset.alert_id, "dr", datetime(2026, 11, 18, 4, tzinfo=UTC))
    assert not store.acknowledge(onset.alert_id, "dr2", datetime(2026, 11, 18, 5, tzinfo=UTC))
    store.upsert(end, "gw-1")  # the episode's end arrives later: same record, ack kept
    (rec,) = store.list("p-001")
    assert rec.alert.ended and rec.alert.last_at == end.last_at and rec.acked_by == "dr"
    assert store.open_counts() == {} and store.list(open_only=True) == []
    assert store.patient_of(onset.alert_id) == "p-001" and store.patient_of("x") is None
    with pytest.raises(SchemaError):
        store.record_payload(b"{}")
    store.close()


def test_load_patients(tmp_path: Path) -> None:
    path = tmp_path / "patients.toml"
    path.write_text('[[patient]]\nid = "p-1"\nname = "A"\ntimezone = "Asia/Tokyo"\n')
    assert load_patients(path) == {"p-1": PatientInfo("p-1", "A", "Asia/Tokyo")}
    assert load_patients(None) == {}


@pytest.mark.parametrize(
    "text",
    [
        '[[patient]]\nid = "p-1"\ntimezone = "Mars/Olympus"\n',
        '[[patient]]\nid = "p 1"\n',
        '[[patient]]\nid = "p-1"\n[[patient]]\nid = "p-1"\n',
        '[[patient]]\nid = "p-1"\ncolour = "red"\n',
        "patient = 3\n",
        "not toml [",
    ],
    ids=["zone", "id", "duplicate", "unknown-key", "not-array", "syntax"],
)
def test_bad_patients_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "patients.toml"
    path.write_text(text)
    with pytest.raises(ConfigError):
        load_patients(path)


def test_device_identity_round_trip() -> None:
    assert device_identity(DEV.key) == DeviceIdentity(
        address="", manufacturer="M", model="CGM", serial="9"
    )
    assert device_identity("addr|AA:BB").address == "AA:BB"


def test_local_day_range_follows_dst() -> None:
    tz = PatientInfo("p", "p", "Europe/Berlin").tz
    start, end = local_day_range(date(2026, 10, 25), date(2026, 10, 25), tz)  # DST ends
    assert (end - start) == timedelta(hours=25)
    with pytest.raises(ValueError):
        local_day_range(date(2026, 1, 2), date(2026, 1, 1), tz)


def test_page_data_numbers_come_from_signal(sample_store: SqliteStore) -> None:
    first = LAST_DAY - timedelta(days=13)
    data = page_data(sample_store, PATIENT, first, LAST_DAY)
    start, end = local_day_range(first, LAST_DAY, PATIENT.tz)
    cgm = sample_store.query(PATIENT.patient_id, ReadingKind.CGM, start, end)
    keep = clinical_mask(cgm) & np.isfinite(cgm.values["glucose_mg_dl"])
    m = cgm_signal.metrics(cgm.values["glucose_mg_dl"][keep], cgm.times_ns[keep])
    assert data["cgm"]["metrics"]["tir_pct"] == round(m.tir_pct, 2)
    assert data["cgm"]["tir"]["target"] == round(m.tir_pct, 1)
    assert sum(data["cgm"]["tir"].values()) == pytest.approx(100, abs=0.3)
    bp = sample_store.query(PATIENT.patient_id, ReadingKind.BLOOD_PRESSURE, start, end)
    summary = bp_signal.home_bp_summary(
        bp.times_ns, bp.values["systolic_mmhg"], bp.values["diastolic_mmhg"],
        tz=PATIENT.timezone, first_day=LAST_DAY - timedelta(days=6), days=7,
    )  # fmt: skip
    assert data["bp"]["summary"]["mean_sys"] == round(summary.mean_systolic_mmhg)
    assert data["bp"]["n"] == len(bp)
    # heart rate is downsampled, times are local wall clock (Berlin = UTC+1 in November)
    hr = data["hr"]
    assert len(hr["x"]) <= 1500 and hr["n"] > len(hr["x"]) / 2
    first_bp_utc_ms = int(bp.times_ns[0] // 1_000_000)
    assert data["bp"]["x"][0] - first_bp_utc_ms == 3_600_000
    # the meter's control-solution tests are left out and counted
    assert data["meter"]["excluded"] > 0
    assert {s["meal"] for s in data["meter"]["stats"]} <= {"Before meal", "Bedtime"}
    assert any(d["clock_corrections"] for d in data["devices"])


def test_page_data_empty_range(sample_store: SqliteStore) -> None:
    data = page_data(sample_store, PATIENT, date(2020, 1, 1), date(2020, 1, 3))
    assert data["bp"]["n"] == 0 and data["cgm"] is None and data["hr"] is None


def test_patient_status(sample_store: SqliteStore) -> None:
    status = patient_status(sample_store, PATIENT, LAST_DAY)
    assert status.cgm_sufficient is True and status.devices == 7
    assert status.bp_mean and any(f.startswith("Home BP") for f in status.flags)


def test_devices_go_stale_by_kind() -> None:
    """A CGM without data for hours is stale; a BP monitor only after two days."""
    from vitalgate.cloud_sync.store import DeviceLatest
    from vitalgate.views.pagedata import _devices

    now = datetime.now(UTC)
    latest = [
        DeviceLatest(PATIENT.patient_id, kind, f"dev-{kind}", "gw-1", now - age)
        for kind, age in (
            (ReadingKind.CGM, timedelta(hours=4)),
            (ReadingKind.BLOOD_PRESSURE, timedelta(hours=4)),
            (ReadingKind.GLUCOSE, timedelta(days=3)),
            (ReadingKind.CGM, timedelta(minutes=20)),
        )
    ]
    rows = _devices(latest, {}, PATIENT, {})
    assert [(r["kind"], r["stale"]) for r in rows] == [
        (rows[0]["kind"], True),
        (rows[1]["kind"], False),
        (rows[2]["kind"], True),
        (rows[3]["kind"], False),
    ]
