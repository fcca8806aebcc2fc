"""Pulse Oximeter Service codecs (PLXS v1.0.1 section 3; GSS 0x2A5E, 0x2A5F, 0x2A60)."""

from __future__ import annotations

import math
import random
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vitalgate.drivers import ieee11073
from vitalgate.drivers import pulse_oximeter as plx
from vitalgate.drivers.pulse_oximeter import (
    ContinuousMeasurement,
    PlxDeviceAndSensorStatus,
    PlxFeatures,
    PlxMeasurementStatus,
    PlxSupportedFeatures,
    SpotCheckMeasurement,
)
from vitalgate.errors import ParseError

MS = PlxMeasurementStatus
DSS = PlxDeviceAndSensorStatus
T0 = datetime(2024, 3, 15, 8, 30, 5)
T0_HEX = "e807030f081e05"  # GSS Date Time: 2024 (0x07e8 LE), 3, 15, 08:30:05

# SpO2 98 % = SFLOAT 0x0062, pulse 72 bpm = 0x0048, 97.5 % = 0xf3cf (975e-1),
# PAI 2.5 % = 0xf019 (25e-1), NaN = 0x07ff.
SPOT_VECTORS = [
    pytest.param(
        "0062004800",
        SpotCheckMeasurement(spo2_pct=98.0, pulse_rate_bpm=72.0),
        id="GSS-PLX-spot-check-mandatory-only",
    ),
    pytest.param(
        "00cff34800",
        SpotCheckMeasurement(spo2_pct=97.5, pulse_rate_bpm=72.0),
        id="GSS-PLX-spot-check-sfloat-one-decimal",
    ),
    pytest.param(
        "0162004800" + T0_HEX,
        SpotCheckMeasurement(spo2_pct=98.0, pulse_rate_bpm=72.0, timestamp=T0),
        id="GSS-PLX-spot-check-b0-timestamp",
    ),
    pytest.param(
        "02620048008001",
        SpotCheckMeasurement(
            spo2_pct=98.0,
            pulse_rate_bpm=72.0,
            measurement_status=MS.VALIDATED_DATA | MS.FULLY_QUALIFIED_DATA,
        ),
        id="GSS-PLX-spot-check-b1-measurement-status",
    ),
    pytest.param(
        "0462004800202000",
        SpotCheckMeasurement(
            spo2_pct=98.0,
            pulse_rate_bpm=72.0,
            device_and_sensor_status=DSS.LOW_PERFUSION_DETECTED | DSS.SENSOR_DISPLACED,
        ),
        id="GSS-PLX-spot-check-b2-device-and-sensor-status-u24",
    ),
    pytest.param(
        "086200480019f0",
        SpotCheckMeasurement(spo2_pct=98.0, pulse_rate_bpm=72.0, perfusion_index_pct=2.5),
        id="GSS-PLX-spot-check-b3-pulse-amplitude-index",
    ),
    pytest.param(
        "1162004800" + T0_HEX,
        SpotCheckMeasurement(
            spo2_pct=98.0, pulse_rate_bpm=72.0, timestamp=T0, device_clock_not_set=True
        ),
        id="GSS-PLX-spot-check-flags-b4-device-clock-not-set",
    ),
    pytest.param(
        "1f62004800" + T0_HEX + "00a0" + "010001" + "19f0",
        SpotCheckMeasurement(
            spo2_pct=98.0,
            pulse_rate_bpm=72.0,
            timestamp=T0,
            measurement_status=MS.MEASUREMENT_UNAVAILABLE | MS.INVALID_MEASUREMENT_DETECTED,
            device_and_sensor_status=DSS.EXTENDED_DISPLAY_UPDATE_ONGOING | DSS(1 << 16),
            perfusion_index_pct=2.5,
            device_clock_not_set=True,
        ),
        id="GSS-PLX-spot-check-all-fields-reserved-status-bit-kept",
    ),
]


@pytest.mark.parametrize(("payload", "expected"), SPOT_VECTORS)
def test_spot_check_vectors(payload: str, expected: SpotCheckMeasurement) -> None:
    data = bytes.fromhex(payload)
    assert plx.parse_spot_check_measurement(data) == expected
    assert plx.encode_spot_check_measurement(expected) == data


