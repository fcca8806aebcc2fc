"""A blood-glucose meter (Glucose Service 0x1808) with the full Record Access Control Point.

* Bonding required: every Glucose Service characteristic (and CCCD) needs an encrypted link.
* The patient tests before breakfast (fasting), two hours after lunch (postprandial), before
  dinner (preprandial) and at bedtime; the value is the patient's plasma glucose read with a
  meter's error (ISO 15197). Each record has a sequence number (u16, +1 per record), the
  device-local base time, kg/L concentration, capillary whole blood / finger, and a
  Measurement Context (meal, and carbohydrate for meals) notified right after its measurement.
* Control-solution tests a few times a month (sample type 10 / location 4, ~110 mg/dL).
* Memory for ``memory_capacity`` records (500; the ``full_memory`` fault sets fewer): when it is
  full a new record overwrites the oldest, as real meters do (kept in ``overwritten``); the
  sequence numbers run on (u16, 65535 wraps to 0), so the gap tells a central what it missed.
* RACP (0x2A52, GLS 3.6 / GLP 4.9): Report Stored Records, Delete Stored Records, Abort
  Operation, Report Number of Stored Records with every operator (all, <=, >=, within range,
  first, last) by sequence number (filter 1) and user-facing time (filter 2). Errors answer
  with the right Response Code (opcode not supported, invalid operator, invalid operand, operand
  not supported, no records found, abort unsuccessful) parsed by
  :func:`vitalgate.drivers.racp.parse_request`. A write while a procedure runs gets ATT error
  0x80 (Procedure Already In Progress); a write without indications enabled gets 0x81.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

from bumble.gatt import Characteristic, Service

from vitalgate.drivers import glucose as glc
from vitalgate.drivers import uuids
from vitalgate.firmware_sim import physiology as phys
from vitalgate.firmware_sim.clock import Clock
from vitalgate.firmware_sim.devices.common import DeviceKind, DeviceSetup, SimHealthDevice
from vitalgate.firmware_sim.devices.racp_server import RacpServer
from vitalgate.firmware_sim.faults import FaultInjector, FaultKind
from vitalgate.firmware_sim.truth import TruthLog, TruthRecord
from vitalgate.readings import ReadingKind

__all__ = ["GlucoseMeter", "StoredGlucose"]

_FEATURES = (
    glc.GlucoseFeatureFlag.LOW_BATTERY_DETECTION
    | glc.GlucoseFeatureFlag.STRIP_INSERTION_ERROR_DETECTION
    | glc.GlucoseFeatureFlag.RESULT_HIGH_LOW_DETECTION
    | glc.GlucoseFeatureFlag.TIME_FAULT
    | glc.GlucoseFeatureFlag.MULTIPLE_BOND
)

# (local hour, meal code, carbohydrate id or None, minutes after the nominal meal)
_TESTS = (
    (7.25, glc.MealCode.FASTING, None),
    (14.5, glc.MealCode.POSTPRANDIAL, glc.CarbohydrateId.LUNCH),
    (18.75, glc.MealCode.PREPRANDIAL, glc.CarbohydrateId.DINNER),
    (22.5, glc.MealCode.BEDTIME, None),
)


@dataclass(frozen=True, slots=True)
class StoredGlucose:
    """A record in memory: decoded, and the exact bytes it is sent as (encoded once)."""

    measurement: glc.GlucoseMeasurement
    context: glc.GlucoseMeasurementContext | None
    truth: TruthRecord
    payload: bytes
    context_payload: bytes | None

    @property
    def sequence_number(self) -> int:
        return self.measurement.sequence_number

    @property
    def user_facing_time(self) -> datetime | None:
        return self.measurement.user_facing_time


class GlucoseMeter(SimHealthDevice):
    KIND: ClassVar[DeviceKind] = DeviceKind.GLUCOSE_METER
    READING_KIND: ClassVar[ReadingKind] = ReadingKind.GLUCOSE
    SERVICES: ClassVar[tuple[str, ...]] = (
        "Glucose 0x1808 (Measurement 0x2A18 notify, Context 0x2A34 notify, Feature 0x2A51, "
        "RACP 0x2A52 write+indicate; bonding required)",
        "Current Time 0x1805",
        "Device Information 0x180A",
        "Battery 0x180F",
    )
    HAS_CURRENT_TIME: ClassVar[bool] = True
    PROFILE_SERVICE_UUIDS: ClassVar[tuple[str, ...]] = (uuids.GLUCOSE_SERVICE,)

    def __init__(
        self,
        setup: DeviceSetup,
        *,
        clock: Clock,
        truth: TruthLog,
        faults: FaultInjector | None = None,
        memory_capacity: int = 500,
        control_tests_per_month: float = 3.0,
    ) -> None:
        super().__init__(setup, clock=clock, truth=truth, faults=faults, require_bonding=True)
        full = self.faults.first(FaultKind.FULL_MEMORY)
        if full is not None and full.capacity is not None:
            memory_capacity = full.capacity
        self.memory_capacity = memory_capacity
        self.control_tests_per_month = control_tests_per_month
        self.records: collections.deque[StoredGlucose] = collections.deque()
        self.overwritten: list[TruthRecord] = []
        self.next_sequence_number = 1
        self.racp: RacpServer[StoredGlucose] = RacpServer(
            self,
            records=lambda: self.records,
            sequence_key=lambda r: r.sequence_number,
            time_key=lambda r: r.user_facing_time,
            send=self._send_one,
            delete=self._delete,
        )
        self.measurement_char: Characteristic[bytes] | None = None
        self.context_char: Characteristic[bytes] | None = None
        self.racp_char: Characteristic[bytes] | None = None

    def build_profile_services(self) -> list[Service]:
        self.measurement_char = self.make_characteristic(uuids.GLUCOSE_MEASUREMENT, notify=True)
        self.context_char = self.make_characteristic(uuids.GLUCOSE_MEASUREMENT_CONTEXT, notify=True)
        feature = self.make_characteristic(
            uuids.GLUCOSE_FEATURE,
            value=glc.encode_feature(glc.GlucoseFeature(flags=_FEATURES)),
        )
        self.racp_char = self.racp.make_characteristic()
        return [
            Service(
                uuids.GLUCOSE_SERVICE,
                [self.measurement_char, self.context_char, feature, self.racp_char],
            )
        ]

    # ------------------------------------------------------------------ measuring
    async def run(self) -> None:
        self.advertise()
        after = self.started_at
        while True:
            nominal, index = min(
                (self.next_local_time(after, hour), i) for i, (hour, _, _) in enumerate(_TESTS)
            )
            await self.clock.sleep_until(self.jitter(nominal, 10.0, 30.0))
            _, meal, carb_id = _TESTS[index]
            self.measure(meal=meal, carbohydrate_id=carb_id)
            if index == 1 and self.rng.random() < self.control_tests_per_month / 30.0:
                await self.clock.sleep(timedelta(minutes=3))
                self.measure_control_solution()
            after = nominal

    def _store(
        self,
        measurement: glc.GlucoseMeasurement,
        context: glc.GlucoseMeasurementContext | None,
        truth: TruthRecord,
    ) -> StoredGlucose:
        stored = StoredGlucose(
            measurement,
            context,
            truth,
            glc.encode_measurement(measurement),
            None if context is None else glc.encode_context(context),
        )
        if len(self.records) >= self.memory_capacity:
            self.overwritten.append(self.records.popleft().truth)
        self.records.append(stored)
        self.next_sequence_number = (self.next_sequence_number + 1) & 0xFFFF
        return stored

    def measure(
        self,
        *,
        meal: glc.MealCode | None,
        carbohydrate_id: glc.CarbohydrateId | None,
        glucose_mg_dl: float | None = None,
    ) -> StoredGlucose:
        """Take a finger-stick measurement now (the patient's plasma glucose with meter error)."""
        patient = self.patient_for(1)
        now = self.clock.now()
        if glucose_mg_dl is None:
            true_value = patient.plasma_glucose_mg_dl(now)
            glucose_mg_dl = float(phys.glucose_meter_error([true_value], rng=self.rng)[0])
        carbs = None
        if carbohydrate_id is not None:
            carbs = float(round(self.rng.uniform(40.0, 90.0)))
        sequence = self.next_sequence_number
        base_time = self.device_clock.now().replace(microsecond=0)
        measurement = glc.parse_measurement(
            glc.encode_measurement(
                glc.GlucoseMeasurement(
                    sequence_number=sequence,
                    base_time=base_time,
                    time_offset_min=0,
                    concentration_as_sent=glc.kg_per_l_from_mg_dl(glucose_mg_dl),
                    concentration_unit=glc.ConcentrationUnit.KG_PER_L,
                    sample_type=glc.SampleType.CAPILLARY_WHOLE_BLOOD,
                    sample_location=glc.SampleLocation.FINGER,
                    sensor_status=(
                        glc.SensorStatus.DEVICE_BATTERY_LOW if self.battery_pct < 10 else None
                    ),
                    context_follows=meal is not None,
                )
            )
        )
        context = None
        if meal is not None:
            context = glc.parse_context(
                glc.encode_context(
                    glc.GlucoseMeasurementContext(
                        sequence_number=sequence,
                        carbohydrate_id=carbohydrate_id,
                        carbohydrate_g=carbs,
                        meal=meal,
                    )
                )
            )
        values = {"glucose_mg_dl": float(measurement.glucose_mg_dl or 0.0)}
        if context is not None and context.carbohydrate_g is not None:
            values["carbohydrate_g"] = context.carbohydrate_g
        truth = self.record_truth(
            user_id=None,
            sequence_number=sequence,
            device_time=measurement.user_facing_time,
            measured_at=now,
            values=values,
            attributes={
                "meal": None if context is None else str(context.reading_meal),
                "sample_type": int(glc.SampleType.CAPILLARY_WHOLE_BLOOD),
                "sample_location": int(glc.SampleLocation.FINGER),
            },
            patient=patient,
        )
        stored = self._store(measurement, context, truth)
        self._notify_live(stored)
        return stored

    def measure_control_solution(self) -> StoredGlucose:
        """A control-solution test (type 10, location 4): kept, never clinical."""
        patient = self.patient_for(1)
        now = self.clock.now()
        value = float(round(self.rng.normal(112.0, 4.0)))
        sequence = self.next_sequence_number
        measurement = glc.parse_measurement(
            glc.encode_measurement(
                glc.GlucoseMeasurement(
                    sequence_number=sequence,
                    base_time=self.device_clock.now().replace(microsecond=0),
                    time_offset_min=0,
                    concentration_as_sent=glc.kg_per_l_from_mg_dl(value),
                    concentration_unit=glc.ConcentrationUnit.KG_PER_L,
                    sample_type=glc.SampleType.CONTROL_SOLUTION,
                    sample_location=glc.SampleLocation.CONTROL_SOLUTION,
                )
            )
        )
        truth = self.record_truth(
            user_id=None,
            sequence_number=sequence,
            device_time=measurement.user_facing_time,
            measured_at=now,
            values={"glucose_mg_dl": float(measurement.glucose_mg_dl or 0.0)},
            attributes={
                "meal": None,
                "sample_type": int(glc.SampleType.CONTROL_SOLUTION),
                "sample_location": int(glc.SampleLocation.CONTROL_SOLUTION),
            },
            is_control_solution=True,
            patient=patient,
        )
        stored = self._store(measurement, None, truth)
        self._notify_live(stored)
        return stored

    def _notify_live(self, stored: StoredGlucose) -> None:
        """A connected, subscribed central gets a new record at once (as real meters do)."""
        if (
            self.is_connected
            and self.measurement_char is not None
            and self.is_subscribed(self.measurement_char)
        ):
            self.racp.run_exclusive([stored])

    # ------------------------------------------------------------------ RACP
    async def _send_one(self, stored: StoredGlucose) -> bool:
        assert self.measurement_char is not None and self.context_char is not None
        sent = await self.send_record(self.measurement_char, stored.payload, indicate=False)
        if sent and stored.context_payload is not None:
            await self.notify(self.context_char, stored.context_payload)
        return sent

    def _delete(self, doomed: Sequence[StoredGlucose]) -> None:
        ids = {id(r) for r in doomed}
        self.records = collections.deque(r for r in self.records if id(r) not in ids)
