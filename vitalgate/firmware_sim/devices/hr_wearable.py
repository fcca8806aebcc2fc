"""A wrist wearable: Heart Rate Service (0x180D) with RR intervals, plus the vendor PPG Stream
service (``docs/vendor-ppg-service.md``, codec :mod:`vitalgate.drivers.ppg_stream`) streaming raw
PPG and accelerometer samples at 64-256 Hz.

Both come from one simulated heart: an RR series with HRV and ectopic beats
(:func:`~vitalgate.firmware_sim.physiology.rr_intervals`) and the PPG waveform and wrist
accelerometer generated from it (:func:`~vitalgate.firmware_sim.physiology.simulate_ppg`),
produced in 30-second chunks of simulated time. Every second (simulated clock) a subscribed
central gets a Heart Rate Measurement with the RR intervals of the beats that ended in that
second, and -- while PPG / accelerometer notifications are enabled -- that second's samples,
split into packets that fit the ATT MTU. A heart-rate strap stores nothing, so the truth log
holds the Heart Rate Measurements actually sent.
"""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

import numpy as np
from bumble.gatt import Characteristic, Service

from vitalgate.drivers import heart_rate as hrc
from vitalgate.drivers import ppg_stream as ppgc
from vitalgate.drivers import uuids
from vitalgate.errors import ParseError
from vitalgate.firmware_sim import physiology as phys
from vitalgate.firmware_sim.clock import Clock
from vitalgate.firmware_sim.devices.common import DeviceKind, DeviceSetup, SimHealthDevice
from vitalgate.firmware_sim.faults import FaultInjector
from vitalgate.firmware_sim.peripheral import PeripheralNotConnected, SimAttError
from vitalgate.firmware_sim.truth import TruthLog
from vitalgate.readings import ReadingKind

__all__ = ["HeartRateWearable"]

_CHUNK_S = 30
_ATT_INVALID_LENGTH = 0x0D
_ATT_OUT_OF_RANGE = 0xFF
#: ADC counts: DC level and gain of the simulated photodiode (s24 range).
_PPG_DC_COUNTS = 200_000
_PPG_GAIN_COUNTS = 40_000