def test_spot_check_nan_and_reserved_flags() -> None:
    # SpO2 NaN (0x07ff) with status "measurement unavailable"; flag bits 5-7 reserved, ignored.
    data = bytes.fromhex("e2ff07ff070020")
    measurement = plx.parse_spot_check_measurement(data)
    assert math.isnan(measurement.spo2_pct)
    assert math.isnan(measurement.pulse_rate_bpm)
    assert measurement.measurement_status == MS.MEASUREMENT_UNAVAILABLE
    assert plx.encode_spot_check_measurement(measurement) == bytes.fromhex("02ff07ff070020")


def test_spot_check_unknown_date_time_decodes_to_none() -> None:
    data = bytes.fromhex("0162004800" + "00000000000000")
    assert plx.parse_spot_check_measurement(data).timestamp is None


CONTINUOUS_VECTORS = [
    pytest.param(
        "0062004800",
        ContinuousMeasurement(spo2_pct=98.0, pulse_rate_bpm=72.0),
        id="GSS-PLX-continuous-normal-only",
    ),
    pytest.param(
        "01620048006100 4a00".replace(" ", ""),
        ContinuousMeasurement(
            spo2_pct=98.0, pulse_rate_bpm=72.0, spo2_fast_pct=97.0, pulse_rate_fast_bpm=74.0
        ),
        id="GSS-PLX-continuous-b0-spo2pr-fast",
    ),
    pytest.param(
        "026200480063004600",
        ContinuousMeasurement(
            spo2_pct=98.0, pulse_rate_bpm=72.0, spo2_slow_pct=99.0, pulse_rate_slow_bpm=70.0
        ),
        id="GSS-PLX-continuous-b1-spo2pr-slow",
    ),
    pytest.param(
        "04620048000010",
        ContinuousMeasurement(
            spo2_pct=98.0, pulse_rate_bpm=72.0, measurement_status=MS.CALIBRATION_ONGOING
        ),
        id="GSS-PLX-continuous-b2-measurement-status",
    ),
    pytest.param(
        "0862004800000080",
        ContinuousMeasurement(
            spo2_pct=98.0, pulse_rate_bpm=72.0, device_and_sensor_status=DSS(1 << 23)
        ),
        id="GSS-PLX-continuous-b3-device-and-sensor-status-reserved-bit",
    ),
    pytest.param(
        "10620048001000",
        ContinuousMeasurement(spo2_pct=98.0, pulse_rate_bpm=72.0, perfusion_index_pct=16.0),
        id="GSS-PLX-continuous-b4-pulse-amplitude-index",
    ),
    pytest.param(
        "1f620048006100 4a00 6300 4600 2000 080000 0ff0".replace(" ", ""),
        ContinuousMeasurement(
            spo2_pct=98.0,
            pulse_rate_bpm=72.0,
            spo2_fast_pct=97.0,
            pulse_rate_fast_bpm=74.0,
            spo2_slow_pct=99.0,
            pulse_rate_slow_bpm=70.0,
            measurement_status=MS.MEASUREMENT_ONGOING,
            device_and_sensor_status=DSS.INADEQUATE_SIGNAL_DETECTED,
            perfusion_index_pct=1.5,
        ),
        id="GSS-PLX-continuous-all-fields",
    ),
]


@pytest.mark.parametrize(("payload", "expected"), CONTINUOUS_VECTORS)
def test_continuous_vectors(payload: str, expected: ContinuousMeasurement) -> None:
    data = bytes.fromhex(payload)
    assert plx.parse_continuous_measurement(data) == expected
    assert plx.encode_continuous_measurement(expected) == data


