"""Continuous Glucose Monitoring Service (0x181F) codecs.

Characteristics: CGM Measurement (0x2AA7), CGM Feature (0x2AA8), CGM Status (0x2AA9),
CGM Session Start Time (0x2AAA), CGM Session Run Time (0x2AAB), CGM Specific Ops Control Point
(0x2AAC); the Record Access Control Point (0x2A52) is in :mod:`vitalgate.drivers.racp`.

References: Continuous Glucose Monitoring Service (CGMS) v1.0.1 section 3 and the GATT
Specification Supplement (GSS) sections of the same names.

CGM Measurement record (a notification may carry several, each starting with its size)::

    size u8 (the whole record, size byte and E2E-CRC included)
    flags u8   b0 CGM Trend Information present, b1 CGM Quality present, b2-b4 reserved,
               b5 Warning-Octet present, b6 Cal/Temp-Octet present, b7 Status-Octet present
    glucose concentration SFLOAT (mg/dL), time offset u16 (minutes since session start)
    [Status-Octet u8] [Cal/Temp-Octet u8] [Warning-Octet u8]
    [trend SFLOAT (mg/dL)/min] [quality SFLOAT %] [E2E-CRC u16, when the feature says so]

Annunciation octet order: the GSS defines the CGM Status characteristic's 24-bit field as
"identical to the structure of the combined Status fields" of the measurement, with the Status
octet as bits 0-7, Cal/Temp as bits 8-15 and Warning as bits 16-23; least significant octet
first, the present octets therefore follow in the order Status, Cal/Temp, Warning. (The 2014
characteristic XML listed the fields as Warning, Cal/Temp, Status while describing the Status
bits in the first one; the Nordic nRF5 SDK / nRF Connect SDK sensors and Nordic's Android
collector follow those field names and send Warning first. This codec follows the GSS.)

E2E-CRC (CGMS section "E2E-CRC"): CRC-CCITT, generator polynomial x^16 + x^12 + x^5 + 1
(0x1021) processed LSB first (reflected, 0x8408), seed 0xFFFF, no final XOR (the
"CRC-16/MCRF4XX" parameter set; check value 0x6F91 for ``b"123456789"``), computed over every
byte of the value before the CRC and sent little-endian. A wrong CRC raises
:class:`CgmCrcError`; devices answer a write with a missing or wrong CRC with the ATT error
0x80 (Missing CRC) or 0x81 (Invalid CRC).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from vitalgate.drivers._bytes import ByteReader, ByteWriter, OpenIntEnum
from vitalgate.drivers.glucose import SampleType
from vitalgate.errors import ParseError

__all__ = [
    "ATT_ERROR_INVALID_CRC",
    "ATT_ERROR_MISSING_CRC",
    "COMMUNICATION_INTERVAL_DISABLED",
    "COMMUNICATION_INTERVAL_FASTEST",
    "LAST_CALIBRATION_RECORD",
    "PROFILE",
    "TIME_ZONE_UNKNOWN",
    "CalibrationRecord",
    "CalibrationStatus",
    "CgmCalTempOctet",
    "CgmCrcError",
    "CgmFeature",
    "CgmFeatureFlag",
    "CgmMeasurement",
    "CgmMeasurementFlag",
    "CgmSampleLocation",
    "CgmSensorStatus",
    "CgmSessionRunTime",
    "CgmSessionStartTime",
    "CgmStatus",
    "CgmStatusOctet",
    "CgmWarningOctet",
    "DstOffset",
    "SampleType",
    "SocpMessage",
    "SocpOpcode",
    "SocpRequestError",
    "SocpResponseCode",
    "e2e_crc",
    "encode_feature",
    "encode_measurement",
    "encode_measurements",
    "encode_session_run_time",
    "encode_session_start_time",
    "encode_socp",
    "encode_status",
    "parse_feature",
    "parse_measurements",
    "parse_session_run_time",
    "parse_session_start_time",
    "parse_socp_request",
    "parse_socp_response",
    "parse_status",
]

PROFILE = "cgm"

ATT_ERROR_MISSING_CRC = 0x80
ATT_ERROR_INVALID_CRC = 0x81

_MAX_DECIMALS = 8


def e2e_crc(data: bytes) -> int:
    """The CGMS E2E-CRC of ``data`` (CRC-CCITT 0x1021 LSB first, seed 0xFFFF)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc


class CgmCrcError(ParseError):
    """An E2E-CRC is missing or wrong; ``att_error`` is the code a device answers with."""

    def __init__(self, message: str, *, att_error: int, offset: int, payload: bytes) -> None:
        super().__init__(PROFILE, message, offset=offset, payload=payload)
        self.att_error = att_error


def _check_crc(reader: ByteReader, start: int, what: str) -> None:
    """Read the u16 E2E-CRC at the reader's position; it covers data[start:position]."""
    covered = reader.data[start : reader.offset]
    crc_offset = reader.offset
    if reader.remaining < 2:
        raise CgmCrcError(
            f"{what}: missing E2E-CRC",
            att_error=ATT_ERROR_MISSING_CRC,
            offset=crc_offset,
            payload=reader.data,
        )
    sent = reader.u16("E2E-CRC")
    expected = e2e_crc(covered)
    if sent != expected:
        raise CgmCrcError(
            f"{what}: E2E-CRC {sent:#06x} does not match computed {expected:#06x}",
            att_error=ATT_ERROR_INVALID_CRC,
            offset=crc_offset,
            payload=reader.data,
        )


