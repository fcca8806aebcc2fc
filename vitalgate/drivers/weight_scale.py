"""Weight Scale Service (0x181D): Weight Measurement and Weight Scale Feature.

References:

* Bluetooth Weight Scale Service (WSS) v1.0, section 3.1 (Weight Scale Feature) and 3.2
  (Weight Measurement).
* GATT Specification Supplement (GSS) 3.252 "Weight Measurement" (0x2A9D) and 3.253 "Weight
  Scale Feature" (0x2A9E).

Weight Measurement (little-endian)::

    flags u8   b0 units: 0 = SI (kg, m), 1 = imperial (lb, in); b1 Time Stamp present;
               b2 User ID present; b3 BMI and Height present; b4-7 reserved
    weight u16 SI: 0.005 kg units, imperial: 0.01 lb units; 0xFFFF = "Measurement Unsuccessful"
    [Time Stamp: Date Time, 7 B]  [User ID u8, 255 = unknown user]
    [BMI u16, 0.1 kg/m2]  [Height u16, SI: 0.001 m units, imperial: 0.1 in units]

The field resolution is fixed by the unit flag; the Weight Scale Feature's "weight resolution"
and "height resolution" say how precise the scale is, not how the field is scaled.

Weight Scale Feature (u32): b0 Time Stamp supported, b1 multiple users supported, b2 BMI
supported, b3-6 weight resolution, b7-9 height resolution, b10-31 reserved.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import datetime

from vitalgate.drivers import uuids
from vitalgate.drivers._bytes import ByteReader, ByteWriter, OpenIntEnum

__all__ = [
    "KG_PER_LB",
    "MEASUREMENT_UNSUCCESSFUL",
    "M_PER_IN",
    "PROFILE",
    "UNKNOWN_USER",
    "WEIGHT_MEASUREMENT_UUID",
    "WEIGHT_SCALE_FEATURE_UUID",
    "WEIGHT_SCALE_SERVICE_UUID",
    "HeightResolution",
    "WeightFlag",
    "WeightMeasurement",
    "WeightResolution",
    "WeightScaleFeature",
    "WeightUnit",
    "encode_feature",
    "encode_measurement",
    "parse_feature",
    "parse_measurement",
]

PROFILE = "weight_scale"

WEIGHT_SCALE_SERVICE_UUID = uuids.WEIGHT_SCALE_SERVICE
WEIGHT_MEASUREMENT_UUID = uuids.WEIGHT_MEASUREMENT
WEIGHT_SCALE_FEATURE_UUID = uuids.WEIGHT_SCALE_FEATURE

#: International avoirdupois pound and inch (exact by definition, 1959).
KG_PER_LB = 0.45359237
M_PER_IN = 0.0254

#: Raw weight 0xFFFF: the scale reports that the measurement failed (GSS 3.252).
MEASUREMENT_UNSUCCESSFUL = 0xFFFF
#: User ID 255 means "unknown user"; kept as 255, never mapped to None.
UNKNOWN_USER = 255

# Field resolutions as divisors (value = raw / divisor), exact decimal steps.
_WEIGHT_DIVISOR = {0: 200, 1: 100}  # SI: 0.005 kg; imperial: 0.01 lb
_HEIGHT_DIVISOR = {0: 1000, 1: 10}  # SI: 0.001 m; imperial: 0.1 in
_BMI_DIVISOR = 10  # 0.1 kg/m2


class WeightFlag(enum.IntFlag):
    """Flags octet of the Weight Measurement (GSS 3.252)."""

    UNIT_IMPERIAL = 1 << 0
    TIME_STAMP_PRESENT = 1 << 1
    USER_ID_PRESENT = 1 << 2
    BMI_AND_HEIGHT_PRESENT = 1 << 3


class WeightUnit(enum.IntEnum):
    """Units of weight and height as sent (flags bit 0)."""

    SI = 0  # kg, m
    IMPERIAL = 1  # lb, in


class WeightResolution(OpenIntEnum):
    """Weight Scale Feature bits 3-6: the scale's weight resolution (GSS 3.253)."""

    NOT_SPECIFIED = 0
    KG_0_5_LB_1 = 1
    KG_0_2_LB_0_5 = 2
    KG_0_1_LB_0_2 = 3
    KG_0_05_LB_0_1 = 4
    KG_0_02_LB_0_05 = 5
    KG_0_01_LB_0_02 = 6
    KG_0_005_LB_0_01 = 7

    @property
    def step_kg(self) -> float | None:
        """The resolution in kg (None when not specified or reserved)."""
        return _WEIGHT_STEPS.get(int(self), (None, None))[0]

    @property
    def step_lb(self) -> float | None:
        """The resolution in lb (None when not specified or reserved)."""
        return _WEIGHT_STEPS.get(int(self), (None, None))[1]


