"""A meter's newest record whose announced context has not arrived when a download ends (a
record the meter sent live just as the RACP procedure finished) is held back and fetched again,
never stored without its meal and carbohydrates (the reading id would pin that version)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from vitalgate.drivers import glucose as glc
from vitalgate.gateway.kinds import DeviceKind
from vitalgate.gateway.pipeline import Pipeline, ReadingBuilder
from vitalgate.gateway.registry import DeviceRecord
from vitalgate.gateway.sessions.base import SessionResult
from vitalgate.gateway.sessions.glucose import _CONTEXT, _MEASUREMENT, _Download
from vitalgate.gateway.timefix import TimeFixer
from vitalgate.readings import GlucoseReading, Meal, Reading

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class _Sink:
    def __init__(self) -> None:
        self.readings: list[Reading] = []

    def add(self, readings: list[Reading]) -> int:
        self.readings.extend(readings)
        return len(readings)


def _measurement(seq: int) -> bytes:
    return glc.encode_measurement(
        glc.GlucoseMeasurement(
            sequence_number=seq,
            base_time=datetime(2026, 11, 25, 12, seq),
            concentration_as_sent=0.0011,
            concentration_unit=glc.ConcentrationUnit.KG_PER_L,
            sample_type=glc.SampleType(1),
            sample_location=glc.SampleLocation(1),
            context_follows=True,
        )
    )


def _context(seq: int) -> bytes:
    return glc.encode_context(
        glc.GlucoseMeasurementContext(
            sequence_number=seq,
            carbohydrate_id=glc.CarbohydrateId(1),
            carbohydrate_g=60.0,
            meal=glc.MealCode(2),
        )
    )


async def test_newest_record_without_its_context_is_held_back() -> None:
    record = DeviceRecord(
        address="AA:BB:CC:DD:EE:01",
        kind=DeviceKind.GLUCOSE,
        patient_id="p-anna",
        manufacturer="Acme",
        model="GM",
        serial="1",
        user_patients=MappingProxyType({}),
    )
    sink = _Sink()
    env: Any = type("Env", (), {})()
    env.builder = ReadingBuilder(
        record, TimeFixer(tz=ZoneInfo("UTC"), check=None, anchor=None, tolerance_s=1.0)
    )
    env.pipeline = Pipeline(sink)  # type: ignore[arg-type]
    download = _Download(env, SessionResult())
    for data in (_MEASUREMENT + _measurement(5), _CONTEXT + _context(5)):
        download.take(NOW, data)
    download.take(NOW, _MEASUREMENT + _measurement(6))  # its context is still on its way
    await download.flush(final=True)
    assert download.held == 6
    (got,) = sink.readings
    assert isinstance(got, GlucoseReading)
    assert got.sequence_number == 5 and got.meal is Meal.POSTPRANDIAL
    assert got.carbohydrate_g == 60.0
    await asyncio.sleep(0)