def _with_crc(body: bytes, e2e: bool) -> bytes:
    if not e2e:
        return body
    return body + e2e_crc(body).to_bytes(2, "little")


# --- Sensor Status Annunciation ----------------------------------------------------------------


class CgmStatusOctet(enum.IntFlag):
    """Status-Octet (annunciation bits 0-7)."""

    SESSION_STOPPED = 1 << 0
    DEVICE_BATTERY_LOW = 1 << 1
    SENSOR_TYPE_INCORRECT = 1 << 2
    SENSOR_MALFUNCTION = 1 << 3
    DEVICE_SPECIFIC_ALERT = 1 << 4
    GENERAL_DEVICE_FAULT = 1 << 5


class CgmCalTempOctet(enum.IntFlag):
    """Cal/Temp-Octet (annunciation bits 8-15)."""

    TIME_SYNCHRONIZATION_REQUIRED = 1 << 0
    CALIBRATION_NOT_ALLOWED = 1 << 1
    CALIBRATION_RECOMMENDED = 1 << 2
    CALIBRATION_REQUIRED = 1 << 3
    TEMPERATURE_TOO_HIGH = 1 << 4
    TEMPERATURE_TOO_LOW = 1 << 5


class CgmWarningOctet(enum.IntFlag):
    """Warning-Octet (annunciation bits 16-23)."""

    BELOW_PATIENT_LOW = 1 << 0
    ABOVE_PATIENT_HIGH = 1 << 1
    BELOW_HYPO = 1 << 2
    ABOVE_HYPER = 1 << 3
    RATE_OF_DECREASE_EXCEEDED = 1 << 4
    RATE_OF_INCREASE_EXCEEDED = 1 << 5
    BELOW_DEVICE_RANGE = 1 << 6
    ABOVE_DEVICE_RANGE = 1 << 7


class CgmSensorStatus(enum.IntFlag):
    """The 24-bit Sensor Status Annunciation (CGM Status characteristic, CGM Measurement)."""

    SESSION_STOPPED = 1 << 0
    DEVICE_BATTERY_LOW = 1 << 1
    SENSOR_TYPE_INCORRECT = 1 << 2
    SENSOR_MALFUNCTION = 1 << 3
    DEVICE_SPECIFIC_ALERT = 1 << 4
    GENERAL_DEVICE_FAULT = 1 << 5
    TIME_SYNCHRONIZATION_REQUIRED = 1 << 8
    CALIBRATION_NOT_ALLOWED = 1 << 9
    CALIBRATION_RECOMMENDED = 1 << 10
    CALIBRATION_REQUIRED = 1 << 11
    TEMPERATURE_TOO_HIGH = 1 << 12
    TEMPERATURE_TOO_LOW = 1 << 13
    BELOW_PATIENT_LOW = 1 << 16
    ABOVE_PATIENT_HIGH = 1 << 17
    BELOW_HYPO = 1 << 18
    ABOVE_HYPER = 1 << 19
    RATE_OF_DECREASE_EXCEEDED = 1 << 20
    RATE_OF_INCREASE_EXCEEDED = 1 << 21
    BELOW_DEVICE_RANGE = 1 << 22
    ABOVE_DEVICE_RANGE = 1 << 23


# --- CGM Measurement (0x2AA7) ------------------------------------------------------------------


class CgmMeasurementFlag(enum.IntFlag):
    TREND_PRESENT = 1 << 0
    QUALITY_PRESENT = 1 << 1
    WARNING_OCTET_PRESENT = 1 << 5
    CAL_TEMP_OCTET_PRESENT = 1 << 6
    STATUS_OCTET_PRESENT = 1 << 7


@dataclass(frozen=True, slots=True)
class CgmMeasurement:
    """One CGM Measurement record. Absolute time = Session Start Time + ``time_offset_min``.

    Each annunciation octet is None when its flag is clear (a present octet may be 0).
    """

    glucose_mg_dl: float
    time_offset_min: int
    status_octet: CgmStatusOctet | None = None
    cal_temp_octet: CgmCalTempOctet | None = None
    warning_octet: CgmWarningOctet | None = None
    trend_mg_dl_per_min: float | None = None
    quality_pct: float | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.time_offset_min <= 0xFFFF:
            raise ValueError(f"time_offset_min {self.time_offset_min} does not fit in u16")
        for name, octet in (
            ("status_octet", self.status_octet),
            ("cal_temp_octet", self.cal_temp_octet),
            ("warning_octet", self.warning_octet),
        ):
            if octet is not None and not 0 <= octet <= 0xFF:
                raise ValueError(f"{name} does not fit in u8")

    @property
    def sensor_status(self) -> CgmSensorStatus:
        """The present octets as one 24-bit annunciation (absent octets count as 0)."""
        return CgmSensorStatus(
            int(self.status_octet or 0)
            | int(self.cal_temp_octet or 0) << 8
            | int(self.warning_octet or 0) << 16
        )


