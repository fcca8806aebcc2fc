from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vitalgate.readings import (
    BloodPressureReading,
    CgmReading,
    DeviceIdentity,
    GlucoseReading,
    QualityFlag,
    ReadingKind,
    make_reading_id,
    reading_type,
)

DEV = DeviceIdentity(address="AA:BB:CC:DD:EE:FF", manufacturer="Acme", model="BP-1", serial="123")
T0 = datetime(2026, 11, 1, 7, 30, tzinfo=UTC)


def bp(**kw: object) -> BloodPressureReading:
    args: dict[str, object] = dict(
        patient_id="p1",
        device=DEV,
        measured_at=T0,
        received_at=T0 + timedelta(minutes=3),
        device_time=datetime(2026, 11, 1, 8, 30),
        systolic_mmhg=128.0,
        diastolic_mmhg=82.0,
        pulse_rate_bpm=64.0,
        user_id=1,
    )
    args.update(kw)
    return BloodPressureReading(**args)  # type: ignore[arg-type]


def test_same_record_downloaded_twice_gets_same_id() -> None:
    a = bp()
    b = bp(received_at=T0 + timedelta(hours=5), measured_at=T0 + timedelta(seconds=2))
    assert a.reading_id == b.reading_id
    assert len(a.reading_id) == 32


def test_different_user_or_value_gets_different_id() -> None:
    assert bp().reading_id != bp(user_id=2).reading_id
    assert bp().reading_id != bp(systolic_mmhg=129.0).reading_id


def test_sequence_number_identifies_glucose_records() -> None:
    kw = dict(patient_id="p", device=DEV, measured_at=T0, received_at=T0)
    a = GlucoseReading(sequence_number=7, glucose_mg_dl=100.0, **kw)  # type: ignore[arg-type]
    b = GlucoseReading(sequence_number=7, glucose_mg_dl=100.0, **kw)  # type: ignore[arg-type]
    c = GlucoseReading(sequence_number=8, glucose_mg_dl=100.0, **kw)  # type: ignore[arg-type]
    assert a.reading_id == b.reading_id != c.reading_id
    assert a.reading_id == make_reading_id(ReadingKind.GLUCOSE, DEV, sequence_number=7)


def test_cgm_sessions_are_told_apart() -> None:
    kw = dict(patient_id="p", device=DEV, measured_at=T0, received_at=T0, glucose_mg_dl=110.0)
    s1 = CgmReading(time_offset_min=5, session_start=datetime(2026, 1, 1, tzinfo=UTC), **kw)  # type: ignore[arg-type]
    s2 = CgmReading(time_offset_min=5, session_start=datetime(2026, 1, 15, tzinfo=UTC), **kw)  # type: ignore[arg-type]
    assert s1.reading_id != s2.reading_id


def test_times_must_be_utc() -> None:
    with pytest.raises(ValueError, match="measured_at"):
        bp(measured_at=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="received_at"):
        bp(received_at=datetime(2026, 1, 1, tzinfo=UTC).astimezone().replace(tzinfo=None))


def test_values_have_units_and_skip_missing() -> None:
    r = bp(pulse_rate_bpm=None)
    assert r.values() == {"systolic_mmhg": 128.0, "diastolic_mmhg": 82.0}


def test_flags_and_clinical() -> None:
    r = bp().with_flags(QualityFlag.IRREGULAR_PULSE)
    assert r.is_clinical
    assert r.reading_id == bp().reading_id
    assert not r.with_flags(QualityFlag.CONTROL_SOLUTION).is_clinical


def test_reading_type_lookup() -> None:
    assert reading_type("blood_pressure") is BloodPressureReading
    with pytest.raises(ValueError):
        reading_type("nope")


def test_glucose_meal_context_travels_as_its_gls_code() -> None:
    from vitalgate.readings import MEAL_CODES, Meal

    # Glucose Service 1.0, Glucose Measurement Context, field "Meal": 1..5 in this order.
    assert [MEAL_CODES[m] for m in Meal] == [1, 2, 3, 4, 5]
    base = dict(patient_id="p1", device=DEV, measured_at=T0, received_at=T0, sequence_number=7)
    g = GlucoseReading(**base, glucose_mg_dl=101.0, meal=Meal.POSTPRANDIAL)  # type: ignore[arg-type]
    assert g.meal_code == 2.0
    assert g.values() == {"glucose_mg_dl": 101.0, "meal_code": 2.0}
    # Back from the store's numbers: the code gives the meal; the identity does not change.
    back = GlucoseReading(**base, glucose_mg_dl=101.0, meal_code=2.0)  # type: ignore[arg-type]
    assert back.meal is Meal.POSTPRANDIAL and back.reading_id == g.reading_id
    none = GlucoseReading(**base, glucose_mg_dl=101.0, meal_code=float("nan"))  # type: ignore[arg-type]
    assert none.meal is None and none.meal_code is None and "meal_code" not in none.values()
    with pytest.raises(ValueError, match="contradicts"):
        GlucoseReading(**base, glucose_mg_dl=101.0, meal=Meal.FASTING, meal_code=1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a GLS meal code"):
        GlucoseReading(**base, glucose_mg_dl=101.0, meal_code=9.0)  # type: ignore[arg-type]
