"""Health Thermometer codecs (HTS v1.0 section 3; GSS 3.216 Temperature Measurement 0x2A1C)."""

from __future__ import annotations

import math
import random
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vitalgate.drivers import ieee11073
from vitalgate.drivers import thermometer as hts
from vitalgate.drivers.thermometer import TemperatureMeasurement, TemperatureType, TemperatureUnit
from vitalgate.errors import ParseError

C = TemperatureUnit.CELSIUS
F = TemperatureUnit.FAHRENHEIT
T0 = datetime(2025, 1, 31, 23, 59, 58)
T0_HEX = "e907011f173b3a"  # Date Time: 2025 (0x07e9 LE), 1, 31, 23:59:58

# FLOAT: exponent in the top octet, 24-bit mantissa below, little-endian on the wire.
# 36.6 = 366e-1 = 0xff00016e -> 6e 01 00 ff; 98.6 = 986e-1 -> da 03 00 ff;
# -5.5 = -55e-1 = 0xffffffc9 -> c9 ff ff ff; 37 = 37e0 -> 25 00 00 00.
VECTORS = [
    pytest.param(
        "006e0100ff",
        TemperatureMeasurement(temperature_as_sent=36.6, unit=C),
        id="GSS-3.216-b0=0-celsius",
    ),
    pytest.param(
        "01da0300ff",
        TemperatureMeasurement(temperature_as_sent=98.6, unit=F),
        id="GSS-3.216-b0=1-fahrenheit",
    ),
    pytest.param(
        "0025000000",
        TemperatureMeasurement(temperature_as_sent=37.0, unit=C),
        id="GSS-3.216-float-exponent-0",
    ),
    pytest.param(
        "00c9ffffff",
        TemperatureMeasurement(temperature_as_sent=-5.5, unit=C),
        id="GSS-3.216-float-negative-mantissa",
    ),
    pytest.param(
        "026e0100ff" + T0_HEX,
        TemperatureMeasurement(temperature_as_sent=36.6, unit=C, timestamp=T0),
        id="GSS-3.216-b1-time-stamp",
    ),
    pytest.param(
        "046e0100ff06",
        TemperatureMeasurement(
            temperature_as_sent=36.6, unit=C, temperature_type=TemperatureType.MOUTH
        ),
        id="GSS-3.216-b2-temperature-type",
    ),
    pytest.param(
        "07da0300ff" + T0_HEX + "09",
        TemperatureMeasurement(
            temperature_as_sent=98.6,
            unit=F,
            timestamp=T0,
            temperature_type=TemperatureType.TYMPANUM,
        ),
        id="GSS-3.216-all-fields-fahrenheit",
    ),
]


@pytest.mark.parametrize(("payload", "expected"), VECTORS)
def test_measurement_vectors(payload: str, expected: TemperatureMeasurement) -> None:
    data = bytes.fromhex(payload)
    assert hts.parse_measurement(data) == expected
    assert hts.parse_intermediate_temperature(data) == expected
    assert hts.encode_measurement(expected) == data


@pytest.mark.parametrize(
    ("payload", "celsius"),
    [
        pytest.param("006e0100ff", 36.6, id="celsius-unchanged"),
        pytest.param("01da0300ff", 37.0, id="98.6F-is-37C"),
        pytest.param("0120000000", 0.0, id="32F-is-0C"),
        pytest.param("01d40000 00".replace(" ", ""), 100.0, id="212F-is-100C"),
    ],
)
def test_temperature_c_always_celsius(payload: str, celsius: float) -> None:
    assert hts.parse_measurement(bytes.fromhex(payload)).temperature_c == pytest.approx(celsius)


def test_special_values_and_reserved_flags() -> None:
    # FLOAT NaN (mantissa 0x7fffff) and NRes (0x800000); flag bits 3-7 reserved and ignored.
    nan = hts.parse_measurement(bytes.fromhex("f8ffff7f00"))
    assert math.isnan(nan.temperature_as_sent)
    assert nan.unit is C
    assert math.isnan(hts.parse_measurement(bytes.fromhex("0000008000")).temperature_c)
    assert hts.parse_measurement(bytes.fromhex("00feff7f00")).temperature_c == math.inf
    assert hts.encode_measurement(nan) == bytes.fromhex("00ffff7f00")