_WEIGHT_STEPS: dict[int, tuple[float, float]] = {
    1: (0.5, 1.0),
    2: (0.2, 0.5),
    3: (0.1, 0.2),
    4: (0.05, 0.1),
    5: (0.02, 0.05),
    6: (0.01, 0.02),
    7: (0.005, 0.01),
}


class HeightResolution(OpenIntEnum):
    """Weight Scale Feature bits 7-9: the scale's height resolution (GSS 3.253)."""

    NOT_SPECIFIED = 0
    M_0_01_IN_1 = 1
    M_0_005_IN_0_5 = 2
    M_0_001_IN_0_1 = 3

    @property
    def step_m(self) -> float | None:
        """The resolution in metres (None when not specified or reserved)."""
        return _HEIGHT_STEPS.get(int(self), (None, None))[0]

    @property
    def step_in(self) -> float | None:
        """The resolution in inches (None when not specified or reserved)."""
        return _HEIGHT_STEPS.get(int(self), (None, None))[1]


_HEIGHT_STEPS: dict[int, tuple[float, float]] = {
    1: (0.01, 1.0),
    2: (0.005, 0.5),
    3: (0.001, 0.1),
}


def _raw(value: float, divisor: int) -> int:
    """The field integer for ``value``; -1 (out of every range) for NaN or infinity."""
    return round(value * divisor) if math.isfinite(value) else -1


@dataclass(frozen=True, slots=True)
class WeightMeasurement:
    """A Weight Measurement (0x2A9D, indicated).

    ``weight_as_sent`` and ``height_as_sent`` are in the units of ``unit`` (kg and m, or lb
    and in); :attr:`weight_kg` and :attr:`height_m` always give SI. ``weight_as_sent`` is None
    when the scale reported "Measurement Unsuccessful" (0xFFFF). ``timestamp`` is naive
    device-local time, None when absent or "not known". ``bmi_kg_m2`` and ``height_as_sent``
    come as a pair.
    """

    unit: WeightUnit
    weight_as_sent: float | None
    timestamp: datetime | None = None
    user_id: int | None = None
    bmi_kg_m2: float | None = None
    height_as_sent: float | None = None

    def __post_init__(self) -> None:
        divisor = _WEIGHT_DIVISOR[int(self.unit)]
        if self.weight_as_sent is not None and not (
            0 <= _raw(self.weight_as_sent, divisor) < MEASUREMENT_UNSUCCESSFUL
        ):
            raise ValueError(
                f"weight {self.weight_as_sent!r} outside 0..{(MEASUREMENT_UNSUCCESSFUL - 1)}"
                f"/{divisor} {'kg' if self.unit is WeightUnit.SI else 'lb'}"
            )
        if self.user_id is not None and not 0 <= self.user_id <= 0xFF:
            raise ValueError(f"user_id {self.user_id} does not fit in u8")
        if (self.bmi_kg_m2 is None) != (self.height_as_sent is None):
            raise ValueError("bmi_kg_m2 and height_as_sent come as a pair")
        if self.bmi_kg_m2 is not None and not 0 <= _raw(self.bmi_kg_m2, _BMI_DIVISOR) <= 0xFFFF:
            raise ValueError(f"bmi_kg_m2 {self.bmi_kg_m2!r} outside 0..6553.5")
        height_divisor = _HEIGHT_DIVISOR[int(self.unit)]
        if self.height_as_sent is not None and not (
            0 <= _raw(self.height_as_sent, height_divisor) <= 0xFFFF
        ):
            raise ValueError(f"height {self.height_as_sent!r} outside 0..65535/{height_divisor}")
        if self.timestamp is not None and self.timestamp.tzinfo is not None:
            raise ValueError("timestamp is device-local time as sent: pass a naive datetime")

    @property
    def measurement_unsuccessful(self) -> bool:
        """True when the scale reported that the measurement failed (weight 0xFFFF)."""
        return self.weight_as_sent is None

    @property
    def weight_kg(self) -> float | None:
        """The weight in kilograms (converted from lb when sent imperial); None if failed."""
        if self.weight_as_sent is None:
            return None
        if self.unit is WeightUnit.IMPERIAL:
            return self.weight_as_sent * KG_PER_LB
        return self.weight_as_sent

    @property
    def height_m(self) -> float | None:
        """The height in metres (converted from inches when sent imperial), if sent."""
        if self.height_as_sent is None:
            return None
        if self.unit is WeightUnit.IMPERIAL:
            return self.height_as_sent * M_PER_IN
        return self.height_as_sent

    @property
    def unknown_user(self) -> bool:
        return self.user_id == UNKNOWN_USER


