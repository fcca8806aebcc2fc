"""The reading model: what the gateway hands on, one frozen dataclass per kind of reading.

Every reading carries

* ``patient_id`` -- whose reading it is (a shared BP monitor maps user IDs to patients);
* ``device`` -- the device identity (address, manufacturer, model, serial);
* ``device_time`` -- the timestamp exactly as the device sent it (naive, device-local), if any;
* ``measured_at`` -- timezone-aware UTC, corrected for device clock faults;
* ``received_at`` -- timezone-aware UTC, when the gateway received it;
* ``flags`` -- quality flags (:class:`QualityFlag`); flagged readings are kept, never deleted;
* ``reading_id`` -- a stable id derived from the device identity and the device's sequence
  number, or from its timestamp and values where it has none, so the same reading downloaded
  twice gets the same id (the basis of end-to-end idempotency).

Units live in field names (``systolic_mmhg``, ``glucose_mg_dl``); times are UTC inside.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, ClassVar, Final, Self

__all__ = [
    "MEAL_CODES",
    "READING_TYPES",
    "BloodPressureReading",
    "BodyTemperatureReading",
    "CgmReading",
    "DeviceIdentity",
    "DeviceStatusReading",
    "GlucoseReading",
    "HeartRateReading",
    "Meal",
    "PulseOximetryReading",
    "QualityFlag",
    "Reading",
    "ReadingKind",
    "WeightReading",
    "make_reading_id",
    "reading_type",
]


class ReadingKind(enum.StrEnum):
    """The kinds of reading; each maps to one measurement in the store and one MQTT topic."""

    BLOOD_PRESSURE = "blood_pressure"
    GLUCOSE = "glucose"
    CGM = "cgm"
    HEART_RATE = "heart_rate"
    PULSE_OXIMETRY = "pulse_oximetry"
    BODY_TEMPERATURE = "body_temperature"
    WEIGHT = "weight"
    #: Not a clinical measurement: the device's own state at a sync (battery, clock).
    DEVICE_STATUS = "device_status"


class QualityFlag(enum.StrEnum):
    """Quality and provenance flags attached to a reading. A flagged reading is kept."""

    # Device-reported status (BP measurement status, glucose sensor status, HR contact).
    BODY_MOVEMENT = "body_movement"
    CUFF_TOO_LOOSE = "cuff_too_loose"
    IRREGULAR_PULSE = "irregular_pulse"
    PULSE_RATE_OUT_OF_RANGE = "pulse_rate_out_of_range"
    IMPROPER_POSITION = "improper_position"
    SENSOR_STATUS = "sensor_status"
    NO_SENSOR_CONTACT = "no_sensor_contact"
    # Non-clinical readings: kept and stored, excluded from statistics and alerts.
    CONTROL_SOLUTION = "control_solution"
    # Signal checks (vitalgate.signal).
    IMPLAUSIBLE = "implausible"
    OUTLIER = "outlier"
    DUPLICATE = "duplicate"
    LOW_QUALITY = "low_quality"
    MOTION_ARTIFACT = "motion_artifact"
    # Time provenance.
    CLOCK_CORRECTED = "clock_corrected"
    CLOCK_UNSET = "clock_unset"
    NO_DEVICE_TIME = "no_device_time"
    # Value provenance: computed by the gateway from a raw stream (heart rate from PPG), not a
    # measurement the device reported.
    DERIVED = "derived"

    @property
    def non_clinical(self) -> bool:
        """True for flags that exclude a reading from clinical statistics and alerts."""
        return self in _NON_CLINICAL


_NON_CLINICAL = frozenset({QualityFlag.CONTROL_SOLUTION, QualityFlag.IMPLAUSIBLE})


class Meal(enum.StrEnum):
    """Glucose meal context (Glucose Measurement Context 0x2A34, Meal field)."""

    PREPRANDIAL = "preprandial"
    POSTPRANDIAL = "postprandial"
    FASTING = "fasting"
    CASUAL = "casual"
    BEDTIME = "bedtime"


#: The Meal field's codes (Glucose Service 1.0, Glucose Measurement Context, "Meal" 0x1-0x5).
MEAL_CODES: Final[Mapping[Meal, int]] = MappingProxyType(
    {
        Meal.PREPRANDIAL: 1,
        Meal.POSTPRANDIAL: 2,
        Meal.FASTING: 3,
        Meal.CASUAL: 4,
        Meal.BEDTIME: 5,
    }
)


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    """Who made a reading: the BLE address plus Device Information strings.

    ``key`` is what reading ids are derived from: manufacturer/model/serial when the device
    reports a serial number (stable across address rotation and re-pairing), else the address.
    """

    address: str
    manufacturer: str = ""
    model: str = ""
    serial: str = ""

    @property
    def key(self) -> str:
        if self.serial:
            return f"{self.manufacturer}|{self.model}|{self.serial}"
        return f"addr|{self.address.upper()}"


def _canonical(value: object) -> str:
    """A canonical text for hashing: floats rounded so re-encoding noise does not change ids."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(round(value, 6))
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return "[" + ",".join(_canonical(v) for v in value) + "]"
    return str(value)


