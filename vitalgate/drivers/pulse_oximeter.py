"""Pulse Oximeter Service (PLXS, 0x1822): spot-check, continuous measurement and features.

References:

* Bluetooth Pulse Oximeter Service (PLXS) v1.0.1, section 3.1 (PLX Spot-check Measurement),
  3.2 (PLX Continuous Measurement), 3.3 (PLX Features).
* GATT Specification Supplement (GSS), "PLX Spot-Check Measurement" (0x2A5E), "PLX Continuous
  Measurement" (0x2A5F), "PLX Features" (0x2A60); SFLOAT = IEEE 11073-20601 "medfloat16".

PLX Spot-check Measurement (little-endian)::

    flags u8   b0 Timestamp present, b1 Measurement Status present,
               b2 Device and Sensor Status present, b3 Pulse Amplitude Index present,
               b4 Device Clock is Not Set, b5-7 reserved
    SpO2PR-Spot-Check: SpO2 SFLOAT (%), PR SFLOAT (bpm)
    [Timestamp: Date Time, 7 B] [Measurement Status u16] [Device and Sensor Status u24]
    [Pulse Amplitude Index SFLOAT (%)]

PLX Continuous Measurement::

    flags u8   b0 SpO2PR-Fast present, b1 SpO2PR-Slow present, b2 Measurement Status present,
               b3 Device and Sensor Status present, b4 Pulse Amplitude Index present,
               b5-7 reserved
    SpO2PR-Normal: SpO2 SFLOAT, PR SFLOAT
    [SpO2PR-Fast: SpO2, PR] [SpO2PR-Slow: SpO2, PR] [Measurement Status u16]
    [Device and Sensor Status u24] [Pulse Amplitude Index SFLOAT]

PLX Features::

    Supported Features u16  b0 Measurement Status support field present,
                            b1 Device and Sensor Status support field present,
                            b2 spot-check measurement storage, b3 spot-check timestamp,
                            b4 SpO2PR-Fast, b5 SpO2PR-Slow, b6 Pulse Amplitude Index,
                            b7 multiple bonds, b8-15 reserved
    [Measurement Status Support u16] [Device and Sensor Status Support u24]

An SFLOAT of NaN/NRes decodes to ``nan`` (for instance SpO2 while "measurement unavailable").
The Pulse Amplitude Index is exposed as ``perfusion_index_pct``, the name clinicians use.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from vitalgate.drivers import ieee11073, uuids
from vitalgate.drivers._bytes import ByteReader, ByteWriter

__all__ = [
    "PLX_CONTINUOUS_MEASUREMENT_UUID",
    "PLX_FEATURES_UUID",
    "PLX_SPOT_CHECK_MEASUREMENT_UUID",
    "PROFILE",
    "PULSE_OXIMETER_SERVICE_UUID",
    "ContinuousFlag",
    "ContinuousMeasurement",
    "PlxDeviceAndSensorStatus",
    "PlxFeatures",
    "PlxMeasurementStatus",
    "PlxSupportedFeatures",
    "SpotCheckFlag",
    "SpotCheckMeasurement",
    "encode_continuous_measurement",
    "encode_features",
    "encode_spot_check_measurement",
    "parse_continuous_measurement",
    "parse_features",
    "parse_spot_check_measurement",
]

PROFILE = "pulse_oximeter"

PULSE_OXIMETER_SERVICE_UUID = uuids.PULSE_OXIMETER_SERVICE
PLX_SPOT_CHECK_MEASUREMENT_UUID = uuids.PLX_SPOT_CHECK_MEASUREMENT
PLX_CONTINUOUS_MEASUREMENT_UUID = uuids.PLX_CONTINUOUS_MEASUREMENT
PLX_FEATURES_UUID = uuids.PLX_FEATURES

_SFLOAT_MAX_DECIMALS = 8


class SpotCheckFlag(enum.IntFlag):
    """Flags octet of the PLX Spot-check Measurement (PLXS 3.1; GSS Flags field)."""

    TIMESTAMP_PRESENT = 1 << 0
    MEASUREMENT_STATUS_PRESENT = 1 << 1
    DEVICE_AND_SENSOR_STATUS_PRESENT = 1 << 2
    PULSE_AMPLITUDE_INDEX_PRESENT = 1 << 3
    DEVICE_CLOCK_NOT_SET = 1 << 4


class ContinuousFlag(enum.IntFlag):
    """Flags octet of the PLX Continuous Measurement (PLXS 3.2; GSS Flags field)."""

    SPO2PR_FAST_PRESENT = 1 << 0
    SPO2PR_SLOW_PRESENT = 1 << 1
    MEASUREMENT_STATUS_PRESENT = 1 << 2
    DEVICE_AND_SENSOR_STATUS_PRESENT = 1 << 3
    PULSE_AMPLITUDE_INDEX_PRESENT = 1 << 4


class PlxMeasurementStatus(enum.IntFlag):
    """Measurement Status field, u16 (GSS PLX Spot-Check Measurement); bits 0-4 are reserved."""

    MEASUREMENT_ONGOING = 1 << 5
    EARLY_ESTIMATED_DATA = 1 << 6
    VALIDATED_DATA = 1 << 7
    FULLY_QUALIFIED_DATA = 1 << 8
    DATA_FROM_MEASUREMENT_STORAGE = 1 << 9
    DATA_FOR_DEMONSTRATION = 1 << 10
    DATA_FOR_TESTING = 1 << 11
    CALIBRATION_ONGOING = 1 << 12
    MEASUREMENT_UNAVAILABLE = 1 << 13
    QUESTIONABLE_MEASUREMENT_DETECTED = 1 << 14
    INVALID_MEASUREMENT_DETECTED = 1 << 15


class PlxDeviceAndSensorStatus(enum.IntFlag):
    """Device and Sensor Status field, u24 (GSS PLX Spot-Check Measurement); bits 16-23 reserved."""

    EXTENDED_DISPLAY_UPDATE_ONGOING = 1 << 0
    EQUIPMENT_MALFUNCTION_DETECTED = 1 << 1
    SIGNAL_PROCESSING_IRREGULARITY_DETECTED = 1 << 2
    INADEQUATE_SIGNAL_DETECTED = 1 << 3
    POOR_SIGNAL_DETECTED = 1 << 4
    LOW_PERFUSION_DETECTED = 1 << 5
    ERRATIC_SIGNAL_DETECTED = 1 << 6
    NONPULSATILE_SIGNAL_DETECTED = 1 << 7
    QUESTIONABLE_PULSE_DETECTED = 1 << 8
    SIGNAL_ANALYSIS_ONGOING = 1 << 9
    SENSOR_INTERFERENCE_DETECTED = 1 << 10
    SENSOR_UNCONNECTED_TO_USER = 1 << 11
    UNKNOWN_SENSOR_CONNECTED = 1 << 12
    SENSOR_DISPLACED = 1 << 13
    SENSOR_MALFUNCTIONING = 1 << 14
    SENSOR_DISCONNECTED = 1 << 15


class PlxSupportedFeatures(enum.IntFlag):
    """Supported Features field of PLX Features, u16 (GSS PLX Features); bits 8-15 reserved."""

    MEASUREMENT_STATUS_SUPPORT_PRESENT = 1 << 0
    DEVICE_AND_SENSOR_STATUS_SUPPORT_PRESENT = 1 << 1
    SPOT_CHECK_MEASUREMENT_STORAGE = 1 << 2
    SPOT_CHECK_TIMESTAMP = 1 << 3
    SPO2PR_FAST = 1 << 4
    SPO2PR_SLOW = 1 << 5
    PULSE_AMPLITUDE_INDEX = 1 << 6
    MULTIPLE_BONDS = 1 << 7


def _check_sfloat(name: str, value: float | None) -> None:
    if value is None:
        return
    try:
        ieee11073.best_sfloat(value, _SFLOAT_MAX_DECIMALS)
    except ValueError as exc:
        raise ValueError(f"{name} {value!r} cannot be sent as an SFLOAT: {exc}") from exc


def _check_bits(name: str, value: int | None, bits: int) -> None:
    if value is not None and not 0 <= int(value) < 1 << bits:
        raise ValueError(f"{name} {int(value):#x} does not fit in {bits} bits")


@dataclass(frozen=True, slots=True)
class SpotCheckMeasurement:
    """One PLX Spot-check Measurement (0x2A5E, indicated).

    ``timestamp`` is the device-local time as sent (naive), None when absent or "not known";
    ``device_clock_not_set`` says the device admits its clock was never set, so the timestamp
    is relative to an arbitrary epoch and must be corrected before use.
    """

    spo2_pct: float
    pulse_rate_bpm: float
    timestamp: datetime | None = None
    measurement_status: PlxMeasurementStatus | None = None
    device_and_sensor_status: PlxDeviceAndSensorStatus | None = None
    perfusion_index_pct: float | None = None
    device_clock_not_set: bool = False

    def __post_init__(self) -> None:
        _check_sfloat("spo2_pct", self.spo2_pct)
        _check_sfloat("pulse_rate_bpm", self.pulse_rate_bpm)
        _check_sfloat("perfusion_index_pct", self.perfusion_index_pct)
        _check_bits("measurement_status", self.measurement_status, 16)
        _check_bits("device_and_sensor_status", self.device_and_sensor_status, 24)
        if self.timestamp is not None and self.timestamp.tzinfo is not None:
            raise ValueError("timestamp is device-local time as sent: pass a naive datetime")


@dataclass(frozen=True, slots=True)
class ContinuousMeasurement:
    """One PLX Continuous Measurement (0x2A5F, notified).

    The SpO2PR-Normal pair is always present; the fast- and slow-responding pairs come as
    pairs (both None or both set).
    """

    spo2_pct: float
    pulse_rate_bpm: float
    spo2_fast_pct: float | None = None
    pulse_rate_fast_bpm: float | None = None
    spo2_slow_pct: float | None = None
    pulse_rate_slow_bpm: float | None = None
    measurement_status: PlxMeasurementStatus | None = None
    device_and_sensor_status: PlxDeviceAndSensorStatus | None = None
    perfusion_index_pct: float | None = None

    def __post_init__(self) -> None:
        for name in (
            "spo2_pct",
            "pulse_rate_bpm",
            "spo2_fast_pct",
            "pulse_rate_fast_bpm",
            "spo2_slow_pct",
            "pulse_rate_slow_bpm",
            "perfusion_index_pct",
        ):
            _check_sfloat(name, getattr(self, name))
        if (self.spo2_fast_pct is None) != (self.pulse_rate_fast_bpm is None):
            raise ValueError("spo2_fast_pct and pulse_rate_fast_bpm come as a pair")
        if (self.spo2_slow_pct is None) != (self.pulse_rate_slow_bpm is None):
            raise ValueError("spo2_slow_pct and pulse_rate_slow_bpm come as a pair")
        _check_bits("measurement_status", self.measurement_status, 16)
        _check_bits("device_and_sensor_status", self.device_and_sensor_status, 24)


@dataclass(frozen=True, slots=True)
class PlxFeatures:
    """PLX Features (0x2A60, read).

    The two "support present" bits of ``supported`` must agree with the presence of the
    matching support field.
    """

    supported: PlxSupportedFeatures
    measurement_status_support: PlxMeasurementStatus | None = None
    device_and_sensor_status_support: PlxDeviceAndSensorStatus | None = None

    def __post_init__(self) -> None:
        _check_bits("supported", self.supported, 16)
        _check_bits("measurement_status_support", self.measurement_status_support, 16)
        _check_bits("device_and_sensor_status_support", self.device_and_sensor_status_support, 24)
        has_ms = bool(self.supported & PlxSupportedFeatures.MEASUREMENT_STATUS_SUPPORT_PRESENT)
        if has_ms != (self.measurement_status_support is not None):
            raise ValueError(
                "MEASUREMENT_STATUS_SUPPORT_PRESENT must be set exactly when "
                "measurement_status_support is given"
            )
        has_dss = bool(
            self.supported & PlxSupportedFeatures.DEVICE_AND_SENSOR_STATUS_SUPPORT_PRESENT
        )
        if has_dss != (self.device_and_sensor_status_support is not None):
            raise ValueError(
                "DEVICE_AND_SENSOR_STATUS_SUPPORT_PRESENT must be set exactly when "
                "device_and_sensor_status_support is given"
            )


def _write_sfloat(writer: ByteWriter, value: float) -> None:
    writer.u16(ieee11073.best_sfloat(value, _SFLOAT_MAX_DECIMALS), "SFLOAT")


def parse_spot_check_measurement(data: bytes) -> SpotCheckMeasurement:
    """Decode a PLX Spot-check Measurement (0x2A5E); raises ParseError on malformed input."""
    reader = ByteReader(data, PROFILE)
    flags = SpotCheckFlag(reader.u8("flags"))
    spo2_pct = reader.sfloat("SpO2")
    pulse_rate_bpm = reader.sfloat("pulse rate")
    timestamp = None
    if flags & SpotCheckFlag.TIMESTAMP_PRESENT:
        timestamp = reader.date_time("timestamp")
    measurement_status = None
    if flags & SpotCheckFlag.MEASUREMENT_STATUS_PRESENT:
        measurement_status = PlxMeasurementStatus(reader.u16("measurement status"))
    device_and_sensor_status = None
    if flags & SpotCheckFlag.DEVICE_AND_SENSOR_STATUS_PRESENT:
        device_and_sensor_status = PlxDeviceAndSensorStatus(reader.u24("device/sensor status"))
    perfusion_index_pct = None
    if flags & SpotCheckFlag.PULSE_AMPLITUDE_INDEX_PRESENT:
        perfusion_index_pct = reader.sfloat("pulse amplitude index")
    reader.expect_end()
    return SpotCheckMeasurement(
        spo2_pct=spo2_pct,
        pulse_rate_bpm=pulse_rate_bpm,
        timestamp=timestamp,
        measurement_status=measurement_status,
        device_and_sensor_status=device_and_sensor_status,
        perfusion_index_pct=perfusion_index_pct,
        device_clock_not_set=bool(flags & SpotCheckFlag.DEVICE_CLOCK_NOT_SET),
    )


def encode_spot_check_measurement(measurement: SpotCheckMeasurement) -> bytes:
    """Encode a PLX Spot-check Measurement; SFLOAT exponents are the shortest exact ones."""
    flags = SpotCheckFlag(0)
    body = ByteWriter()
    _write_sfloat(body, measurement.spo2_pct)
    _write_sfloat(body, measurement.pulse_rate_bpm)
    if measurement.timestamp is not None:
        flags |= SpotCheckFlag.TIMESTAMP_PRESENT
        body.date_time(measurement.timestamp)
    if measurement.measurement_status is not None:
        flags |= SpotCheckFlag.MEASUREMENT_STATUS_PRESENT
        body.u16(int(measurement.measurement_status), "measurement status")
    if measurement.device_and_sensor_status is not None:
        flags |= SpotCheckFlag.DEVICE_AND_SENSOR_STATUS_PRESENT
        body.u24(int(measurement.device_and_sensor_status), "device/sensor status")
    if measurement.perfusion_index_pct is not None:
        flags |= SpotCheckFlag.PULSE_AMPLITUDE_INDEX_PRESENT
        _write_sfloat(body, measurement.perfusion_index_pct)
    if measurement.device_clock_not_set:
        flags |= SpotCheckFlag.DEVICE_CLOCK_NOT_SET
    return bytes((int(flags),)) + body.getvalue()


def parse_continuous_measurement(data: bytes) -> ContinuousMeasurement:
    """Decode a PLX Continuous Measurement (0x2A5F); raises ParseError on malformed input."""
    reader = ByteReader(data, PROFILE)
    flags = ContinuousFlag(reader.u8("flags"))
    spo2_pct = reader.sfloat("SpO2")
    pulse_rate_bpm = reader.sfloat("pulse rate")
    spo2_fast_pct = pulse_rate_fast_bpm = spo2_slow_pct = pulse_rate_slow_bpm = None
    if flags & ContinuousFlag.SPO2PR_FAST_PRESENT:
        spo2_fast_pct = reader.sfloat("SpO2 fast")
        pulse_rate_fast_bpm = reader.sfloat("pulse rate fast")
    if flags & ContinuousFlag.SPO2PR_SLOW_PRESENT:
        spo2_slow_pct = reader.sfloat("SpO2 slow")
        pulse_rate_slow_bpm = reader.sfloat("pulse rate slow")
    measurement_status = None
    if flags & ContinuousFlag.MEASUREMENT_STATUS_PRESENT:
        measurement_status = PlxMeasurementStatus(reader.u16("measurement status"))
    device_and_sensor_status = None
    if flags & ContinuousFlag.DEVICE_AND_SENSOR_STATUS_PRESENT:
        device_and_sensor_status = PlxDeviceAndSensorStatus(reader.u24("device/sensor status"))
    perfusion_index_pct = None
    if flags & ContinuousFlag.PULSE_AMPLITUDE_INDEX_PRESENT:
        perfusion_index_pct = reader.sfloat("pulse amplitude index")
    reader.expect_end()
    return ContinuousMeasurement(
        spo2_pct=spo2_pct,
        pulse_rate_bpm=pulse_rate_bpm,
        spo2_fast_pct=spo2_fast_pct,
        pulse_rate_fast_bpm=pulse_rate_fast_bpm,
        spo2_slow_pct=spo2_slow_pct,
        pulse_rate_slow_bpm=pulse_rate_slow_bpm,
        measurement_status=measurement_status,
        device_and_sensor_status=device_and_sensor_status,
        perfusion_index_pct=perfusion_index_pct,
    )


def encode_continuous_measurement(measurement: ContinuousMeasurement) -> bytes:
    """Encode a PLX Continuous Measurement."""
    flags = ContinuousFlag(0)
    body = ByteWriter()
    _write_sfloat(body, measurement.spo2_pct)
    _write_sfloat(body, measurement.pulse_rate_bpm)
    if measurement.spo2_fast_pct is not None and measurement.pulse_rate_fast_bpm is not None:
        flags |= ContinuousFlag.SPO2PR_FAST_PRESENT
        _write_sfloat(body, measurement.spo2_fast_pct)
        _write_sfloat(body, measurement.pulse_rate_fast_bpm)
    if measurement.spo2_slow_pct is not None and measurement.pulse_rate_slow_bpm is not None:
        flags |= ContinuousFlag.SPO2PR_SLOW_PRESENT
        _write_sfloat(body, measurement.spo2_slow_pct)
        _write_sfloat(body, measurement.pulse_rate_slow_bpm)
    if measurement.measurement_status is not None:
        flags |= ContinuousFlag.MEASUREMENT_STATUS_PRESENT
        body.u16(int(measurement.measurement_status), "measurement status")
    if measurement.device_and_sensor_status is not None:
        flags |= ContinuousFlag.DEVICE_AND_SENSOR_STATUS_PRESENT
        body.u24(int(measurement.device_and_sensor_status), "device/sensor status")
    if measurement.perfusion_index_pct is not None:
        flags |= ContinuousFlag.PULSE_AMPLITUDE_INDEX_PRESENT
        _write_sfloat(body, measurement.perfusion_index_pct)
    return bytes((int(flags),)) + body.getvalue()


def parse_features(data: bytes) -> PlxFeatures:
    """Decode PLX Features (0x2A60); raises ParseError on malformed input."""
    reader = ByteReader(data, PROFILE)
    supported = PlxSupportedFeatures(reader.u16("supported features"))
    measurement_status_support = None
    if supported & PlxSupportedFeatures.MEASUREMENT_STATUS_SUPPORT_PRESENT:
        measurement_status_support = PlxMeasurementStatus(reader.u16("measurement status support"))
    device_and_sensor_status_support = None
    if supported & PlxSupportedFeatures.DEVICE_AND_SENSOR_STATUS_SUPPORT_PRESENT:
        device_and_sensor_status_support = PlxDeviceAndSensorStatus(
            reader.u24("device/sensor status support")
        )
    reader.expect_end()
    return PlxFeatures(
        supported=supported,
        measurement_status_support=measurement_status_support,
        device_and_sensor_status_support=device_and_sensor_status_support,
    )


def encode_features(features: PlxFeatures) -> bytes:
    """Encode PLX Features."""
    writer = ByteWriter().u16(int(features.supported), "supported features")
    if features.measurement_status_support is not None:
        writer.u16(int(features.measurement_status_support), "measurement status support")
    if features.device_and_sensor_status_support is not None:
        writer.u24(int(features.device_and_sensor_status_support), "device/sensor status support")
    return writer.getvalue()
