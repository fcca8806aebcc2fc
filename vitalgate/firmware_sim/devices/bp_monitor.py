"""A home blood-pressure monitor (Blood Pressure Service 0x1810), two users.

Behaves like common upper-arm home monitors:

* Each user measures in the morning and the evening (``session_local_hours``), two readings one
  minute apart (the home-BP protocol). During a measurement a subscribed central receives
  Intermediate Cuff Pressure (0x2A36) notifications as the cuff inflates and deflates.
* Results go into a bounded memory (``memory_capacity``; the oldest is overwritten when full --
  the ``full_memory`` fault shrinks it). After a measurement the monitor advertises.
* When a central enables indications on Blood Pressure Measurement (0x2A35), the monitor
  indicates every stored record, oldest first, and deletes each one once its indication is
  confirmed; then it disconnects (``disconnect_after_transfer``) and stops advertising.
* Blood Pressure Feature (0x2A49), Device Information, Battery and Current Time (the gateway
  sets the clock through it).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import ClassVar

from bumble.gatt import Characteristic, Service

from vitalgate.drivers import blood_pressure as bpc
from vitalgate.drivers import uuids
from vitalgate.firmware_sim import physiology as phys
from vitalgate.firmware_sim.clock import Clock
from vitalgate.firmware_sim.devices.common import (
    DeviceKind,
    DeviceSetup,
)
from vitalgate.firmware_sim.devices.spot import IndicatedMemoryDevice, StoredSpot
from vitalgate.firmware_sim.faults import FaultInjector
from vitalgate.firmware_sim.peripheral import PeripheralNotConnected
from vitalgate.firmware_sim.truth import TruthLog
from vitalgate.readings import ReadingKind

__all__ = ["BloodPressureMonitor"]

_FEATURES = (
    bpc.BloodPressureFeatureFlag.BODY_MOVEMENT_DETECTION
    | bpc.BloodPressureFeatureFlag.CUFF_FIT_DETECTION
    | bpc.BloodPressureFeatureFlag.IRREGULAR_PULSE_DETECTION
    | bpc.BloodPressureFeatureFlag.PULSE_RATE_RANGE_DETECTION
    | bpc.BloodPressureFeatureFlag.MULTIPLE_BOND
)


class BloodPressureMonitor(IndicatedMemoryDevice):
    KIND: ClassVar[DeviceKind] = DeviceKind.BP_MONITOR
    READING_KIND: ClassVar[ReadingKind] = ReadingKind.BLOOD_PRESSURE
    SERVICES: ClassVar[tuple[str, ...]] = (
        "Blood Pressure 0x1810 (Measurement 0x2A35 indicate, Intermediate Cuff Pressure 0x2A36 "
        "notify, Feature 0x2A49)",
        "Current Time 0x1805",
        "Device Information 0x180A",
        "Battery 0x180F",
    )
    HAS_CURRENT_TIME: ClassVar[bool] = True
    PROFILE_SERVICE_UUIDS: ClassVar[tuple[str, ...]] = (uuids.BLOOD_PRESSURE_SERVICE,)

    def __init__(
        self,
        setup: DeviceSetup,
        *,
        clock: Clock,
        truth: TruthLog,
        faults: FaultInjector | None = None,
        memory_capacity: int = 100,
        session_local_hours: tuple[float, ...] = (7.0, 21.0),
        readings_per_session: int = 2,
        disconnect_after_transfer: bool = True,
    ) -> None:
        super().__init__(
            setup,
            clock=clock,
            truth=truth,
            faults=faults,
            memory_capacity=memory_capacity,
            disconnect_after_transfer=disconnect_after_transfer,
        )
        self.session_local_hours = session_local_hours
        self.readings_per_session = readings_per_session
        self.cuff_char: Characteristic[bytes] | None = None

    def build_profile_services(self) -> list[Service]:
        self.stored_char = self.make_characteristic(uuids.BLOOD_PRESSURE_MEASUREMENT, indicate=True)
        self.cuff_char = self.make_characteristic(uuids.INTERMEDIATE_CUFF_PRESSURE, notify=True)
        feature = self.make_characteristic(
            uuids.BLOOD_PRESSURE_FEATURE,
            value=bpc.encode_feature(bpc.BloodPressureFeature(flags=_FEATURES)),
        )
        return [Service(uuids.BLOOD_PRESSURE_SERVICE, [self.stored_char, self.cuff_char, feature])]

    # ------------------------------------------------------------------ measuring
    async def run(self) -> None:
        if self.memory:
            self.advertise()
        after = self.started_at
        while True:
            nominal, user_id = self._next_session(after)
            await self.clock.sleep_until(self.jitter(nominal, 3.0, 4.0))
            for reading in range(self.readings_per_session):
                if reading:
                    await self.clock.sleep(timedelta(minutes=1))
                await self.measure(user_id)
            if not self.is_connected and not self.is_advertising:
                self.advertise()
            after = nominal

    def _next_session(self, after: datetime) -> tuple[datetime, int]:
        options = []
        for user_id in sorted(self.setup.patients):
            for hour in self.session_local_hours:
                # Users measure one after the other: user n starts ~10 min after user n-1.
                shifted = hour + (user_id - 1) * (10.0 / 60.0)
                options.append((self.next_local_time(after, shifted), user_id))
        return min(options)

    @property
    def measurement_char(self) -> Characteristic[bytes] | None:
        """Blood Pressure Measurement (0x2A35): the indicated memory."""
        return self.stored_char

    async def measure(self, user_id: int) -> StoredSpot:
        """Take one measurement for ``user_id`` now: cuff notifications, store, truth."""
        patient = self.patient_for(user_id)
        now = self.clock.now()
        series = phys.blood_pressure(
            [patient.local_hour(now)], profile=patient.bp_profile, rng=self.rng
        )
        systolic = float(series.systolic_mmhg[0])
        if self.is_connected and self.cuff_char is not None:
            await self._cuff_notifications(systolic)
        pulse = float(series.pulse_rate_bpm[0])
        status = bpc.BloodPressureStatus(
            irregular_pulse=bool(series.irregular_pulse[0]),
            pulse_rate_range=(
                bpc.PulseRateRange.EXCEEDS_UPPER
                if pulse > 100
                else bpc.PulseRateRange.BELOW_LOWER
                if pulse < 40
                else bpc.PulseRateRange.IN_RANGE
            ),
        )
        device_time = self.device_clock.now().replace(microsecond=0)
        encoded = bpc.encode_measurement(
            bpc.BloodPressureMeasurement(
                unit=bpc.PressureUnit.MMHG,
                systolic_as_sent=systolic,
                diastolic_as_sent=float(series.diastolic_mmhg[0]),
                mean_arterial_pressure_as_sent=float(series.mean_arterial_pressure_mmhg[0]),
                timestamp=device_time,
                pulse_rate_bpm=pulse,
                user_id=user_id,
                status=status,
            )
        )
        measurement = bpc.parse_measurement(encoded)  # exactly what the bytes say
        truth = self.record_truth(
            user_id=user_id,
            sequence_number=None,
            device_time=measurement.timestamp,
            measured_at=now,
            values={
                "systolic_mmhg": measurement.systolic_mmhg,
                "diastolic_mmhg": measurement.diastolic_mmhg,
                "mean_arterial_pressure_mmhg": measurement.mean_arterial_pressure_mmhg,
                "pulse_rate_bpm": float(measurement.pulse_rate_bpm or 0.0),
            },
            attributes={"irregular_pulse": status.irregular_pulse},
        )
        return self.store(StoredSpot(encoded, truth))

    async def _cuff_notifications(self, systolic_mmhg: float) -> None:
        assert self.cuff_char is not None
        if not self.is_subscribed(self.cuff_char):
            return
        peak = systolic_mmhg + 30.0
        ramp = [20.0 * i for i in range(1, int(peak // 20.0) + 1)] + [peak]
        ramp += [peak - 10.0 * i for i in range(1, int((peak - 40.0) // 10.0))]
        for pressure in ramp:
            nan = float("nan")
            data = bpc.encode_measurement(
                bpc.BloodPressureMeasurement(
                    unit=bpc.PressureUnit.MMHG,
                    systolic_as_sent=round(pressure),
                    diastolic_as_sent=nan,
                    mean_arterial_pressure_as_sent=nan,
                )
            )
            try:
                await self.notify(self.cuff_char, data)
            except PeripheralNotConnected:
                return