def test_reserved_temperature_type_is_kept() -> None:
    measurement = hts.parse_measurement(bytes.fromhex("046e0100ff0a"))
    assert measurement.temperature_type == 10
    assert hts.encode_measurement(measurement) == bytes.fromhex("046e0100ff0a")


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param("", id="empty"),
        pytest.param("006e0100", id="float-truncated"),
        pytest.param("026e0100ffe907011f173b", id="time-stamp-truncated"),
        pytest.param("026e0100ffe907021e0c0000", id="time-stamp-feb-30"),
        pytest.param("046e0100ff", id="type-missing"),
        pytest.param("006e0100ff00", id="over-long"),
        pytest.param("046e0100ff0600", id="over-long-after-type"),
    ],
)
def test_malformed_measurement_raises_parse_error(payload: str) -> None:
    data = bytes.fromhex(payload)
    with pytest.raises(ParseError) as info:
        hts.parse_measurement(data)
    assert info.value.profile == "thermometer"
    assert info.value.payload == data


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(
            f"{code:02x}",
            TemperatureType(code),
            id=f"GSS-temperature-type-{TemperatureType(code).name}",
        )
        for code in range(1, 10)
    ],
)
def test_temperature_type(payload: str, expected: TemperatureType) -> None:
    assert hts.parse_temperature_type(bytes.fromhex(payload)) is expected
    assert hts.encode_temperature_type(expected) == bytes.fromhex(payload)


def test_temperature_type_malformed() -> None:
    for payload in (b"", b"\x01\x02"):
        with pytest.raises(ParseError):
            hts.parse_temperature_type(payload)


@pytest.mark.parametrize(
    ("payload", "seconds"),
    [
        pytest.param("0000", 0, id="GSS-3.150-no-periodic-measurement"),
        pytest.param("3c00", 60, id="GSS-3.150-one-minute"),
        pytest.param("ffff", 65535, id="GSS-3.150-maximum"),
    ],
)
def test_measurement_interval(payload: str, seconds: int) -> None:
    assert hts.parse_measurement_interval(bytes.fromhex(payload)) == seconds
    assert hts.encode_measurement_interval(seconds) == bytes.fromhex(payload)


def test_measurement_interval_malformed() -> None:
    for payload in (b"", b"\x3c", b"\x3c\x00\x00"):
        with pytest.raises(ParseError):
            hts.parse_measurement_interval(payload)
    with pytest.raises(ValueError):
        hts.encode_measurement_interval(65536)


def test_construction_validates() -> None:
    with pytest.raises(ValueError, match="naive"):
        TemperatureMeasurement(
            temperature_as_sent=36.6, unit=C, timestamp=datetime.fromisoformat("2025-01-01T00:00Z")
        )
    with pytest.raises(ValueError, match="FLOAT"):
        TemperatureMeasurement(temperature_as_sent=1e300, unit=C)


# Finite FLOAT values as a device may send them; exponents kept moderate for speed.
floats = st.builds(
    lambda mantissa, exponent: ieee11073.decode_float(
        ((exponent & 0xFF) << 24) | (mantissa & 0xFFFFFF)
    ),
    st.integers(-(2**23) + 3, 2**23 - 3),
    st.integers(-20, 20),
)
measurements = st.builds(
    TemperatureMeasurement,
    temperature_as_sent=floats,
    unit=st.sampled_from(TemperatureUnit),
    timestamp=st.none()
    | st.datetimes(min_value=datetime(1582, 1, 1), max_value=datetime(9999, 12, 31)).map(
        lambda dt: dt.replace(microsecond=0)
    ),
    temperature_type=st.none() | st.integers(0, 255).map(TemperatureType),
)


@given(measurements)
def test_measurement_round_trip(measurement: TemperatureMeasurement) -> None:
    assert hts.parse_measurement(hts.encode_measurement(measurement)) == measurement


@given(st.integers(0, 0xFFFF))
def test_measurement_interval_round_trip(seconds: int) -> None:
    assert hts.parse_measurement_interval(hts.encode_measurement_interval(seconds)) == seconds


def test_fuzz_only_parse_error() -> None:
    rng = random.Random(0x1809)
    parsers = (hts.parse_measurement, hts.parse_temperature_type, hts.parse_measurement_interval)
    decoded = 0
    for _ in range(4000):
        data = rng.randbytes(rng.randrange(0, 16))
        for parse in parsers:
            try:
                parse(data)
            except ParseError:
                continue
            decoded += 1
    assert decoded > 0
