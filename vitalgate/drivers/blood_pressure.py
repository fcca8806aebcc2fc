"""Blood Pressure Service (0x1810) codecs: Measurement (0x2A35), Intermediate Cuff Pressure
(0x2A36) and Feature (0x2A49).

References: Bluetooth Blood Pressure Service (BLS) v1.0 section 3 (characteristics); GATT
Specification Supplement (GSS) sections "Blood Pressure Measurement" (0x2A35), "Intermediate
Cuff Pressure" (0x2A36) and "Blood Pressure Feature" (0x2A49).

Blood Pressure Measurement layout (7 to 19 bytes)::

    flags u8   b0 unit kPa (else mmHg), b1 Time Stamp present, b2 Pulse Rate present,
               b3 User ID present, b4 Measurement Status present, b5-b7 reserved
    systolic SFLOAT, diastolic SFLOAT, mean arterial pressure SFLOAT   (in the flagged unit)
    [Time Stamp: Date Time, 7 bytes]  [Pulse Rate SFLOAT, beats per minute]
    [User ID u8, 255 = unknown user]  [Measurement Status u16]

Intermediate Cuff Pressure has the same layout: the current cuff pressure is in the systolic
field and diastolic / mean arterial pressure are NaN.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from vitalgate.drivers._bytes import ByteReader, ByteWriter, OpenIntEnum

__all__ = [
    "KPA_TO_MMHG",
    "PROFILE",
    "UNKNOWN_USER",
    "BloodPressureFeature",
    "BloodPressureFeatureFlag",
    "BloodPressureMeasurement",
    "BloodPressureStatus",
    "MeasurementFlag",
    "PressureUnit",
    "PulseRateRange",
    "encode_feature",
    "encode_measurement",
    "parse_feature",
    "parse_intermediate_cuff_pressure",
    "parse_measurement",
]

PROFILE = "blood_pressure"

#: 1 kPa in mmHg (1000 Pa / 133.322 Pa per mmHg), as the brief and common practice use it.
KPA_TO_MMHG = 7.50062

#: User ID 255 means "unknown user" (BLS, User ID field); it is kept as 255, never mapped to None.
UNKNOWN_USER = 255

# SFLOAT pressures and pulse: any exponent the device may use round-trips (see best_sfloat).
_MAX_DECIMALS = 8


class MeasurementFlag(enum.IntFlag):
    """Flags octet (GSS Blood Pressure Measurement, Flags field)."""

    UNIT_KPA = 1 << 0
    TIME_STAMP_PRESENT = 1 << 1
    PULSE_RATE_PRESENT = 1 << 2
    USER_ID_PRESENT = 1 << 3
    MEASUREMENT_STATUS_PRESENT = 1 << 4


class PressureUnit(enum.IntEnum):
    """Unit of the three pressures as sent (flags bit 0)."""

    MMHG = 0
    KPA = 1


class PulseRateRange(OpenIntEnum):
    """Pulse rate range: Measurement Status bits 3-4, one two-bit field.

    GSS Blood Pressure Measurement, Measurement Status field.
    """

    IN_RANGE = 0
    EXCEEDS_UPPER = 1
    BELOW_LOWER = 2
    RESERVED = 3


@dataclass(frozen=True, slots=True)
class BloodPressureStatus:
    """Measurement Status (u16): b0 body movement, b1 cuff too loose, b2 irregular pulse,
    b3-b4 pulse rate range, b5 improper measurement position; b6-b15 reserved (ignored)."""

    body_movement: bool = False
    cuff_too_loose: bool = False
    irregular_pulse: bool = False
    pulse_rate_range: PulseRateRange = PulseRateRange.IN_RANGE
    improper_position: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.pulse_rate_range <= 3:
            raise ValueError(f"pulse_rate_range {self.pulse_rate_range} is not a 2-bit value")

    @classmethod
    def from_int(cls, value: int) -> BloodPressureStatus:
        return cls(
            body_movement=bool(value & 0x0001),
            cuff_too_loose=bool(value & 0x0002),
            irregular_pulse=bool(value & 0x0004),
            pulse_rate_range=PulseRateRange((value >> 3) & 0b11),
            improper_position=bool(value & 0x0020),
        )

    def __int__(self) -> int:
        return (
            int(self.body_movement)
            | int(self.cuff_too_loose) << 1
            | int(self.irregular_pulse) << 2
            | int(self.pulse_rate_range) << 3
            | int(self.improper_position) << 5
        )


def _to_mmhg(value: float, unit: PressureUnit) -> float:
    return value * KPA_TO_MMHG if unit is PressureUnit.KPA else value


@dataclass(frozen=True, slots=True)
class BloodPressureMeasurement:
    """A decoded Blood Pressure Measurement (or Intermediate Cuff Pressure).

    The pressures are kept as sent (``*_as_sent``, in ``unit``); the ``*_mmhg`` properties
    convert kPa to mmHg. NaN marks a value the device did not provide (always the case for
    diastolic and mean arterial pressure in Intermediate Cuff Pressure).
    ``timestamp`` is naive device-local time, None when absent or "not known".
    """

    unit: PressureUnit
    systolic_as_sent: float
    diastolic_as_sent: float
    mean_arterial_pressure_as_sent: float
    timestamp: datetime | None = None
    pulse_rate_bpm: float | None = None
    user_id: int | None = None
    status: BloodPressureStatus | None = field(default=None)

    def __post_init__(self) -> None:
        if self.user_id is not None and not 0 <= self.user_id <= 255:
            raise ValueError(f"user_id {self.user_id} does not fit in u8")
        if self.timestamp is not None and self.timestamp.tzinfo is not None:
            raise ValueError("timestamp is device-local time: pass a naive datetime")

    @property
    def systolic_mmhg(self) -> float:
        return _to_mmhg(self.systolic_as_sent, self.unit)

    @property
    def diastolic_mmhg(self) -> float:
        return _to_mmhg(self.diastolic_as_sent, self.unit)

    @property
    def mean_arterial_pressure_mmhg(self) -> float:
        return _to_mmhg(self.mean_arterial_pressure_as_sent, self.unit)

    @property
    def cuff_pressure_mmhg(self) -> float:
        """Intermediate Cuff Pressure: the current cuff pressure (the systolic field)."""
        return self.systolic_mmhg

    @property
    def unknown_user(self) -> bool:
        return self.user_id == UNKNOWN_USER


def parse_measurement(data: bytes) -> BloodPressureMeasurement:
    """Decode a Blood Pressure Measurement (0x2A35) or Intermediate Cuff Pressure (0x2A36).

    Raises ParseError for truncated or over-long input or an invalid time stamp. Reserved flag
    bits are ignored, as the spec requires of a receiver.
    """
    reader = ByteReader(data, PROFILE)
    flags = MeasurementFlag(reader.u8("flags"))
    unit = PressureUnit.KPA if flags & MeasurementFlag.UNIT_KPA else PressureUnit.MMHG
    systolic = reader.sfloat("systolic")
    diastolic = reader.sfloat("diastolic")
    mean_arterial = reader.sfloat("mean arterial pressure")
    timestamp = (
        reader.date_time("time stamp") if flags & MeasurementFlag.TIME_STAMP_PRESENT else None
    )
    pulse = reader.sfloat("pulse rate") if flags & MeasurementFlag.PULSE_RATE_PRESENT else None
    user_id = reader.u8("user ID") if flags & MeasurementFlag.USER_ID_PRESENT else None
    status = (
        BloodPressureStatus.from_int(reader.u16("measurement status"))
        if flags & MeasurementFlag.MEASUREMENT_STATUS_PRESENT
        else None
    )
    reader.expect_end()
    return BloodPressureMeasurement(
        unit=unit,
        systolic_as_sent=systolic,
        diastolic_as_sent=diastolic,
        mean_arterial_pressure_as_sent=mean_arterial,
        timestamp=timestamp,
        pulse_rate_bpm=pulse,
        user_id=user_id,
        status=status,
    )


#: Intermediate Cuff Pressure (0x2A36) has the measurement's layout.
parse_intermediate_cuff_pressure = parse_measurement


def encode_measurement(measurement: BloodPressureMeasurement) -> bytes:
    """Encode a Blood Pressure Measurement / Intermediate Cuff Pressure.

    Each SFLOAT gets the shortest exponent that represents the value exactly (values with more
    decimals than an SFLOAT can hold are rounded). Raises ValueError for a value an SFLOAT
    cannot carry.
    """
    m = measurement
    flags = MeasurementFlag(0)
    if m.unit is PressureUnit.KPA:
        flags |= MeasurementFlag.UNIT_KPA
    if m.timestamp is not None:
        flags |= MeasurementFlag.TIME_STAMP_PRESENT
    if m.pulse_rate_bpm is not None:
        flags |= MeasurementFlag.PULSE_RATE_PRESENT
    if m.user_id is not None:
        flags |= MeasurementFlag.USER_ID_PRESENT
    if m.status is not None:
        flags |= MeasurementFlag.MEASUREMENT_STATUS_PRESENT
    writer = ByteWriter().u8(int(flags))
    writer.sfloat(m.systolic_as_sent, _MAX_DECIMALS)
    writer.sfloat(m.diastolic_as_sent, _MAX_DECIMALS)
    writer.sfloat(m.mean_arterial_pressure_as_sent, _MAX_DECIMALS)
    if m.timestamp is not None:
        writer.date_time(m.timestamp)
    if m.pulse_rate_bpm is not None:
        writer.sfloat(m.pulse_rate_bpm, _MAX_DECIMALS)
    if m.user_id is not None:
        writer.u8(m.user_id, "user ID")
    if m.status is not None:
        writer.u16(int(m.status), "measurement status")
    return writer.getvalue()


class BloodPressureFeatureFlag(enum.IntFlag):
    """Blood Pressure Feature bits (GSS Blood Pressure Feature); unknown bits are kept."""

    BODY_MOVEMENT_DETECTION = 1 << 0
    CUFF_FIT_DETECTION = 1 << 1
    IRREGULAR_PULSE_DETECTION = 1 << 2
    PULSE_RATE_RANGE_DETECTION = 1 << 3
    MEASUREMENT_POSITION_DETECTION = 1 << 4
    MULTIPLE_BOND = 1 << 5


@dataclass(frozen=True, slots=True)
class BloodPressureFeature:
    """Blood Pressure Feature (0x2A49): which status bits the device can report."""

    flags: BloodPressureFeatureFlag

    def supports(self, flag: BloodPressureFeatureFlag) -> bool:
        return bool(self.flags & flag)


def parse_feature(data: bytes) -> BloodPressureFeature:
    """Decode Blood Pressure Feature (u16). Raises ParseError unless exactly 2 bytes."""
    reader = ByteReader(data, PROFILE)
    flags = BloodPressureFeatureFlag(reader.u16("feature"))
    reader.expect_end()
    return BloodPressureFeature(flags=flags)


def encode_feature(feature: BloodPressureFeature) -> bytes:
    return ByteWriter().u16(int(feature.flags), "feature").getvalue()
