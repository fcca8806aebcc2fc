"""Current Time Service (0x1805): Current Time and Local Time Information.

References:

* Bluetooth Current Time Service (CTS) v1.1, section 3.1 (Current Time) and 3.2 (Local Time
  Information).
* GATT Specification Supplement (GSS) 3.62 "Current Time" (0x2A2B): Exact Time 256 (Day Date
  Time = Date Time (3.70) + Day of Week, then Fractions256) + Adjust Reason; "Local Time
  Information" (0x2A0F): Time Zone + DST Offset.

Current Time, 10 bytes (little-endian)::

    Date Time     year u16, month, day, hours, minutes, seconds (u8 each; 0 = not known)
    Day of Week   u8: 0 = not known, 1 = Monday .. 7 = Sunday, 8-255 reserved
    Fractions256  u8: 1/256 s units
    Adjust Reason u8: b0 manual time update, b1 external reference time update,
                      b2 change of time zone, b3 change of DST, b4-7 reserved

Local Time Information, 2 bytes::

    Time Zone   s8: offset from UTC in 15-minute units, -48..+56; -128 = not known
    DST Offset  u8: 0 standard time, 2 +0.5 h, 4 +1 h, 8 +2 h, 255 not known; others reserved

The device keeps local time. Everything here is device-local (naive datetimes); the gateway
converts to UTC once, at the edge, with the device's Local Time Information.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from vitalgate.drivers import uuids
from vitalgate.drivers._bytes import ByteReader, ByteWriter, OpenIntEnum

__all__ = [
    "CURRENT_TIME_SERVICE_UUID",
    "CURRENT_TIME_UUID",
    "LOCAL_TIME_INFORMATION_UUID",
    "PROFILE",
    "TIME_ZONE_UNKNOWN",
    "AdjustReason",
    "CurrentTime",
    "DayOfWeek",
    "DstOffset",
    "LocalTimeInformation",
    "encode_current_time",
    "encode_local_time_information",
    "parse_current_time",
    "parse_local_time_information",
]

PROFILE = "current_time"

CURRENT_TIME_SERVICE_UUID = uuids.CURRENT_TIME_SERVICE
CURRENT_TIME_UUID = uuids.CURRENT_TIME
LOCAL_TIME_INFORMATION_UUID = uuids.LOCAL_TIME_INFORMATION

#: Time Zone value meaning "not known".
TIME_ZONE_UNKNOWN = -128
_TIME_ZONE_MIN, _TIME_ZONE_MAX = -48, 56
_QUARTER_HOUR = timedelta(minutes=15)
_DST_CODES = frozenset((0, 2, 4, 8))


class DayOfWeek(OpenIntEnum):
    """Day of Week (GSS "Day of Week"): ISO numbering, 0 = not known."""

    UNKNOWN = 0
    MONDAY = 1
    TUESDAY = 2
    WEDNESDAY = 3
    THURSDAY = 4
    FRIDAY = 5
    SATURDAY = 6
    SUNDAY = 7


class AdjustReason(enum.IntFlag):
    """Adjust Reason (GSS 3.62, Adjust Reason field)."""

    MANUAL_TIME_UPDATE = 1 << 0
    EXTERNAL_REFERENCE_TIME_UPDATE = 1 << 1
    CHANGE_OF_TIME_ZONE = 1 << 2
    CHANGE_OF_DST = 1 << 3


class DstOffset(OpenIntEnum):
    """DST Offset (GSS "DST Offset"), in units of 15 minutes; 255 = not known."""

    STANDARD_TIME = 0
    HALF_AN_HOUR_DAYLIGHT_TIME = 2
    DAYLIGHT_TIME = 4
    DOUBLE_DAYLIGHT_TIME = 8
    UNKNOWN = 255

    @property
    def offset(self) -> timedelta | None:
        """The DST shift, or None when not known or reserved."""
        if int(self) in _DST_CODES:
            return int(self) * _QUARTER_HOUR
        return None


_NO_ADJUSTMENT = AdjustReason(0)


@dataclass(frozen=True, slots=True)
class CurrentTime:
    """Current Time (0x2A2B): the device's local wall-clock time.

    ``date_time`` is naive device-local time with whole seconds (None when the device reports
    "not known"); the sub-second part is ``fractions256`` (1/256 s).
    """

    date_time: datetime | None
    day_of_week: DayOfWeek
    fractions256: int = 0
    adjust_reason: AdjustReason = _NO_ADJUSTMENT

    def __post_init__(self) -> None:
        if self.date_time is not None:
            if self.date_time.tzinfo is not None:
                raise ValueError("date_time is device-local time: pass a naive datetime")
            if self.date_time.microsecond:
                raise ValueError("date_time has whole seconds: put the rest in fractions256")
            if self.date_time.year < 1582:
                raise ValueError(f"date_time year {self.date_time.year} is before 1582")
        if not 0 <= self.day_of_week <= 0xFF:
            raise ValueError(f"day_of_week {int(self.day_of_week)} does not fit in u8")
        if not 0 <= self.fractions256 <= 0xFF:
            raise ValueError(f"fractions256 {self.fractions256} outside 0..255")
        if not 0 <= self.adjust_reason <= 0xFF:
            raise ValueError(f"adjust_reason {int(self.adjust_reason)} does not fit in u8")

    @classmethod
    def from_datetime(
        cls,
        value: datetime,
        *,
        adjust_reason: AdjustReason = AdjustReason.MANUAL_TIME_UPDATE,
    ) -> CurrentTime:
        """The Current Time for a naive device-local datetime (microseconds -> fractions256).

        Raises ValueError for an aware datetime: convert to the device's local time at the
        edge first (see :meth:`LocalTimeInformation.for_datetime`).
        """
        if value.tzinfo is not None:
            raise ValueError("pass the device-local time as a naive datetime")
        return cls(
            date_time=value.replace(microsecond=0),
            day_of_week=DayOfWeek(value.isoweekday()),
            fractions256=value.microsecond * 256 // 1_000_000,
            adjust_reason=adjust_reason,
        )

    @property
    def exact_time(self) -> datetime | None:
        """``date_time`` plus the fractions, to the microsecond (None when not known)."""
        if self.date_time is None:
            return None
        return self.date_time + timedelta(microseconds=self.fractions256 * 1_000_000 // 256)


def parse_current_time(data: bytes) -> CurrentTime:
    """Decode Current Time (0x2A2B, 10 bytes); raises ParseError on malformed input.

    Reserved Day of Week codes and Adjust Reason bits are kept as sent.
    """
    reader = ByteReader(data, PROFILE)
    date_time = reader.date_time("date time")
    day_of_week = DayOfWeek(reader.u8("day of week"))
    fractions256 = reader.u8("fractions256")
    adjust_reason = AdjustReason(reader.u8("adjust reason"))
    reader.expect_end()
    return CurrentTime(
        date_time=date_time,
        day_of_week=day_of_week,
        fractions256=fractions256,
        adjust_reason=adjust_reason,
    )


def encode_current_time(
    value: CurrentTime | datetime, *, adjust_reason: AdjustReason | None = None
) -> bytes:
    """Encode Current Time, to set a device clock (write) or to serve it (read / notify).

    ``value`` is a :class:`CurrentTime` or a naive device-local datetime; for a datetime,
    ``adjust_reason`` defaults to "manual time update" (the client set the clock). Passing
    ``adjust_reason`` with a CurrentTime is a TypeError (it already carries one).
    """
    if isinstance(value, datetime):
        current = CurrentTime.from_datetime(
            value,
            adjust_reason=AdjustReason.MANUAL_TIME_UPDATE
            if adjust_reason is None
            else adjust_reason,
        )
    else:
        if adjust_reason is not None:
            raise TypeError("adjust_reason is taken from the CurrentTime value")
        current = value
    return (
        ByteWriter()
        .date_time(current.date_time)
        .u8(int(current.day_of_week), "day of week")
        .u8(current.fractions256, "fractions256")
        .u8(int(current.adjust_reason), "adjust reason")
        .getvalue()
    )


@dataclass(frozen=True, slots=True)
class LocalTimeInformation:
    """Local Time Information (0x2A0F): the device's time zone and DST offset.

    ``time_zone_quarter_hours`` is the standard-time offset from UTC in 15-minute units
    (-48..+56), None when "not known".
    """

    time_zone_quarter_hours: int | None
    dst_offset: DstOffset

    def __post_init__(self) -> None:
        tz = self.time_zone_quarter_hours
        if tz is not None and not _TIME_ZONE_MIN <= tz <= _TIME_ZONE_MAX:
            raise ValueError(f"time zone {tz} outside {_TIME_ZONE_MIN}..{_TIME_ZONE_MAX}")
        if not 0 <= self.dst_offset <= 0xFF:
            raise ValueError(f"dst_offset {int(self.dst_offset)} does not fit in u8")

    @property
    def utc_offset(self) -> timedelta | None:
        """Local time minus UTC (time zone plus DST), or None when either is not known."""
        dst = self.dst_offset.offset
        if self.time_zone_quarter_hours is None or dst is None:
            return None
        return self.time_zone_quarter_hours * _QUARTER_HOUR + dst

    @classmethod
    def for_datetime(cls, value: datetime) -> LocalTimeInformation:
        """The Local Time Information in force at an aware datetime (from its tzinfo).

        Raises ValueError for a naive datetime, an offset that is not a whole number of
        quarter hours, or a DST shift CTS cannot express (not 0, 0.5, 1 or 2 hours).
        """
        utc_offset = value.utcoffset()
        if utc_offset is None:
            raise ValueError("need an aware datetime to know its time zone")
        dst = value.dst() or timedelta(0)
        standard = utc_offset - dst
        if standard % _QUARTER_HOUR or dst % _QUARTER_HOUR:
            raise ValueError(f"offset {utc_offset} is not a whole number of quarter hours")
        dst_code = DstOffset(dst // _QUARTER_HOUR)
        if dst_code.offset is None:
            raise ValueError(f"DST shift {dst} cannot be expressed in CTS")
        return cls(time_zone_quarter_hours=standard // _QUARTER_HOUR, dst_offset=dst_code)


def parse_local_time_information(data: bytes) -> LocalTimeInformation:
    """Decode Local Time Information (0x2A0F, 2 bytes).

    A time zone outside -48..+56 (other than -128, not known) raises ParseError; reserved DST
    codes are kept.
    """
    reader = ByteReader(data, PROFILE)
    time_zone = reader.s8("time zone")
    if time_zone != TIME_ZONE_UNKNOWN and not _TIME_ZONE_MIN <= time_zone <= _TIME_ZONE_MAX:
        raise reader.error(f"time zone {time_zone} outside -48..56 and not -128", offset=0)
    dst_offset = DstOffset(reader.u8("DST offset"))
    reader.expect_end()
    return LocalTimeInformation(
        time_zone_quarter_hours=None if time_zone == TIME_ZONE_UNKNOWN else time_zone,
        dst_offset=dst_offset,
    )


def encode_local_time_information(info: LocalTimeInformation) -> bytes:
    """Encode Local Time Information (0x2A0F)."""
    time_zone = (
        TIME_ZONE_UNKNOWN if info.time_zone_quarter_hours is None else info.time_zone_quarter_hours
    )
    return ByteWriter().s8(time_zone, "time zone").u8(int(info.dst_offset), "DST offset").getvalue()
