"""Glucose Service (0x1808) codecs: Glucose Measurement (0x2A18), Glucose Measurement Context
(0x2A34), Glucose Feature (0x2A51); the Record Access Control Point (0x2A52) is re-exported from
:mod:`vitalgate.drivers.racp`.

References: Glucose Service (GLS) v1.0 section 3 and the GATT Specification Supplement (GSS)
sections "Glucose Measurement", "Glucose Measurement Context" and "Glucose Feature".

Glucose Measurement (10 to 17 bytes)::

    flags u8   b0 Time Offset present, b1 Glucose Concentration + Type-Sample Location present,
               b2 concentration unit mol/L (else kg/L), b3 Sensor Status Annunciation present,
               b4 Context Information follows, b5-b7 reserved
    sequence number u16, base time (Date Time, 7 bytes)
    [time offset s16, minutes]  [concentration SFLOAT, Type-Sample Location u8]
    [sensor status annunciation u16]

Type-Sample Location: the Type is the least significant nibble (bits 0-3), the Sample Location
the most significant nibble (bits 4-7), as the GSS Type-Sample Location field defines them and
Nordic's reference collector (Android-BLE-Common-Library) reads them. One Python library reads
them the other way round; ``test_nibble_order_type_low_location_high`` pins the order.

Units: kg/L to mg/dL multiplies by 1e5 (1 mg/dL = 1e-5 kg/L); mol/L to mg/dL multiplies by
18016 (1000 mmol per mol times 18.016 mg/dL per mmol/L, glucose 180.16 g/mol). Conversions
go through the shortest decimal of the SFLOAT value, so 0.0012 kg/L gives exactly 120.0 mg/dL.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from vitalgate.drivers._bytes import ByteReader, ByteWriter, OpenIntEnum
from vitalgate.drivers.racp import (
    FilterType,
    FilterValue,
    Opcode,
    Operator,
    RacpRequest,
    RacpRequestError,
    RacpResponse,
    ResponseCode,
    abort,
    delete_records,
    encode_request,
    encode_response,
    parse_request,
    parse_response,
    report_all,
    report_from_sequence,
    report_number_of_records,
    report_records,
)
from vitalgate.readings import Meal

__all__ = [
    "MG_DL_PER_KG_L",
    "MG_DL_PER_MMOL_L",
    "MG_DL_PER_MOL_L",
    "PROFILE",
    "CarbohydrateId",
    "ConcentrationUnit",
    "ContextFlag",
    "FilterType",
    "FilterValue",
    "GlucoseFeature",
    "GlucoseFeatureFlag",
    "GlucoseMeasurement",
    "GlucoseMeasurementContext",
    "HealthCode",
    "MealCode",
    "MeasurementFlag",
    "MedicationId",
    "Opcode",
    "Operator",
    "RacpRequest",
    "RacpRequestError",
    "RacpResponse",
    "ResponseCode",
    "SampleLocation",
    "SampleType",
    "SensorStatus",
    "TesterCode",
    "abort",
    "delete_records",
    "encode_context",
    "encode_feature",
    "encode_measurement",
    "encode_request",
    "encode_response",
    "kg_per_l_from_mg_dl",
    "mg_dl_from_kg_per_l",
    "mg_dl_from_mol_per_l",
    "mol_per_l_from_mg_dl",
    "parse_context",
    "parse_feature",
    "parse_measurement",
    "parse_request",
    "parse_response",
    "report_all",
    "report_from_sequence",
    "report_number_of_records",
    "report_records",
]

PROFILE = "glucose"

MG_DL_PER_KG_L = 100_000
MG_DL_PER_MMOL_L = Decimal("18.016")
MG_DL_PER_MOL_L = MG_DL_PER_MMOL_L * 1000

_MAX_DECIMALS = 8  # every SFLOAT exponent round-trips


def _decimal(value: float) -> Decimal:
    # The shortest decimal that reads back as ``value``: the number the device meant.
    return Decimal(repr(value))


def _convert(value: float, factor: Decimal | int) -> float:
    if not math.isfinite(value):  # NaN / INF pass through unchanged
        return value
    return float(_decimal(value) * factor)


def mg_dl_from_kg_per_l(value: float) -> float:
    return _convert(value, MG_DL_PER_KG_L)


def kg_per_l_from_mg_dl(value: float) -> float:
    return _convert(value, Decimal(1) / MG_DL_PER_KG_L)


def mg_dl_from_mol_per_l(value: float) -> float:
    return _convert(value, MG_DL_PER_MOL_L)


def mol_per_l_from_mg_dl(value: float) -> float:
    """mg/dL to mol/L (rounded to the float nearest the exact quotient)."""
    if not math.isfinite(value):
        return value
    return float(_decimal(value) / MG_DL_PER_MOL_L)


class MeasurementFlag(enum.IntFlag):
    """Glucose Measurement flags (GSS Glucose Measurement, Flags field)."""

    TIME_OFFSET_PRESENT = 1 << 0
    CONCENTRATION_TYPE_LOCATION_PRESENT = 1 << 1
    UNIT_MOL_PER_L = 1 << 2
    SENSOR_STATUS_PRESENT = 1 << 3
    CONTEXT_FOLLOWS = 1 << 4


class ConcentrationUnit(enum.IntEnum):
    KG_PER_L = 0
    MOL_PER_L = 1


class SampleType(OpenIntEnum):
    """Type nibble of Type-Sample Location (0 and 11-15 reserved)."""

    CAPILLARY_WHOLE_BLOOD = 1
    CAPILLARY_PLASMA = 2
    VENOUS_WHOLE_BLOOD = 3
    VENOUS_PLASMA = 4
    ARTERIAL_WHOLE_BLOOD = 5
    ARTERIAL_PLASMA = 6
    UNDETERMINED_WHOLE_BLOOD = 7
    UNDETERMINED_PLASMA = 8
    INTERSTITIAL_FLUID = 9
    CONTROL_SOLUTION = 10


class SampleLocation(OpenIntEnum):
    """Sample Location nibble of Type-Sample Location (0 and 5-14 reserved)."""

    FINGER = 1
    ALTERNATE_SITE_TEST = 2
    EARLOBE = 3
    CONTROL_SOLUTION = 4
    NOT_AVAILABLE = 15


class SensorStatus(enum.IntFlag):
    """Sensor Status Annunciation (u16); bits 12-15 are reserved and kept if set."""

    DEVICE_BATTERY_LOW = 1 << 0
    SENSOR_MALFUNCTION = 1 << 1
    SAMPLE_SIZE_INSUFFICIENT = 1 << 2
    STRIP_INSERTION_ERROR = 1 << 3
    STRIP_TYPE_INCORRECT = 1 << 4
    RESULT_TOO_HIGH = 1 << 5  # higher than the device can process
    RESULT_TOO_LOW = 1 << 6  # lower than the device can process
    TEMPERATURE_TOO_HIGH = 1 << 7
    TEMPERATURE_TOO_LOW = 1 << 8
    READ_INTERRUPTED = 1 << 9  # strip pulled too soon
    GENERAL_DEVICE_FAULT = 1 << 10
    TIME_FAULT = 1 << 11


@dataclass(frozen=True, slots=True)
class GlucoseMeasurement:
    """A decoded Glucose Measurement.

    ``base_time`` is naive device-local time (None when the device sent "not known");
    ``time_offset_min`` is added to it for the user-facing time. The concentration is kept as
    sent with its unit; :attr:`glucose_mg_dl` converts. Concentration, unit, sample type and
    sample location are present together or not at all.
    """

    sequence_number: int
    base_time: datetime | None
    time_offset_min: int | None = None
    concentration_as_sent: float | None = None
    concentration_unit: ConcentrationUnit | None = None
    sample_type: SampleType | None = None
    sample_location: SampleLocation | None = None
    sensor_status: SensorStatus | None = None
    context_follows: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.sequence_number <= 0xFFFF:
            raise ValueError(f"sequence_number {self.sequence_number} does not fit in u16")
        if self.time_offset_min is not None and not -0x8000 <= self.time_offset_min <= 0x7FFF:
            raise ValueError(f"time_offset_min {self.time_offset_min} does not fit in s16")
        if self.base_time is not None and self.base_time.tzinfo is not None:
            raise ValueError("base_time is device-local time: pass a naive datetime")
        group = (
            self.concentration_as_sent,
            self.concentration_unit,
            self.sample_type,
            self.sample_location,
        )
        if any(v is None for v in group) and any(v is not None for v in group):
            raise ValueError("concentration, unit, sample type and sample location go together")
        for name, nibble in (("sample_type", self.sample_type), ("location", self.sample_location)):
            if nibble is not None and not 0 <= nibble <= 0x0F:
                raise ValueError(f"{name} {nibble} does not fit in a nibble")
        if self.sensor_status is not None and not 0 <= self.sensor_status <= 0xFFFF:
            raise ValueError("sensor_status does not fit in u16")

    @property
    def glucose_mg_dl(self) -> float | None:
        if self.concentration_as_sent is None:
            return None
        if self.concentration_unit == ConcentrationUnit.MOL_PER_L:
            return mg_dl_from_mol_per_l(self.concentration_as_sent)
        return mg_dl_from_kg_per_l(self.concentration_as_sent)

    @property
    def user_facing_time(self) -> datetime | None:
        """Base time plus time offset (naive device-local time), None when unknown."""
        if self.base_time is None:
            return None
        return self.base_time + timedelta(minutes=self.time_offset_min or 0)

    @property
    def is_control_solution(self) -> bool:
        """A control-solution test: kept, but never part of clinical statistics or alerts."""
        return (
            self.sample_type == SampleType.CONTROL_SOLUTION
            or self.sample_location == SampleLocation.CONTROL_SOLUTION
        )


def parse_measurement(data: bytes) -> GlucoseMeasurement:
    """Decode a Glucose Measurement (0x2A18); ParseError on truncated / over-long input."""
    reader = ByteReader(data, PROFILE)
    flags = MeasurementFlag(reader.u8("flags"))
    sequence_number = reader.u16("sequence number")
    base_time = reader.date_time("base time")
    time_offset = reader.s16("time offset") if flags & MeasurementFlag.TIME_OFFSET_PRESENT else None
    concentration: float | None = None
    unit: ConcentrationUnit | None = None
    sample_type: SampleType | None = None
    location: SampleLocation | None = None
    if flags & MeasurementFlag.CONCENTRATION_TYPE_LOCATION_PRESENT:
        concentration = reader.sfloat("glucose concentration")
        type_location = reader.u8("type-sample location")
        sample_type = SampleType(type_location & 0x0F)
        location = SampleLocation(type_location >> 4)
        unit = (
            ConcentrationUnit.MOL_PER_L
            if flags & MeasurementFlag.UNIT_MOL_PER_L
            else ConcentrationUnit.KG_PER_L
        )
    status = (
        SensorStatus(reader.u16("sensor status annunciation"))
        if flags & MeasurementFlag.SENSOR_STATUS_PRESENT
        else None
    )
    reader.expect_end()
    return GlucoseMeasurement(
        sequence_number=sequence_number,
        base_time=base_time,
        time_offset_min=time_offset,
        concentration_as_sent=concentration,
        concentration_unit=unit,
        sample_type=sample_type,
        sample_location=location,
        sensor_status=status,
        context_follows=bool(flags & MeasurementFlag.CONTEXT_FOLLOWS),
    )


def encode_measurement(measurement: GlucoseMeasurement) -> bytes:
    m = measurement
    flags = MeasurementFlag(0)
    if m.time_offset_min is not None:
        flags |= MeasurementFlag.TIME_OFFSET_PRESENT
    if m.concentration_as_sent is not None:
        flags |= MeasurementFlag.CONCENTRATION_TYPE_LOCATION_PRESENT
        if m.concentration_unit == ConcentrationUnit.MOL_PER_L:
            flags |= MeasurementFlag.UNIT_MOL_PER_L
    if m.sensor_status is not None:
        flags |= MeasurementFlag.SENSOR_STATUS_PRESENT
    if m.context_follows:
        flags |= MeasurementFlag.CONTEXT_FOLLOWS
    writer = ByteWriter().u8(int(flags)).u16(m.sequence_number, "sequence number")
    writer.date_time(m.base_time)
    if m.time_offset_min is not None:
        writer.s16(m.time_offset_min, "time offset")
    if m.concentration_as_sent is not None:
        assert m.sample_type is not None and m.sample_location is not None
        writer.sfloat(m.concentration_as_sent, _MAX_DECIMALS)
        writer.u8(int(m.sample_type) | int(m.sample_location) << 4, "type-sample location")
    if m.sensor_status is not None:
        writer.u16(int(m.sensor_status), "sensor status annunciation")
    return writer.getvalue()


# --- Glucose Measurement Context (0x2A34) ------------------------------------------------------


class ContextFlag(enum.IntFlag):
    """Glucose Measurement Context flags (GSS Glucose Measurement Context, Flags field)."""

    CARBOHYDRATE_PRESENT = 1 << 0
    MEAL_PRESENT = 1 << 1
    TESTER_HEALTH_PRESENT = 1 << 2
    EXERCISE_PRESENT = 1 << 3
    MEDICATION_PRESENT = 1 << 4
    MEDICATION_UNIT_LITERS = 1 << 5  # else kilograms
    HBA1C_PRESENT = 1 << 6
    EXTENDED_FLAGS_PRESENT = 1 << 7


class CarbohydrateId(OpenIntEnum):
    BREAKFAST = 1
    LUNCH = 2
    DINNER = 3
    SNACK = 4
    DRINK = 5
    SUPPER = 6
    BRUNCH = 7


class MealCode(OpenIntEnum):
    PREPRANDIAL = 1
    POSTPRANDIAL = 2
    FASTING = 3
    CASUAL = 4  # snacks, drinks, etc.
    BEDTIME = 5


_MEAL_TO_READING = {
    MealCode.PREPRANDIAL: Meal.PREPRANDIAL,
    MealCode.POSTPRANDIAL: Meal.POSTPRANDIAL,
    MealCode.FASTING: Meal.FASTING,
    MealCode.CASUAL: Meal.CASUAL,
    MealCode.BEDTIME: Meal.BEDTIME,
}


class TesterCode(OpenIntEnum):
    SELF = 1
    HEALTH_CARE_PROFESSIONAL = 2
    LAB_TEST = 3
    NOT_AVAILABLE = 15


class HealthCode(OpenIntEnum):
    MINOR_HEALTH_ISSUES = 1
    MAJOR_HEALTH_ISSUES = 2
    DURING_MENSES = 3
    UNDER_STRESS = 4
    NO_HEALTH_ISSUES = 5
    NOT_AVAILABLE = 15


class MedicationId(OpenIntEnum):
    RAPID_ACTING_INSULIN = 1
    SHORT_ACTING_INSULIN = 2
    INTERMEDIATE_ACTING_INSULIN = 3
    LONG_ACTING_INSULIN = 4
    PRE_MIXED_INSULIN = 5


#: Exercise Duration 0xFFFF means "overrun" (longer than the field can hold).
EXERCISE_DURATION_OVERRUN = 0xFFFF


@dataclass(frozen=True, slots=True)
class GlucoseMeasurementContext:
    """A decoded Glucose Measurement Context, joined to its measurement by sequence number.

    Layout after flags u8 and sequence number u16: [extended flags u8] [carbohydrate ID u8,
    carbohydrate SFLOAT kg] [meal u8] [tester (low nibble) / health (high nibble) u8]
    [exercise duration u16 s, exercise intensity u8 %] [medication ID u8, medication SFLOAT
    kg or L] [HbA1c SFLOAT %]. Grouped fields are present together or not at all; at most one
    of ``medication_mg`` / ``medication_ml`` is set (the unit flag picks it).
    """

    sequence_number: int
    extended_flags: int | None = None
    carbohydrate_id: CarbohydrateId | None = None
    carbohydrate_g: float | None = None
    meal: MealCode | None = None
    tester: TesterCode | None = None
    health: HealthCode | None = None
    exercise_duration_s: int | None = None
    exercise_intensity_pct: int | None = None
    medication_id: MedicationId | None = None
    medication_mg: float | None = None
    medication_ml: float | None = None
    hba1c_pct: float | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.sequence_number <= 0xFFFF:
            raise ValueError(f"sequence_number {self.sequence_number} does not fit in u16")
        pairs = (
            ("carbohydrate_id", self.carbohydrate_id, "carbohydrate_g", self.carbohydrate_g),
            ("tester", self.tester, "health", self.health),
            (
                "exercise_duration_s",
                self.exercise_duration_s,
                "exercise_intensity_pct",
                self.exercise_intensity_pct,
            ),
        )
        for name_a, a, name_b, b in pairs:
            if (a is None) != (b is None):
                raise ValueError(f"{name_a} and {name_b} go together")
        if self.medication_mg is not None and self.medication_ml is not None:
            raise ValueError("medication is in mg or in mL, not both")
        if (self.medication_id is None) != (
            self.medication_mg is None and self.medication_ml is None
        ):
            raise ValueError("medication_id and a medication amount go together")
        for name, value, high in (
            ("extended_flags", self.extended_flags, 0xFF),
            ("carbohydrate_id", self.carbohydrate_id, 0xFF),
            ("meal", self.meal, 0xFF),
            ("tester", self.tester, 0x0F),
            ("health", self.health, 0x0F),
            ("exercise_duration_s", self.exercise_duration_s, 0xFFFF),
            ("exercise_intensity_pct", self.exercise_intensity_pct, 0xFF),
            ("medication_id", self.medication_id, 0xFF),
        ):
            if value is not None and not 0 <= value <= high:
                raise ValueError(f"{name} {value} out of range 0..{high}")

    @property
    def reading_meal(self) -> Meal | None:
        """The meal context as the reading model's :class:`~vitalgate.readings.Meal`."""
        return None if self.meal is None else _MEAL_TO_READING.get(self.meal)

    @property
    def exercise_duration_overrun(self) -> bool:
        return self.exercise_duration_s == EXERCISE_DURATION_OVERRUN