class HeartRateWearable(SimHealthDevice):
    KIND: ClassVar[DeviceKind] = DeviceKind.HR_WEARABLE
    READING_KIND: ClassVar[ReadingKind] = ReadingKind.HEART_RATE
    SERVICES: ClassVar[tuple[str, ...]] = (
        "Heart Rate 0x180D (Measurement 0x2A37 notify with RR intervals, Body Sensor Location "
        "0x2A38, Control Point 0x2A39)",
        "vendor PPG Stream 603f0001-31c3-45a3-b944-c7f83af48501 (PPG + accelerometer, 64-256 Hz)",
        "Device Information 0x180A",
        "Battery 0x180F",
    )
    PROFILE_SERVICE_UUIDS: ClassVar[tuple[str, ...]] = (
        uuids.HEART_RATE_SERVICE,
        ppgc.PPG_STREAM_SERVICE_UUID,
    )

    def __init__(
        self,
        setup: DeviceSetup,
        *,
        clock: Clock,
        truth: TruthLog,
        faults: FaultInjector | None = None,
        sampling_rate_hz: int = ppgc.DEFAULT_SAMPLING_RATE_HZ,
        motion_fraction: float = 0.15,
    ) -> None:
        super().__init__(setup, clock=clock, truth=truth, faults=faults)
        self.config = ppgc.PpgStreamConfig(sampling_rate_hz=sampling_rate_hz)
        self.motion_fraction = motion_fraction
        self.energy_expended_kj = 0
        self._chunk_start_s = -1.0
        self._rr: phys.RrSeries | None = None
        self._ppg: phys.PpgSignal | None = None
        self._streaming = False
        self._ppg_index = 0
        self._ppg_sequence = 0
        self._accel_sequence = 0
        self.hr_char: Characteristic[bytes] | None = None
        self.ppg_char: Characteristic[bytes] | None = None
        self.accel_char: Characteristic[bytes] | None = None

    def build_profile_services(self) -> list[Service]:
        self.hr_char = self.make_characteristic(uuids.HEART_RATE_MEASUREMENT, notify=True)
        self.ppg_char = self.make_characteristic(ppgc.PPG_DATA_UUID, notify=True)
        self.accel_char = self.make_characteristic(ppgc.ACCEL_DATA_UUID, notify=True)
        return [
            Service(
                uuids.HEART_RATE_SERVICE,
                [
                    self.hr_char,
                    self.make_characteristic(
                        uuids.BODY_SENSOR_LOCATION,
                        value=hrc.encode_body_sensor_location(hrc.BodySensorLocation.WRIST),
                    ),
                    self.make_characteristic(
                        uuids.HEART_RATE_CONTROL_POINT, write=self._on_control_point
                    ),
                ],
            ),
            Service(
                ppgc.PPG_STREAM_SERVICE_UUID,
                [
                    self.ppg_char,
                    self.accel_char,
                    self.make_characteristic(
                        ppgc.CONFIG_UUID,
                        read=lambda: ppgc.encode_config(self.config),
                        write=self._on_config_write,
                    ),
                ],
            ),
        ]

    def _on_control_point(self, data: bytes) -> None:
        try:
            opcode = hrc.parse_control_point(data)
        except ParseError as exc:
            raise SimAttError(_ATT_INVALID_LENGTH, str(exc)) from exc
        if opcode is not hrc.HeartRateControlOpcode.RESET_ENERGY_EXPENDED:
            raise SimAttError(hrc.CONTROL_POINT_NOT_SUPPORTED, f"opcode {int(opcode)}")
        self.energy_expended_kj = 0

    def _on_config_write(self, data: bytes) -> None:
        if len(data) != 2:
            raise SimAttError(_ATT_INVALID_LENGTH, "Stream Configuration is 2 bytes")
        try:
            self.config = ppgc.parse_config(data)
        except ParseError as exc:
            raise SimAttError(_ATT_OUT_OF_RANGE, str(exc)) from exc
        self._restart_streams()

    def _restart_streams(self) -> None:
        """A new rate (or new subscription) restarts both streams at sequence 0, index 0."""
        self._ppg_sequence = 0
        self._accel_sequence = 0
        self._ppg_index = 0
        self._ppg = None
        self._chunk_start_s = -1.0

    def on_subscription(
        self, characteristic: Characteristic[bytes], notify: bool, indicate: bool
    ) -> None:
        if characteristic is not self.ppg_char and characteristic is not self.accel_char:
            return
        streaming = self._subscribed(self.ppg_char) or self._subscribed(self.accel_char)
        if streaming and not self._streaming:
            self._restart_streams()
        self._streaming = streaming

    def on_disconnected(self, reason: int) -> None:
        super().on_disconnected(reason)
        self._streaming = False

    def _subscribed(self, characteristic: Characteristic[bytes] | None) -> bool:
        return characteristic is not None and self.is_subscribed(characteristic)

    # ------------------------------------------------------------------ the heart
    def _chunk(self, elapsed_s: float) -> tuple[phys.RrSeries, phys.PpgSignal, float]:
        start = float(int(elapsed_s // _CHUNK_S) * _CHUNK_S)
        if self._rr is None or self._ppg is None or start != self._chunk_start_s:
            patient = self.patient_for(1)
            hour = patient.local_hour(self.clock.now())
            asleep = hour < 6.5 or hour >= 22.5
            mean_hr = patient.bp_profile.day_pulse_bpm * (0.85 if asleep else 1.0)
            rng = np.random.default_rng([self.setup.seed, int(start)])
            self._rr = phys.rr_intervals(
                duration_s=_CHUNK_S + 2.0, mean_heart_rate_bpm=mean_hr, rng=rng
            )
            self._ppg = phys.simulate_ppg(
                self._rr,
                sampling_rate_hz=float(self.config.sampling_rate_hz),
                rng=rng,
                motion_fraction=self.motion_fraction,
            )
            self._chunk_start_s = start
        return self._rr, self._ppg, start

    async def run(self) -> None:
        self.advertise()
        second = 0
        while True:
            if not self.is_connected:
                # A wearable streams only to a connected central: idle until one connects.
                await self.clock.wait(self.link_up)
                second = int((self.clock.now() - self.started_at).total_seconds())
            second += 1
            await self.clock.sleep_until(self.started_at + timedelta(seconds=second))
            if not self.is_connected:
                continue
            try:
                await self._tick(float(second))
            except PeripheralNotConnected:
                continue

    async def _tick(self, elapsed_s: float) -> None:
        rr, ppg, start = self._chunk(elapsed_s - 1.0)
        lo, hi = elapsed_s - 1.0 - start, elapsed_s - start
        if self._subscribed(self.hr_char):
            assert self.hr_char is not None
            in_second = (rr.beat_times_s > lo) & (rr.beat_times_s <= hi)
            intervals = rr.rr_intervals_s[in_second]
            recent = rr.rr_intervals_s[rr.beat_times_s <= hi][-5:]
            bpm = round(60.0 / float(np.mean(recent))) if recent.size else 0
            encoded = hrc.encode_measurement(
                hrc.HeartRateMeasurement(
                    heart_rate_bpm=bpm,
                    sensor_contact=True,
                    rr_intervals_s=tuple(float(x) for x in intervals),
                )
            )
            if await self.send_record(self.hr_char, encoded, indicate=False):
                sent = hrc.parse_measurement(encoded)
                self.record_truth(
                    user_id=None,
                    sequence_number=None,
                    device_time=None,
                    measured_at=self.clock.now(),
                    values={"heart_rate_bpm": float(sent.heart_rate_bpm)},
                    attributes={
                        "rr_intervals_s": ",".join(f"{x:.10g}" for x in sent.rr_intervals_s),
                        "sensor_contact": sent.sensor_contact,
                    },
                )
        streaming_ppg = self._subscribed(self.ppg_char)
        streaming_accel = self._subscribed(self.accel_char)
        if not (streaming_ppg or streaming_accel):
            return
        fs = self.config.sampling_rate_hz
        a, b = round(lo * fs), round(hi * fs)
        mtu = self.mtu
        if streaming_ppg:
            assert self.ppg_char is not None
            counts = [int(_PPG_DC_COUNTS + _PPG_GAIN_COUNTS * v) for v in ppg.ppg[a:b].tolist()]
            packets = ppgc.ppg_packets(
                counts,
                first_sample_index=self._ppg_index,
                first_sequence=self._ppg_sequence,
                per_packet=ppgc.samples_per_packet(mtu, stream="ppg"),
            )
            for packet in packets:
                await self.notify(self.ppg_char, ppgc.encode_ppg_packet(packet))
            self._ppg_sequence = (self._ppg_sequence + len(packets)) & 0xFFFF
        if streaming_accel:
            assert self.accel_char is not None
            samples = [
                ppgc.AccelSample(x_mg=round(x * 1000), y_mg=round(y * 1000), z_mg=round(z * 1000))
                for x, y, z in ppg.accelerometer.acceleration_g[a:b].tolist()
            ]
            accel = ppgc.accel_packets(
                samples,
                first_sample_index=self._ppg_index,
                first_sequence=self._accel_sequence,
                per_packet=ppgc.samples_per_packet(mtu, stream="accel"),
            )
            for accel_packet in accel:
                await self.notify(self.accel_char, ppgc.encode_accel_packet(accel_packet))
            self._accel_sequence = (self._accel_sequence + len(accel)) & 0xFFFF
        self._ppg_index = (self._ppg_index + (b - a)) & 0xFFFFFFFF
