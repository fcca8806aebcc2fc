"""Heart Rate Service codecs (HRS v1.0 section 3; GSS "Heart Rate Measurement" 0x2A37)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vitalgate.drivers import heart_rate as hr
from vitalgate.drivers.heart_rate import (
    BodySensorLocation,
    HeartRateControlOpcode,
    HeartRateMeasurement,
)
from vitalgate.errors import ParseError

# (payload, expected, canonical): canonical payloads are what encode_measurement produces.
VECTORS = [
    pytest.param(
        "0048", HeartRateMeasurement(heart_rate_bpm=72), True, id="GSS-HRM-flags-u8-no-contact"
    ),
    pytest.param(
        "012c01",
        HeartRateMeasurement(heart_rate_bpm=300),
        True,
        id="GSS-HRM-flags-b0-u16-format",
    ),
    pytest.param(
        "014800",
        HeartRateMeasurement(heart_rate_bpm=72),
        False,
        id="GSS-HRM-flags-b0-u16-format-small-value",
    ),
    pytest.param(
        "0248",
        HeartRateMeasurement(heart_rate_bpm=72, sensor_contact=None),
        False,
        id="GSS-HRM-flags-b1b2=1-contact-not-supported",
    ),
    pytest.param(
        "0448",
        HeartRateMeasurement(heart_rate_bpm=72, sensor_contact=False),
        True,
        id="GSS-HRM-flags-b1b2=2-supported-no-contact",
    ),
    pytest.param(
        "0648",
        HeartRateMeasurement(heart_rate_bpm=72, sensor_contact=True),
        True,
        id="GSS-HRM-flags-b1b2=3-contact-detected",
    ),
    pytest.param(
        "0848e803",
        HeartRateMeasurement(heart_rate_bpm=72, energy_expended_kj=1000),
        True,
        id="GSS-HRM-b3-energy-expended",
    ),
    pytest.param(
        "08480000",
        HeartRateMeasurement(heart_rate_bpm=72, energy_expended_kj=0),
        True,
        id="GSS-HRM-b3-energy-expended-zero",
    ),
    pytest.param(
        "1048",
        HeartRateMeasurement(heart_rate_bpm=72),
        False,
        id="GSS-HRM-flags-b4-set-but-no-rr-bytes",
    ),
    pytest.param(
        "104800040002",
        HeartRateMeasurement(heart_rate_bpm=72, rr_intervals_s=(1.0, 0.5)),
        True,
        id="GSS-HRM-b4-two-rr-intervals-1/1024s",
    ),
    pytest.param(
        "1048ffff0100",
        HeartRateMeasurement(heart_rate_bpm=72, rr_intervals_s=(65535 / 1024, 1 / 1024)),
        True,
        id="GSS-HRM-rr-extremes",
    ),
    pytest.param(
        "1f2c01e80300040003",
        HeartRateMeasurement(
            heart_rate_bpm=300,
            sensor_contact=True,
            energy_expended_kj=1000,
            rr_intervals_s=(1.0, 0.75),
        ),
        True,
        id="GSS-HRM-all-fields",
    ),
    pytest.param(
        "e048",
        HeartRateMeasurement(heart_rate_bpm=72),
        False,
        id="GSS-HRM-flags-b5-7-reserved-ignored",
    ),
]


@pytest.mark.parametrize(("payload", "expected", "canonical"), VECTORS)
def test_measurement_vectors(payload: str, expected: HeartRateMeasurement, canonical: bool) -> None:
    data = bytes.fromhex(payload)
    assert hr.parse_measurement(data) == expected
    if canonical:
        assert hr.encode_measurement(expected) == data


def test_many_rr_intervals_fill_the_value() -> None:
    # 9 RR intervals fit a default-MTU (23) notification: 1 + 1 + 2 * 9 = 20 bytes.
    rr = tuple(range(800, 809))
    data = bytes.fromhex("1048") + b"".join(v.to_bytes(2, "little") for v in rr)
    measurement = hr.parse_measurement(data)
    assert measurement.rr_intervals_s == tuple(v / 1024 for v in rr)
    assert hr.encode_measurement(measurement) == data


def test_rr_interval_rounding_to_1_1024_s() -> None:
    encoded = hr.encode_measurement(
        HeartRateMeasurement(heart_rate_bpm=60, rr_intervals_s=(1.0001,))
    )
    assert encoded == bytes.fromhex("103c0004")


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param("", id="empty"),
        pytest.param("00", id="u8-rate-missing"),
        pytest.param("0148", id="u16-rate-truncated"),
        pytest.param("0848e8", id="energy-truncated"),
        pytest.param("104800", id="rr-odd-byte"),
        pytest.param("18480100000401", id="energy+rr-odd-byte"),
        pytest.param("004800", id="over-long-no-rr"),
        pytest.param("0848e80300", id="over-long-after-energy"),
    ],
)
def test_malformed_measurement_raises_parse_error(payload: str) -> None:
    with pytest.raises(ParseError) as info:
        hr.parse_measurement(bytes.fromhex(payload))
    assert info.value.profile == "heart_rate"
    assert info.value.payload == bytes.fromhex(payload)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"heart_rate_bpm": -1}, "heart_rate_bpm"),
        ({"heart_rate_bpm": 65536}, "heart_rate_bpm"),
        ({"heart_rate_bpm": 60, "energy_expended_kj": 70000}, "energy_expended_kj"),
        ({"heart_rate_bpm": 60, "rr_intervals_s": (64.0,)}, "RR interval"),
        ({"heart_rate_bpm": 60, "rr_intervals_s": (-0.5,)}, "RR interval"),
    ],
)
def test_out_of_range_values_rejected(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        HeartRateMeasurement(**kwargs)  # type: ignore[arg-type]


measurements = st.builds(
    HeartRateMeasurement,
    heart_rate_bpm=st.integers(0, 0xFFFF),
    sensor_contact=st.none() | st.booleans(),
    energy_expended_kj=st.none() | st.integers(0, 0xFFFF),
    rr_intervals_s=st.lists(st.integers(0, 0xFFFF).map(lambda raw: raw / 1024), max_size=12).map(
        tuple
    ),
)


@given(measurements)
def test_measurement_round_trip(measurement: HeartRateMeasurement) -> None:
    assert hr.parse_measurement(hr.encode_measurement(measurement)) == measurement


@given(st.binary(max_size=24))
def test_parse_then_encode_is_stable(data: bytes) -> None:
    try:
        measurement = hr.parse_measurement(data)
    except ParseError:
        return
    assert hr.parse_measurement(hr.encode_measurement(measurement)) == measurement


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param("00", BodySensorLocation.OTHER, id="GSS-body-sensor-location-other"),
        pytest.param("01", BodySensorLocation.CHEST, id="GSS-body-sensor-location-chest"),
        pytest.param("02", BodySensorLocation.WRIST, id="GSS-body-sensor-location-wrist"),
        pytest.param("03", BodySensorLocation.FINGER, id="GSS-body-sensor-location-finger"),
        pytest.param("04", BodySensorLocation.HAND, id="GSS-body-sensor-location-hand"),
        pytest.param("05", BodySensorLocation.EAR_LOBE, id="GSS-body-sensor-location-ear-lobe"),
        pytest.param("06", BodySensorLocation.FOOT, id="GSS-body-sensor-location-foot"),
    ],
)
def test_body_sensor_location(payload: str, expected: BodySensorLocation) -> None:
    assert hr.parse_body_sensor_location(bytes.fromhex(payload)) is expected
    assert hr.encode_body_sensor_location(expected) == bytes.fromhex(payload)


def test_body_sensor_location_reserved_code_is_kept() -> None:
    location = hr.parse_body_sensor_location(b"\x2a")
    assert location == 42
    assert location.name not in BodySensorLocation.__members__
    assert hr.encode_body_sensor_location(location) == b"\x2a"


@pytest.mark.parametrize("payload", ["", "0102"], ids=["empty", "over-long"])
def test_body_sensor_location_malformed(payload: str) -> None:
    with pytest.raises(ParseError):
        hr.parse_body_sensor_location(bytes.fromhex(payload))


def test_control_point_reset_energy_expended() -> None:
    # GSS Heart Rate Control Point: 0x01 = Reset Energy Expended.
    assert hr.encode_control_point() == b"\x01"
    assert hr.parse_control_point(b"\x01") is HeartRateControlOpcode.RESET_ENERGY_EXPENDED
    reserved = hr.parse_control_point(b"\x00")
    assert reserved == 0
    assert reserved.name not in HeartRateControlOpcode.__members__
    with pytest.raises(ParseError):
        hr.parse_control_point(b"")
    with pytest.raises(ParseError):
        hr.parse_control_point(b"\x01\x00")


def test_fuzz_only_parse_error() -> None:
    rng = random.Random(0x2A37)
    parsers = (hr.parse_measurement, hr.parse_body_sensor_location, hr.parse_control_point)
    decoded = 0
    for _ in range(4000):
        data = rng.randbytes(rng.randrange(0, 24))
        for parse in parsers:
            try:
                parse(data)
            except ParseError:
                continue
            decoded += 1
    assert decoded > 0


@pytest.mark.parametrize("rr_s", [float("nan"), float("inf")])
def test_non_finite_rr_rejected(rr_s: float) -> None:
    with pytest.raises(ValueError, match="RR interval"):
        HeartRateMeasurement(heart_rate_bpm=60, rr_intervals_s=(rr_s,))
