"""From decoded GATT values to durable readings: identity, patient, time, signal checks, outbox.

A session turns each driver dataclass into a :class:`~vitalgate.readings.Reading` with a
:class:`ReadingBuilder` (patient from the registry -- per BP user ID for a shared monitor --,
the :class:`~vitalgate.readings.DeviceIdentity` from Device Information, the device time as
sent, ``measured_at`` corrected by :class:`~vitalgate.gateway.timefix.TimeFixer`, and the
gateway's receipt time), then hands a batch to :meth:`Pipeline.deliver`, which runs the signal
checks and adds the batch to the outbox. ``deliver`` returns only once the outbox has made the
batch durable; the caller advances the device's sync point after that, never before. If the
outbox is full (``OutboxFullError``) the error propagates and the sync point stays put: the
device keeps its records and they are fetched again next time.

A record that cannot become a reading (a BP user ID mapped to no patient) is not dropped
silently: the builder returns a :class:`Rejected` with the reason, which the session counts and
records as the device's last error (without the values).
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from vitalgate.drivers import blood_pressure as bp_codec
from vitalgate.drivers import cgm as cgm_codec
from vitalgate.drivers import glucose as glucose_codec
from vitalgate.drivers import heart_rate as hr_codec
from vitalgate.drivers import pulse_oximeter as plx_codec
from vitalgate.drivers import thermometer as thermo_codec
from vitalgate.drivers import weight_scale as weight_codec
from vitalgate.gateway.ppg import PpgWindow
from vitalgate.gateway.registry import DeviceRecord
from vitalgate.gateway.timefix import TimeFixer
from vitalgate.readings import (
    BloodPressureReading,
    BodyTemperatureReading,
    CgmReading,
    DeviceIdentity,
    DeviceStatusReading,
    GlucoseReading,
    HeartRateReading,
    PulseOximetryReading,
    QualityFlag,
    Reading,
    ReadingKind,
    WeightReading,
    make_reading_id,
)
from vitalgate.signal import hrv, quality

__all__ = [
    "DeliveryResult",
    "Pipeline",
    "ReadingBuilder",
    "ReadingSink",
    "Rejected",
    "identity_of",
]

_log = logging.getLogger(__name__)


class ReadingSink(Protocol):
    """What the pipeline needs from the outbox: a durable, idempotent ``add``."""

    def add(self, readings: Sequence[Reading]) -> int:
        """Store the readings durably (idempotent by reading_id); the number newly added."""
        ...


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record that could not become a reading, and why (no health values in ``reason``)."""

    reason: str


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    offered: int
    added: int  # new to the outbox; offered - added were already there (re-downloads)


def identity_of(record: DeviceRecord) -> DeviceIdentity:
    """The identity reading ids are derived from (serial-based when the device has one)."""
    return DeviceIdentity(
        address=record.address,
        manufacturer=record.manufacturer,
        model=record.model,
        serial=record.serial,
    )


#: The least gap between two live samples of one kind from one device (see ``_stream_time``).
_STREAM_STEP = timedelta(milliseconds=1)
#: A strap's RR intervals are gathered into windows of this length for HRV (Task Force 1996's
#: short-term recording); a silence longer than ``_RR_GAP`` starts a new window.
_RR_WINDOW_S = 300.0
_RR_GAP = timedelta(seconds=5)
_RR_MIN_INTERVALS = 60

_BP_STATUS_FLAGS = (
    ("body_movement", QualityFlag.BODY_MOVEMENT),
    ("cuff_too_loose", QualityFlag.CUFF_TOO_LOOSE),
    ("irregular_pulse", QualityFlag.IRREGULAR_PULSE),
    ("improper_position", QualityFlag.IMPROPER_POSITION),
)

