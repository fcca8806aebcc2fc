"""Heart Rate Service (0x180D): Heart Rate Measurement, Body Sensor Location, Control Point.

References:

* Bluetooth Heart Rate Service (HRS) v1.0, section 3.1 (Heart Rate Measurement), 3.2 (Body
  Sensor Location), 3.3 (Heart Rate Control Point).
* GATT Specification Supplement (GSS), "Heart Rate Measurement" (0x2A37), "Body Sensor Location"
  (0x2A38), "Heart Rate Control Point" (0x2A39).

Heart Rate Measurement layout (all little-endian)::

    flags u8   b0   heart rate value format: 0 = u8, 1 = u16 (bpm)
               b1-2 sensor contact: 0/1 = not supported, 2 = supported but no contact,
                    3 = supported and contact detected
               b3   Energy Expended present (u16, kJ; 0xFFFF = "at least 65535 kJ")
               b4   RR-Interval present (one or more u16, units of 1/1024 s)
               b5-7 reserved for future use (ignored on receipt)
    heart rate u8 | u16
    [energy expended u16]
    [RR-interval u16] * n     (every remaining byte pair)

RR intervals are the only repeating field and run to the end of the value, so a measurement is
as long as its flags say plus an even number of RR bytes; an odd leftover raises ParseError.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from vitalgate.drivers import uuids
from vitalgate.drivers._bytes import ByteReader, ByteWriter, OpenIntEnum

__all__ = [
    "BODY_SENSOR_LOCATION_UUID",
    "CONTROL_POINT_NOT_SUPPORTED",
    "HEART_RATE_CONTROL_POINT_UUID",
    "HEART_RATE_MEASUREMENT_UUID",
    "HEART_RATE_SERVICE_UUID",
    "PROFILE",
    "RR_INTERVAL_RESOLUTION_S",
    "BodySensorLocation",
    "HeartRateControlOpcode",
    "HeartRateFlag",
    "HeartRateMeasurement",
    "encode_body_sensor_location",
    "encode_control_point",
    "encode_measurement",
    "parse_body_sensor_location",
    "parse_control_point",
    "parse_measurement",
]

PROFILE = "heart_rate"

HEART_RATE_SERVICE_UUID = uuids.HEART_RATE_SERVICE
HEART_RATE_MEASUREMENT_UUID = uuids.HEART_RATE_MEASUREMENT
BODY_SENSOR_LOCATION_UUID = uuids.BODY_SENSOR_LOCATION
HEART_RATE_CONTROL_POINT_UUID = uuids.HEART_RATE_CONTROL_POINT

#: RR intervals are sent in units of 1/1024 s (HRS 3.1, GSS RR-Interval field).
RR_INTERVAL_RESOLUTION_S = 1 / 1024
_RR_MAX_RAW = 0xFFFF

#: ATT application error a server returns for an unsupported Control Point value (HRS 3.3).
CONTROL_POINT_NOT_SUPPORTED = 0x80


class HeartRateFlag(enum.IntFlag):
    """Flags octet of the Heart Rate Measurement (HRS 3.1, GSS Flags field)."""

    VALUE_FORMAT_U16 = 1 << 0
    SENSOR_CONTACT_DETECTED = 1 << 1
    SENSOR_CONTACT_SUPPORTED = 1 << 2
    ENERGY_EXPENDED_PRESENT = 1 << 3
    RR_INTERVAL_PRESENT = 1 << 4


class BodySensorLocation(OpenIntEnum):
    """Body Sensor Location (0x2A38, HRS 3.2); 7-255 are reserved."""

    OTHER = 0
    CHEST = 1
    WRIST = 2
    FINGER = 3
    HAND = 4
    EAR_LOBE = 5
    FOOT = 6


class HeartRateControlOpcode(OpenIntEnum):
    """Heart Rate Control Point values (0x2A39, HRS 3.3); 0 and 2-255 are reserved."""

    RESET_ENERGY_EXPENDED = 1


@dataclass(frozen=True, slots=True)
class HeartRateMeasurement:
    """One Heart Rate Measurement notification (0x2A37).

    ``sensor_contact`` is None when the sensor does not support contact detection, else whether
    skin contact is detected. ``energy_expended_kj`` is the accumulated energy since the last
    reset (None when not sent). ``rr_intervals_s`` holds the beat-to-beat intervals in seconds,
    oldest first, each a multiple of 1/1024 s.
    """

    heart_rate_bpm: int
    sensor_contact: bool | None = None
    energy_expended_kj: int | None = None
    rr_intervals_s: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.heart_rate_bpm <= 0xFFFF:
            raise ValueError(f"heart_rate_bpm {self.heart_rate_bpm} outside 0..65535")
        if self.energy_expended_kj is not None and not 0 <= self.energy_expended_kj <= 0xFFFF:
            raise ValueError(f"energy_expended_kj {self.energy_expended_kj} outside 0..65535")
        for rr_s in self.rr_intervals_s:
            if not (math.isfinite(rr_s) and 0 <= round(rr_s * 1024) <= _RR_MAX_RAW):
                raise ValueError(f"RR interval {rr_s!r} s outside 0..{_RR_MAX_RAW}/1024 s")


def parse_measurement(data: bytes) -> HeartRateMeasurement:
    """Decode a Heart Rate Measurement (0x2A37); raises ParseError on malformed input.

    The reserved flag bits 5-7 are ignored, as HRS requires of a receiver. A set RR-Interval
    flag with no RR bytes (the spec asks for at least one) decodes to an empty tuple rather than
    failing, so the heart rate it carries is not lost.
    """
    reader = ByteReader(data, PROFILE)
    flags = HeartRateFlag(reader.u8("flags"))
    if flags & HeartRateFlag.VALUE_FORMAT_U16:
        heart_rate_bpm = reader.u16("heart rate (u16)")
    else:
        heart_rate_bpm = reader.u8("heart rate (u8)")
    sensor_contact: bool | None = None
    if flags & HeartRateFlag.SENSOR_CONTACT_SUPPORTED:
        sensor_contact = bool(flags & HeartRateFlag.SENSOR_CONTACT_DETECTED)
    energy_expended_kj: int | None = None
    if flags & HeartRateFlag.ENERGY_EXPENDED_PRESENT:
        energy_expended_kj = reader.u16("energy expended")
    rr_intervals_s: tuple[float, ...] = ()
    if flags & HeartRateFlag.RR_INTERVAL_PRESENT:
        if reader.remaining % 2:
            raise reader.error(f"RR intervals need an even byte count, {reader.remaining} left")
        rr_intervals_s = tuple(
            reader.u16("RR interval") / 1024 for _ in range(reader.remaining // 2)
        )
    reader.expect_end()
    return HeartRateMeasurement(
        heart_rate_bpm=heart_rate_bpm,
        sensor_contact=sensor_contact,
        energy_expended_kj=energy_expended_kj,
        rr_intervals_s=rr_intervals_s,
    )


def encode_measurement(measurement: HeartRateMeasurement) -> bytes:
    """Encode a Heart Rate Measurement; the u8 format is used whenever the rate fits.

    RR intervals are rounded to the nearest 1/1024 s. The value is not split across
    notifications: the caller keeps the RR list short enough for its ATT MTU.
    """
    flags = HeartRateFlag(0)
    body = ByteWriter()
    if measurement.heart_rate_bpm <= 0xFF:
        body.u8(measurement.heart_rate_bpm, "heart rate")
    else:
        flags |= HeartRateFlag.VALUE_FORMAT_U16
        body.u16(measurement.heart_rate_bpm, "heart rate")
    if measurement.sensor_contact is not None:
        flags |= HeartRateFlag.SENSOR_CONTACT_SUPPORTED
        if measurement.sensor_contact:
            flags |= HeartRateFlag.SENSOR_CONTACT_DETECTED
    if measurement.energy_expended_kj is not None:
        flags |= HeartRateFlag.ENERGY_EXPENDED_PRESENT
        body.u16(measurement.energy_expended_kj, "energy expended")
    if measurement.rr_intervals_s:
        flags |= HeartRateFlag.RR_INTERVAL_PRESENT
        for rr_s in measurement.rr_intervals_s:
            body.u16(round(rr_s * 1024), "RR interval")
    return bytes((int(flags),)) + body.getvalue()


def parse_body_sensor_location(data: bytes) -> BodySensorLocation:
    """Decode Body Sensor Location (0x2A38, one octet); reserved codes are kept."""
    reader = ByteReader(data, PROFILE)
    location = BodySensorLocation(reader.u8("body sensor location"))
    reader.expect_end()
    return location


def encode_body_sensor_location(location: BodySensorLocation) -> bytes:
    """Encode Body Sensor Location (0x2A38)."""
    return ByteWriter().u8(int(location), "body sensor location").getvalue()


def parse_control_point(data: bytes) -> HeartRateControlOpcode:
    """Decode a Heart Rate Control Point write (0x2A39, one octet); reserved codes are kept.

    A server answers a reserved code with the ATT error :data:`CONTROL_POINT_NOT_SUPPORTED`.
    """
    reader = ByteReader(data, PROFILE)
    opcode = HeartRateControlOpcode(reader.u8("control point opcode"))
    reader.expect_end()
    return opcode


def encode_control_point(
    opcode: HeartRateControlOpcode = HeartRateControlOpcode.RESET_ENERGY_EXPENDED,
) -> bytes:
    """Encode a Heart Rate Control Point write (default: reset Energy Expended)."""
    return ByteWriter().u8(int(opcode), "control point opcode").getvalue()