def make_reading_id(
    kind: ReadingKind | str,
    device: DeviceIdentity,
    *,
    sequence_number: int | None = None,
    device_time: datetime | None = None,
    discriminator: Iterable[object] = (),
) -> str:
    """Derive the stable id of a reading (32 hex characters).

    The id depends only on what the device itself reports, never on gateway state or clock, so
    downloading the same record again -- after a reconnect, a repeated RACP request or a
    re-sent memory -- yields the same id. ``discriminator`` adds fields that tell apart records
    with the same sequence number or timestamp (a BP user ID, a CGM session start, the values of
    a reading that has neither sequence number nor timestamp).
    """
    parts = [str(ReadingKind(kind)), device.key]
    if sequence_number is not None:
        parts.append(f"seq={sequence_number}")
    if device_time is not None:
        parts.append(f"t={device_time.isoformat()}")
    parts.extend(_canonical(d) for d in discriminator)
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16)
    return digest.hexdigest()


def _require_utc(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() != timedelta(0):
        raise ValueError(f"{name} must be timezone-aware UTC, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Reading:
    """Fields every reading carries. Use a subclass; each sets ``kind``."""

    kind: ClassVar[ReadingKind]
    #: Names of the numeric value fields (units in the names) that go to the store.
    value_fields: ClassVar[tuple[str, ...]]
    #: Value fields computed from other fields or by the gateway, never part of the identity.
    computed_fields: ClassVar[frozenset[str]] = frozenset()

    patient_id: str
    device: DeviceIdentity
    measured_at: datetime
    received_at: datetime
    device_time: datetime | None = None
    sequence_number: int | None = None
    flags: frozenset[QualityFlag] = frozenset()
    reading_id: str = ""

    def __post_init__(self) -> None:
        _require_utc("measured_at", self.measured_at)
        _require_utc("received_at", self.received_at)
        if not self.patient_id:
            raise ValueError("patient_id must not be empty")
        if not isinstance(self.flags, frozenset):
            object.__setattr__(self, "flags", frozenset(QualityFlag(f) for f in self.flags))
        if not self.reading_id:
            object.__setattr__(
                self,
                "reading_id",
                make_reading_id(
                    self.kind,
                    self.device,
                    sequence_number=self.sequence_number,
                    device_time=self.device_time,
                    discriminator=self._id_discriminator(),
                ),
            )

    def _id_discriminator(self) -> tuple[object, ...]:
        """Extra identity fields; by default the measured values when there is no sequence
        number (values the gateway derives, ``computed_fields``, are no part of the identity)."""
        if self.sequence_number is None:
            return tuple(
                getattr(self, name)
                for name in self.value_fields
                if name not in self.computed_fields
            )
        return ()

    def values(self) -> dict[str, float]:
        """The numeric values, units in the names; missing (None / NaN) values are left out."""
        out: dict[str, float] = {}
        for name in self.value_fields:
            v = getattr(self, name)
            if v is None:
                continue
            fv = float(v)
            if math.isfinite(fv):
                out[name] = fv
        return out

    @property
    def is_clinical(self) -> bool:
        """False for control-solution tests and implausible readings."""
        return not any(f.non_clinical for f in self.flags)

    def with_flags(self, *flags: QualityFlag) -> Self:
        """A copy with more flags; the reading_id is kept."""
        return dataclasses.replace(self, flags=self.flags | frozenset(flags))

    def replace(self, **changes: Any) -> Self:
        """A copy with changes; the reading_id is kept unless given."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, slots=True, kw_only=True)
class BloodPressureReading(Reading):
    """A cuff blood-pressure measurement (Blood Pressure Service 0x1810)."""

    kind: ClassVar[ReadingKind] = ReadingKind.BLOOD_PRESSURE
    value_fields: ClassVar[tuple[str, ...]] = (
        "systolic_mmhg",
        "diastolic_mmhg",
        "mean_arterial_pressure_mmhg",
        "pulse_rate_bpm",
    )
    systolic_mmhg: float
    diastolic_mmhg: float
    mean_arterial_pressure_mmhg: float | None = None
    pulse_rate_bpm: float | None = None
    user_id: int | None = None

    def _id_discriminator(self) -> tuple[object, ...]:
        # BP monitors have no sequence numbers: timestamp + user + values identify a record.
        return (self.user_id, *(getattr(self, n) for n in self.value_fields))


@dataclass(frozen=True, slots=True, kw_only=True)
class GlucoseReading(Reading):
    """A glucose-meter measurement (Glucose Service 0x1808) with its context, if any."""

    kind: ClassVar[ReadingKind] = ReadingKind.GLUCOSE
    value_fields: ClassVar[tuple[str, ...]] = (
        "glucose_mg_dl",
        "carbohydrate_g",
        "hba1c_pct",
        "meal_code",
    )
    computed_fields: ClassVar[frozenset[str]] = frozenset({"meal_code"})
    glucose_mg_dl: float
    sample_type: int | None = None
    sample_location: int | None = None
    meal: Meal | None = None
    carbohydrate_g: float | None = None
    hba1c_pct: float | None = None
    is_control_solution: bool = False
    #: ``meal`` as its Glucose Measurement Context code (GLS 1.0 section 3.107 "Meal": 1
    #: preprandial, 2 postprandial, 3 fasting, 4 casual, 5 bedtime): the store keeps numbers only.
    #: Filled in from ``meal`` (and ``meal`` from it): give either.
    meal_code: float | None = None

    def __post_init__(self) -> None:
        if self.meal is not None:
            meal = Meal(self.meal)
            object.__setattr__(self, "meal", meal)
            code = float(MEAL_CODES[meal])
            given = self.meal_code
            if given is not None and not math.isnan(given) and given != code:
                raise ValueError(f"meal_code {given} contradicts meal {meal.value}")
            object.__setattr__(self, "meal_code", code)
        elif self.meal_code is not None:
            if math.isnan(self.meal_code):  # NaN: no meal context
                object.__setattr__(self, "meal_code", None)
            else:
                meal_of = {float(c): m for m, c in MEAL_CODES.items()}.get(float(self.meal_code))
                if meal_of is None:
                    raise ValueError(f"meal_code {self.meal_code} is not a GLS meal code (1..5)")
                object.__setattr__(self, "meal", meal_of)
        Reading.__post_init__(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class CgmReading(Reading):
    """A continuous-glucose-monitor measurement (CGM Service 0x181F).

    ``sequence_number`` is the time offset in minutes since the session start, which the CGM
    specification uses as the record key; ``session_start`` disambiguates sessions.
    """

    kind: ClassVar[ReadingKind] = ReadingKind.CGM
    value_fields: ClassVar[tuple[str, ...]] = (
        "glucose_mg_dl",
        "trend_mg_dl_per_min",
        "quality_pct",
    )
    glucose_mg_dl: float
    time_offset_min: int
    session_start: datetime | None = None
    trend_mg_dl_per_min: float | None = None
    quality_pct: float | None = None

    def _id_discriminator(self) -> tuple[object, ...]:
        return (self.session_start, self.time_offset_min)


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartRateReading(Reading):
    """A heart-rate measurement (Heart Rate Service 0x180D), with RR intervals in seconds."""

    kind: ClassVar[ReadingKind] = ReadingKind.HEART_RATE
    value_fields: ClassVar[tuple[str, ...]] = ("heart_rate_bpm", "energy_expended_kj", "rmssd_ms")
    computed_fields: ClassVar[frozenset[str]] = frozenset({"rmssd_ms"})
    heart_rate_bpm: float
    rr_intervals_s: tuple[float, ...] = ()
    sensor_contact: bool | None = None
    energy_expended_kj: float | None = None
    #: HRV computed by the gateway: RMSSD (Task Force 1996) of the artifact-corrected RR series
    #: of the window this reading closes (5 min of strap RR intervals, or one PPG window). The
    #: store keeps numbers only, so HRV travels as this value rather than as the RR series.
    rmssd_ms: float | None = None

    def _id_discriminator(self) -> tuple[object, ...]:
        return (self.heart_rate_bpm, self.rr_intervals_s)


@dataclass(frozen=True, slots=True, kw_only=True)
class PulseOximetryReading(Reading):
    """A pulse-oximeter measurement (Pulse Oximeter Service 0x1822), spot-check or continuous."""

    kind: ClassVar[ReadingKind] = ReadingKind.PULSE_OXIMETRY
    value_fields: ClassVar[tuple[str, ...]] = ("spo2_pct", "pulse_rate_bpm", "perfusion_index_pct")
    spo2_pct: float
    pulse_rate_bpm: float | None = None
    perfusion_index_pct: float | None = None
    continuous: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class BodyTemperatureReading(Reading):
    """A body temperature (Health Thermometer Service 0x1809), always in degrees Celsius."""

    kind: ClassVar[ReadingKind] = ReadingKind.BODY_TEMPERATURE
    value_fields: ClassVar[tuple[str, ...]] = ("temperature_c",)
    temperature_c: float
    site: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WeightReading(Reading):
    """A body weight (Weight Scale Service 0x181D), always in kilograms."""

    kind: ClassVar[ReadingKind] = ReadingKind.WEIGHT
    value_fields: ClassVar[tuple[str, ...]] = ("weight_kg", "bmi_kg_m2", "height_m")
    weight_kg: float
    bmi_kg_m2: float | None = None
    height_m: float | None = None
    user_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceStatusReading(Reading):
    """A device's state when the gateway synced it: its battery level (Battery Service 0x180F,
    Battery Level 0x2A19) and how far its clock was off the patient's wall clock (Current Time
    Service; positive: the device was ahead). Device health for the dashboard, no clinical
    measurement: alerts, statistics and FHIR observations leave it out. The gateway writes one per
    patient of the device per sync (``measured_at`` = the sync), so it travels and is stored
    like any reading.
    """

    kind: ClassVar[ReadingKind] = ReadingKind.DEVICE_STATUS
    value_fields: ClassVar[tuple[str, ...]] = ("battery_pct", "clock_offset_s")
    battery_pct: float | None = None
    clock_offset_s: float | None = None

    def _id_discriminator(self) -> tuple[object, ...]:
        # Each sync is its own record (same battery and offset twice are still two syncs), and
        # so is each patient's copy of it.
        return ("status", self.patient_id, self.measured_at.isoformat())


READING_TYPES: Mapping[ReadingKind, type[Reading]] = {
    cls.kind: cls
    for cls in (
        BloodPressureReading,
        GlucoseReading,
        CgmReading,
        HeartRateReading,
        PulseOximetryReading,
        BodyTemperatureReading,
        WeightReading,
        DeviceStatusReading,
    )
}


def reading_type(kind: ReadingKind | str) -> type[Reading]:
    """The reading class for a kind; raises ValueError for an unknown kind."""
    return READING_TYPES[ReadingKind(kind)]