_PLX_BAD_STATUS = (
    plx_codec.PlxMeasurementStatus.QUESTIONABLE_MEASUREMENT_DETECTED
    | plx_codec.PlxMeasurementStatus.INVALID_MEASUREMENT_DETECTED
    | plx_codec.PlxMeasurementStatus.MEASUREMENT_UNAVAILABLE
)
_PLX_BAD_SENSOR = (
    plx_codec.PlxDeviceAndSensorStatus.POOR_SIGNAL_DETECTED
    | plx_codec.PlxDeviceAndSensorStatus.INADEQUATE_SIGNAL_DETECTED
    | plx_codec.PlxDeviceAndSensorStatus.ERRATIC_SIGNAL_DETECTED
    | plx_codec.PlxDeviceAndSensorStatus.LOW_PERFUSION_DETECTED
    | plx_codec.PlxDeviceAndSensorStatus.SENSOR_DISPLACED
    | plx_codec.PlxDeviceAndSensorStatus.SENSOR_MALFUNCTIONING
    | plx_codec.PlxDeviceAndSensorStatus.SENSOR_DISCONNECTED
    | plx_codec.PlxDeviceAndSensorStatus.SENSOR_UNCONNECTED_TO_USER
)


class ReadingBuilder:
    """Builds the readings of one device during one connection."""

    def __init__(self, record: DeviceRecord, fixer: TimeFixer) -> None:
        self._record = record
        self._identity = identity_of(record)
        self._fixer = fixer
        self._stream_counter = 0
        self._stream_last: dict[ReadingKind, datetime] = {}
        self._rr_window: list[float] = []
        self._rr_window_s = 0.0
        self._rr_last: datetime | None = None
        self._connection_nonce = secrets.token_hex(8)

    @property
    def record(self) -> DeviceRecord:
        return self._record

    def device_status(
        self, at: datetime, *, battery_pct: int | None, clock_offset_s: float | None
    ) -> list[DeviceStatusReading]:
        """The device's state at this sync, once for each patient it serves (none if the sync
        learnt nothing: no Battery Service, no readable clock)."""
        if battery_pct is None and clock_offset_s is None:
            return []
        patients = {p for p in (self._record.patient_id, *self._record.user_patients.values()) if p}
        return [
            DeviceStatusReading(
                patient_id=patient,
                device=self._identity,
                measured_at=at,
                received_at=at,
                battery_pct=None if battery_pct is None else float(battery_pct),
                clock_offset_s=None if clock_offset_s is None else round(clock_offset_s, 3),
            )
            for patient in sorted(patients)
        ]

    @property
    def identity(self) -> DeviceIdentity:
        return self._identity

    @property
    def fixer(self) -> TimeFixer:
        return self._fixer

    def _patient(self, user_id: int | None = None) -> str | Rejected:
        patient = self._record.patient_for_user(user_id)
        if patient is None:
            return Rejected(f"user ID {user_id} on {self._record.address} is mapped to no patient")
        return patient

    def blood_pressure(
        self, m: bp_codec.BloodPressureMeasurement, received_at: datetime
    ) -> BloodPressureReading | Rejected:
        user_id = None if m.user_id is None or m.unknown_user else m.user_id
        patient = self._patient(user_id)
        if isinstance(patient, Rejected):
            return patient
        fix = self._fixer.fix(m.timestamp, received_at)
        flags = set(fix.flags)
        if m.status is not None:
            flags.update(flag for attr, flag in _BP_STATUS_FLAGS if getattr(m.status, attr))
            if m.status.pulse_rate_range != bp_codec.PulseRateRange.IN_RANGE:
                flags.add(QualityFlag.PULSE_RATE_OUT_OF_RANGE)
        return BloodPressureReading(
            patient_id=patient,
            device=self._identity,
            measured_at=fix.measured_at,
            received_at=received_at,
            device_time=m.timestamp,
            flags=frozenset(flags),
            systolic_mmhg=m.systolic_mmhg,
            diastolic_mmhg=m.diastolic_mmhg,
            mean_arterial_pressure_mmhg=m.mean_arterial_pressure_mmhg,
            pulse_rate_bpm=m.pulse_rate_bpm,
            user_id=m.user_id,
        )

    def glucose(
        self,
        m: glucose_codec.GlucoseMeasurement,
        context: glucose_codec.GlucoseMeasurementContext | None,
        received_at: datetime,
    ) -> GlucoseReading | Rejected:
        """A glucose record joined with its context (same sequence number), if any."""
        patient = self._patient()
        if isinstance(patient, Rejected):
            return patient
        if context is not None and context.sequence_number != m.sequence_number:
            raise ValueError("context belongs to another sequence number")
        device_time = m.user_facing_time
        fix = self._fixer.fix(device_time, received_at)
        flags = set(fix.flags)
        if m.sensor_status:
            flags.add(QualityFlag.SENSOR_STATUS)
        control = m.is_control_solution
        if control:
            flags.add(QualityFlag.CONTROL_SOLUTION)
        mg_dl = m.glucose_mg_dl
        return GlucoseReading(
            patient_id=patient,
            device=self._identity,
            measured_at=fix.measured_at,
            received_at=received_at,
            device_time=device_time,
            sequence_number=m.sequence_number,
            flags=frozenset(flags),
            glucose_mg_dl=math.nan if mg_dl is None else mg_dl,
            sample_type=None if m.sample_type is None else int(m.sample_type),
            sample_location=None if m.sample_location is None else int(m.sample_location),
            meal=None if context is None else context.reading_meal,
            carbohydrate_g=None if context is None else context.carbohydrate_g,
            hba1c_pct=None if context is None else context.hba1c_pct,
            is_control_solution=control,
        )

    def cgm(
        self,
        m: cgm_codec.CgmMeasurement,
        *,
        session_start_local: datetime,
        session_start_utc: datetime,
        received_at: datetime,
    ) -> CgmReading | Rejected:
        """A CGM record: absolute time = session start + time offset (minutes)."""
        patient = self._patient()
        if isinstance(patient, Rejected):
            return patient
        device_time = session_start_local + timedelta(minutes=m.time_offset_min)
        fix = self._fixer.fix(device_time, received_at)
        flags = set(fix.flags)
        if m.status_octet or m.cal_temp_octet or m.warning_octet:
            flags.add(QualityFlag.SENSOR_STATUS)
        return CgmReading(
            patient_id=patient,
            device=self._identity,
            measured_at=fix.measured_at,
            received_at=received_at,
            device_time=device_time,
            sequence_number=m.time_offset_min,
            flags=frozenset(flags),
            glucose_mg_dl=m.glucose_mg_dl,
            time_offset_min=m.time_offset_min,
            session_start=session_start_utc,
            trend_mg_dl_per_min=m.trend_mg_dl_per_min,
            quality_pct=m.quality_pct,
        )

    def temperature(
        self,
        m: thermo_codec.TemperatureMeasurement,
        received_at: datetime,
        *,
        site: int | None = None,
    ) -> BodyTemperatureReading | Rejected:
        patient = self._patient()
        if isinstance(patient, Rejected):
            return patient
        fix = self._fixer.fix(m.timestamp, received_at)
        site_code = int(m.temperature_type) if m.temperature_type is not None else site
        return BodyTemperatureReading(
            patient_id=patient,
            device=self._identity,
            measured_at=fix.measured_at,
            received_at=received_at,
            device_time=m.timestamp,
            flags=fix.flags,
            temperature_c=m.temperature_c,
            site=site_code,
        )

    def weight(
        self, m: weight_codec.WeightMeasurement, received_at: datetime
    ) -> WeightReading | Rejected:
        user_id = m.user_id if m.user_id not in (None, weight_codec.UNKNOWN_USER) else None
        patient = self._patient(user_id)
        if isinstance(patient, Rejected):
            return patient
        if m.measurement_unsuccessful:
            return Rejected(f"scale {self._record.address} reported an unsuccessful measurement")
        weight_kg = m.weight_kg
        assert weight_kg is not None
        fix = self._fixer.fix(m.timestamp, received_at)
        return WeightReading(
            patient_id=patient,
            device=self._identity,
            measured_at=fix.measured_at,
            received_at=received_at,
            device_time=m.timestamp,
            flags=fix.flags,
            weight_kg=weight_kg,
            bmi_kg_m2=m.bmi_kg_m2,
            height_m=m.height_m,
            user_id=m.user_id,
        )

    def spot_check(
        self, m: plx_codec.SpotCheckMeasurement, received_at: datetime
    ) -> PulseOximetryReading | Rejected:
        patient = self._patient()
        if isinstance(patient, Rejected):
            return patient
        device_time = m.timestamp
        fix = self._fixer.fix(device_time, received_at)
        flags = set(fix.flags)
        if m.device_clock_not_set and device_time is not None:
            flags.add(QualityFlag.CLOCK_UNSET)
        flags.update(_plx_flags(m.measurement_status, m.device_and_sensor_status))
        return PulseOximetryReading(
            patient_id=patient,
            device=self._identity,
            measured_at=fix.measured_at,
            received_at=received_at,
            device_time=device_time,
            flags=frozenset(flags),
            spo2_pct=m.spo2_pct,
            pulse_rate_bpm=m.pulse_rate_bpm,
            perfusion_index_pct=m.perfusion_index_pct,
            continuous=False,
        )

    def _stream_id(self, kind: ReadingKind, received_at: datetime) -> str:
        """A unique id for a live-stream sample: the device sends no time or sequence number.

        A random per-connection nonce, the receipt time and a counter tell samples apart;
        live samples are never re-sent, so the id only needs to be unique, not reproducible.
        """
        self._stream_counter += 1
        return make_reading_id(
            kind,
            self._identity,
            discriminator=(
                "live",
                self._connection_nonce,
                received_at.isoformat(),
                self._stream_counter,
            ),
        )

    def _stream_time(self, kind: ReadingKind, received_at: datetime) -> datetime:
        """``measured_at`` of a live sample: its receipt, kept at least a millisecond after the
        previous sample of the kind, so no two share a time in a store keyed by series and time
        (InfluxDB overwrites such a point; VictoriaMetrics keeps milliseconds). The first
        millisecond of each second is left to records stamped by a device clock (whole
        seconds), so a live sample never lands on a stored record of the same device and kind
        (a pulse oximeter's spot check and its continuous stream)."""
        last = self._stream_last.get(kind)
        stamp = received_at
        if last is not None and stamp < last + _STREAM_STEP:
            stamp = last + _STREAM_STEP
        if stamp.microsecond < 1000:
            stamp = stamp.replace(microsecond=1000)
        self._stream_last[kind] = stamp
        return stamp

    def continuous_oximetry(
        self, m: plx_codec.ContinuousMeasurement, received_at: datetime
    ) -> PulseOximetryReading | Rejected:
        patient = self._patient()
        if isinstance(patient, Rejected):
            return patient
        flags = {QualityFlag.NO_DEVICE_TIME}
        flags.update(_plx_flags(m.measurement_status, m.device_and_sensor_status))
        return PulseOximetryReading(
            patient_id=patient,
            device=self._identity,
            measured_at=self._stream_time(ReadingKind.PULSE_OXIMETRY, received_at),
            received_at=received_at,
            flags=frozenset(flags),
            spo2_pct=m.spo2_pct,
            pulse_rate_bpm=m.pulse_rate_bpm,
            perfusion_index_pct=m.perfusion_index_pct,
            continuous=True,
            reading_id=self._stream_id(ReadingKind.PULSE_OXIMETRY, received_at),
        )

    def _strap_rmssd(self, m: hr_codec.HeartRateMeasurement, received_at: datetime) -> float | None:
        """Gather the strap's RR intervals; RMSSD of a window once it holds ``_RR_WINDOW_S``."""
        if self._rr_last is not None and received_at - self._rr_last > _RR_GAP:
            self._rr_window, self._rr_window_s = [], 0.0  # a gap: beats are missing
        self._rr_last = received_at
        if m.sensor_contact is False:
            self._rr_window, self._rr_window_s = [], 0.0
            return None
        self._rr_window.extend(m.rr_intervals_s)
        self._rr_window_s += sum(m.rr_intervals_s)
        if self._rr_window_s < _RR_WINDOW_S:
            return None
        window, self._rr_window, self._rr_window_s = self._rr_window, [], 0.0
        return hrv.rmssd_ms(window, min_intervals=_RR_MIN_INTERVALS)

    def heart_rate(
        self, m: hr_codec.HeartRateMeasurement, received_at: datetime
    ) -> HeartRateReading | Rejected:
        """A Heart Rate Measurement; every 5 minutes of RR intervals, one also carries the
        window's RMSSD (``rmssd_ms``)."""
        patient = self._patient()
        if isinstance(patient, Rejected):
            return patient
        flags = {QualityFlag.NO_DEVICE_TIME}
        if m.sensor_contact is False:
            flags.add(QualityFlag.NO_SENSOR_CONTACT)
        return HeartRateReading(
            patient_id=patient,
            device=self._identity,
            measured_at=self._stream_time(ReadingKind.HEART_RATE, received_at),
            received_at=received_at,
            flags=frozenset(flags),
            heart_rate_bpm=float(m.heart_rate_bpm),
            rr_intervals_s=m.rr_intervals_s,
            sensor_contact=m.sensor_contact,
            energy_expended_kj=(
                float(m.energy_expended_kj) if m.energy_expended_kj is not None else None
            ),
            rmssd_ms=self._strap_rmssd(m, received_at),
            reading_id=self._stream_id(ReadingKind.HEART_RATE, received_at),
        )

    def ppg_heart_rate(
        self, window: PpgWindow, received_at: datetime
    ) -> HeartRateReading | Rejected:
        """Heart rate derived by the gateway from the vendor PPG stream over one window.

        ``measured_at`` is the receipt of the packet that completed the window (about its end);
        the window's quality flags are kept on the reading, and its RMSSD when the window's beats
        allow one.
        """
        patient = self._patient()
        if isinstance(patient, Rejected):
            return patient
        return HeartRateReading(
            patient_id=patient,
            device=self._identity,
            measured_at=self._stream_time(ReadingKind.HEART_RATE, received_at),
            received_at=received_at,
            flags=frozenset({QualityFlag.NO_DEVICE_TIME, QualityFlag.DERIVED, *window.flags}),
            heart_rate_bpm=round(window.heart_rate_bpm, 1),
            rr_intervals_s=window.rr_intervals_s,
            sensor_contact=None,
            rmssd_ms=hrv.rmssd_ms(window.rr_intervals_s),
            reading_id=self._stream_id(ReadingKind.HEART_RATE, received_at),
        )