_RECORD_MIN_SIZE = 6


def parse_measurements(data: bytes, *, e2e_crc: bool) -> list[CgmMeasurement]:
    """Decode a CGM Measurement notification: one or more size-prefixed records.

    ``e2e_crc`` says whether the CGM Feature announced E2E-CRC support; each record then ends
    with its CRC, which is checked (:class:`CgmCrcError` on mismatch). Raises ParseError for a
    size that disagrees with the flags, truncated input or trailing bytes.
    """
    reader = ByteReader(data, PROFILE)
    if not reader.remaining:
        raise reader.error("empty CGM Measurement")
    records: list[CgmMeasurement] = []
    while reader.remaining:
        start = reader.offset
        size = reader.u8("record size")
        if size > reader.remaining + 1:
            raise reader.error(
                f"record size {size} exceeds the {reader.remaining + 1} bytes left",
                offset=start,
            )
        flags = CgmMeasurementFlag(reader.u8("flags"))
        expected = (
            _RECORD_MIN_SIZE
            + 2 * bool(flags & CgmMeasurementFlag.TREND_PRESENT)
            + 2 * bool(flags & CgmMeasurementFlag.QUALITY_PRESENT)
            + bool(flags & CgmMeasurementFlag.WARNING_OCTET_PRESENT)
            + bool(flags & CgmMeasurementFlag.CAL_TEMP_OCTET_PRESENT)
            + bool(flags & CgmMeasurementFlag.STATUS_OCTET_PRESENT)
            + 2 * e2e_crc
        )
        if size != expected:
            raise reader.error(
                f"record size {size} does not match {expected} implied by flags "
                f"{int(flags):#04x}{' and E2E-CRC' if e2e_crc else ''}",
                offset=start,
            )
        glucose = reader.sfloat("glucose concentration")
        time_offset = reader.u16("time offset")
        status = (
            CgmStatusOctet(reader.u8("status octet"))
            if flags & CgmMeasurementFlag.STATUS_OCTET_PRESENT
            else None
        )
        cal_temp = (
            CgmCalTempOctet(reader.u8("cal/temp octet"))
            if flags & CgmMeasurementFlag.CAL_TEMP_OCTET_PRESENT
            else None
        )
        warning = (
            CgmWarningOctet(reader.u8("warning octet"))
            if flags & CgmMeasurementFlag.WARNING_OCTET_PRESENT
            else None
        )
        trend = reader.sfloat("trend") if flags & CgmMeasurementFlag.TREND_PRESENT else None
        quality = reader.sfloat("quality") if flags & CgmMeasurementFlag.QUALITY_PRESENT else None
        if e2e_crc:
            _check_crc(reader, start, "CGM Measurement record")
        records.append(
            CgmMeasurement(
                glucose_mg_dl=glucose,
                time_offset_min=time_offset,
                status_octet=status,
                cal_temp_octet=cal_temp,
                warning_octet=warning,
                trend_mg_dl_per_min=trend,
                quality_pct=quality,
            )
        )
    return records


def encode_measurement(measurement: CgmMeasurement, *, e2e_crc: bool) -> bytes:
    """Encode one CGM Measurement record (size byte first, E2E-CRC last when enabled)."""
    m = measurement
    flags = CgmMeasurementFlag(0)
    if m.trend_mg_dl_per_min is not None:
        flags |= CgmMeasurementFlag.TREND_PRESENT
    if m.quality_pct is not None:
        flags |= CgmMeasurementFlag.QUALITY_PRESENT
    if m.warning_octet is not None:
        flags |= CgmMeasurementFlag.WARNING_OCTET_PRESENT
    if m.cal_temp_octet is not None:
        flags |= CgmMeasurementFlag.CAL_TEMP_OCTET_PRESENT
    if m.status_octet is not None:
        flags |= CgmMeasurementFlag.STATUS_OCTET_PRESENT
    body = ByteWriter().u8(int(flags))
    body.sfloat(m.glucose_mg_dl, _MAX_DECIMALS).u16(m.time_offset_min, "time offset")
    for octet in (m.status_octet, m.cal_temp_octet, m.warning_octet):
        if octet is not None:
            body.u8(int(octet), "annunciation octet")
    if m.trend_mg_dl_per_min is not None:
        body.sfloat(m.trend_mg_dl_per_min, _MAX_DECIMALS)
    if m.quality_pct is not None:
        body.sfloat(m.quality_pct, _MAX_DECIMALS)
    size = 1 + len(body) + (2 if e2e_crc else 0)
    return _with_crc(bytes([size]) + body.getvalue(), e2e_crc)


def encode_measurements(measurements: list[CgmMeasurement], *, e2e_crc: bool) -> bytes:
    """Several records in one notification (keep within the ATT MTU yourself)."""
    return b"".join(encode_measurement(m, e2e_crc=e2e_crc) for m in measurements)


