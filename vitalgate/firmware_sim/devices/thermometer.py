"""A clinical thermometer (Health Thermometer Service 0x1809).

Temperature Measurement (0x2A1C, indicated): IEEE-11073 FLOAT in degrees Celsius, a device-local
time stamp and the measurement site (mouth). Readings morning and evening follow the circadian
core-temperature rhythm (:func:`~vitalgate.firmware_sim.physiology.body_temperature_c`); the
memory is indicated on subscription and cleared once confirmed. Temperature Type (0x2A1D) is
read-only; Current Time lets the gateway set the clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from bumble.gatt import Service

from vitalgate.drivers import thermometer as thc
from vitalgate.drivers import uuids
from vitalgate.firmware_sim import physiology as phys
from vitalgate.firmware_sim.clock import Clock
from vitalgate.firmware_sim.devices.common import DeviceKind, DeviceSetup
from vitalgate.firmware_sim.devices.spot import SpotMeasurementDevice, StoredSpot
from vitalgate.firmware_sim.faults import FaultInjector
from vitalgate.firmware_sim.truth import TruthLog
from vitalgate.readings import ReadingKind

__all__ = ["Thermometer"]


class Thermometer(SpotMeasurementDevice):
    KIND: ClassVar[DeviceKind] = DeviceKind.THERMOMETER
    READING_KIND: ClassVar[ReadingKind] = ReadingKind.BODY_TEMPERATURE
    SERVICES: ClassVar[tuple[str, ...]] = (
        "Health Thermometer 0x1809 (Temperature Measurement 0x2A1C indicate, Temperature Type "
        "0x2A1D)",
        "Current Time 0x1805",
        "Device Information 0x180A",
        "Battery 0x180F",
    )
    HAS_CURRENT_TIME: ClassVar[bool] = True
    PROFILE_SERVICE_UUIDS: ClassVar[tuple[str, ...]] = (uuids.HEALTH_THERMOMETER_SERVICE,)

    def __init__(
        self,
        setup: DeviceSetup,
        *,
        clock: Clock,
        truth: TruthLog,
        faults: FaultInjector | None = None,
        memory_capacity: int = 30,
        session_local_hours: tuple[float, ...] = (7.5, 20.0),
        fever_c: float = 0.0,
    ) -> None:
        super().__init__(
            setup,
            clock=clock,
            truth=truth,
            faults=faults,
            memory_capacity=memory_capacity,
            session_local_hours=session_local_hours,
        )
        self.fever_c = fever_c

    def build_profile_services(self) -> list[Service]:
        self.stored_char = self.make_characteristic(uuids.TEMPERATURE_MEASUREMENT, indicate=True)
        site = self.make_characteristic(
            uuids.TEMPERATURE_TYPE,
            value=thc.encode_temperature_type(thc.TemperatureType.MOUTH),
        )
        return [Service(uuids.HEALTH_THERMOMETER_SERVICE, [self.stored_char, site])]

    def make_record(self, now: datetime) -> StoredSpot:
        patient = self.patient_for(1)
        value = float(
            phys.body_temperature_c([patient.local_hour(now)], rng=self.rng, fever_c=self.fever_c)[
                0
            ]
        )
        payload = thc.encode_measurement(
            thc.TemperatureMeasurement(
                temperature_as_sent=value,
                unit=thc.TemperatureUnit.CELSIUS,
                timestamp=self.device_clock.now().replace(microsecond=0),
            )
        )
        sent = thc.parse_measurement(payload)
        truth = self.record_truth(
            user_id=None,
            sequence_number=None,
            device_time=sent.timestamp,
            measured_at=now,
            values={"temperature_c": sent.temperature_c},
            attributes={"site": int(thc.TemperatureType.MOUTH)},
            patient=patient,
        )
        return StoredSpot(payload, truth)
