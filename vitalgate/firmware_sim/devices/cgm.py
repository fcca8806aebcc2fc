"""A continuous glucose monitor (CGM Service 0x181F), 14-day sensor sessions.

* A session starts when the device starts (sensor inserted) or on the SOCP "Start Session";
  Session Start Time (0x2AAA) holds its device-local start with time zone and DST, Session
  Run Time (0x2AAB) the expected 336 h.
* Every 5 minutes (``interval_min``) a measurement: the patient's interstitial glucose (first-
  order lag behind plasma, sensor noise, drop-outs -- see
  :func:`vitalgate.firmware_sim.physiology.cgm_from_plasma`), its time offset in minutes since
  the session start, trend and quality. It is notified live to a subscribed central and stored
  for RACP back-fill (filter type 1 = time offset; user-facing time is not supported by CGMS
  RACP and answers "operand not supported"). Sensor drop-outs produce no record.
* Specific Ops Control Point (0x2AAC): Start Session, Stop Session, Get/Set Communication
  Interval; other opcodes answer "opcode not supported".
* E2E-CRC on every CGM characteristic when ``e2e_crc`` (CGM Feature bit 12); SOCP writes with a
  missing / wrong CRC get ATT error 0x80 / 0x81.
* CGM Status (0x2AA9): time offset and the 24-bit annunciation (session stopped, battery low).
* Bonding required.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import numpy as np
from bumble.gatt import Characteristic, Service

from vitalgate.drivers import cgm as cgmc
from vitalgate.drivers import uuids
from vitalgate.drivers.glucose import SampleType
from vitalgate.errors import ParseError
from vitalgate.firmware_sim import physiology as phys
from vitalgate.firmware_sim.clock import Clock
from vitalgate.firmware_sim.devices.common import (
    DeviceKind,
    DeviceSetup,
    SimHealthDevice,
)
from vitalgate.firmware_sim.devices.racp_server import RacpServer
from vitalgate.firmware_sim.faults import FaultInjector
from vitalgate.firmware_sim.peripheral import PeripheralNotConnected, SimAttError
from vitalgate.firmware_sim.truth import TruthLog, TruthRecord
from vitalgate.readings import ReadingKind

# How long (real seconds) a measurement loop waits for its live notification to go out.
_LIVE_SEND_TIMEOUT_S = 2.0
# Event-loop turns a notification needs through the virtual radio to the central's callback.
_RADIO_HOPS = 12

__all__ = ["ContinuousGlucoseMonitor", "StoredCgm"]

SESSION_RUN_TIME_H = 336
#: Common profile ATT errors (Core Specification Supplement Part B), used by CGMS 1.0.1 where
#: 0x80/0x81 mean Missing/Invalid CRC.
ATT_CCCD_IMPROPERLY_CONFIGURED_COMMON = 0xFD
ATT_PROCEDURE_ALREADY_IN_PROGRESS_COMMON = 0xFE


@dataclass(frozen=True, slots=True)
class StoredCgm:
    """A record in memory: decoded, and the exact bytes it is sent as (encoded once)."""

    measurement: cgmc.CgmMeasurement
    truth: TruthRecord
    payload: bytes


class ContinuousGlucoseMonitor(SimHealthDevice):
    KIND: ClassVar[DeviceKind] = DeviceKind.CGM
    READING_KIND: ClassVar[ReadingKind] = ReadingKind.CGM
    SERVICES: ClassVar[tuple[str, ...]] = (
        "CGM 0x181F (Measurement 0x2AA7 notify, Feature 0x2AA8, Status 0x2AA9, Session Start "
        "Time 0x2AAA, Session Run Time 0x2AAB, SOCP 0x2AAC, RACP 0x2A52; E2E-CRC; bonding)",
        "Device Information 0x180A",
        "Battery 0x180F",
    )
    PROFILE_SERVICE_UUIDS: ClassVar[tuple[str, ...]] = (uuids.CGM_SERVICE,)

    def __init__(
        self,
        setup: DeviceSetup,
        *,
        clock: Clock,
        truth: TruthLog,
        faults: FaultInjector | None = None,
        e2e_crc: bool = True,
        interval_min: int = 5,
        lag_time_constant_min: float = 8.0,
        noise_sd_mg_dl: float = 6.0,
        dropouts_per_day: float = 1.0,
    ) -> None:
        super().__init__(setup, clock=clock, truth=truth, faults=faults, require_bonding=True)
        if not 1 <= interval_min <= 60:
            raise ValueError("interval_min must be in 1..60")
        self.e2e_crc = e2e_crc
        self.interval_min = interval_min
        self.lag_time_constant_min = lag_time_constant_min
        self.noise_sd_mg_dl = noise_sd_mg_dl
        self.dropouts_per_day = dropouts_per_day
        self.records: collections.deque[StoredCgm] = collections.deque(maxlen=0xFFFF)
        self.session_running = False
        self.session_start_true: datetime = self.started_at
        self.session_start_device: datetime = self.device_clock.now().replace(microsecond=0)
        self._series: phys.CgmSeries | None = None
        self.racp: RacpServer[StoredCgm] = RacpServer(
            self,
            records=lambda: self.records,
            sequence_key=lambda r: r.measurement.time_offset_min,
            time_key=None,
            send=self._send_one,
            delete=self._delete,
            busy_error=ATT_PROCEDURE_ALREADY_IN_PROGRESS_COMMON,
            cccd_error=ATT_CCCD_IMPROPERLY_CONFIGURED_COMMON,
        )
        self.measurement_char: Characteristic[bytes] | None = None
        self.socp_char: Characteristic[bytes] | None = None
        self._live_send: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ services
    def build_profile_services(self) -> list[Service]:
        crc = self.e2e_crc
        features = (
            cgmc.CgmFeatureFlag.TREND_INFORMATION
            | cgmc.CgmFeatureFlag.QUALITY
            | cgmc.CgmFeatureFlag.LOW_BATTERY_DETECTION
            | cgmc.CgmFeatureFlag.MULTIPLE_BOND
        )
        if crc:
            features |= cgmc.CgmFeatureFlag.E2E_CRC
        feature = cgmc.encode_feature(
            cgmc.CgmFeature(
                features=features,
                sample_type=SampleType.INTERSTITIAL_FLUID,
                sample_location=cgmc.CgmSampleLocation.SUBCUTANEOUS_TISSUE,
            )
        )
        self.measurement_char = self.make_characteristic(uuids.CGM_MEASUREMENT, notify=True)
        self.socp_char = self.make_characteristic(
            uuids.CGM_SPECIFIC_OPS_CONTROL_POINT, write=self._on_socp_write, indicate=True
        )
        return [
            Service(
                uuids.CGM_SERVICE,
                [
                    self.measurement_char,
                    self.make_characteristic(uuids.CGM_FEATURE, value=feature),
                    self.make_characteristic(uuids.CGM_STATUS, read=self._status_bytes),
                    self.make_characteristic(
                        uuids.CGM_SESSION_START_TIME,
                        read=self._session_start_bytes,
                        write=self._on_session_start_write,
                    ),
                    self.make_characteristic(
                        uuids.CGM_SESSION_RUN_TIME,
                        value=cgmc.encode_session_run_time(
                            cgmc.CgmSessionRunTime(run_time_h=SESSION_RUN_TIME_H), e2e_crc=crc
                        ),
                    ),
                    self.socp_char,
                    self.racp.make_characteristic(),
                ],
            )
        ]

    def _status(self) -> cgmc.CgmSensorStatus:
        status = cgmc.CgmSensorStatus(0)
        if not self.session_running:
            status |= cgmc.CgmSensorStatus.SESSION_STOPPED
        if self.battery_pct < 10:
            status |= cgmc.CgmSensorStatus.DEVICE_BATTERY_LOW
        return status

    def _status_bytes(self) -> bytes:
        return cgmc.encode_status(
            cgmc.CgmStatus(time_offset_min=self.time_offset_min(), status=self._status()),
            e2e_crc=self.e2e_crc,
        )

    def _session_start_bytes(self) -> bytes:
        offset = self.session_start_true.astimezone(self.timezone).utcoffset() or timedelta(0)
        dst = self.session_start_true.astimezone(self.timezone).dst() or timedelta(0)
        standard = offset - dst
        return cgmc.encode_session_start_time(
            cgmc.CgmSessionStartTime(
                start=self.session_start_device,
                time_zone_15min=int(standard.total_seconds() // 900),
                dst_offset=cgmc.DstOffset(int(dst.total_seconds() // 900)),
            ),
            e2e_crc=self.e2e_crc,
        )

    def _on_session_start_write(self, data: bytes) -> None:
        try:
            value = cgmc.parse_session_start_time(data, e2e_crc=self.e2e_crc)
        except cgmc.CgmCrcError as exc:
            raise SimAttError(exc.att_error, str(exc)) from exc
        except ParseError as exc:
            raise SimAttError(0x13, str(exc)) from exc  # Value Not Allowed
        if value.start is not None:
            self.session_start_device = value.start

    @property
    def _tick_rate(self) -> float:
        """Device seconds per true second: the sensor's session timer runs on the same
        crystal as its clock, so a drifting clock (the clock_drift fault) drifts the offsets."""
        return 1.0 + self.device_clock.drift_ppm * 1e-6

    def time_offset_min(self) -> int:
        elapsed_device_s = (self.clock.now() - self.session_start_true).total_seconds()
        elapsed_device_s *= self._tick_rate
        # the 1 us slack keeps a measurement due exactly at a minute boundary on that minute
        return max(0, min(0xFFFF, int((elapsed_device_s + 1e-6) // 60)))

    def true_time_of_offset(self, offset_min: int) -> datetime:
        """The true instant at which the session timer reads ``offset_min`` minutes."""
        return self.session_start_true + timedelta(minutes=offset_min / self._tick_rate)

    # ------------------------------------------------------------------ SOCP
    def _on_socp_write(self, data: bytes) -> None:
        assert self.socp_char is not None
        if not self.is_subscribed(self.socp_char):
            raise SimAttError(ATT_CCCD_IMPROPERLY_CONFIGURED_COMMON, "SOCP indications not enabled")
        try:
            request = cgmc.parse_socp_request(data, e2e_crc=self.e2e_crc)
        except cgmc.CgmCrcError as exc:
            raise SimAttError(exc.att_error, str(exc)) from exc
        except cgmc.SocpRequestError as exc:
            self.spawn(self._socp_indicate(exc.response()))
            return
        op = cgmc.SocpOpcode
        code = cgmc.SocpResponseCode.SUCCESS
        if request.opcode is op.START_SESSION:
            if self.session_running:
                code = cgmc.SocpResponseCode.PROCEDURE_NOT_COMPLETED
            else:
                self.start_session()
        elif request.opcode is op.STOP_SESSION:
            self.session_running = False
        elif request.opcode is op.GET_COMMUNICATION_INTERVAL:
            self.spawn(
                self._socp_indicate(
                    cgmc.SocpMessage(
                        op.COMMUNICATION_INTERVAL_RESPONSE,
                        communication_interval_min=self.interval_min,
                    )
                )
            )
            return
        elif request.opcode is op.SET_COMMUNICATION_INTERVAL:
            wanted = request.communication_interval_min or 0
            if wanted == cgmc.COMMUNICATION_INTERVAL_FASTEST:
                wanted = 1
            if wanted == 0:
                code = cgmc.SocpResponseCode.PARAMETER_OUT_OF_RANGE
            else:
                self.interval_min = min(wanted, 60)
        else:
            code = cgmc.SocpResponseCode.OPCODE_NOT_SUPPORTED
        self.spawn(self._socp_indicate(cgmc.SocpMessage.response_to(request.opcode, code)))

    async def _socp_indicate(self, message: cgmc.SocpMessage) -> None:
        assert self.socp_char is not None
        try:
            await self.indicate(self.socp_char, cgmc.encode_socp(message, e2e_crc=self.e2e_crc))
        except PeripheralNotConnected:
            pass

    def start_session(self) -> None:
        """A new sensor session from now: offsets restart at 0, old records are cleared."""
        self.session_running = True
        self.session_start_true = self.clock.now()
        self.session_start_device = self.device_clock.now().replace(microsecond=0)
        self.records.clear()

    # ------------------------------------------------------------------ measuring
    def _cgm_series(self, until: datetime) -> phys.CgmSeries:
        patient = self.patient_for(1)
        if (
            self._series is None
            or patient.start + timedelta(minutes=float(self._series.time_min[-1])) < until
        ):
            trace = patient.glucose_trace(until + timedelta(days=1))
            self._series = phys.cgm_from_plasma(
                trace,
                interval_min=1.0,
                lag_time_constant_min=self.lag_time_constant_min,
                noise_sd_mg_dl=self.noise_sd_mg_dl,
                dropouts_per_day=self.dropouts_per_day,
                rng=np.random.default_rng([self.setup.seed, 0xC6]),
            )
        return self._series

    async def run(self) -> None:
        self.advertise()
        self.start_session()
        while True:
            next_offset = (self.time_offset_min() // self.interval_min + 1) * self.interval_min
            await self.clock.sleep_until(self.true_time_of_offset(next_offset))
            if self.session_running:
                self.measure()
                live = self._live_send
                if live is not None:
                    # the notification leaves now, not after the clock has moved on
                    self._live_send = None
                    await asyncio.wait({live}, timeout=_LIVE_SEND_TIMEOUT_S)
                    # and let the radio hand it to the central before the clock moves
                    for _ in range(_RADIO_HOPS):
                        await asyncio.sleep(0)

    def measure(self) -> StoredCgm | None:
        """One CGM reading now (None during a sensor drop-out)."""
        now = self.clock.now()
        patient = self.patient_for(1)
        series = self._cgm_series(now)
        index = round(patient.minutes_since_start(now))
        index = min(max(index, 0), series.time_min.size - 1)
        if series.dropout[index]:
            return None
        glucose = float(series.glucose_mg_dl[index])
        trend_raw = (series.glucose_mg_dl[index] - series.glucose_mg_dl[max(index - 15, 0)]) / 15.0
        trend = float(np.round(trend_raw, 1)) if np.isfinite(trend_raw) else None
        offset = self.time_offset_min()
        status = self._status()
        encoded = cgmc.encode_measurement(
            cgmc.CgmMeasurement(
                glucose_mg_dl=glucose,
                time_offset_min=offset,
                status_octet=(
                    cgmc.CgmStatusOctet(int(status) & 0xFF) if int(status) & 0xFF else None
                ),
                trend_mg_dl_per_min=trend,
                quality_pct=float(series.quality_pct[index]),
            ),
            e2e_crc=self.e2e_crc,
        )
        measurement = cgmc.parse_measurements(encoded, e2e_crc=self.e2e_crc)[0]
        values = {"glucose_mg_dl": measurement.glucose_mg_dl}
        if measurement.trend_mg_dl_per_min is not None:
            values["trend_mg_dl_per_min"] = measurement.trend_mg_dl_per_min
        if measurement.quality_pct is not None:
            values["quality_pct"] = measurement.quality_pct
        truth = self.record_truth(
            user_id=None,
            sequence_number=offset,
            device_time=self.session_start_device + timedelta(minutes=offset),
            measured_at=now,
            values=values,
            attributes={
                "time_offset_min": offset,
                "session_start": self.session_start_true.astimezone(UTC).isoformat(),
                "session_start_device": self.session_start_device.isoformat(),
            },
            patient=patient,
        )
        stored = StoredCgm(measurement, truth, encoded)
        self.records.append(stored)
        if (
            self.is_connected
            and self.measurement_char is not None
            and self.is_subscribed(self.measurement_char)
        ):
            self._live_send = self.racp.run_exclusive([stored])
        return stored

    async def _send_one(self, stored: StoredCgm) -> bool:
        assert self.measurement_char is not None
        return await self.send_record(self.measurement_char, stored.payload, indicate=False)

    def _delete(self, doomed: Sequence[StoredCgm]) -> None:
        ids = {id(r) for r in doomed}
        kept = [r for r in self.records if id(r) not in ids]
        self.records.clear()
        self.records.extend(kept)
