"""The demo's bookkeeping: ground truth -> the gateway's readings -> the store, by reading_id.

These are the numbers the acceptance test relies on, so each kind of failure is shown to be
counted (a test that could only ever report zero would prove nothing).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import UTC, datetime, timedelta

from vitalgate.demo import _Made, reconcile
from vitalgate.firmware_sim.truth import TruthRecord
from vitalgate.readings import ReadingKind

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def truth(kind: ReadingKind, i: int, *, live: bool = False) -> TruthRecord:
    return TruthRecord(
        kind=kind,
        device_serial="CGM-1" if kind is ReadingKind.CGM else "HR-1",
        device_model="m",
        device_manufacturer="x",
        device_address="AA:BB:CC:DD:EE:FF",
        patient_id="bert",
        sequence_number=None if live else 5 * i,
        user_id=None,
        device_time=None if live else datetime(2026, 11, 20, 9, 0) + timedelta(minutes=5 * i),
        measured_at=T0 + timedelta(minutes=5 * i) if not live else T0 + timedelta(seconds=i),
        values={"glucose_mg_dl": 100.0 + i},
    )


def made(t: TruthRecord, rid: str, *, shift_s: float = 0.3) -> _Made:
    return _Made(
        reading_id=rid,
        kind=t.kind,
        serial=t.device_serial,
        device_time=t.device_time,
        sequence_number=t.sequence_number,
        measured_at=t.measured_at + timedelta(seconds=shift_s),
        values=tuple(sorted(t.values.items())),
    )


def setup() -> tuple[list[TruthRecord], list[_Made]]:
    cgm = [truth(ReadingKind.CGM, i) for i in range(6)]
    hr = [truth(ReadingKind.HEART_RATE, i, live=True) for i in range(10)]
    made_all = [made(t, f"cgm{i}") for i, t in enumerate(cgm)]
    made_all += [made(t, f"hr{i}") for i, t in enumerate(hr)]
    return [*cgm, *hr], made_all


def test_everything_stored_once() -> None:
    records, readings = setup()
    stored = Counter(m.reading_id for m in readings)
    assert reconcile(records, readings, stored) == (0, 0, [])


def test_a_reading_missing_from_the_store_is_lost() -> None:
    records, readings = setup()
    stored = Counter(m.reading_id for m in readings if m.reading_id not in ("cgm3", "hr7"))
    lost, duplicates, problems = reconcile(records, readings, stored)
    assert (lost, duplicates) == (2, 0)
    assert "2 ground-truth record(s) not in the store (cgm 1, heart_rate 1)" in problems


def test_a_record_the_gateway_never_made_is_lost() -> None:
    records, readings = setup()
    readings = [m for m in readings if m.reading_id not in ("cgm0", "hr0")]
    stored = Counter(m.reading_id for m in readings)
    lost, duplicates, _ = reconcile(records, readings, stored)
    assert (lost, duplicates) == (2, 0)


def test_duplicates_are_counted_in_the_store_and_at_the_gateway() -> None:
    records, readings = setup()
    stored = Counter(m.reading_id for m in readings)
    stored["cgm2"] += 1  # the same reading twice in the store
    assert reconcile(records, readings, stored)[:2] == (0, 1)
    # The gateway made two readings (two ids) of one record, both stored.
    twin = made(records[4], "cgm4-again")
    stored = Counter(m.reading_id for m in [*readings, twin])
    lost, duplicates, problems = reconcile(records, [*readings, twin], stored)
    assert (lost, duplicates) == (0, 2)  # one extra reading at the gateway, one in the store
    assert any("2 readings" in p for p in problems)


def test_live_samples_match_by_time_within_tolerance() -> None:
    records, readings = setup()
    late = [
        made(t, m.reading_id, shift_s=5.0) if m.reading_id == "hr5" else m
        for t, m in zip(records, readings, strict=True)
    ]
    stored = Counter(m.reading_id for m in late)
    lost, duplicates, _ = reconcile(records, late, stored)
    assert lost == 1  # hr5 is 5 s off: not the same sample
    assert duplicates == 1  # and the stored hr5 matches no record


def test_live_samples_must_carry_the_records_values() -> None:
    records, readings = setup()
    wrong = [
        dataclasses.replace(m, values=(("glucose_mg_dl", 999.0),)) if m.reading_id == "hr2" else m
        for m in readings
    ]
    stored = Counter(m.reading_id for m in wrong)
    assert reconcile(records, wrong, stored)[:2] == (1, 1)


def test_derived_readings_are_neither_matches_nor_strays_but_can_be_duplicates() -> None:
    records, readings = setup()
    # Heart rate the gateway computed from PPG: same kind and device, no device record behind it.
    derived = dataclasses.replace(
        readings[-1], reading_id="ppg0", values=(("heart_rate_bpm", 71.0),), derived=True
    )
    stored = Counter(m.reading_id for m in [*readings, derived])
    assert reconcile(records, [*readings, derived], stored) == (0, 0, [])
    # It does not stand in for a record either: the record it resembles is still lost.
    stored_without_hr9 = Counter(m.reading_id for m in [*readings[:-1], derived])
    assert reconcile(records, [*readings, derived], stored_without_hr9)[:2] == (1, 0)
    # Stored twice, it is a duplicate.
    stored["ppg0"] += 1
    assert reconcile(records, [*readings, derived], stored)[:2] == (0, 1)
