"""Health Thermometer Service (0x1809): temperature measurement, type and measurement interval.

References:

* Bluetooth Health Thermometer Service (HTS) v1.0, section 3.1 (Temperature Measurement),
  3.2 (Temperature Type), 3.3 (Intermediate Temperature), 3.4 (Measurement Interval).
* GATT Specification Supplement (GSS) 3.216 "Temperature Measurement" (0x2A1C), "Temperature
  Type" (0x2A1D), "Intermediate Temperature" (0x2A1E), 3.150 "Measurement Interval" (0x2A21);
  FLOAT = IEEE 11073-20601 "medfloat32".

Temperature Measurement and Intermediate Temperature share one layout (little-endian)::

    flags u8   b0 unit: 0 = Celsius, 1 = Fahrenheit; b1 Time Stamp present;
               b2 Temperature Type present; b3-7 reserved
    temperature FLOAT (in the flagged unit)
    [Time Stamp: Date Time, 7 B]  [Temperature Type u8]

Temperature Type (u8): 1 armpit, 2 body (general), 3 ear (usually ear lobe), 4 finger,
5 gastro-intestinal tract, 6 mouth, 7 rectum, 8 toe, 9 tympanum (ear drum); 0 and 10-255
reserved. Measurement Interval (u16): seconds between periodic measurements, 0 = none.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from vitalgate.drivers import ieee11073, uuids
from vitalgate.drivers._bytes import ByteReader, ByteWriter, OpenIntEnum

__all__ = [
    "HEALTH_THERMOMETER_SERVICE_UUID",
    "INTERMEDIATE_TEMPERATURE_UUID",
    "MEASUREMENT_INTERVAL_UUID",
    "PROFILE",
    "TEMPERATURE_MEASUREMENT_UUID",
    "TEMPERATURE_TYPE_UUID",
    "TemperatureFlag",
    "TemperatureMeasurement",
    "TemperatureType",
    "TemperatureUnit",
    "encode_intermediate_temperature",
    "encode_measurement",
    "encode_measurement_interval",
    "encode_temperature_type",
    "fahrenheit_to_celsius",
    "parse_intermediate_temperature",
    "parse_measurement",
    "parse_measurement_interval",
    "parse_temperature_type",
]

PROFILE = "thermometer"

HEALTH_THERMOMETER_SERVICE_UUID = uuids.HEALTH_THERMOMETER_SERVICE
TEMPERATURE_MEASUREMENT_UUID = uuids.TEMPERATURE_MEASUREMENT
TEMPERATURE_TYPE_UUID = uuids.TEMPERATURE_TYPE
INTERMEDIATE_TEMPERATURE_UUID = uuids.INTERMEDIATE_TEMPERATURE
MEASUREMENT_INTERVAL_UUID = uuids.MEASUREMENT_INTERVAL

# FLOAT exponents down to -128: any value a device can send re-encodes to the same value.
_FLOAT_MAX_DECIMALS = 128


class TemperatureFlag(enum.IntFlag):
    """Flags octet of the Temperature Measurement (GSS 3.216, Flags field)."""

    UNIT_FAHRENHEIT = 1 << 0
    TIME_STAMP_PRESENT = 1 << 1
    TEMPERATURE_TYPE_PRESENT = 1 << 2


class TemperatureUnit(enum.IntEnum):
    """Unit of the temperature as sent (flags bit 0)."""

    CELSIUS = 0
    FAHRENHEIT = 1


class TemperatureType(OpenIntEnum):
    """Temperature Type, the measurement site (GSS "Temperature Type", HTS 3.2)."""

    ARMPIT = 1
    BODY = 2
    EAR = 3
    FINGER = 4
    GASTROINTESTINAL_TRACT = 5
    MOUTH = 6
    RECTUM = 7
    TOE = 8
    TYMPANUM = 9


def fahrenheit_to_celsius(value_f: float) -> float:
    """Degrees Fahrenheit to degrees Celsius."""
    return (value_f - 32.0) * 5.0 / 9.0


@dataclass(frozen=True, slots=True)
class TemperatureMeasurement:
    """A Temperature Measurement (0x2A1C, indicated) or Intermediate Temperature (0x2A1E).

    ``temperature_as_sent`` is in ``unit``; :attr:`temperature_c` always gives Celsius. NaN
    marks a value the device flagged as not available. ``timestamp`` is naive device-local
    time, None when absent or "not known". ``temperature_type`` is the measurement site when
    the measurement carries it (a thermometer may instead expose the fixed site through the
    Temperature Type characteristic).
    """

    temperature_as_sent: float
    unit: TemperatureUnit
    timestamp: datetime | None = None
    temperature_type: TemperatureType | None = None

    def __post_init__(self) -> None:
        try:
            ieee11073.best_float(self.temperature_as_sent, _FLOAT_MAX_DECIMALS)
        except ValueError as exc:
            raise ValueError(
                f"temperature {self.temperature_as_sent!r} cannot be sent as a FLOAT: {exc}"
            ) from exc
        if self.timestamp is not None and self.timestamp.tzinfo is not None:
            raise ValueError("timestamp is device-local time as sent: pass a naive datetime")
        if self.temperature_type is not None and not 0 <= self.temperature_type <= 0xFF:
            raise ValueError(f"temperature_type {int(self.temperature_type)} does not fit in u8")

    @property
    def temperature_c(self) -> float:
        """The temperature in degrees Celsius, converted when the device sent Fahrenheit."""
        if self.unit is TemperatureUnit.FAHRENHEIT:
            return fahrenheit_to_celsius(self.temperature_as_sent)
        return self.temperature_as_sent


def parse_measurement(data: bytes) -> TemperatureMeasurement:
    """Decode a Temperature Measurement (0x2A1C) or Intermediate Temperature (0x2A1E).

    Raises ParseError for truncated or over-long input or an invalid time stamp; reserved
    flag bits are ignored.
    """
    reader = ByteReader(data, PROFILE)
    flags = TemperatureFlag(reader.u8("flags"))
    unit = (
        TemperatureUnit.FAHRENHEIT
        if flags & TemperatureFlag.UNIT_FAHRENHEIT
        else TemperatureUnit.CELSIUS
    )
    temperature = reader.float32("temperature")
    timestamp = None
    if flags & TemperatureFlag.TIME_STAMP_PRESENT:
        timestamp = reader.date_time("time stamp")
    temperature_type = None
    if flags & TemperatureFlag.TEMPERATURE_TYPE_PRESENT:
        temperature_type = TemperatureType(reader.u8("temperature type"))
    reader.expect_end()
    return TemperatureMeasurement(
        temperature_as_sent=temperature,
        unit=unit,
        timestamp=timestamp,
        temperature_type=temperature_type,
    )


def encode_measurement(measurement: TemperatureMeasurement) -> bytes:
    """Encode a Temperature Measurement / Intermediate Temperature.

    The FLOAT exponent is the shortest that represents the value exactly (36.6 -> 366e-1).
    """
    flags = TemperatureFlag(0)
    if measurement.unit is TemperatureUnit.FAHRENHEIT:
        flags |= TemperatureFlag.UNIT_FAHRENHEIT
    body = ByteWriter()
    body.u32(
        ieee11073.best_float(measurement.temperature_as_sent, _FLOAT_MAX_DECIMALS), "temperature"
    )
    if measurement.timestamp is not None:
        flags |= TemperatureFlag.TIME_STAMP_PRESENT
        body.date_time(measurement.timestamp)
    if measurement.temperature_type is not None:
        flags |= TemperatureFlag.TEMPERATURE_TYPE_PRESENT
        body.u8(int(measurement.temperature_type), "temperature type")
    return bytes((int(flags),)) + body.getvalue()


#: Intermediate Temperature (0x2A1E) has the Temperature Measurement layout (HTS 3.3).
parse_intermediate_temperature = parse_measurement
encode_intermediate_temperature = encode_measurement


def parse_temperature_type(data: bytes) -> TemperatureType:
    """Decode Temperature Type (0x2A1D, one octet); reserved codes are kept."""
    reader = ByteReader(data, PROFILE)
    temperature_type = TemperatureType(reader.u8("temperature type"))
    reader.expect_end()
    return temperature_type


def encode_temperature_type(temperature_type: TemperatureType) -> bytes:
    """Encode Temperature Type (0x2A1D)."""
    return ByteWriter().u8(int(temperature_type), "temperature type").getvalue()


def parse_measurement_interval(data: bytes) -> int:
    """Decode Measurement Interval (0x2A21): seconds between measurements, 0 = none."""
    reader = ByteReader(data, PROFILE)
    interval_s = reader.u16("measurement interval")
    reader.expect_end()
    return interval_s


def encode_measurement_interval(interval_s: int) -> bytes:
    """Encode Measurement Interval (0x2A21); ValueError outside 0..65535 s."""
    return ByteWriter().u16(interval_s, "measurement interval (s)").getvalue()