# --- CGM Feature (0x2AA8) ----------------------------------------------------------------------


class CgmFeatureFlag(enum.IntFlag):
    CALIBRATION = 1 << 0
    PATIENT_HIGH_LOW_ALERTS = 1 << 1
    HYPO_ALERTS = 1 << 2
    HYPER_ALERTS = 1 << 3
    RATE_OF_INCREASE_DECREASE_ALERTS = 1 << 4
    DEVICE_SPECIFIC_ALERT = 1 << 5
    SENSOR_MALFUNCTION_DETECTION = 1 << 6
    SENSOR_TEMPERATURE_HIGH_LOW_DETECTION = 1 << 7
    SENSOR_RESULT_HIGH_LOW_DETECTION = 1 << 8
    LOW_BATTERY_DETECTION = 1 << 9
    SENSOR_TYPE_ERROR_DETECTION = 1 << 10
    GENERAL_DEVICE_FAULT = 1 << 11
    E2E_CRC = 1 << 12
    MULTIPLE_BOND = 1 << 13
    MULTIPLE_SESSIONS = 1 << 14
    TREND_INFORMATION = 1 << 15
    QUALITY = 1 << 16


class CgmSampleLocation(OpenIntEnum):
    FINGER = 1
    ALTERNATE_SITE_TEST = 2
    EARLOBE = 3
    CONTROL_SOLUTION = 4
    SUBCUTANEOUS_TISSUE = 5
    NOT_AVAILABLE = 15


#: The E2E-CRC field of CGM Feature holds 0xFFFF when E2E-CRC is not supported.
_NO_CRC = 0xFFFF


@dataclass(frozen=True, slots=True)
class CgmFeature:
    """CGM Feature: feature bits u24, Type-Sample Location u8 (type in the low nibble), and
    an E2E-CRC u16 that is always sent (0xFFFF when E2E-CRC is not supported)."""

    features: CgmFeatureFlag
    sample_type: SampleType
    sample_location: CgmSampleLocation

    def __post_init__(self) -> None:
        if not 0 <= self.features <= 0xFFFFFF:
            raise ValueError("features do not fit in 24 bits")
        if not 0 <= self.sample_type <= 0x0F or not 0 <= self.sample_location <= 0x0F:
            raise ValueError("sample type and location are nibbles")

    @property
    def e2e_crc_supported(self) -> bool:
        return bool(self.features & CgmFeatureFlag.E2E_CRC)


def parse_feature(data: bytes) -> CgmFeature:
    """Decode CGM Feature (6 bytes).

    With the E2E-CRC bit set the CRC over the first 4 bytes is checked (:class:`CgmCrcError`);
    without it the field "shall be set to 0xFFFF" (CGMS, CGM Feature), and any other value
    raises ParseError: a feature value that contradicts itself is not trusted.
    """
    reader = ByteReader(data, PROFILE)
    features = CgmFeatureFlag(reader.u24("features"))
    type_location = reader.u8("type-sample location")
    if features & CgmFeatureFlag.E2E_CRC:
        _check_crc(reader, 0, "CGM Feature")
    else:
        crc_offset = reader.offset
        crc_field = reader.u16("E2E-CRC")
        if crc_field != _NO_CRC:
            raise reader.error(
                f"E2E-CRC not supported, so the CRC field must be 0xFFFF, got {crc_field:#06x}",
                offset=crc_offset,
            )
    reader.expect_end()
    return CgmFeature(
        features=features,
        sample_type=SampleType(type_location & 0x0F),
        sample_location=CgmSampleLocation(type_location >> 4),
    )


def encode_feature(feature: CgmFeature) -> bytes:
    body = (
        ByteWriter()
        .u24(int(feature.features), "features")
        .u8(int(feature.sample_type) | int(feature.sample_location) << 4)
        .getvalue()
    )
    if feature.e2e_crc_supported:
        return _with_crc(body, True)
    return body + _NO_CRC.to_bytes(2, "little")


# --- CGM Status (0x2AA9) -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CgmStatus:
    """CGM Status: time offset u16 (minutes), 24-bit annunciation, [E2E-CRC]."""

    time_offset_min: int
    status: CgmSensorStatus

    def __post_init__(self) -> None:
        if not 0 <= self.time_offset_min <= 0xFFFF:
            raise ValueError(f"time_offset_min {self.time_offset_min} does not fit in u16")
        if not 0 <= self.status <= 0xFFFFFF:
            raise ValueError("status does not fit in 24 bits")


def parse_status(data: bytes, *, e2e_crc: bool) -> CgmStatus:
    reader = ByteReader(data, PROFILE)
    time_offset = reader.u16("time offset")
    status = CgmSensorStatus(reader.u24("status"))
    if e2e_crc:
        _check_crc(reader, 0, "CGM Status")
    reader.expect_end()
    return CgmStatus(time_offset_min=time_offset, status=status)


def encode_status(status: CgmStatus, *, e2e_crc: bool) -> bytes:
    body = ByteWriter().u16(status.time_offset_min).u24(int(status.status)).getvalue()
    return _with_crc(body, e2e_crc)


