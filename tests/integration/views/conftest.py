"""Fixtures for the dashboard tests: a seeded store, accounts, alerts, the app."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from vitalgate.cloud_sync.stores.sqlite import SqliteStore
from vitalgate.gateway.alerts import AlertEngine
from vitalgate.readings import BloodPressureReading, ReadingKind
from vitalgate.views.alerts_store import AlertStore
from vitalgate.views.auth import Role, add_user
from vitalgate.views.sample import DEVICES, sample_readings

LAST_DAY = date(2026, 11, 20)
DOCTOR = ("dr.house", "doctor-password-1")
PATIENT = ("ada", "patient-password-1")
PATIENTS_TOML = """
[[patient]]
id = "p-001"
name = "Ada Lovelace"
timezone = "Europe/Berlin"

[[patient]]
id = "p-002"
name = "Grace Hopper"
timezone = "America/New_York"
"""


@dataclass(frozen=True)
class Site:
    root: Path
    store_path: Path
    users: Path
    patients: Path
    alerts: Path


def _crisis_readings() -> list[BloodPressureReading]:
    at = datetime(2026, 11, 19, 6, 40, tzinfo=UTC)
    dev = DEVICES[ReadingKind.BLOOD_PRESSURE]
    return [
        BloodPressureReading(
            patient_id="p-001",
            device=dev,
            measured_at=at + timedelta(minutes=i),
            received_at=at,
            systolic_mmhg=s,
            diastolic_mmhg=d,
        )
        for i, (s, d) in enumerate([(186.0, 104.0), (183.0, 101.0)])
    ]


def build_site(root: Path) -> Site:
    """A store with 30 + 16 days of seeded sample data, two accounts and one BP-crisis alert."""
    s = Site(
        root, root / "readings.db", root / "users.json", root / "patients.toml", root / "alerts.db"
    )
    store = SqliteStore(s.store_path)
    store.write(
        sample_readings(
            "p-001",
            last_day=LAST_DAY,
            days=30,
            tz="Europe/Berlin",
            seed=11,
            heart_rate_interval_s=600,
        )
    )
    store.write(
        sample_readings(
            "p-002",
            last_day=LAST_DAY,
            days=16,
            tz="America/New_York",
            seed=12,
            heart_rate_interval_s=1800,
        )
    )
    store.close()
    s.patients.write_text(PATIENTS_TOML)
    add_user(s.users, DOCTOR[0], DOCTOR[1], Role.DOCTOR)
    add_user(s.users, PATIENT[0], PATIENT[1], Role.PATIENT, "p-001")
    alerts = AlertStore(s.alerts)
    for a in AlertEngine().feed(_crisis_readings()):
        alerts.upsert(a, "gw-test")
    alerts.close()
    return s


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    yield build_site(tmp_path_factory.mktemp("dashboard"))