def _plx_flags(
    status: plx_codec.PlxMeasurementStatus | None,
    sensor: plx_codec.PlxDeviceAndSensorStatus | None,
) -> set[QualityFlag]:
    flags: set[QualityFlag] = set()
    if status is not None and status & _PLX_BAD_STATUS:
        flags.add(QualityFlag.LOW_QUALITY)
    if sensor is not None and sensor & _PLX_BAD_SENSOR:
        flags.add(QualityFlag.SENSOR_STATUS)
    return flags


class Pipeline:
    """Signal checks, then the outbox. Safe to share between device sessions.

    ``deliver`` runs the blocking outbox write in a worker thread, one batch at a time (the lock
    keeps the outbox single-writer). It never touches the network.
    """

    def __init__(
        self, sink: ReadingSink, *, limits: quality.QualityLimits = quality.DEFAULT_LIMITS
    ) -> None:
        self._sink = sink
        self._limits = limits
        self._lock = asyncio.Lock()
        self.delivered = 0
        self.duplicates = 0

    def checked(self, readings: Sequence[Reading]) -> list[Reading]:
        """Each reading with its plausibility / control-solution flags (never removed).

        Readings are checked one by one (not as a batch) so a reading gets the same flags
        whichever batch it arrives in: flags must not depend on how a download was split.
        """
        return [quality.check(r, limits=self._limits) for r in readings]

    async def deliver(self, readings: Sequence[Reading]) -> DeliveryResult:
        """Check and durably store ``readings``; returns once the outbox has them."""
        if not readings:
            return DeliveryResult(0, 0)
        batch = self.checked(readings)
        async with self._lock:
            added = await asyncio.to_thread(self._sink.add, batch)
        self.delivered += added
        self.duplicates += len(batch) - added
        _log.debug("delivered %d readings (%d new)", len(batch), added)
        return DeliveryResult(len(batch), added)