def parse_context(data: bytes) -> GlucoseMeasurementContext:
    """Decode a Glucose Measurement Context (0x2A34); ParseError on bad length."""
    reader = ByteReader(data, PROFILE)
    flags = ContextFlag(reader.u8("context flags"))
    sequence_number = reader.u16("sequence number")
    extended = reader.u8("extended flags") if flags & ContextFlag.EXTENDED_FLAGS_PRESENT else None
    carb_id: CarbohydrateId | None = None
    carb_g: float | None = None
    if flags & ContextFlag.CARBOHYDRATE_PRESENT:
        carb_id = CarbohydrateId(reader.u8("carbohydrate ID"))
        carb_g = _convert(reader.sfloat("carbohydrate"), 1000)  # kg -> g
    meal = MealCode(reader.u8("meal")) if flags & ContextFlag.MEAL_PRESENT else None
    tester: TesterCode | None = None
    health: HealthCode | None = None
    if flags & ContextFlag.TESTER_HEALTH_PRESENT:
        tester_health = reader.u8("tester-health")
        tester = TesterCode(tester_health & 0x0F)
        health = HealthCode(tester_health >> 4)
    duration: int | None = None
    intensity: int | None = None
    if flags & ContextFlag.EXERCISE_PRESENT:
        duration = reader.u16("exercise duration")
        intensity = reader.u8("exercise intensity")
    medication_id: MedicationId | None = None
    medication_mg: float | None = None
    medication_ml: float | None = None
    if flags & ContextFlag.MEDICATION_PRESENT:
        medication_id = MedicationId(reader.u8("medication ID"))
        amount = reader.sfloat("medication")
        if flags & ContextFlag.MEDICATION_UNIT_LITERS:
            medication_ml = _convert(amount, 1000)  # L -> mL
        else:
            medication_mg = _convert(amount, 1_000_000)  # kg -> mg
    hba1c = reader.sfloat("HbA1c") if flags & ContextFlag.HBA1C_PRESENT else None
    reader.expect_end()
    return GlucoseMeasurementContext(
        sequence_number=sequence_number,
        extended_flags=extended,
        carbohydrate_id=carb_id,
        carbohydrate_g=carb_g,
        meal=meal,
        tester=tester,
        health=health,
        exercise_duration_s=duration,
        exercise_intensity_pct=intensity,
        medication_id=medication_id,
        medication_mg=medication_mg,
        medication_ml=medication_ml,
        hba1c_pct=hba1c,
    )