FEATURE_VECTORS = [
    pytest.param(
        "0000", PlxFeatures(supported=PlxSupportedFeatures(0)), id="GSS-PLX-features-nothing"
    ),
    pytest.param(
        "fc00",
        PlxFeatures(
            supported=PlxSupportedFeatures.SPOT_CHECK_MEASUREMENT_STORAGE
            | PlxSupportedFeatures.SPOT_CHECK_TIMESTAMP
            | PlxSupportedFeatures.SPO2PR_FAST
            | PlxSupportedFeatures.SPO2PR_SLOW
            | PlxSupportedFeatures.PULSE_AMPLITUDE_INDEX
            | PlxSupportedFeatures.MULTIPLE_BONDS
        ),
        id="GSS-PLX-features-b2-7-no-support-fields",
    ),
    pytest.param(
        "0100e0ff",
        PlxFeatures(
            supported=PlxSupportedFeatures.MEASUREMENT_STATUS_SUPPORT_PRESENT,
            measurement_status_support=MS(0xFFE0),
        ),
        id="GSS-PLX-features-b0-measurement-status-support",
    ),
    pytest.param(
        "0200ffff00",
        PlxFeatures(
            supported=PlxSupportedFeatures.DEVICE_AND_SENSOR_STATUS_SUPPORT_PRESENT,
            device_and_sensor_status_support=DSS(0xFFFF),
        ),
        id="GSS-PLX-features-b1-device-and-sensor-status-support-u24",
    ),
    pytest.param(
        "ff00e0ffffff00",
        PlxFeatures(
            supported=PlxSupportedFeatures(0xFF),
            measurement_status_support=MS(0xFFE0),
            device_and_sensor_status_support=DSS(0xFFFF),
        ),
        id="GSS-PLX-features-all",
    ),
]


@pytest.mark.parametrize(("payload", "expected"), FEATURE_VECTORS)
def test_feature_vectors(payload: str, expected: PlxFeatures) -> None:
    data = bytes.fromhex(payload)
    assert plx.parse_features(data) == expected
    assert plx.encode_features(expected) == data


@pytest.mark.parametrize(
    ("parse", "payload"),
    [
        pytest.param(plx.parse_spot_check_measurement, "", id="spot-empty"),
        pytest.param(plx.parse_spot_check_measurement, "006200", id="spot-pr-missing"),
        pytest.param(
            plx.parse_spot_check_measurement, "0162004800e807030f081e", id="spot-ts-short"
        ),
        pytest.param(
            plx.parse_spot_check_measurement, "0162004800e807030f191e05", id="spot-ts-hour-25"
        ),
        pytest.param(plx.parse_spot_check_measurement, "026200480080", id="spot-status-short"),
        pytest.param(plx.parse_spot_check_measurement, "04620048002020", id="spot-dss-short"),
        pytest.param(plx.parse_spot_check_measurement, "086200480019", id="spot-pai-short"),
        pytest.param(plx.parse_spot_check_measurement, "006200480000", id="spot-over-long"),
        pytest.param(plx.parse_continuous_measurement, "00620048", id="cont-pr-short"),
        pytest.param(plx.parse_continuous_measurement, "016200480061004a", id="cont-fast-short"),
        pytest.param(plx.parse_continuous_measurement, "02620048006300", id="cont-slow-short"),
        pytest.param(plx.parse_continuous_measurement, "1f6200480061004a00", id="cont-all-short"),
        pytest.param(plx.parse_continuous_measurement, "006200480000", id="cont-over-long"),
        pytest.param(plx.parse_features, "01", id="features-short"),
        pytest.param(plx.parse_features, "0100e0", id="features-ms-support-short"),
        pytest.param(plx.parse_features, "0200ffff", id="features-dss-support-short"),
        pytest.param(plx.parse_features, "000000", id="features-over-long"),
    ],
)
def test_malformed_raises_parse_error(parse: object, payload: str) -> None:
    data = bytes.fromhex(payload)
    with pytest.raises(ParseError) as info:
        parse(data)  # type: ignore[operator]
    assert info.value.profile == "pulse_oximeter"
    assert info.value.payload == data