@dataclass(frozen=True, slots=True)
class WeightScaleFeature:
    """Weight Scale Feature (0x2A9E, read). Reserved bits 10-31 are dropped on decoding."""

    time_stamp_supported: bool = False
    multiple_users_supported: bool = False
    bmi_supported: bool = False
    weight_resolution: WeightResolution = WeightResolution.NOT_SPECIFIED
    height_resolution: HeightResolution = HeightResolution.NOT_SPECIFIED

    def __post_init__(self) -> None:
        if not 0 <= self.weight_resolution <= 0xF:
            raise ValueError(f"weight_resolution {int(self.weight_resolution)} is not 4 bits")
        if not 0 <= self.height_resolution <= 0x7:
            raise ValueError(f"height_resolution {int(self.height_resolution)} is not 3 bits")


def parse_measurement(data: bytes) -> WeightMeasurement:
    """Decode a Weight Measurement (0x2A9D); raises ParseError on malformed input.

    Reserved flag bits are ignored.
    """
    reader = ByteReader(data, PROFILE)
    flags = WeightFlag(reader.u8("flags"))
    unit = WeightUnit.IMPERIAL if flags & WeightFlag.UNIT_IMPERIAL else WeightUnit.SI
    raw_weight = reader.u16("weight")
    weight = None if raw_weight == MEASUREMENT_UNSUCCESSFUL else raw_weight / _WEIGHT_DIVISOR[unit]
    timestamp = None
    if flags & WeightFlag.TIME_STAMP_PRESENT:
        timestamp = reader.date_time("time stamp")
    user_id = reader.u8("user ID") if flags & WeightFlag.USER_ID_PRESENT else None
    bmi_kg_m2 = height = None
    if flags & WeightFlag.BMI_AND_HEIGHT_PRESENT:
        bmi_kg_m2 = reader.u16("BMI") / _BMI_DIVISOR
        height = reader.u16("height") / _HEIGHT_DIVISOR[unit]
    reader.expect_end()
    return WeightMeasurement(
        unit=unit,
        weight_as_sent=weight,
        timestamp=timestamp,
        user_id=user_id,
        bmi_kg_m2=bmi_kg_m2,
        height_as_sent=height,
    )


def encode_measurement(measurement: WeightMeasurement) -> bytes:
    """Encode a Weight Measurement; values round to the field resolution (0.005 kg, ...)."""
    unit = measurement.unit
    flags = WeightFlag.UNIT_IMPERIAL if unit is WeightUnit.IMPERIAL else WeightFlag(0)
    body = ByteWriter()
    if measurement.weight_as_sent is None:
        body.u16(MEASUREMENT_UNSUCCESSFUL, "weight")
    else:
        body.u16(_raw(measurement.weight_as_sent, _WEIGHT_DIVISOR[unit]), "weight")
    if measurement.timestamp is not None:
        flags |= WeightFlag.TIME_STAMP_PRESENT
        body.date_time(measurement.timestamp)
    if measurement.user_id is not None:
        flags |= WeightFlag.USER_ID_PRESENT
        body.u8(measurement.user_id, "user ID")
    if measurement.bmi_kg_m2 is not None and measurement.height_as_sent is not None:
        flags |= WeightFlag.BMI_AND_HEIGHT_PRESENT
        body.u16(_raw(measurement.bmi_kg_m2, _BMI_DIVISOR), "BMI")
        body.u16(_raw(measurement.height_as_sent, _HEIGHT_DIVISOR[unit]), "height")
    return bytes((int(flags),)) + body.getvalue()


def parse_feature(data: bytes) -> WeightScaleFeature:
    """Decode Weight Scale Feature (0x2A9E, u32); raises ParseError on a wrong length."""
    reader = ByteReader(data, PROFILE)
    value = reader.u32("weight scale feature")
    reader.expect_end()
    return WeightScaleFeature(
        time_stamp_supported=bool(value & 1 << 0),
        multiple_users_supported=bool(value & 1 << 1),
        bmi_supported=bool(value & 1 << 2),
        weight_resolution=WeightResolution((value >> 3) & 0xF),
        height_resolution=HeightResolution((value >> 7) & 0x7),
    )


def encode_feature(feature: WeightScaleFeature) -> bytes:
    """Encode Weight Scale Feature (reserved bits zero)."""
    value = (
        int(feature.time_stamp_supported)
        | int(feature.multiple_users_supported) << 1
        | int(feature.bmi_supported) << 2
        | int(feature.weight_resolution) << 3
        | int(feature.height_resolution) << 7
    )
    return ByteWriter().u32(value, "weight scale feature").getvalue()
