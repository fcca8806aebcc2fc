"""Blood Pressure Measurement (0x2A35), Intermediate Cuff Pressure (0x2A36), Feature (0x2A49).

Byte vectors worked out by hand from the GSS "Blood Pressure Measurement" definition (BLS v1.0
section 3): flags u8 (b0 kPa, b1 time stamp, b2 pulse rate, b3 user ID, b4 measurement
status), three SFLOAT pressures, [Date Time], [SFLOAT pulse], [u8 user], [u16 status].
"""

from __future__ import annotations

import math
from datetime import datetime

import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st

from vitalgate.drivers import ieee11073
from vitalgate.drivers.blood_pressure import (
    KPA_TO_MMHG,
    BloodPressureFeature,
    BloodPressureFeatureFlag,
    BloodPressureMeasurement,
    BloodPressureStatus,
    PressureUnit,
    PulseRateRange,
    encode_feature,
    encode_measurement,
    parse_feature,
    parse_intermediate_cuff_pressure,
    parse_measurement,
)
from vitalgate.errors import ParseError

T = datetime(2026, 11, 25, 7, 30, 0)
T_BYTES = "ea070b19071e00"  # Date Time 2026-11-25 07:30:00


def _bp(**kwargs: object) -> BloodPressureMeasurement:
    base: dict[str, object] = {
        "unit": PressureUnit.MMHG,
        "systolic_as_sent": 120.0,
        "diastolic_as_sent": 80.0,
        "mean_arterial_pressure_as_sent": 93.0,
    }
    base.update(kwargs)
    return BloodPressureMeasurement(**base)  # type: ignore[arg-type]


# (hex, expected, canonical: encode(expected) gives exactly these bytes)
VECTORS = [
    pytest.param("00 7800 5000 5d00", _bp(), True, id="GSS BPM flags 0x00 mmHg 120/80/93"),
    pytest.param(
        f"02 7800 5000 5d00 {T_BYTES}", _bp(timestamp=T), True, id="GSS BPM flags 0x02 time stamp"
    ),
    pytest.param(
        "04 7800 5000 5d00 4800", _bp(pulse_rate_bpm=72.0), True, id="GSS BPM flags 0x04 pulse 72"
    ),
    pytest.param("08 7800 5000 5d00 03", _bp(user_id=3), True, id="GSS BPM flags 0x08 user 3"),
    pytest.param(
        "08 7800 5000 5d00 ff", _bp(user_id=255), True, id="GSS BPM flags 0x08 user 255 unknown"
    ),
    pytest.param(
        "10 7800 5000 5d00 0000",
        _bp(status=BloodPressureStatus()),
        True,
        id="GSS BPM flags 0x10 status all clear",
    ),
    pytest.param(
        f"1e 7800 5000 5d00 {T_BYTES} 4800 01 0400",
        _bp(
            timestamp=T,
            pulse_rate_bpm=72.0,
            user_id=1,
            status=BloodPressureStatus(irregular_pulse=True),
        ),
        True,
        id="GSS BPM flags 0x1E all fields mmHg, irregular pulse",
    ),
    pytest.param(
        "01 a0f0 6bf0 7df0",
        _bp(
            unit=PressureUnit.KPA,
            systolic_as_sent=16.0,
            diastolic_as_sent=10.7,
            mean_arterial_pressure_as_sent=12.5,
        ),
        False,  # 16.0 is sent as 160e-1; the encoder picks the shorter 16e0
        id="GSS BPM flags 0x01 kPa with one decimal",
    ),
    pytest.param(
        f"1f 6bf0 6b00 7df0 {T_BYTES} 4c00 02 3f00",
        _bp(
            unit=PressureUnit.KPA,
            systolic_as_sent=10.7,
            diastolic_as_sent=107.0,
            mean_arterial_pressure_as_sent=12.5,
            timestamp=T,
            pulse_rate_bpm=76.0,
            user_id=2,
            status=BloodPressureStatus(
                body_movement=True,
                cuff_too_loose=True,
                irregular_pulse=True,
                pulse_rate_range=PulseRateRange.RESERVED,
                improper_position=True,
            ),
        ),
        True,
        id="GSS BPM flags 0x1F all fields kPa, status 0x003F",
    ),
    pytest.param(
        f"02 7800 5000 5d00 {'00' * 7}",
        _bp(),
        False,  # a "not known" time stamp decodes to None and is then left out
        id="GSS BPM time stamp all zero = not known",
    ),
    pytest.param("e0 7800 5000 5d00", _bp(), False, id="GSS BPM reserved flag bits b5-b7 ignored"),
    pytest.param(
        "04 7800 5000 5d00 ff07",
        _bp(pulse_rate_bpm=math.nan),
        True,
        id="GSS BPM pulse rate NaN",
    ),
]


