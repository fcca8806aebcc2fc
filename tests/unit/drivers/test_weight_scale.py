"""Weight Scale codecs (WSS v1.0 section 3; GSS 3.252 Weight Measurement, 3.253 Feature)."""

from __future__ import annotations

import random
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vitalgate.drivers import weight_scale as wss
from vitalgate.drivers.weight_scale import (
    HeightResolution,
    WeightMeasurement,
    WeightResolution,
    WeightScaleFeature,
    WeightUnit,
)
from vitalgate.errors import ParseError

SI = WeightUnit.SI
IMP = WeightUnit.IMPERIAL
T0 = datetime(2024, 12, 31, 7, 5, 0)
T0_HEX = "e8070c1f070500"

# 72.5 kg = 14500 * 0.005 kg = 0x38a4; 160.2 lb = 16020 * 0.01 lb = 0x3e94;
# BMI 23.7 = 237 * 0.1 = 0x00ed; 1.75 m = 1750 * 0.001 m = 0x06d6; 68.9 in = 689 * 0.1 = 0x02b1.
VECTORS = [
    pytest.param(
        "00a438",
        WeightMeasurement(unit=SI, weight_as_sent=72.5),
        id="GSS-3.252-b0=0-si-0.005kg",
    ),
    pytest.param(
        "01943e",
        WeightMeasurement(unit=IMP, weight_as_sent=160.2),
        id="GSS-3.252-b0=1-imperial-0.01lb",
    ),
    pytest.param(
        "00ffff",
        WeightMeasurement(unit=SI, weight_as_sent=None),
        id="GSS-3.252-weight-0xffff-measurement-unsuccessful",
    ),
    pytest.param(
        "020100" + T0_HEX,
        WeightMeasurement(unit=SI, weight_as_sent=0.005, timestamp=T0),
        id="GSS-3.252-b1-time-stamp",
    ),
    pytest.param(
        "04a43803",
        WeightMeasurement(unit=SI, weight_as_sent=72.5, user_id=3),
        id="GSS-3.252-b2-user-id",
    ),
    pytest.param(
        "04a438ff",
        WeightMeasurement(unit=SI, weight_as_sent=72.5, user_id=255),
        id="GSS-3.252-b2-user-id-unknown-255",
    ),
    pytest.param(
        "08a438ed00d606",
        WeightMeasurement(unit=SI, weight_as_sent=72.5, bmi_kg_m2=23.7, height_as_sent=1.75),
        id="GSS-3.252-b3-bmi-height-si-0.001m",
    ),
    pytest.param(
        "09943eed00b102",
        WeightMeasurement(unit=IMP, weight_as_sent=160.2, bmi_kg_m2=23.7, height_as_sent=68.9),
        id="GSS-3.252-b3-bmi-height-imperial-0.1in",
    ),
    pytest.param(
        "0f943e" + T0_HEX + "01ed00b102",
        WeightMeasurement(
            unit=IMP,
            weight_as_sent=160.2,
            timestamp=T0,
            user_id=1,
            bmi_kg_m2=23.7,
            height_as_sent=68.9,
        ),
        id="GSS-3.252-all-fields-imperial",
    ),
]


@pytest.mark.parametrize(("payload", "expected"), VECTORS)
def test_measurement_vectors(payload: str, expected: WeightMeasurement) -> None:
    data = bytes.fromhex(payload)
    assert wss.parse_measurement(data) == expected
    assert wss.encode_measurement(expected) == data


def test_si_conversions() -> None:
    measurement = wss.parse_measurement(bytes.fromhex("08a438ed00d606"))
    assert measurement.weight_kg == 72.5
    assert measurement.height_m == 1.75
    assert not measurement.measurement_unsuccessful


def test_imperial_conversions() -> None:
    measurement = wss.parse_measurement(bytes.fromhex("09943eed00b102"))
    assert measurement.weight_kg == pytest.approx(160.2 * 0.45359237)
    assert measurement.weight_kg == pytest.approx(72.66549767, abs=1e-8)
    assert measurement.height_m == pytest.approx(68.9 * 0.0254)
    assert measurement.bmi_kg_m2 == 23.7


def test_unsuccessful_measurement_has_no_weight() -> None:
    measurement = wss.parse_measurement(bytes.fromhex("05ffff02"))
    assert measurement.measurement_unsuccessful
    assert measurement.weight_kg is None
    assert measurement.user_id == 2


def test_reserved_flag_bits_ignored() -> None:
    assert wss.parse_measurement(bytes.fromhex("f0a438")) == WeightMeasurement(
        unit=SI, weight_as_sent=72.5
    )


def test_encode_rounds_to_field_resolution() -> None:
    assert wss.encode_measurement(WeightMeasurement(unit=SI, weight_as_sent=72.501)) == (
        bytes.fromhex("00a438")
    )


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param("", id="empty"),
        pytest.param("00a4", id="weight-truncated"),
        pytest.param("02a438e8070c1f0705", id="time-stamp-truncated"),
        pytest.param("02a438e8070d01000000", id="time-stamp-month-13"),
        pytest.param("04a438", id="user-id-missing"),
        pytest.param("08a438ed00d6", id="height-truncated"),
        pytest.param("08a438ed", id="bmi-truncated"),
        pytest.param("00a43800", id="over-long"),
    ],
)
def test_malformed_measurement_raises_parse_error(payload: str) -> None:
    data = bytes.fromhex(payload)
    with pytest.raises(ParseError) as info:
        wss.parse_measurement(data)
    assert info.value.profile == "weight_scale"
    assert info.value.payload == data


