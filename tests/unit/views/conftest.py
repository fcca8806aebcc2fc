"""Fixtures of the views' unit tests: a seeded SQLite store of sample data."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from vitalgate.cloud_sync.stores.sqlite import SqliteStore
from vitalgate.views.patients import PatientInfo
from vitalgate.views.sample import sample_readings

LAST_DAY = date(2026, 11, 20)
PATIENT = PatientInfo(patient_id="p-001", display_name="Ada Lovelace", timezone="Europe/Berlin")


@pytest.fixture(scope="session")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteStore]:
    path: Path = tmp_path_factory.mktemp("views") / "readings.db"
    store = SqliteStore(path)
    store.write(
        sample_readings(
            PATIENT.patient_id,
            last_day=LAST_DAY,
            days=16,
            tz=PATIENT.timezone,
            seed=7,
            heart_rate_interval_s=900,
        )
    )
    yield store
    store.close()