# --- CGM Session Start Time (0x2AAA) -----------------------------------------------------------

#: Time Zone -128 means "offset not known" (GSS "Time Zone": -48..+56 in 15-minute steps).
TIME_ZONE_UNKNOWN = -128


class DstOffset(OpenIntEnum):
    """GSS "DST Offset" (u8)."""

    STANDARD_TIME = 0
    HALF_HOUR_DAYLIGHT = 2  # +0.5 h
    DAYLIGHT = 4  # +1 h
    DOUBLE_DAYLIGHT = 8  # +2 h
    UNKNOWN = 255


@dataclass(frozen=True, slots=True)
class CgmSessionStartTime:
    """Session start (naive local Date Time, None when "not known"), the time zone in
    15-minute units (-128 = unknown) and the DST offset."""

    start: datetime | None
    time_zone_15min: int
    dst_offset: DstOffset

    def __post_init__(self) -> None:
        if self.start is not None and self.start.tzinfo is not None:
            raise ValueError("start is device-local time: pass a naive datetime")
        if not -128 <= self.time_zone_15min <= 127:
            raise ValueError(f"time_zone_15min {self.time_zone_15min} does not fit in s8")
        if not 0 <= self.dst_offset <= 0xFF:
            raise ValueError("dst_offset does not fit in u8")

    @property
    def utc_offset(self) -> timedelta | None:
        """Time zone plus DST; None when either is unknown or reserved."""
        if not -48 <= self.time_zone_15min <= 56:
            return None
        if self.dst_offset not in (0, 2, 4, 8):
            return None
        return timedelta(minutes=15 * (self.time_zone_15min + int(self.dst_offset)))

    @property
    def start_utc(self) -> datetime | None:
        """The session start as aware UTC, when the start and the offset are known."""
        offset = self.utc_offset
        if self.start is None or offset is None:
            return None
        return (self.start - offset).replace(tzinfo=UTC)


def parse_session_start_time(data: bytes, *, e2e_crc: bool) -> CgmSessionStartTime:
    reader = ByteReader(data, PROFILE)
    start = reader.date_time("session start time")
    time_zone = reader.s8("time zone")
    dst = DstOffset(reader.u8("DST offset"))
    if e2e_crc:
        _check_crc(reader, 0, "CGM Session Start Time")
    reader.expect_end()
    return CgmSessionStartTime(start=start, time_zone_15min=time_zone, dst_offset=dst)


def encode_session_start_time(value: CgmSessionStartTime, *, e2e_crc: bool) -> bytes:
    body = (
        ByteWriter()
        .date_time(value.start)
        .s8(value.time_zone_15min, "time zone")
        .u8(int(value.dst_offset), "DST offset")
        .getvalue()
    )
    return _with_crc(body, e2e_crc)


# --- CGM Session Run Time (0x2AAB) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CgmSessionRunTime:
    """Expected run time of the session in hours (u16), [E2E-CRC]."""

    run_time_h: int

    def __post_init__(self) -> None:
        if not 0 <= self.run_time_h <= 0xFFFF:
            raise ValueError(f"run_time_h {self.run_time_h} does not fit in u16")


def parse_session_run_time(data: bytes, *, e2e_crc: bool) -> CgmSessionRunTime:
    reader = ByteReader(data, PROFILE)
    hours = reader.u16("session run time")
    if e2e_crc:
        _check_crc(reader, 0, "CGM Session Run Time")
    reader.expect_end()
    return CgmSessionRunTime(run_time_h=hours)


def encode_session_run_time(value: CgmSessionRunTime, *, e2e_crc: bool) -> bytes:
    return _with_crc(ByteWriter().u16(value.run_time_h, "run time").getvalue(), e2e_crc)


# --- CGM Specific Ops Control Point (0x2AAC) ---------------------------------------------------


class SocpOpcode(OpenIntEnum):
    SET_COMMUNICATION_INTERVAL = 0x01
    GET_COMMUNICATION_INTERVAL = 0x02
    COMMUNICATION_INTERVAL_RESPONSE = 0x03
    SET_GLUCOSE_CALIBRATION_VALUE = 0x04
    GET_GLUCOSE_CALIBRATION_VALUE = 0x05
    GLUCOSE_CALIBRATION_VALUE_RESPONSE = 0x06
    SET_PATIENT_HIGH_ALERT_LEVEL = 0x07
    GET_PATIENT_HIGH_ALERT_LEVEL = 0x08
    PATIENT_HIGH_ALERT_LEVEL_RESPONSE = 0x09
    SET_PATIENT_LOW_ALERT_LEVEL = 0x0A
    GET_PATIENT_LOW_ALERT_LEVEL = 0x0B
    PATIENT_LOW_ALERT_LEVEL_RESPONSE = 0x0C
    SET_HYPO_ALERT_LEVEL = 0x0D
    GET_HYPO_ALERT_LEVEL = 0x0E
    HYPO_ALERT_LEVEL_RESPONSE = 0x0F
    SET_HYPER_ALERT_LEVEL = 0x10
    GET_HYPER_ALERT_LEVEL = 0x11
    HYPER_ALERT_LEVEL_RESPONSE = 0x12
    SET_RATE_OF_DECREASE_ALERT_LEVEL = 0x13
    GET_RATE_OF_DECREASE_ALERT_LEVEL = 0x14
    RATE_OF_DECREASE_ALERT_LEVEL_RESPONSE = 0x15
    SET_RATE_OF_INCREASE_ALERT_LEVEL = 0x16
    GET_RATE_OF_INCREASE_ALERT_LEVEL = 0x17
    RATE_OF_INCREASE_ALERT_LEVEL_RESPONSE = 0x18
    RESET_DEVICE_SPECIFIC_ALERT = 0x19
    START_SESSION = 0x1A
    STOP_SESSION = 0x1B
    RESPONSE_CODE = 0x1C