@pytest.mark.parametrize(("hex_data", "expected", "canonical"), VECTORS)
def test_parse_measurement_vectors(
    hex_data: str, expected: BloodPressureMeasurement, canonical: bool
) -> None:
    data = bytes.fromhex(hex_data)
    assert parse_measurement(data) == expected
    if canonical:
        assert encode_measurement(expected) == data


@pytest.mark.parametrize(
    ("status_raw", "expected"),
    [
        (0x0001, BloodPressureStatus(body_movement=True)),
        (0x0002, BloodPressureStatus(cuff_too_loose=True)),
        (0x0004, BloodPressureStatus(irregular_pulse=True)),
        (0x0008, BloodPressureStatus(pulse_rate_range=PulseRateRange.EXCEEDS_UPPER)),
        (0x0010, BloodPressureStatus(pulse_rate_range=PulseRateRange.BELOW_LOWER)),
        (0x0018, BloodPressureStatus(pulse_rate_range=PulseRateRange.RESERVED)),
        (0x0020, BloodPressureStatus(improper_position=True)),
        (0xFFC0, BloodPressureStatus()),  # b6-b15 reserved: ignored
    ],
    ids=[
        "b0 body movement",
        "b1 cuff too loose",
        "b2 irregular pulse",
        "b3-b4=1 exceeds upper",
        "b3-b4=2 below lower",
        "b3-b4=3 reserved",
        "b5 improper position",
        "b6-b15 reserved",
    ],
)
def test_measurement_status_bits(status_raw: int, expected: BloodPressureStatus) -> None:
    # GSS Blood Pressure Measurement, Measurement Status field; pulse rate range is 2 bits.
    data = bytes.fromhex("10 7800 5000 5d00") + status_raw.to_bytes(2, "little")
    assert parse_measurement(data).status == expected


def test_kpa_converted_to_mmhg() -> None:
    m = parse_measurement(bytes.fromhex("01 a0f0 6bf0 7df0"))
    assert m.unit is PressureUnit.KPA
    assert m.systolic_as_sent == 16.0
    assert m.systolic_mmhg == pytest.approx(16.0 * KPA_TO_MMHG)
    assert m.systolic_mmhg == pytest.approx(120.00992)
    assert m.diastolic_mmhg == pytest.approx(10.7 * 7.50062)
    assert m.mean_arterial_pressure_mmhg == pytest.approx(12.5 * 7.50062)


def test_mmhg_passes_through() -> None:
    m = parse_measurement(bytes.fromhex("00 7800 5000 5d00"))
    assert (m.systolic_mmhg, m.diastolic_mmhg, m.mean_arterial_pressure_mmhg) == (120, 80, 93)


def test_intermediate_cuff_pressure() -> None:
    # GSS Intermediate Cuff Pressure (0x2A36): cuff pressure in the systolic field, others NaN.
    m = parse_intermediate_cuff_pressure(bytes.fromhex("00 a000 ff07 ff07"))
    assert m.cuff_pressure_mmhg == 160.0
    assert math.isnan(m.diastolic_mmhg)
    assert math.isnan(m.mean_arterial_pressure_mmhg)
    assert encode_measurement(m) == bytes.fromhex("00 a000 ff07 ff07")


def test_unknown_user_kept() -> None:
    m = parse_measurement(bytes.fromhex("08 7800 5000 5d00 ff"))
    assert m.user_id == 255
    assert m.unknown_user


FULL = bytes.fromhex(f"1e 7800 5000 5d00 {T_BYTES} 4800 01 0400")


