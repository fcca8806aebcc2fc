"""What every simulated health device shares: identity, clocks, battery, standard services,
ground truth and fault hooks; plus the :class:`Patient` whose physiology the devices measure.

Standard services (Bluetooth SIG):

* Device Information (0x180A): Manufacturer Name (0x2A29), Model Number (0x2A24), Serial Number
  (0x2A25), Firmware Revision (0x2A26), Hardware Revision (0x2A27) -- UTF-8 strings, read.
* Battery (0x180F): Battery Level (0x2A19), u8 percent, read + notify.
* Current Time (0x1805), on devices whose real counterparts have it: Current Time (0x2A2B) =
  Exact Time 256 (Date Time, Day of Week, Fractions256) + Adjust Reason, read + write + notify.
  A write sets the device clock (how a gateway corrects drift or a year-2000 reset).

The device-local clock (:class:`~vitalgate.firmware_sim.clock.DeviceClock`) is set from the
world clock in the device's time zone when the device is created, then drifts by its own ppm.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import numpy as np
from bumble.device import Connection
from bumble.gatt import Characteristic, Service

from vitalgate.drivers import battery, current_time, device_information, uuids
from vitalgate.errors import DeviceError, ParseError
from vitalgate.firmware_sim import physiology as phys
from vitalgate.firmware_sim.clock import Clock, DeviceClock
from vitalgate.firmware_sim.faults import FaultInjector, FaultKind
from vitalgate.firmware_sim.peripheral import (
    PeripheralNotConnected,
    SimAttError,
    SimPeripheral,
)
from vitalgate.firmware_sim.truth import Attribute, TruthLog, TruthRecord
from vitalgate.readings import ReadingKind

__all__ = [
    "DeviceKind",
    "DeviceSetup",
    "Patient",
    "PatientProfile",
    "SimHealthDevice",
    "TransferInterrupted",
]

#: ATT application error "Procedure Already In Progress" (GLS/CGMS/PLXS).
ATT_PROCEDURE_ALREADY_IN_PROGRESS = 0x80
#: ATT application error "Client Characteristic Configuration Descriptor Improperly Configured".
ATT_CCCD_IMPROPERLY_CONFIGURED = 0x81
#: Real time for packets already sent to reach the central before a device vanishes.
_IN_FLIGHT_S = 0.05
#: ATT error "Value Not Allowed" (Core Supplement / CSS: 0x13 in ATT, used by CTS).
ATT_VALUE_NOT_ALLOWED = 0x13


class DeviceKind(enum.StrEnum):
    """The simulated device kinds (``vitalgate sim list``)."""

    BP_MONITOR = "bp_monitor"
    GLUCOSE_METER = "glucose_meter"
    CGM = "cgm"
    HR_WEARABLE = "hr_wearable"
    PULSE_OXIMETER = "pulse_oximeter"
    THERMOMETER = "thermometer"
    WEIGHT_SCALE = "weight_scale"


class PatientProfile(enum.StrEnum):
    """Physiological profiles a scenario can give a patient."""

    HYPERTENSIVE = "hypertensive"
    NORMOTENSIVE = "normotensive"
    TYPE2_DIABETIC = "type2_diabetic"
    TYPE2_DIABETIC_HYPERTENSIVE = "type2_diabetic_hypertensive"


_CHUNK_DAYS = 7


class Patient:
    """One simulated person: the physiology every device of theirs measures.

    Continuous quantities (plasma glucose) are simulated once for the whole run from ``start``
    (extended in 1-day chunks if the run goes on longer), so the glucose meter and the CGM of the
    same patient see the same blood.
    """

    def __init__(
        self,
        *,
        patient_id: str,
        profile: PatientProfile,
        start: datetime,
        timezone: ZoneInfo,
        seed: int,
        body_mass_kg: float = 80.0,
    ) -> None:
        if start.tzinfo is None or start.utcoffset() != timedelta(0):
            raise ValueError("start must be timezone-aware UTC")
        self.patient_id = patient_id
        self.profile = PatientProfile(profile)
        self.start = start
        self.timezone = timezone
        self.seed = seed
        self.body_mass_kg = body_mass_kg
        self._rng = np.random.default_rng(seed)
        self.bp_profile = (
            phys.NORMOTENSIVE if self.profile is PatientProfile.NORMOTENSIVE else phys.HYPERTENSIVE
        )
        self.diabetic = self.profile in (
            PatientProfile.TYPE2_DIABETIC,
            PatientProfile.TYPE2_DIABETIC_HYPERTENSIVE,
        )
        self._glucose: phys.GlucoseTrace | None = None
        self._chunks: list[phys.GlucoseTrace] = []
        self._meals: list[phys.MealIntake] = []

    def local_hour(self, when: datetime) -> float:
        local = when.astimezone(self.timezone)
        return local.hour + local.minute / 60.0 + local.second / 3600.0

    def minutes_since_start(self, when: datetime) -> float:
        return (when - self.start).total_seconds() / 60.0

    def rng(self, stream: str) -> np.random.Generator:
        """An independent generator for one device/stream, from the patient seed."""
        return np.random.default_rng([self.seed, *stream.encode()])

    def _ensure_glucose(self, minutes: float) -> phys.GlucoseTrace:
        """The plasma trace up to ``minutes``, simulated in 7-day chunks as the run goes on.

        Each chunk has its own schedule and generator (seeded by the patient seed and the chunk
        number) and starts from the previous chunk's last glucose value, so values already
        measured never change when the run is extended.
        """
        while self._glucose is None or self._glucose.time_min[-1] < minutes:
            number = len(self._chunks)
            chunk_start = self.start + timedelta(days=_CHUNK_DAYS * number)
            rng = np.random.default_rng([self.seed, 7, number])
            params = phys.TYPE2_DIABETIC if self.diabetic else _healthy_params()
            schedule = phys.daily_diabetes_schedule(
                start_local_hour=self.local_hour(chunk_start),
                days=_CHUNK_DAYS,
                rng=rng,
                insulin_units_per_10g_carb=1.0 if self.diabetic else 0.0,
                exercise_days_per_week=3.0,
            )
            offset_min = _CHUNK_DAYS * 1440.0 * number
            self._meals.extend(
                phys.MealIntake(m.at_min + offset_min, m.carbohydrate_g) for m in schedule.meals
            )
            trace = phys.simulate_glucose(
                duration_min=_CHUNK_DAYS * 1440.0,
                step_min=1.0,
                params=params,
                meals=schedule.meals,
                insulin=schedule.insulin,
                exercise=schedule.exercise,
                rng=rng,
                initial_glucose_mg_dl=(
                    None if self._glucose is None else float(self._glucose.plasma_glucose_mg_dl[-1])
                ),
            )
            self._chunks.append(trace)
            if self._glucose is None:
                self._glucose = trace
            else:
                self._glucose = phys.GlucoseTrace(
                    time_min=np.concatenate(
                        [self._glucose.time_min, trace.time_min[1:] + offset_min]
                    ),
                    plasma_glucose_mg_dl=np.concatenate(
                        [self._glucose.plasma_glucose_mg_dl, trace.plasma_glucose_mg_dl[1:]]
                    ),
                    plasma_insulin_uu_ml=np.concatenate(
                        [self._glucose.plasma_insulin_uu_ml, trace.plasma_insulin_uu_ml[1:]]
                    ),
                    step_min=trace.step_min,
                )
        return self._glucose

    def glucose_trace(self, until: datetime) -> phys.GlucoseTrace:
        return self._ensure_glucose(self.minutes_since_start(until))

    def plasma_glucose_mg_dl(self, when: datetime) -> float:
        minutes = self.minutes_since_start(when)
        return float(self._ensure_glucose(minutes).at([max(minutes, 0.0)])[0])

    def meals(self) -> Sequence[phys.MealIntake]:
        """Meals simulated so far (minutes since the start)."""
        self._ensure_glucose(0.0)
        return tuple(self._meals)


def _healthy_params() -> phys.GlucoseModelParams:
    from dataclasses import replace

    return replace(
        phys.TYPE2_DIABETIC,
        basal_glucose_mg_dl=90.0,
        insulin_sensitivity_per_min_per_uu_ml=6.0e-4,
        secretion_gain_uu_ml_per_min_per_mg_dl=0.02,
        secretion_threshold_mg_dl=95.0,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceSetup:
    """Identity and ownership of one simulated device.

    ``patients`` maps the device's user IDs to patient ids; single-user devices use ``{1: id}``.
    ``clock_error_s`` is the device clock's error when the run starts.
    """

    serial: str
    model: str
    manufacturer: str
    firmware: str
    name: str
    seed: int
    passkey: int | None
    patients: Mapping[int, Patient]
    clock_error_s: float = 0.0
    hardware: str = "1.0"
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.patients:
            raise ValueError(f"device {self.serial} has no patient")
        for user_id in self.patients:
            if not 1 <= user_id <= 254:
                raise ValueError(f"user ID {user_id} must be in 1..254 (255 = unknown user)")


class TransferInterrupted(DeviceError):
    """A transfer fault (disconnect / vanish) ended a transfer on purpose."""


# --------------------------------------------------------------------------------------------
# The device base class
# --------------------------------------------------------------------------------------------


class SimHealthDevice(SimPeripheral):
    """A simulated health device: identity, clocks, battery, standard services, truth, faults.

    Subclasses set the class attributes, build their profile services in
    :meth:`build_profile_services`, and produce measurements in :meth:`run` (started by
    :meth:`start`, owned by the world's task group). Record packets go out through
    :meth:`send_record`, which applies the device's faults.
    """

    KIND: ClassVar[DeviceKind]
    READING_KIND: ClassVar[ReadingKind]
    #: Human-readable services (for ``vitalgate sim list``).
    SERVICES: ClassVar[tuple[str, ...]]
    HAS_CURRENT_TIME: ClassVar[bool] = False
    PROFILE_SERVICE_UUIDS: ClassVar[tuple[str, ...]]

    def __init__(
        self,
        setup: DeviceSetup,
        *,
        clock: Clock,
        truth: TruthLog,
        faults: FaultInjector | None = None,
        require_bonding: bool = False,
        auto_readvertise: bool = True,
    ) -> None:
        self.setup = setup
        self.faults = faults if faults is not None else FaultInjector((), seed=0, serial="")
        displayed = setup.passkey
        if displayed is not None and self.faults.has(FaultKind.WRONG_PASSKEY):
            displayed = (displayed + 111_111) % 1_000_000
        super().__init__(
            name=setup.name,
            seed=setup.seed,
            service_uuids=self.PROFILE_SERVICE_UUIDS,
            passkey=displayed,
            require_bonding=require_bonding,
            auto_readvertise=auto_readvertise,
        )
        self.refuse_pairing = self.faults.has(FaultKind.REFUSE_PAIRING)
        slow = self.faults.first(FaultKind.SLOW_RESPONSES)
        if slow is not None and slow.latency_s is not None:
            self.latency_s = slow.latency_s
        self.clock = clock
        self.truth = truth
        self.started_at = clock.now()
        first_patient = next(iter(setup.patients.values()))
        self.timezone = first_patient.timezone
        offset = self.started_at.astimezone(self.timezone).utcoffset() or timedelta(0)
        drift = self.faults.first(FaultKind.CLOCK_DRIFT)
        self.device_clock = DeviceClock(
            clock,
            local_offset=offset,
            error=timedelta(seconds=setup.clock_error_s),
            drift_ppm=drift.ppm if drift is not None and drift.ppm is not None else 0.0,
        )
        self.rng = np.random.default_rng([setup.seed, 0xD1CE])
        self.battery_pct = 90
        self.records_sent = 0  # record packets since the current connection began
        #: Set while a central is connected (wait on it with ``await self.clock.wait(...)``).
        self.link_up = asyncio.Event()
        self._advertise_task: asyncio.Task[None] | None = None
        self._battery_char: Characteristic[bytes] | None = None
        self._current_time_char: Characteristic[bytes] | None = None

    # ------------------------------------------------------------------ identity
    @property
    def serial(self) -> str:
        return self.setup.serial

    def patient_for(self, user_id: int) -> Patient:
        try:
            return self.setup.patients[user_id]
        except KeyError:
            raise DeviceError(f"{self.serial}: no patient for user ID {user_id}") from None

    # ------------------------------------------------------------------ services
    def build_profile_services(self) -> list[Service]:
        raise NotImplementedError

    def build_services(self) -> list[Service]:
        services = self.build_profile_services()
        strings = (
            (uuids.MANUFACTURER_NAME_STRING, self.setup.manufacturer),
            (uuids.MODEL_NUMBER_STRING, self.setup.model),
            (uuids.SERIAL_NUMBER_STRING, self.setup.serial),
            (uuids.FIRMWARE_REVISION_STRING, self.setup.firmware),
            (uuids.HARDWARE_REVISION_STRING, self.setup.hardware),
        )
        services.append(
            Service(
                uuids.DEVICE_INFORMATION_SERVICE,
                [
                    self.make_characteristic(
                        u, value=device_information.encode_string(text), encrypted=False
                    )
                    for u, text in strings
                ],
            )
        )
        self._battery_char = self.make_characteristic(
            uuids.BATTERY_LEVEL,
            read=lambda: battery.encode_battery_level(self.battery_pct),
            notify=True,
            encrypted=False,
        )
        services.append(Service(uuids.BATTERY_SERVICE, [self._battery_char]))
        if self.HAS_CURRENT_TIME:
            self._current_time_char = self.make_characteristic(
                uuids.CURRENT_TIME,
                read=self._current_time_bytes,
                write=self._on_current_time_write,
                notify=True,
            )
            services.append(Service(uuids.CURRENT_TIME_SERVICE, [self._current_time_char]))
        return services

    def _current_time_bytes(self) -> bytes:
        return current_time.encode_current_time(
            current_time.CurrentTime.from_datetime(
                self.device_clock.now(), adjust_reason=current_time.AdjustReason(0)
            )
        )

    def _on_current_time_write(self, data: bytes) -> None:
        try:
            value = current_time.parse_current_time(data)
        except ParseError as exc:
            raise SimAttError(ATT_VALUE_NOT_ALLOWED, str(exc)) from exc
        if value.exact_time is None:
            raise SimAttError(ATT_VALUE_NOT_ALLOWED, "date time 'not known' cannot set a clock")
        self.device_clock.set(value.exact_time)

    # ------------------------------------------------------------------ lifetime
    def start(self) -> None:
        """Start the measurement loop and the timed faults in the world's task group."""
        self.spawn(self.run(), name=f"{self.serial}-run")
        timed = [
            f
            for f in self.faults.faults
            if f.at_s is not None
            or (f.kind is FaultKind.CLOCK_RESET)
            or (f.kind is FaultKind.LOW_BATTERY)
        ]
        if timed:
            self.spawn(self._timed_faults(), name=f"{self.serial}-faults")

    async def _timed_faults(self) -> None:
        pending = sorted(
            (f for f in self.faults.faults if f.at_s is not None or f.after_records is None),
            key=lambda f: f.at_s or 0.0,
        )
        for fault in pending:
            if fault.kind not in (FaultKind.CLOCK_RESET, FaultKind.LOW_BATTERY, FaultKind.VANISH):
                continue
            await self.clock.sleep_until(self.started_at + timedelta(seconds=fault.at_s or 0.0))
            if fault.kind is FaultKind.CLOCK_RESET:
                self.device_clock.reset()
            elif fault.kind is FaultKind.LOW_BATTERY and fault.battery_pct is not None:
                await self.set_battery(fault.battery_pct)
            elif fault.kind is FaultKind.VANISH:
                self.vanish()
                if fault.duration_s is not None:
                    await asyncio.sleep(fault.duration_s)
                    self.reappear()

    def advertise(self) -> None:
        """Start advertising in the background (once: a start already under way is kept)."""
        if self._advertise_task is not None and not self._advertise_task.done():
            return
        self._advertise_task = self.spawn(self.start_advertising(), name=f"{self.serial}-advertise")

    async def run(self) -> None:
        """Produce measurements forever (on the simulated clock)."""
        raise NotImplementedError

    def on_connected(self, connection: Connection) -> None:
        self.records_sent = 0
        self.link_up.set()

    def on_disconnected(self, reason: int) -> None:
        self.link_up.clear()

    async def set_battery(self, percent: int) -> None:
        """Set the battery level and notify a subscribed central."""
        if not 0 <= percent <= 100:
            raise ValueError("battery percent must be in 0..100")
        self.battery_pct = percent
        if self._battery_char is not None and self.is_connected:
            try:
                await self.notify(self._battery_char, battery.encode_battery_level(percent))
            except PeripheralNotConnected:
                pass

    # ------------------------------------------------------------------ records
    async def send_record(
        self, characteristic: Characteristic[bytes], payload: bytes, *, indicate: bool
    ) -> bool:
        """Send one record packet, applying the device's transfer and packet faults.

        Returns False if the central has not subscribed. Raises :class:`TransferInterrupted`
        when a disconnect/vanish fault fires (the device dropped the link on purpose) and
        :class:`PeripheralNotConnected` when the central went away.
        """
        interrupt = self.faults.interrupt(self.records_sent)
        if interrupt is not None:
            if interrupt.kind is FaultKind.VANISH:
                # What was already on the air arrives; then the device walks out of range.
                await asyncio.sleep(_IN_FLIGHT_S + self.latency_s)
                self.vanish()
                if interrupt.duration_s is not None:
                    self.spawn(self._reappear_after(interrupt.duration_s))
            else:
                await self.disconnect()
            raise TransferInterrupted(f"{self.serial}: {interrupt.kind} after {self.records_sent}")
        action = self.faults.packet(payload, self.records_sent)
        sent = False
        for data in action.payloads:
            truncate = FaultKind.OVERLONG_PACKET in action.faults
            if indicate:
                sent = await self.indicate(characteristic, data, truncate=truncate)
            else:
                sent = await self.notify(characteristic, data, truncate=truncate)
            if not sent:
                return False
        self.records_sent += 1
        return sent

    async def _reappear_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self.reappear()

    def record_truth(
        self,
        *,
        user_id: int | None,
        sequence_number: int | None,
        device_time: datetime | None,
        measured_at: datetime,
        values: Mapping[str, float],
        attributes: Mapping[str, Attribute] | None = None,
        is_control_solution: bool = False,
        patient: Patient | None = None,
    ) -> TruthRecord:
        who = patient if patient is not None else self.patient_for(user_id or 1)
        record = TruthRecord(
            kind=self.READING_KIND,
            device_serial=self.setup.serial,
            device_model=self.setup.model,
            device_manufacturer=self.setup.manufacturer,
            device_address=self.address,
            patient_id=who.patient_id,
            sequence_number=sequence_number,
            user_id=user_id,
            device_time=device_time,
            measured_at=measured_at.astimezone(UTC),
            values=values,
            attributes=attributes or {},
            is_control_solution=is_control_solution,
        )
        self.truth.append(record)
        return record

    def next_local_time(self, after: datetime, local_hour: float) -> datetime:
        """The first UTC instant strictly after ``after`` at ``local_hour`` in the owner's zone."""
        local = after.astimezone(self.timezone)
        day = local.replace(hour=0, minute=0, second=0, microsecond=0)
        for add_days in range(3):
            naive = (day + timedelta(days=add_days)).replace(tzinfo=None)
            candidate = (naive + timedelta(hours=local_hour)).replace(tzinfo=self.timezone)
            candidate_utc = candidate.astimezone(UTC)
            if candidate_utc > after:
                return candidate_utc
        raise AssertionError("unreachable: a later local time always exists")  # pragma: no cover

    def jitter(self, nominal: datetime, sd_min: float, limit_min: float) -> datetime:
        """``nominal`` moved by a normal jitter (SD ``sd_min``), clipped to +-``limit_min``."""
        shift = float(np.clip(self.rng.normal(0.0, sd_min), -limit_min, limit_min))
        return nominal + timedelta(minutes=shift)