class SocpResponseCode(OpenIntEnum):
    SUCCESS = 0x01
    OPCODE_NOT_SUPPORTED = 0x02
    INVALID_OPERAND = 0x03
    PROCEDURE_NOT_COMPLETED = 0x04
    PARAMETER_OUT_OF_RANGE = 0x05


#: Communication interval 0 disables periodic notifications; 0xFF asks for the fastest.
COMMUNICATION_INTERVAL_DISABLED = 0x00
COMMUNICATION_INTERVAL_FASTEST = 0xFF

#: Get Glucose Calibration Value with record number 0xFFFF asks for the last stored record.
LAST_CALIBRATION_RECORD = 0xFFFF


class CalibrationStatus(enum.IntFlag):
    REJECTED = 1 << 0
    OUT_OF_RANGE = 1 << 1
    PROCESS_PENDING = 1 << 2


@dataclass(frozen=True, slots=True)
class CalibrationRecord:
    """Glucose calibration (10 bytes): concentration SFLOAT mg/dL, calibration time u16 min,
    Type-Sample Location u8, next calibration time u16 min, record number u16, status u8."""

    glucose_mg_dl: float
    calibration_time_min: int
    sample_type: SampleType
    sample_location: CgmSampleLocation
    next_calibration_time_min: int
    record_number: int
    status: CalibrationStatus

    def __post_init__(self) -> None:
        for name, value, high in (
            ("calibration_time_min", self.calibration_time_min, 0xFFFF),
            ("next_calibration_time_min", self.next_calibration_time_min, 0xFFFF),
            ("record_number", self.record_number, 0xFFFF),
            ("status", self.status, 0xFF),
            ("sample_type", self.sample_type, 0x0F),
            ("sample_location", self.sample_location, 0x0F),
        ):
            if not 0 <= value <= high:
                raise ValueError(f"{name} {value} out of range 0..{high}")


def _read_calibration(reader: ByteReader) -> CalibrationRecord:
    glucose = reader.sfloat("calibration glucose")
    time_min = reader.u16("calibration time")
    type_location = reader.u8("calibration type-sample location")
    next_min = reader.u16("next calibration time")
    number = reader.u16("calibration record number")
    status = CalibrationStatus(reader.u8("calibration status"))
    return CalibrationRecord(
        glucose_mg_dl=glucose,
        calibration_time_min=time_min,
        sample_type=SampleType(type_location & 0x0F),
        sample_location=CgmSampleLocation(type_location >> 4),
        next_calibration_time_min=next_min,
        record_number=number,
        status=status,
    )


def _write_calibration(writer: ByteWriter, record: CalibrationRecord) -> None:
    writer.sfloat(record.glucose_mg_dl, _MAX_DECIMALS)
    writer.u16(record.calibration_time_min)
    writer.u8(int(record.sample_type) | int(record.sample_location) << 4)
    writer.u16(record.next_calibration_time_min)
    writer.u16(record.record_number)
    writer.u8(int(record.status))


class _Operand(enum.Enum):
    NONE = enum.auto()
    INTERVAL = enum.auto()  # u8 minutes
    CALIBRATION = enum.auto()  # 10-byte record
    RECORD_NUMBER = enum.auto()  # u16
    LEVEL = enum.auto()  # SFLOAT mg/dL
    RATE = enum.auto()  # SFLOAT (mg/dL)/min
    RESPONSE = enum.auto()  # request opcode u8 + response code u8


