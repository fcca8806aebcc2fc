"""A bathroom scale (Weight Scale Service 0x181D).

Weight Measurement (0x2A9D, indicated): kg at 0.005 kg resolution, a device-local time stamp,
the user ID and BMI + height. One weighing each morning follows
:func:`~vitalgate.firmware_sim.physiology.body_weight_kg` (slow trend, daily water-balance
noise); the memory is indicated on subscription and cleared once confirmed. Weight Scale
Feature (0x2A9E) is read-only; Current Time lets the gateway set the clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from bumble.gatt import Service

from vitalgate.drivers import uuids
from vitalgate.drivers import weight_scale as wsc
from vitalgate.firmware_sim import physiology as phys
from vitalgate.firmware_sim.clock import Clock
from vitalgate.firmware_sim.devices.common import DeviceKind, DeviceSetup
from vitalgate.firmware_sim.devices.spot import SpotMeasurementDevice, StoredSpot
from vitalgate.firmware_sim.faults import FaultInjector
from vitalgate.firmware_sim.truth import TruthLog
from vitalgate.readings import ReadingKind

__all__ = ["WeightScale"]


class WeightScale(SpotMeasurementDevice):
    KIND: ClassVar[DeviceKind] = DeviceKind.WEIGHT_SCALE
    READING_KIND: ClassVar[ReadingKind] = ReadingKind.WEIGHT
    SERVICES: ClassVar[tuple[str, ...]] = (
        "Weight Scale 0x181D (Weight Measurement 0x2A9D indicate, Feature 0x2A9E)",
        "Current Time 0x1805",
        "Device Information 0x180A",
        "Battery 0x180F",
    )
    HAS_CURRENT_TIME: ClassVar[bool] = True
    PROFILE_SERVICE_UUIDS: ClassVar[tuple[str, ...]] = (uuids.WEIGHT_SCALE_SERVICE,)

    def __init__(
        self,
        setup: DeviceSetup,
        *,
        clock: Clock,
        truth: TruthLog,
        faults: FaultInjector | None = None,
        memory_capacity: int = 30,
        session_local_hours: tuple[float, ...] = (7.0,),
        height_m: float = 1.75,
        trend_kg_per_day: float = 0.0,
    ) -> None:
        super().__init__(
            setup,
            clock=clock,
            truth=truth,
            faults=faults,
            memory_capacity=memory_capacity,
            session_local_hours=session_local_hours,
        )
        self.height_m = height_m
        self.trend_kg_per_day = trend_kg_per_day

    def build_profile_services(self) -> list[Service]:
        self.stored_char = self.make_characteristic(uuids.WEIGHT_MEASUREMENT, indicate=True)
        feature = wsc.encode_feature(
            wsc.WeightScaleFeature(
                time_stamp_supported=True,
                multiple_users_supported=True,
                bmi_supported=True,
                weight_resolution=wsc.WeightResolution.KG_0_005_LB_0_01,
                height_resolution=wsc.HeightResolution.M_0_001_IN_0_1,
            )
        )
        return [
            Service(
                uuids.WEIGHT_SCALE_SERVICE,
                [
                    self.stored_char,
                    self.make_characteristic(uuids.WEIGHT_SCALE_FEATURE, value=feature),
                ],
            )
        ]

    def make_record(self, now: datetime) -> StoredSpot:
        patient = self.patient_for(1)
        day = (now - patient.start).total_seconds() / 86_400.0
        weight = float(
            phys.body_weight_kg(
                [day],
                rng=self.rng,
                baseline_kg=patient.body_mass_kg,
                trend_kg_per_day=self.trend_kg_per_day,
            )[0]
        )
        bmi = round(weight / self.height_m**2, 1)
        payload = wsc.encode_measurement(
            wsc.WeightMeasurement(
                unit=wsc.WeightUnit.SI,
                weight_as_sent=weight,
                timestamp=self.device_clock.now().replace(microsecond=0),
                user_id=1,
                bmi_kg_m2=bmi,
                height_as_sent=self.height_m,
            )
        )
        sent = wsc.parse_measurement(payload)
        values = {"weight_kg": float(sent.weight_kg or 0.0)}
        if sent.bmi_kg_m2 is not None:
            values["bmi_kg_m2"] = sent.bmi_kg_m2
        if sent.height_m is not None:
            values["height_m"] = sent.height_m
        truth = self.record_truth(
            user_id=1,
            sequence_number=None,
            device_time=sent.timestamp,
            measured_at=now,
            values=values,
            patient=patient,
        )
        return StoredSpot(payload, truth)
