"""Driver dataclasses -> readings: patient by user ID, device flags, contexts, time, the sink."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo

import pytest

from vitalgate.drivers import blood_pressure as bp
from vitalgate.drivers import glucose as glc
from vitalgate.drivers import heart_rate as hrc
from vitalgate.gateway.kinds import DeviceKind
from vitalgate.gateway.link import Backoff
from vitalgate.gateway.pipeline import Pipeline, ReadingBuilder, Rejected
from vitalgate.gateway.ppg import PpgWindow
from vitalgate.gateway.registry import DeviceRecord
from vitalgate.gateway.status import format_status, status_to_json
from vitalgate.gateway.timefix import TimeFixer
from vitalgate.readings import (
    BloodPressureReading,
    GlucoseReading,
    HeartRateReading,
    Meal,
    QualityFlag,
    Reading,
    ReadingKind,
)

TZ = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def record(
    kind: DeviceKind, patient: str | None, users: dict[int, str] | None = None
) -> DeviceRecord:
    return DeviceRecord(
        address="AA:BB:CC:DD:EE:01",
        kind=kind,
        patient_id=patient,
        manufacturer="Acme",
        model="M1",
        serial="S1",
        user_patients=MappingProxyType(users or {}),
    )


def builder(rec: DeviceRecord) -> ReadingBuilder:
    return ReadingBuilder(rec, TimeFixer(tz=TZ, check=None, anchor=None, tolerance_s=1.0))


def test_blood_pressure_by_user_and_status() -> None:
    b = builder(record(DeviceKind.BLOOD_PRESSURE, None, {1: "p-anna", 2: "p-ben"}))
    m = bp.BloodPressureMeasurement(
        unit=bp.PressureUnit.MMHG,
        systolic_as_sent=128.0,
        diastolic_as_sent=82.0,
        mean_arterial_pressure_as_sent=97.0,
        timestamp=datetime(2026, 11, 25, 8, 30),
        pulse_rate_bpm=64.0,
        user_id=2,
        status=bp.BloodPressureStatus(irregular_pulse=True),
    )
    r = b.blood_pressure(m, NOW)
    assert isinstance(r, BloodPressureReading)
    assert r.patient_id == "p-ben"
    assert r.measured_at == datetime(2026, 11, 25, 7, 30, tzinfo=UTC)
    assert r.device_time == datetime(2026, 11, 25, 8, 30)
    assert r.received_at == NOW
    assert r.flags == {QualityFlag.IRREGULAR_PULSE}
    assert r.device.key == "Acme|M1|S1"
    # The same record again (a re-sent memory) is the same reading.
    assert b.blood_pressure(m, NOW + timedelta(hours=1)).reading_id == r.reading_id  # type: ignore[union-attr]
    unknown = b.blood_pressure(
        bp.BloodPressureMeasurement(
            unit=bp.PressureUnit.MMHG,
            systolic_as_sent=120.0,
            diastolic_as_sent=80.0,
            mean_arterial_pressure_as_sent=93.0,
            user_id=7,
        ),
        NOW,
    )
    assert isinstance(unknown, Rejected)
    assert "120" not in unknown.reason  # no values in reasons


def test_glucose_context_and_control_solution() -> None:
    b = builder(record(DeviceKind.GLUCOSE, "p-anna"))
    m = glc.GlucoseMeasurement(
        sequence_number=7,
        base_time=datetime(2026, 11, 25, 7, 0),
        time_offset_min=5,
        concentration_as_sent=0.00110,
        concentration_unit=glc.ConcentrationUnit.KG_PER_L,
        sample_type=glc.SampleType.CONTROL_SOLUTION,
        sample_location=glc.SampleLocation(4),
        context_follows=True,
    )
    ctx = glc.GlucoseMeasurementContext(sequence_number=7, meal=glc.MealCode.FASTING)
    r = b.glucose(m, ctx, NOW)
    assert isinstance(r, GlucoseReading)
    assert r.sequence_number == 7 and r.meal is Meal.FASTING
    assert r.device_time == datetime(2026, 11, 25, 7, 5)
    assert math.isclose(r.glucose_mg_dl, 110.0)
    assert QualityFlag.CONTROL_SOLUTION in r.flags and not r.is_clinical
    with pytest.raises(ValueError):
        b.glucose(m, glc.GlucoseMeasurementContext(sequence_number=8), NOW)


def test_heart_rate_live_ids_are_unique() -> None:
    b = builder(record(DeviceKind.HEART_RATE, "p-anna"))
    m = hrc.HeartRateMeasurement(heart_rate_bpm=70, sensor_contact=False)
    ids = set()
    for _ in range(100):
        r = b.heart_rate(m, NOW)
        assert isinstance(r, HeartRateReading)
        assert r.flags == {QualityFlag.NO_DEVICE_TIME, QualityFlag.NO_SENSOR_CONTACT}
        ids.add(r.reading_id)
    assert len(ids) == 100


def test_live_samples_of_a_kind_never_share_a_millisecond() -> None:
    """Stores keyed by series and time (InfluxDB; VictoriaMetrics in ms) would overwrite one."""
    b = builder(record(DeviceKind.HEART_RATE, "p-anna"))
    m = hrc.HeartRateMeasurement(heart_rate_bpm=70, sensor_contact=True)
    window = PpgWindow(
        heart_rate_bpm=71.04,
        rr_intervals_s=(0.84, 0.85),
        beats=2,
        motion_beats=0,
        coverage=1.0,
        flags=frozenset(),
        start_sample_index=0,
        duration_s=30.0,
    )
    stamps = []
    for received_at in (NOW, NOW, NOW + timedelta(microseconds=300)):
        r = b.heart_rate(m, received_at)
        assert isinstance(r, HeartRateReading)
        stamps.append(r.measured_at)
    derived = b.ppg_heart_rate(window, NOW)  # completed in the same instant as a measurement
    assert isinstance(derived, HeartRateReading)
    stamps.append(derived.measured_at)
    # NOW is a whole second: its first millisecond is left to device-stamped records.
    assert stamps == [NOW + timedelta(milliseconds=i) for i in range(1, 5)]
    # The gateway computed it: flagged as derived, never taken for a device measurement.
    assert QualityFlag.DERIVED in derived.flags
    assert derived.heart_rate_bpm == 71.0
    # Time moving on is kept as it is.
    later = b.heart_rate(m, NOW + timedelta(seconds=1, microseconds=2500))
    assert isinstance(later, HeartRateReading)
    assert later.measured_at == NOW + timedelta(seconds=1, microseconds=2500)
    # A receipt in a second's first millisecond moves out of it.
    edge = b.heart_rate(m, NOW + timedelta(seconds=2, microseconds=400))
    assert isinstance(edge, HeartRateReading)
    assert edge.measured_at == NOW + timedelta(seconds=2, microseconds=1000)


class _Sink:
    def __init__(self) -> None:
        self.seen: dict[str, Reading] = {}

    def add(self, readings: Sequence[Reading]) -> int:
        added = 0
        for r in readings:
            if r.reading_id not in self.seen:
                self.seen[r.reading_id] = r
                added += 1
        return added


async def test_pipeline_checks_and_counts_duplicates() -> None:
    b = builder(record(DeviceKind.BLOOD_PRESSURE, "p-anna"))
    m = bp.BloodPressureMeasurement(
        unit=bp.PressureUnit.MMHG,
        systolic_as_sent=80.0,
        diastolic_as_sent=120.0,
        mean_arterial_pressure_as_sent=100.0,
        timestamp=datetime(2026, 11, 25, 8, 0),
    )
    r = b.blood_pressure(m, NOW)
    assert isinstance(r, BloodPressureReading)
    sink = _Sink()
    pipeline = Pipeline(sink)
    out = await pipeline.deliver([r, r])
    assert (out.offered, out.added) == (2, 1)
    (stored,) = sink.seen.values()
    assert QualityFlag.IMPLAUSIBLE in stored.flags  # systolic below diastolic
    assert (await pipeline.deliver([])).offered == 0


def test_backoff_has_full_jitter_and_a_cap() -> None:
    backoff = Backoff(initial_s=0.5, max_s=4.0, attempts=5)
    rng = random.Random(1)
    for attempt in range(10):
        d = backoff.delay_s(attempt, rng)
        assert 0.0 <= d <= min(4.0, 0.5 * 2**attempt)


def test_status_output_has_no_values_and_shows_errors() -> None:
    rec = record(DeviceKind.BLOOD_PRESSURE, None, {1: "p-anna"})
    text = format_status([rec], NOW)
    assert "AA:BB:CC:DD:EE:01" in text and "user 1: p-anna" in text and "never" in text
    assert format_status([], NOW).startswith("no devices")
    (row,) = status_to_json([rec])
    assert row["kind"] == "blood_pressure" and row["user_patients"] == {"1": "p-anna"}


def test_strap_rr_intervals_give_a_rmssd_every_five_minutes() -> None:
    b = builder(record(DeviceKind.HEART_RATE, "p-anna"))
    rr = (0.78, 0.82)  # 1.6 s of beats per notification, RMSSD 40 ms
    values = []
    t = NOW
    for _ in range(400):
        r = b.heart_rate(hrc.HeartRateMeasurement(heart_rate_bpm=75, rr_intervals_s=rr), t)
        assert isinstance(r, HeartRateReading)
        values.append(r.rmssd_ms)
        t += timedelta(seconds=1.6)
    reported = [i for i, v in enumerate(values) if v is not None]
    assert reported == [187, 375]  # the notifications that complete 300 s of RR
    assert values[187] == pytest.approx(40.0, abs=0.5)
    # A silence longer than 5 s starts the window again.
    for _ in range(100):
        b.heart_rate(hrc.HeartRateMeasurement(heart_rate_bpm=75, rr_intervals_s=rr), t)
        t += timedelta(seconds=1.6)
    t += timedelta(seconds=30)
    got = []
    for _ in range(150):
        r = b.heart_rate(hrc.HeartRateMeasurement(heart_rate_bpm=75, rr_intervals_s=rr), t)
        assert isinstance(r, HeartRateReading)
        got.append(r.rmssd_ms)
        t += timedelta(seconds=1.6)
    assert got == [None] * 150  # 150 x 1.6 s < 300 s since the gap


def test_device_status_once_per_patient_and_sync() -> None:
    shared = builder(record(DeviceKind.BLOOD_PRESSURE, None, {1: "p-anna", 2: "p-ben"}))
    rs = shared.device_status(NOW, battery_pct=73, clock_offset_s=-41.23456)
    assert [(r.patient_id, r.values()) for r in rs] == [
        ("p-anna", {"battery_pct": 73.0, "clock_offset_s": -41.235}),
        ("p-ben", {"battery_pct": 73.0, "clock_offset_s": -41.235}),
    ]
    assert all(r.kind is ReadingKind.DEVICE_STATUS and r.measured_at == NOW for r in rs)
    assert rs[0].reading_id != rs[1].reading_id
    # Each sync is its own record, even with the same values.
    again = shared.device_status(NOW + timedelta(hours=1), battery_pct=73, clock_offset_s=-41.23456)
    assert {r.reading_id for r in rs}.isdisjoint(r.reading_id for r in again)
    # A sync that learnt nothing about the device sends nothing.
    assert shared.device_status(NOW, battery_pct=None, clock_offset_s=None) == []
    one = builder(record(DeviceKind.HEART_RATE, "p-anna"))
    assert [r.values() for r in one.device_status(NOW, battery_pct=5, clock_offset_s=None)] == [
        {"battery_pct": 5.0}
    ]