_O = SocpOpcode
_OPERANDS: dict[SocpOpcode, _Operand] = {
    _O.SET_COMMUNICATION_INTERVAL: _Operand.INTERVAL,
    _O.GET_COMMUNICATION_INTERVAL: _Operand.NONE,
    _O.COMMUNICATION_INTERVAL_RESPONSE: _Operand.INTERVAL,
    _O.SET_GLUCOSE_CALIBRATION_VALUE: _Operand.CALIBRATION,
    _O.GET_GLUCOSE_CALIBRATION_VALUE: _Operand.RECORD_NUMBER,
    _O.GLUCOSE_CALIBRATION_VALUE_RESPONSE: _Operand.CALIBRATION,
    _O.SET_PATIENT_HIGH_ALERT_LEVEL: _Operand.LEVEL,
    _O.GET_PATIENT_HIGH_ALERT_LEVEL: _Operand.NONE,
    _O.PATIENT_HIGH_ALERT_LEVEL_RESPONSE: _Operand.LEVEL,
    _O.SET_PATIENT_LOW_ALERT_LEVEL: _Operand.LEVEL,
    _O.GET_PATIENT_LOW_ALERT_LEVEL: _Operand.NONE,
    _O.PATIENT_LOW_ALERT_LEVEL_RESPONSE: _Operand.LEVEL,
    _O.SET_HYPO_ALERT_LEVEL: _Operand.LEVEL,
    _O.GET_HYPO_ALERT_LEVEL: _Operand.NONE,
    _O.HYPO_ALERT_LEVEL_RESPONSE: _Operand.LEVEL,
    _O.SET_HYPER_ALERT_LEVEL: _Operand.LEVEL,
    _O.GET_HYPER_ALERT_LEVEL: _Operand.NONE,
    _O.HYPER_ALERT_LEVEL_RESPONSE: _Operand.LEVEL,
    _O.SET_RATE_OF_DECREASE_ALERT_LEVEL: _Operand.RATE,
    _O.GET_RATE_OF_DECREASE_ALERT_LEVEL: _Operand.NONE,
    _O.RATE_OF_DECREASE_ALERT_LEVEL_RESPONSE: _Operand.RATE,
    _O.SET_RATE_OF_INCREASE_ALERT_LEVEL: _Operand.RATE,
    _O.GET_RATE_OF_INCREASE_ALERT_LEVEL: _Operand.NONE,
    _O.RATE_OF_INCREASE_ALERT_LEVEL_RESPONSE: _Operand.RATE,
    _O.RESET_DEVICE_SPECIFIC_ALERT: _Operand.NONE,
    _O.START_SESSION: _Operand.NONE,
    _O.STOP_SESSION: _Operand.NONE,
    _O.RESPONSE_CODE: _Operand.RESPONSE,
}
_RESPONSE_OPCODES = frozenset(
    {
        _O.COMMUNICATION_INTERVAL_RESPONSE,
        _O.GLUCOSE_CALIBRATION_VALUE_RESPONSE,
        _O.PATIENT_HIGH_ALERT_LEVEL_RESPONSE,
        _O.PATIENT_LOW_ALERT_LEVEL_RESPONSE,
        _O.HYPO_ALERT_LEVEL_RESPONSE,
        _O.HYPER_ALERT_LEVEL_RESPONSE,
        _O.RATE_OF_DECREASE_ALERT_LEVEL_RESPONSE,
        _O.RATE_OF_INCREASE_ALERT_LEVEL_RESPONSE,
        _O.RESPONSE_CODE,
    }
)


@dataclass(frozen=True, slots=True)
class SocpMessage:
    """A Specific Ops Control Point request or response: the opcode and its one operand.

    Exactly the field the opcode calls for is set: ``communication_interval_min`` (set / response),
    ``calibration`` (set / response), ``record_number`` (get calibration), ``level_mg_dl``
    (patient high / low, hypo, hyper levels), ``rate_mg_dl_per_min`` (rate alerts), or
    ``request_opcode`` + ``response_code`` (Response Code 0x1C).
    """

    opcode: SocpOpcode
    communication_interval_min: int | None = None
    calibration: CalibrationRecord | None = None
    record_number: int | None = None
    level_mg_dl: float | None = None
    rate_mg_dl_per_min: float | None = None
    request_opcode: SocpOpcode | None = None
    response_code: SocpResponseCode | None = None

    def __post_init__(self) -> None:
        kind = _OPERANDS.get(self.opcode)
        if kind is None:
            raise ValueError(f"unknown SOCP opcode {self.opcode!r}")
        wanted = {
            _Operand.NONE: (),
            _Operand.INTERVAL: ("communication_interval_min",),
            _Operand.CALIBRATION: ("calibration",),
            _Operand.RECORD_NUMBER: ("record_number",),
            _Operand.LEVEL: ("level_mg_dl",),
            _Operand.RATE: ("rate_mg_dl_per_min",),
            _Operand.RESPONSE: ("request_opcode", "response_code"),
        }[kind]
        for name in (
            "communication_interval_min",
            "calibration",
            "record_number",
            "level_mg_dl",
            "rate_mg_dl_per_min",
            "request_opcode",
            "response_code",
        ):
            present = getattr(self, name) is not None
            if present != (name in wanted):
                state = "needs" if name in wanted else "takes no"
                raise ValueError(f"{self.opcode.name} {state} {name}")
        for name, value, high in (
            ("communication_interval_min", self.communication_interval_min, 0xFF),
            ("record_number", self.record_number, 0xFFFF),
            ("request_opcode", self.request_opcode, 0xFF),
            ("response_code", self.response_code, 0xFF),
        ):
            if value is not None and not 0 <= value <= high:
                raise ValueError(f"{name} {value} out of range 0..{high}")

    @property
    def is_response(self) -> bool:
        return self.opcode in _RESPONSE_OPCODES

    @classmethod
    def response_to(cls, request_opcode: int, code: SocpResponseCode) -> SocpMessage:
        return cls(
            SocpOpcode.RESPONSE_CODE,
            request_opcode=SocpOpcode(request_opcode),
            response_code=code,
        )