def encode_context(context: GlucoseMeasurementContext) -> bytes:
    c = context
    flags = ContextFlag(0)
    if c.carbohydrate_g is not None:
        flags |= ContextFlag.CARBOHYDRATE_PRESENT
    if c.meal is not None:
        flags |= ContextFlag.MEAL_PRESENT
    if c.tester is not None:
        flags |= ContextFlag.TESTER_HEALTH_PRESENT
    if c.exercise_duration_s is not None:
        flags |= ContextFlag.EXERCISE_PRESENT
    if c.medication_id is not None:
        flags |= ContextFlag.MEDICATION_PRESENT
        if c.medication_ml is not None:
            flags |= ContextFlag.MEDICATION_UNIT_LITERS
    if c.hba1c_pct is not None:
        flags |= ContextFlag.HBA1C_PRESENT
    if c.extended_flags is not None:
        flags |= ContextFlag.EXTENDED_FLAGS_PRESENT
    writer = ByteWriter().u8(int(flags)).u16(c.sequence_number, "sequence number")
    if c.extended_flags is not None:
        writer.u8(c.extended_flags, "extended flags")
    if c.carbohydrate_id is not None and c.carbohydrate_g is not None:
        writer.u8(int(c.carbohydrate_id), "carbohydrate ID")
        writer.sfloat(_convert(c.carbohydrate_g, Decimal("0.001")), _MAX_DECIMALS)
    if c.meal is not None:
        writer.u8(int(c.meal), "meal")
    if c.tester is not None and c.health is not None:
        writer.u8(int(c.tester) | int(c.health) << 4, "tester-health")
    if c.exercise_duration_s is not None and c.exercise_intensity_pct is not None:
        writer.u16(c.exercise_duration_s, "exercise duration")
        writer.u8(c.exercise_intensity_pct, "exercise intensity")
    if c.medication_id is not None:
        writer.u8(int(c.medication_id), "medication ID")
        if c.medication_ml is not None:
            writer.sfloat(_convert(c.medication_ml, Decimal("0.001")), _MAX_DECIMALS)
        else:
            assert c.medication_mg is not None
            writer.sfloat(_convert(c.medication_mg, Decimal("0.000001")), _MAX_DECIMALS)
    if c.hba1c_pct is not None:
        writer.sfloat(c.hba1c_pct, _MAX_DECIMALS)
    return writer.getvalue()