@pytest.mark.parametrize("cut", range(len(FULL)), ids=lambda n: f"first-{n}-bytes")
def test_truncated_measurement_raises(cut: int) -> None:
    with pytest.raises(ParseError) as info:
        parse_measurement(FULL[:cut])
    assert info.value.profile == "blood_pressure"


def test_over_long_measurement_raises() -> None:
    with pytest.raises(ParseError, match="trailing"):
        parse_measurement(FULL + b"\x00")


def test_invalid_time_stamp_raises() -> None:
    with pytest.raises(ParseError):
        parse_measurement(bytes.fromhex("02 7800 5000 5d00 ea070d19071e00"))  # month 13


@pytest.mark.parametrize(
    ("hex_data", "flags"),
    [
        ("0000", BloodPressureFeatureFlag(0)),
        ("3f00", BloodPressureFeatureFlag(0x3F)),
        ("0100", BloodPressureFeatureFlag.BODY_MOVEMENT_DETECTION),
        ("2000", BloodPressureFeatureFlag.MULTIPLE_BOND),
        ("0001", BloodPressureFeatureFlag(0x0100)),  # unknown bit kept
    ],
    ids=["none", "b0-b5 all", "b0 body movement", "b5 multiple bond", "b8 unknown kept"],
)
def test_feature_vectors(hex_data: str, flags: BloodPressureFeatureFlag) -> None:
    # GSS Blood Pressure Feature (0x2A49), u16.
    feature = parse_feature(bytes.fromhex(hex_data))
    assert feature == BloodPressureFeature(flags=flags)
    assert encode_feature(feature) == bytes.fromhex(hex_data)


def test_feature_supports() -> None:
    feature = parse_feature(bytes.fromhex("0500"))
    assert feature.supports(BloodPressureFeatureFlag.IRREGULAR_PULSE_DETECTION)
    assert not feature.supports(BloodPressureFeatureFlag.CUFF_FIT_DETECTION)


@pytest.mark.parametrize("hex_data", ["", "00", "000000"], ids=["empty", "1-byte", "3-bytes"])
def test_feature_bad_length(hex_data: str) -> None:
    with pytest.raises(ParseError):
        parse_feature(bytes.fromhex(hex_data))


def test_invalid_values_rejected_at_construction() -> None:
    with pytest.raises(ValueError):
        _bp(user_id=256)
    with pytest.raises(ValueError):
        _bp(timestamp=datetime(2026, 1, 1).astimezone())


# --- properties --------------------------------------------------------------------------------

SPECIAL = {0x7FE, 0x7FF, 0x800, 0x801, 0x802}
sfloats = st.one_of(
    st.integers(0, 0xFFFF)
    .filter(lambda raw: raw & 0x0FFF not in SPECIAL)
    .map(ieee11073.decode_sfloat),
    st.sampled_from([math.nan, math.inf, -math.inf]),
)
device_times = st.datetimes(
    min_value=datetime(1582, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)
).map(lambda d: d.replace(microsecond=0))
statuses = st.builds(
    BloodPressureStatus,
    body_movement=st.booleans(),
    cuff_too_loose=st.booleans(),
    irregular_pulse=st.booleans(),
    pulse_rate_range=st.sampled_from(list(PulseRateRange)),
    improper_position=st.booleans(),
)
measurements = st.builds(
    BloodPressureMeasurement,
    unit=st.sampled_from(list(PressureUnit)),
    systolic_as_sent=sfloats,
    diastolic_as_sent=sfloats,
    mean_arterial_pressure_as_sent=sfloats,
    timestamp=st.none() | device_times,
    pulse_rate_bpm=st.none() | sfloats,
    user_id=st.none() | st.integers(0, 255),
    status=st.none() | statuses,
)


@given(measurements)
@settings(max_examples=400)
def test_measurement_round_trip(m: BloodPressureMeasurement) -> None:
    assert parse_measurement(encode_measurement(m)) == m


@given(st.integers(0, 0xFFFF))
def test_feature_round_trip(raw: int) -> None:
    feature = BloodPressureFeature(flags=BloodPressureFeatureFlag(raw))
    assert parse_feature(encode_feature(feature)) == feature


@seed(2035)
@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=24))
def test_fuzz_only_parse_error(data: bytes) -> None:
    for parse in (parse_measurement, parse_feature):
        try:
            parse(data)
        except ParseError:
            pass