def test_construction_validates() -> None:
    with pytest.raises(ValueError, match="weight"):
        WeightMeasurement(unit=SI, weight_as_sent=327.675)  # raw 0xffff is reserved
    with pytest.raises(ValueError, match="weight"):
        WeightMeasurement(unit=SI, weight_as_sent=-1.0)
    with pytest.raises(ValueError, match="pair"):
        WeightMeasurement(unit=SI, weight_as_sent=70.0, bmi_kg_m2=22.0)
    with pytest.raises(ValueError, match="user_id"):
        WeightMeasurement(unit=SI, weight_as_sent=70.0, user_id=256)
    with pytest.raises(ValueError, match="height"):
        WeightMeasurement(unit=SI, weight_as_sent=70.0, bmi_kg_m2=22.0, height_as_sent=70.0)


FEATURE_VECTORS = [
    pytest.param("00000000", WeightScaleFeature(), id="GSS-3.253-nothing"),
    pytest.param(
        "bf010000",
        WeightScaleFeature(
            time_stamp_supported=True,
            multiple_users_supported=True,
            bmi_supported=True,
            weight_resolution=WeightResolution.KG_0_005_LB_0_01,
            height_resolution=HeightResolution.M_0_001_IN_0_1,
        ),
        id="GSS-3.253-all-b0-2-weight-res-7-height-res-3",
    ),
    pytest.param(
        "08010000",
        WeightScaleFeature(
            weight_resolution=WeightResolution.KG_0_5_LB_1,
            height_resolution=HeightResolution.M_0_005_IN_0_5,
        ),
        id="GSS-3.253-b3-6-weight-res-1-b7-9-height-res-2",
    ),
    pytest.param(
        "02000000",
        WeightScaleFeature(multiple_users_supported=True),
        id="GSS-3.253-b1-multiple-users",
    ),
]


@pytest.mark.parametrize(("payload", "expected"), FEATURE_VECTORS)
def test_feature_vectors(payload: str, expected: WeightScaleFeature) -> None:
    data = bytes.fromhex(payload)
    assert wss.parse_feature(data) == expected
    assert wss.encode_feature(expected) == data


def test_feature_reserved_values() -> None:
    # Weight resolution 15 and height resolution 7 are reserved; bits 10-31 are reserved.
    feature = wss.parse_feature(bytes.fromhex("f803ffff"))
    assert feature.weight_resolution == 15
    assert feature.weight_resolution.step_kg is None
    assert feature.height_resolution == 7
    assert feature.height_resolution.step_m is None
    assert wss.encode_feature(feature) == bytes.fromhex("f8030000")


def test_resolution_steps() -> None:
    assert WeightResolution.KG_0_005_LB_0_01.step_kg == 0.005
    assert WeightResolution.KG_0_005_LB_0_01.step_lb == 0.01
    assert WeightResolution.NOT_SPECIFIED.step_kg is None
    assert HeightResolution.M_0_01_IN_1.step_m == 0.01
    assert HeightResolution.M_0_01_IN_1.step_in == 1.0


@pytest.mark.parametrize("payload", ["", "000000", "0000000000"], ids=["empty", "short", "long"])
def test_feature_malformed(payload: str) -> None:
    with pytest.raises(ParseError):
        wss.parse_feature(bytes.fromhex(payload))


@st.composite
def measurements(draw: st.DrawFn) -> WeightMeasurement:
    unit = draw(st.sampled_from(WeightUnit))
    weight_divisor = 200 if unit is SI else 100
    height_divisor = 1000 if unit is SI else 10
    raw_weight = draw(st.integers(0, 0xFFFF))
    with_bmi = draw(st.booleans())
    return WeightMeasurement(
        unit=unit,
        weight_as_sent=None if raw_weight == 0xFFFF else raw_weight / weight_divisor,
        timestamp=draw(
            st.none()
            | st.datetimes(min_value=datetime(1582, 1, 1), max_value=datetime(9999, 12, 31)).map(
                lambda dt: dt.replace(microsecond=0)
            )
        ),
        user_id=draw(st.none() | st.integers(0, 255)),
        bmi_kg_m2=draw(st.integers(0, 0xFFFF)) / 10 if with_bmi else None,
        height_as_sent=draw(st.integers(0, 0xFFFF)) / height_divisor if with_bmi else None,
    )


@given(measurements())
def test_measurement_round_trip(measurement: WeightMeasurement) -> None:
    assert wss.parse_measurement(wss.encode_measurement(measurement)) == measurement


@given(
    st.builds(
        WeightScaleFeature,
        time_stamp_supported=st.booleans(),
        multiple_users_supported=st.booleans(),
        bmi_supported=st.booleans(),
        weight_resolution=st.integers(0, 15).map(WeightResolution),
        height_resolution=st.integers(0, 7).map(HeightResolution),
    )
)
def test_feature_round_trip(feature: WeightScaleFeature) -> None:
    assert wss.parse_feature(wss.encode_feature(feature)) == feature


def test_fuzz_only_parse_error() -> None:
    rng = random.Random(0x181D)
    decoded = 0
    for _ in range(4000):
        data = rng.randbytes(rng.randrange(0, 18))
        for parse in (wss.parse_measurement, wss.parse_feature):
            try:
                parse(data)
            except ParseError:
                continue
            decoded += 1
    assert decoded > 0


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_values_rejected(value: float) -> None:
    with pytest.raises(ValueError, match="weight"):
        WeightMeasurement(unit=SI, weight_as_sent=value)
    with pytest.raises(ValueError, match="bmi"):
        WeightMeasurement(unit=SI, weight_as_sent=70.0, bmi_kg_m2=value, height_as_sent=1.8)