# --- Glucose Feature (0x2A51) ------------------------------------------------------------------


class GlucoseFeatureFlag(enum.IntFlag):
    """Glucose Feature bits (GSS Glucose Feature); unknown bits are kept."""

    LOW_BATTERY_DETECTION = 1 << 0
    SENSOR_MALFUNCTION_DETECTION = 1 << 1
    SENSOR_SAMPLE_SIZE = 1 << 2
    STRIP_INSERTION_ERROR_DETECTION = 1 << 3
    STRIP_TYPE_ERROR_DETECTION = 1 << 4
    RESULT_HIGH_LOW_DETECTION = 1 << 5
    TEMPERATURE_HIGH_LOW_DETECTION = 1 << 6
    READ_INTERRUPT_DETECTION = 1 << 7
    GENERAL_DEVICE_FAULT = 1 << 8
    TIME_FAULT = 1 << 9
    MULTIPLE_BOND = 1 << 10


@dataclass(frozen=True, slots=True)
class GlucoseFeature:
    flags: GlucoseFeatureFlag

    def supports(self, flag: GlucoseFeatureFlag) -> bool:
        return bool(self.flags & flag)


def parse_feature(data: bytes) -> GlucoseFeature:
    """Decode Glucose Feature (u16). Raises ParseError unless exactly 2 bytes."""
    reader = ByteReader(data, PROFILE)
    flags = GlucoseFeatureFlag(reader.u16("feature"))
    reader.expect_end()
    return GlucoseFeature(flags=flags)


def encode_feature(feature: GlucoseFeature) -> bytes:
    return ByteWriter().u16(int(feature.flags), "feature").getvalue()