class SocpRequestError(ParseError):
    """A SOCP write a device must refuse, with the Response Code to indicate back."""

    def __init__(
        self,
        message: str,
        *,
        request_opcode: int,
        response_code: SocpResponseCode,
        offset: int,
        payload: bytes,
    ) -> None:
        super().__init__(PROFILE, message, offset=offset, payload=payload)
        self.request_opcode = request_opcode
        self.response_code = response_code

    def response(self) -> SocpMessage:
        return SocpMessage.response_to(self.request_opcode, self.response_code)


def encode_socp(message: SocpMessage, *, e2e_crc: bool) -> bytes:
    writer = ByteWriter().u8(int(message.opcode))
    if message.communication_interval_min is not None:
        writer.u8(message.communication_interval_min, "communication interval")
    if message.calibration is not None:
        _write_calibration(writer, message.calibration)
    if message.record_number is not None:
        writer.u16(message.record_number, "calibration record number")
    if message.level_mg_dl is not None:
        writer.sfloat(message.level_mg_dl, _MAX_DECIMALS)
    if message.rate_mg_dl_per_min is not None:
        writer.sfloat(message.rate_mg_dl_per_min, _MAX_DECIMALS)
    if message.request_opcode is not None and message.response_code is not None:
        writer.u8(int(message.request_opcode)).u8(int(message.response_code))
    return _with_crc(writer.getvalue(), e2e_crc)


_OPERAND_SIZES = {
    _Operand.NONE: 0,
    _Operand.INTERVAL: 1,
    _Operand.CALIBRATION: 10,
    _Operand.RECORD_NUMBER: 2,
    _Operand.LEVEL: 2,
    _Operand.RATE: 2,
    _Operand.RESPONSE: 2,
}


def _parse_socp(data: bytes, *, e2e_crc: bool, responses: bool) -> SocpMessage:
    payload = bytes(data)
    reader = ByteReader(payload, PROFILE)
    if not payload:
        raise reader.error("empty SOCP value")
    opcode = SocpOpcode(payload[0])
    body_end = len(payload) - (2 if e2e_crc else 0)

    def refuse(message: str, code: SocpResponseCode) -> ParseError:
        if responses:
            return reader.error(message)
        return SocpRequestError(
            message,
            request_opcode=int(opcode),
            response_code=code,
            offset=reader.offset,
            payload=payload,
        )

    if e2e_crc:
        if len(payload) < 3:
            raise CgmCrcError(
                "SOCP value: missing E2E-CRC",
                att_error=ATT_ERROR_MISSING_CRC,
                offset=len(payload),
                payload=payload,
            )
        crc_reader = ByteReader(payload, PROFILE)
        crc_reader.bytes_(body_end)
        _check_crc(crc_reader, 0, "SOCP value")
    reader.u8("opcode")
    kind = _OPERANDS.get(opcode)
    if kind is None or (opcode in _RESPONSE_OPCODES) != responses:
        direction = "response" if responses else "request"
        raise refuse(f"{opcode!r} is not a SOCP {direction}", SocpResponseCode.OPCODE_NOT_SUPPORTED)
    size = _OPERAND_SIZES[kind]
    if body_end - reader.offset != size:
        raise refuse(
            f"{opcode.name} needs a {size}-byte operand, got {body_end - reader.offset}",
            SocpResponseCode.INVALID_OPERAND,
        )
    fields: dict[str, object] = {}
    if kind is _Operand.INTERVAL:
        fields["communication_interval_min"] = reader.u8("communication interval")
    elif kind is _Operand.CALIBRATION:
        fields["calibration"] = _read_calibration(reader)
    elif kind is _Operand.RECORD_NUMBER:
        fields["record_number"] = reader.u16("calibration record number")
    elif kind is _Operand.LEVEL:
        fields["level_mg_dl"] = reader.sfloat("alert level")
    elif kind is _Operand.RATE:
        fields["rate_mg_dl_per_min"] = reader.sfloat("rate alert level")
    elif kind is _Operand.RESPONSE:
        fields["request_opcode"] = SocpOpcode(reader.u8("request opcode"))
        fields["response_code"] = SocpResponseCode(reader.u8("response code"))
    return SocpMessage(opcode, **fields)  # type: ignore[arg-type]


def parse_socp_request(data: bytes, *, e2e_crc: bool) -> SocpMessage:
    """Decode a SOCP write as a device does.

    Raises :class:`SocpRequestError` with the Response Code to indicate (opcode not supported,
    invalid operand) or :class:`CgmCrcError` (answer with its ``att_error``).
    """
    return _parse_socp(data, e2e_crc=e2e_crc, responses=False)


def parse_socp_response(data: bytes, *, e2e_crc: bool) -> SocpMessage:
    """Decode a SOCP indication (a response opcode); ParseError otherwise."""
    return _parse_socp(data, e2e_crc=e2e_crc, responses=True)