def test_invalid_values_rejected_at_construction() -> None:
    with pytest.raises(ValueError, match="pair"):
        ContinuousMeasurement(spo2_pct=98.0, pulse_rate_bpm=72.0, spo2_fast_pct=97.0)
    with pytest.raises(ValueError, match="SFLOAT"):
        SpotCheckMeasurement(spo2_pct=1e12, pulse_rate_bpm=72.0)
    with pytest.raises(ValueError, match="24 bits"):
        SpotCheckMeasurement(
            spo2_pct=98.0, pulse_rate_bpm=72.0, device_and_sensor_status=DSS(1 << 24)
        )
    with pytest.raises(ValueError, match="MEASUREMENT_STATUS_SUPPORT_PRESENT"):
        PlxFeatures(supported=PlxSupportedFeatures.MEASUREMENT_STATUS_SUPPORT_PRESENT)
    with pytest.raises(ValueError, match="DEVICE_AND_SENSOR_STATUS_SUPPORT_PRESENT"):
        PlxFeatures(supported=PlxSupportedFeatures(0), device_and_sensor_status_support=DSS(1))


# Finite SFLOAT values, as a device sends them (any exponent, any non-special mantissa).
sfloats = (
    st.integers(0, 0xFFFF)
    .map(ieee11073.decode_sfloat)
    .filter(lambda value: math.isfinite(value) and value == value)
)
timestamps = st.none() | st.datetimes(
    min_value=datetime(1582, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)
).map(lambda dt: dt.replace(microsecond=0))
statuses = st.none() | st.integers(0, 0xFFFF).map(MS)
device_statuses = st.none() | st.integers(0, 0xFFFFFF).map(DSS)


@given(
    st.builds(
        SpotCheckMeasurement,
        spo2_pct=sfloats,
        pulse_rate_bpm=sfloats,
        timestamp=timestamps,
        measurement_status=statuses,
        device_and_sensor_status=device_statuses,
        perfusion_index_pct=st.none() | sfloats,
        device_clock_not_set=st.booleans(),
    )
)
def test_spot_check_round_trip(measurement: SpotCheckMeasurement) -> None:
    encoded = plx.encode_spot_check_measurement(measurement)
    assert plx.parse_spot_check_measurement(encoded) == measurement


@st.composite
def continuous_measurements(draw: st.DrawFn) -> ContinuousMeasurement:
    fast = draw(st.none() | st.tuples(sfloats, sfloats))
    slow = draw(st.none() | st.tuples(sfloats, sfloats))
    return ContinuousMeasurement(
        spo2_pct=draw(sfloats),
        pulse_rate_bpm=draw(sfloats),
        spo2_fast_pct=None if fast is None else fast[0],
        pulse_rate_fast_bpm=None if fast is None else fast[1],
        spo2_slow_pct=None if slow is None else slow[0],
        pulse_rate_slow_bpm=None if slow is None else slow[1],
        measurement_status=draw(statuses),
        device_and_sensor_status=draw(device_statuses),
        perfusion_index_pct=draw(st.none() | sfloats),
    )


@given(continuous_measurements())
def test_continuous_round_trip(measurement: ContinuousMeasurement) -> None:
    encoded = plx.encode_continuous_measurement(measurement)
    assert plx.parse_continuous_measurement(encoded) == measurement


@st.composite
def features(draw: st.DrawFn) -> PlxFeatures:
    supported = PlxSupportedFeatures(draw(st.integers(0, 0xFFFF)))
    ms = draw(statuses) if supported & 1 else None
    dss = draw(device_statuses) if supported & 2 else None
    return PlxFeatures(
        supported=supported,
        measurement_status_support=MS(0) if supported & 1 and ms is None else ms,
        device_and_sensor_status_support=DSS(0) if supported & 2 and dss is None else dss,
    )


@given(features())
def test_features_round_trip(value: PlxFeatures) -> None:
    assert plx.parse_features(plx.encode_features(value)) == value


def test_fuzz_only_parse_error() -> None:
    rng = random.Random(0x1822)
    parsers = (
        plx.parse_spot_check_measurement,
        plx.parse_continuous_measurement,
        plx.parse_features,
    )
    decoded = 0
    for _ in range(4000):
        data = rng.randbytes(rng.randrange(0, 28))
        for parse in parsers:
            try:
                parse(data)
            except ParseError:
                continue
            decoded += 1
    assert decoded > 0
