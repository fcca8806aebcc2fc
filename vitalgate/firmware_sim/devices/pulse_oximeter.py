"""A fingertip pulse oximeter (Pulse Oximeter Service 0x1822), spot-check and continuous.

* PLX Spot-check Measurement (0x2A5E, indicated): SpO2, pulse rate, a device-local time stamp
  and the perfusion index, taken at ``session_local_hours``; stored, indicated on subscription
  and cleared once confirmed (``Data from measurement storage`` status for stored ones).
* PLX Continuous Measurement (0x2A5F, notified): once a second (simulated clock) while a
  central is subscribed, from :func:`~vitalgate.firmware_sim.physiology.spo2` (baseline with
  Poisson desaturation episodes). Continuous values are logged in the truth only when sent.
* PLX Features (0x2A60).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import ClassVar

from bumble.gatt import Characteristic, Service

from vitalgate.drivers import pulse_oximeter as plx
from vitalgate.drivers import uuids
from vitalgate.firmware_sim import physiology as phys
from vitalgate.firmware_sim.clock import Clock
from vitalgate.firmware_sim.devices.common import DeviceKind, DeviceSetup, TransferInterrupted
from vitalgate.firmware_sim.devices.spot import SpotMeasurementDevice, StoredSpot
from vitalgate.firmware_sim.faults import FaultInjector
from vitalgate.firmware_sim.peripheral import PeripheralNotConnected
from vitalgate.firmware_sim.truth import TruthLog
from vitalgate.readings import ReadingKind

__all__ = ["PulseOximeter"]

_FEATURES = plx.PlxFeatures(
    supported=(
        plx.PlxSupportedFeatures.MEASUREMENT_STATUS_SUPPORT_PRESENT
        | plx.PlxSupportedFeatures.SPOT_CHECK_MEASUREMENT_STORAGE
        | plx.PlxSupportedFeatures.SPOT_CHECK_TIMESTAMP
        | plx.PlxSupportedFeatures.PULSE_AMPLITUDE_INDEX
    ),
    measurement_status_support=(
        plx.PlxMeasurementStatus.DATA_FROM_MEASUREMENT_STORAGE
        | plx.PlxMeasurementStatus.VALIDATED_DATA
    ),
)


class PulseOximeter(SpotMeasurementDevice):
    KIND: ClassVar[DeviceKind] = DeviceKind.PULSE_OXIMETER
    READING_KIND: ClassVar[ReadingKind] = ReadingKind.PULSE_OXIMETRY
    SERVICES: ClassVar[tuple[str, ...]] = (
        "Pulse Oximeter 0x1822 (Spot-check 0x2A5E indicate, Continuous 0x2A5F notify, "
        "Features 0x2A60)",
        "Device Information 0x180A",
        "Battery 0x180F",
    )
    PROFILE_SERVICE_UUIDS: ClassVar[tuple[str, ...]] = (uuids.PULSE_OXIMETER_SERVICE,)

    def __init__(
        self,
        setup: DeviceSetup,
        *,
        clock: Clock,
        truth: TruthLog,
        faults: FaultInjector | None = None,
        memory_capacity: int = 50,
        session_local_hours: tuple[float, ...] = (8.0, 19.0),
        baseline_spo2_pct: float = 96.0,
        desaturations_per_hour: float = 1.0,
    ) -> None:
        super().__init__(
            setup,
            clock=clock,
            truth=truth,
            faults=faults,
            memory_capacity=memory_capacity,
            session_local_hours=session_local_hours,
            disconnect_after_transfer=False,  # a continuous session may follow
        )
        self.baseline_spo2_pct = baseline_spo2_pct
        self.desaturations_per_hour = desaturations_per_hour
        self.continuous_char: Characteristic[bytes] | None = None
        self._window: tuple[datetime, phys.Spo2Series] | None = None

    def build_profile_services(self) -> list[Service]:
        self.stored_char = self.make_characteristic(uuids.PLX_SPOT_CHECK_MEASUREMENT, indicate=True)
        self.continuous_char = self.make_characteristic(
            uuids.PLX_CONTINUOUS_MEASUREMENT, notify=True
        )
        features = self.make_characteristic(
            uuids.PLX_FEATURES, value=plx.encode_features(_FEATURES)
        )
        return [
            Service(
                uuids.PULSE_OXIMETER_SERVICE, [self.stored_char, self.continuous_char, features]
            )
        ]

    def _sample(self, now: datetime) -> tuple[float, float, float]:
        """SpO2 %, pulse bpm and perfusion index % at ``now`` from a 1-hour window at 1 Hz."""
        if self._window is None or not (
            self._window[0] <= now < self._window[0] + timedelta(hours=1)
        ):
            patient = self.patient_for(1)
            series = phys.spo2(
                [float(s) for s in range(3600)],
                baseline_pct=self.baseline_spo2_pct,
                pulse_rate_bpm=patient.bp_profile.day_pulse_bpm,
                desaturations_per_hour=self.desaturations_per_hour,
                rng=self.rng,
            )
            self._window = (now, series)
        start, series = self._window
        i = min(int((now - start).total_seconds()), 3599)
        return (
            float(series.spo2_pct[i]),
            float(series.pulse_rate_bpm[i]),
            float(series.perfusion_index_pct[i]),
        )

    def make_record(self, now: datetime) -> StoredSpot:
        spo2, pulse, perfusion = self._sample(now)
        payload = plx.encode_spot_check_measurement(
            plx.SpotCheckMeasurement(
                spo2_pct=spo2,
                pulse_rate_bpm=pulse,
                timestamp=self.device_clock.now().replace(microsecond=0),
                measurement_status=(
                    plx.PlxMeasurementStatus.DATA_FROM_MEASUREMENT_STORAGE
                    | plx.PlxMeasurementStatus.VALIDATED_DATA
                ),
                perfusion_index_pct=perfusion,
            )
        )
        sent = plx.parse_spot_check_measurement(payload)
        truth = self.record_truth(
            user_id=None,
            sequence_number=None,
            device_time=sent.timestamp,
            measured_at=now,
            values={
                "spo2_pct": sent.spo2_pct,
                "pulse_rate_bpm": sent.pulse_rate_bpm,
                "perfusion_index_pct": float(sent.perfusion_index_pct or 0.0),
            },
            attributes={"continuous": False},
        )
        return StoredSpot(payload, truth)

    async def run(self) -> None:
        self.spawn(self._continuous(), name=f"{self.serial}-continuous")
        await super().run()

    async def _continuous(self) -> None:
        second = 0
        while True:
            if not self.is_connected:
                await self.clock.wait(self.link_up)
                second = int((self.clock.now() - self.started_at).total_seconds())
            second += 1
            await self.clock.sleep_until(self.started_at + timedelta(seconds=second))
            char = self.continuous_char
            if char is None or not self.is_connected or not self.is_subscribed(char):
                continue
            now = self.clock.now()
            spo2, pulse, perfusion = self._sample(now)
            payload = plx.encode_continuous_measurement(
                plx.ContinuousMeasurement(
                    spo2_pct=spo2, pulse_rate_bpm=pulse, perfusion_index_pct=perfusion
                )
            )
            try:
                if not await self.send_record(char, payload, indicate=False):
                    continue
            except (PeripheralNotConnected, TransferInterrupted):
                continue
            sent = plx.parse_continuous_measurement(payload)
            self.record_truth(
                user_id=None,
                sequence_number=None,
                device_time=None,
                measured_at=now,
                values={
                    "spo2_pct": sent.spo2_pct,
                    "pulse_rate_bpm": sent.pulse_rate_bpm,
                    "perfusion_index_pct": float(sent.perfusion_index_pct or 0.0),
                },
                attributes={"continuous": True},
            )
