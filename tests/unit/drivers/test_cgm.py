"""Continuous Glucose Monitoring Service codecs (CGMS v1.0.1 section 3, GSS CGM characteristics).

CGM Measurement record: size u8, flags u8 (b0 trend, b1 quality, b5 Warning-Octet, b6 Cal/Temp-
Octet, b7 Status-Octet), glucose SFLOAT mg/dL, time offset u16 min, the present annunciation
octets least significant first as in the GSS 24-bit layout (Status, Cal/Temp, Warning), trend
SFLOAT, quality SFLOAT, [E2E-CRC]. E2E-CRC: CRC-CCITT (x^16+x^12+x^5+1) LSB first, seed 0xFFFF
("CRC-16/MCRF4XX", check value 0x6F91); the CRC bytes in these vectors were computed with that
definition, which test_e2e_crc_* pins down independently.
"""

from __future__ import annotations

import binascii
import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st

from vitalgate.drivers import cgm, ieee11073
from vitalgate.drivers.cgm import (
    ATT_ERROR_INVALID_CRC,
    ATT_ERROR_MISSING_CRC,
    CalibrationRecord,
    CalibrationStatus,
    CgmCalTempOctet,
    CgmCrcError,
    CgmFeature,
    CgmFeatureFlag,
    CgmMeasurement,
    CgmSampleLocation,
    CgmSensorStatus,
    CgmSessionRunTime,
    CgmSessionStartTime,
    CgmStatus,
    CgmStatusOctet,
    CgmWarningOctet,
    DstOffset,
    SampleType,
    SocpMessage,
    SocpOpcode,
    SocpRequestError,
    SocpResponseCode,
)
from vitalgate.errors import ParseError

T = datetime(2026, 11, 25, 7, 30, 0)
T_HEX = "ea070b19071e00"


# --- E2E-CRC -----------------------------------------------------------------------------------


def _reflect(value: int, bits: int) -> int:
    return int(f"{value:0{bits}b}"[::-1], 2)


def _crc_oracle(data: bytes) -> int:
    # CRC-CCITT processed LSB first == the MSB-first CRC (binascii.crc_hqx, poly 0x1021) over
    # bit-reversed bytes, bit-reversed at the end.
    reflected = bytes(_reflect(b, 8) for b in data)
    return _reflect(binascii.crc_hqx(reflected, 0xFFFF), 16)


def test_e2e_crc_check_value() -> None:
    # CRC-16/MCRF4XX catalogue check value.
    assert cgm.e2e_crc(b"123456789") == 0x6F91
    assert cgm.e2e_crc(b"") == 0xFFFF


@given(st.binary(max_size=40))
def test_e2e_crc_matches_oracle(data: bytes) -> None:
    assert cgm.e2e_crc(data) == _crc_oracle(data)


# --- CGM Measurement ---------------------------------------------------------------------------

MINIMAL = CgmMeasurement(glucose_mg_dl=120.0, time_offset_min=5)
WITH_TREND = CgmMeasurement(
    glucose_mg_dl=120.0, time_offset_min=5, trend_mg_dl_per_min=-1.5, quality_pct=95.0
)
WITH_OCTETS = CgmMeasurement(
    glucose_mg_dl=120.0,
    time_offset_min=5,
    warning_octet=CgmWarningOctet.BELOW_PATIENT_LOW,
    cal_temp_octet=CgmCalTempOctet.CALIBRATION_RECOMMENDED,
    status_octet=CgmStatusOctet.DEVICE_BATTERY_LOW,
)

MEASUREMENTS = [
    pytest.param("06 00 7800 0500", False, [MINIMAL], True, id="CGMS CGM Measurement minimal"),
    pytest.param(
        "0a 03 7800 0500 f1ff 5f00",
        False,
        [WITH_TREND],
        True,
        id="CGMS flags 0x03 trend -1.5 mg/dL/min, quality 95 %",
    ),
    pytest.param(
        "09 e0 7800 0500 02 04 01",
        False,
        [WITH_OCTETS],
        True,
        id="GSS CGM Measurement flags 0xE0 Status, Cal/Temp, Warning octets (LSO first)",
    ),
    pytest.param(
        "07 80 7800 0500 00",
        False,
        [CgmMeasurement(120.0, 5, status_octet=CgmStatusOctet(0))],
        True,
        id="CGMS flags 0x80 Status-Octet present and zero",
    ),
    pytest.param(
        "06 00 7800 0500 0a 03 7800 0500 f1ff 5f00",
        False,
        [MINIMAL, WITH_TREND],
        True,
        id="CGMS two records in one notification",
    ),
    pytest.param(
        "06 1c 7800 0500", False, [MINIMAL], False, id="CGMS reserved flag bits b2-b4 ignored"
    ),
    pytest.param(
        "06 00 ff07 ffff",
        False,
        [CgmMeasurement(math.nan, 0xFFFF)],
        True,
        id="CGMS glucose NaN, max time offset",
    ),
    pytest.param("08 00 7800 0500 0de8", True, [MINIMAL], True, id="CGMS E2E-CRC minimal"),
    pytest.param(
        "0c 03 7800 0500 f1ff 5f00 2bdf",
        True,
        [WITH_TREND],
        True,
        id="CGMS E2E-CRC with trend and quality",
    ),
    pytest.param(
        "0b e0 7800 0500 02 04 01 93d5",
        True,
        [WITH_OCTETS],
        True,
        id="CGMS E2E-CRC with annunciation octets",
    ),
    pytest.param(
        "08 00 7800 0500 0de8 0b e0 7800 0500 02 04 01 93d5",
        True,
        [MINIMAL, WITH_OCTETS],
        True,
        id="CGMS E2E-CRC two records, each with its own CRC",
    ),
]


@pytest.mark.parametrize(("hex_data", "e2e", "expected", "canonical"), MEASUREMENTS)
def test_measurement_vectors(
    hex_data: str, e2e: bool, expected: list[CgmMeasurement], canonical: bool
) -> None:
    data = bytes.fromhex(hex_data)
    assert cgm.parse_measurements(data, e2e_crc=e2e) == expected
    if canonical:
        assert cgm.encode_measurements(expected, e2e_crc=e2e) == data


def test_sensor_status_combines_octets() -> None:
    status = WITH_OCTETS.sensor_status
    assert status == (
        CgmSensorStatus.DEVICE_BATTERY_LOW
        | CgmSensorStatus.CALIBRATION_RECOMMENDED
        | CgmSensorStatus.BELOW_PATIENT_LOW
    )
    assert int(status) == 0x01_04_02
    assert MINIMAL.sensor_status == CgmSensorStatus(0)


@given(octets=st.tuples(*[st.integers(0, 0xFF)] * 3))
def test_measurement_octets_match_cgm_status_layout(octets: tuple[int, int, int]) -> None:
    """GSS: CGM Status's 24-bit field is "identical to the structure of the combined Status
    fields" of the measurement, so three present octets read the same in both."""
    raw = bytes(octets)
    measurement = cgm.parse_measurements(b"\x09\xe0\x78\x00\x05\x00" + raw, e2e_crc=False)[0]
    status = cgm.parse_status(b"\x05\x00" + raw, e2e_crc=False)
    assert measurement.sensor_status == status.status


def test_wrong_crc_raises_crc_error() -> None:
    with pytest.raises(CgmCrcError) as info:
        cgm.parse_measurements(bytes.fromhex("08 00 7800 0500 0de9"), e2e_crc=True)
    assert info.value.att_error == ATT_ERROR_INVALID_CRC
    assert isinstance(info.value, ParseError)


@pytest.mark.parametrize(
    ("hex_data", "e2e"),
    [
        ("", False),
        ("06", False),
        ("06 00 7800 05", False),  # truncated record
        ("0a 00 7800 0500", False),  # size beyond the data
        ("07 00 7800 0500 00", False),  # size disagrees with flags
        ("05 00 7800 05", False),  # size below the minimum
        ("00", False),
        ("06 00 7800 0500", True),  # E2E-CRC expected but absent
        ("08 00 7800 0500 0de8", False),  # CRC present but not announced
        ("06 00 7800 0500 00", False),  # trailing byte after a record
        ("0a 03 7800 0500 f1ff", False),  # quality missing
    ],
    ids=[
        "empty",
        "size-only",
        "truncated",
        "size-beyond-data",
        "size-vs-flags",
        "size-5",
        "size-0",
        "missing-crc",
        "unannounced-crc",
        "trailing-byte",
        "quality-missing",
    ],
)
def test_measurement_malformed(hex_data: str, e2e: bool) -> None:
    with pytest.raises(ParseError) as info:
        cgm.parse_measurements(bytes.fromhex(hex_data), e2e_crc=e2e)
    assert info.value.profile == "cgm"


# --- CGM Feature -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hex_data", "expected"),
    [
        pytest.param(
            "00 8001 59 ffff",
            CgmFeature(
                CgmFeatureFlag.TREND_INFORMATION | CgmFeatureFlag.QUALITY,
                SampleType.INTERSTITIAL_FLUID,
                CgmSampleLocation.SUBCUTANEOUS_TISSUE,
            ),
            id="CGMS Feature no E2E-CRC: CRC field 0xFFFF, type ISF low nibble, location 5 high",
        ),
        pytest.param(
            "00 9001 59 c45c",
            CgmFeature(
                CgmFeatureFlag.TREND_INFORMATION | CgmFeatureFlag.QUALITY | CgmFeatureFlag.E2E_CRC,
                SampleType.INTERSTITIAL_FLUID,
                CgmSampleLocation.SUBCUTANEOUS_TISSUE,
            ),
            id="CGMS Feature with E2E-CRC over the first 4 bytes",
        ),
        pytest.param(
            "ffef01 f9 ffff",
            CgmFeature(
                CgmFeatureFlag(0x01EFFF),
                SampleType.INTERSTITIAL_FLUID,
                CgmSampleLocation.NOT_AVAILABLE,
            ),
            id="CGMS Feature every bit but E2E-CRC",
        ),
    ],
)
def test_feature_vectors(hex_data: str, expected: CgmFeature) -> None:
    data = bytes.fromhex(hex_data)
    assert cgm.parse_feature(data) == expected
    assert cgm.encode_feature(expected) == data


def test_feature_e2e_flag_and_crc_check() -> None:
    assert cgm.parse_feature(bytes.fromhex("00900159c45c")).e2e_crc_supported
    with pytest.raises(CgmCrcError):
        cgm.parse_feature(bytes.fromhex("00900159c45d"))
    # Without E2E-CRC support the field "shall be set to 0xFFFF".
    assert not cgm.parse_feature(bytes.fromhex("00800159ffff")).e2e_crc_supported
    with pytest.raises(ParseError, match="0xFFFF"):
        cgm.parse_feature(bytes.fromhex("0080015912ab"))


@pytest.mark.parametrize("hex_data", ["", "008001", "00800159ff", "00800159ffff00"])
def test_feature_bad_length(hex_data: str) -> None:
    with pytest.raises(ParseError):
        cgm.parse_feature(bytes.fromhex(hex_data))


# --- CGM Status, Session Start Time, Session Run Time ------------------------------------------


@pytest.mark.parametrize(
    ("hex_data", "e2e", "expected"),
    [
        pytest.param(
            "0500 010000", False, CgmStatus(5, CgmSensorStatus.SESSION_STOPPED), id="CGMS Status"
        ),
        pytest.param(
            "0500 010000 004c",
            True,
            CgmStatus(5, CgmSensorStatus.SESSION_STOPPED),
            id="CGMS Status with E2E-CRC",
        ),
        pytest.param(
            "ffff 3f3fff",
            False,
            CgmStatus(0xFFFF, CgmSensorStatus(0xFF3F3F)),
            id="CGMS Status all defined bits",
        ),
    ],
)
def test_status_vectors(hex_data: str, e2e: bool, expected: CgmStatus) -> None:
    data = bytes.fromhex(hex_data)
    assert cgm.parse_status(data, e2e_crc=e2e) == expected
    assert cgm.encode_status(expected, e2e_crc=e2e) == data


@pytest.mark.parametrize(
    ("hex_data", "e2e", "expected", "start_utc"),
    [
        pytest.param(
            f"{T_HEX} 04 00",
            False,
            CgmSessionStartTime(T, 4, DstOffset.STANDARD_TIME),
            datetime(2026, 11, 25, 6, 30, tzinfo=UTC),
            id="CGMS Session Start Time UTC+1 standard time",
        ),
        pytest.param(
            f"{T_HEX} 04 00 b5c8",
            True,
            CgmSessionStartTime(T, 4, DstOffset.STANDARD_TIME),
            datetime(2026, 11, 25, 6, 30, tzinfo=UTC),
            id="CGMS Session Start Time with E2E-CRC",
        ),
        pytest.param(
            f"{T_HEX} 04 04",
            False,
            CgmSessionStartTime(T, 4, DstOffset.DAYLIGHT),
            datetime(2026, 11, 25, 5, 30, tzinfo=UTC),
            id="CGMS Session Start Time UTC+1 plus DST 1 h",
        ),
        pytest.param(
            f"{T_HEX} ec 02",
            False,
            CgmSessionStartTime(T, -20, DstOffset.HALF_HOUR_DAYLIGHT),
            datetime(2026, 11, 25, 12, 0, tzinfo=UTC),
            id="CGMS Session Start Time UTC-5 plus half-hour DST",
        ),
        pytest.param(
            f"{T_HEX} 80 ff",
            False,
            CgmSessionStartTime(T, cgm.TIME_ZONE_UNKNOWN, DstOffset.UNKNOWN),
            None,
            id="CGMS Session Start Time zone and DST unknown",
        ),
        pytest.param(
            f"{'00' * 7} 00 00",
            False,
            CgmSessionStartTime(None, 0, DstOffset.STANDARD_TIME),
            None,
            id="CGMS Session Start Time not known",
        ),
    ],
)
def test_session_start_time_vectors(
    hex_data: str, e2e: bool, expected: CgmSessionStartTime, start_utc: datetime | None
) -> None:
    data = bytes.fromhex(hex_data)
    parsed = cgm.parse_session_start_time(data, e2e_crc=e2e)
    assert parsed == expected
    assert parsed.start_utc == start_utc
    assert cgm.encode_session_start_time(expected, e2e_crc=e2e) == data


def test_session_start_time_offsets() -> None:
    sst = CgmSessionStartTime(T, 56, DstOffset.DOUBLE_DAYLIGHT)
    assert sst.utc_offset == timedelta(hours=16)
    assert CgmSessionStartTime(T, 57, DstOffset.STANDARD_TIME).utc_offset is None  # reserved
    assert CgmSessionStartTime(T, 0, DstOffset(1)).utc_offset is None  # reserved DST code


@pytest.mark.parametrize(
    ("hex_data", "e2e", "hours"),
    [
        pytest.param("a800", False, 168, id="CGMS Session Run Time 168 h"),
        pytest.param("a800 8791", True, 168, id="CGMS Session Run Time with E2E-CRC"),
    ],
)
def test_session_run_time_vectors(hex_data: str, e2e: bool, hours: int) -> None:
    data = bytes.fromhex(hex_data)
    assert cgm.parse_session_run_time(data, e2e_crc=e2e) == CgmSessionRunTime(hours)
    assert cgm.encode_session_run_time(CgmSessionRunTime(hours), e2e_crc=e2e) == data


@pytest.mark.parametrize(
    ("parser", "hex_data", "e2e"),
    [
        (cgm.parse_status, "0500 0100", False),
        (cgm.parse_status, "0500 010000 00", False),
        (cgm.parse_status, "0500 010000", True),
        (cgm.parse_status, "0500 010000 004d", True),
        (cgm.parse_session_start_time, f"{T_HEX} 04", False),
        (cgm.parse_session_start_time, f"{T_HEX} 04 00 00", False),
        (cgm.parse_session_start_time, "ea070d19071e00 04 00", False),
        (cgm.parse_session_run_time, "a8", False),
        (cgm.parse_session_run_time, "a800 00", False),
        (cgm.parse_session_run_time, "a800 8792", True),
    ],
    ids=[
        "status-short",
        "status-long",
        "status-missing-crc",
        "status-bad-crc",
        "sst-short",
        "sst-long",
        "sst-month-13",
        "srt-short",
        "srt-long",
        "srt-bad-crc",
    ],
)
def test_malformed_small_characteristics(parser: object, hex_data: str, e2e: bool) -> None:
    with pytest.raises(ParseError):
        parser(bytes.fromhex(hex_data), e2e_crc=e2e)  # type: ignore[operator]


# --- Specific Ops Control Point ----------------------------------------------------------------

CALIBRATION = CalibrationRecord(
    glucose_mg_dl=120.0,
    calibration_time_min=10,
    sample_type=SampleType.CAPILLARY_WHOLE_BLOOD,
    sample_location=CgmSampleLocation.FINGER,
    next_calibration_time_min=15,
    record_number=1,
    status=CalibrationStatus(0),
)

SOCP = [
    pytest.param("1a", False, SocpMessage(SocpOpcode.START_SESSION), id="CGMS SOCP 0x1A start"),
    pytest.param(
        "1a 5cb0", True, SocpMessage(SocpOpcode.START_SESSION), id="CGMS SOCP start with CRC"
    ),
    pytest.param("1b", False, SocpMessage(SocpOpcode.STOP_SESSION), id="CGMS SOCP 0x1B stop"),
    pytest.param(
        "01 05",
        False,
        SocpMessage(SocpOpcode.SET_COMMUNICATION_INTERVAL, communication_interval_min=5),
        id="CGMS SOCP 0x01 set communication interval 5 min",
    ),
    pytest.param(
        "01 05 cdbe",
        True,
        SocpMessage(SocpOpcode.SET_COMMUNICATION_INTERVAL, communication_interval_min=5),
        id="CGMS SOCP 0x01 with CRC",
    ),
    pytest.param(
        "02", False, SocpMessage(SocpOpcode.GET_COMMUNICATION_INTERVAL), id="CGMS SOCP 0x02 get"
    ),
    pytest.param(
        "04 7800 0a00 11 0f00 0100 00",
        False,
        SocpMessage(SocpOpcode.SET_GLUCOSE_CALIBRATION_VALUE, calibration=CALIBRATION),
        id="CGMS SOCP 0x04 set calibration record",
    ),
    pytest.param(
        "05 ffff",
        False,
        SocpMessage(SocpOpcode.GET_GLUCOSE_CALIBRATION_VALUE, record_number=0xFFFF),
        id="CGMS SOCP 0x05 get last calibration",
    ),
    pytest.param(
        "0d 4600",
        False,
        SocpMessage(SocpOpcode.SET_HYPO_ALERT_LEVEL, level_mg_dl=70.0),
        id="CGMS SOCP 0x0D set hypo alert 70 mg/dL",
    ),
    pytest.param(
        "16 0200",
        False,
        SocpMessage(SocpOpcode.SET_RATE_OF_INCREASE_ALERT_LEVEL, rate_mg_dl_per_min=2.0),
        id="CGMS SOCP 0x16 set rate of increase 2 mg/dL/min",
    ),
    pytest.param(
        "19", False, SocpMessage(SocpOpcode.RESET_DEVICE_SPECIFIC_ALERT), id="CGMS SOCP 0x19"
    ),
]

SOCP_RESPONSES = [
    pytest.param(
        "1c 1a 01",
        False,
        SocpMessage.response_to(SocpOpcode.START_SESSION, SocpResponseCode.SUCCESS),
        id="CGMS SOCP 0x1C response to start: success",
    ),
    pytest.param(
        "1c 1a 01 6d60",
        True,
        SocpMessage.response_to(SocpOpcode.START_SESSION, SocpResponseCode.SUCCESS),
        id="CGMS SOCP 0x1C with CRC",
    ),
    *[
        pytest.param(
            f"1c 01 {code:02x}",
            False,
            SocpMessage.response_to(SocpOpcode.SET_COMMUNICATION_INTERVAL, code),
            id=f"CGMS SOCP response code {int(code)} {code.name}",
        )
        for code in SocpResponseCode
    ],
    pytest.param(
        "03 ff",
        False,
        SocpMessage(SocpOpcode.COMMUNICATION_INTERVAL_RESPONSE, communication_interval_min=0xFF),
        id="CGMS SOCP 0x03 interval response: fastest",
    ),
    pytest.param(
        "06 7800 0a00 11 0f00 0100 00",
        False,
        SocpMessage(SocpOpcode.GLUCOSE_CALIBRATION_VALUE_RESPONSE, calibration=CALIBRATION),
        id="CGMS SOCP 0x06 calibration response",
    ),
    pytest.param(
        "0f 4600",
        False,
        SocpMessage(SocpOpcode.HYPO_ALERT_LEVEL_RESPONSE, level_mg_dl=70.0),
        id="CGMS SOCP 0x0F hypo alert response",
    ),
]


@pytest.mark.parametrize(("hex_data", "e2e", "expected"), SOCP)
def test_socp_request_vectors(hex_data: str, e2e: bool, expected: SocpMessage) -> None:
    data = bytes.fromhex(hex_data)
    assert cgm.parse_socp_request(data, e2e_crc=e2e) == expected
    assert cgm.encode_socp(expected, e2e_crc=e2e) == data
    assert not expected.is_response


@pytest.mark.parametrize(("hex_data", "e2e", "expected"), SOCP_RESPONSES)
def test_socp_response_vectors(hex_data: str, e2e: bool, expected: SocpMessage) -> None:
    data = bytes.fromhex(hex_data)
    assert cgm.parse_socp_response(data, e2e_crc=e2e) == expected
    assert cgm.encode_socp(expected, e2e_crc=e2e) == data
    assert expected.is_response


def test_socp_opcodes_are_complete() -> None:
    assert [int(op) for op in SocpOpcode] == list(range(0x01, 0x1D))
    assert [int(c) for c in SocpResponseCode] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    ("hex_data", "code"),
    [
        ("03 05", SocpResponseCode.OPCODE_NOT_SUPPORTED),  # a response opcode
        ("1c 1a 01", SocpResponseCode.OPCODE_NOT_SUPPORTED),
        ("20", SocpResponseCode.OPCODE_NOT_SUPPORTED),
        ("00", SocpResponseCode.OPCODE_NOT_SUPPORTED),
        ("01", SocpResponseCode.INVALID_OPERAND),
        ("01 05 00", SocpResponseCode.INVALID_OPERAND),
        ("1a 00", SocpResponseCode.INVALID_OPERAND),
        ("04 7800 0a00 11 0f00 0100", SocpResponseCode.INVALID_OPERAND),
    ],
    ids=[
        "response-opcode",
        "response-code-opcode",
        "opcode-0x20",
        "opcode-0",
        "interval-missing",
        "interval-long",
        "start-with-operand",
        "calibration-short",
    ],
)
def test_socp_request_refusals(hex_data: str, code: SocpResponseCode) -> None:
    data = bytes.fromhex(hex_data)
    with pytest.raises(SocpRequestError) as info:
        cgm.parse_socp_request(data, e2e_crc=False)
    assert info.value.response_code is code
    assert info.value.response() == SocpMessage.response_to(data[0], code)


@pytest.mark.parametrize(
    ("hex_data", "att_error"),
    [("1a", ATT_ERROR_MISSING_CRC), ("1a 5cb1", ATT_ERROR_INVALID_CRC)],
    ids=["missing-crc", "invalid-crc"],
)
def test_socp_crc_errors(hex_data: str, att_error: int) -> None:
    with pytest.raises(CgmCrcError) as info:
        cgm.parse_socp_request(bytes.fromhex(hex_data), e2e_crc=True)
    assert info.value.att_error == att_error


@pytest.mark.parametrize("hex_data", ["", "1a", "1c 1a", "1c 1a 01 00", "03"])
def test_socp_response_rejects(hex_data: str) -> None:
    with pytest.raises(ParseError):
        cgm.parse_socp_response(bytes.fromhex(hex_data), e2e_crc=False)


def test_socp_message_validation() -> None:
    with pytest.raises(ValueError):
        SocpMessage(SocpOpcode.START_SESSION, communication_interval_min=1)
    with pytest.raises(ValueError):
        SocpMessage(SocpOpcode.SET_HYPO_ALERT_LEVEL)
    with pytest.raises(ValueError):
        SocpMessage(SocpOpcode(0x30))


# --- properties --------------------------------------------------------------------------------

SPECIAL = {0x7FE, 0x7FF, 0x800, 0x801, 0x802}
sfloats = st.one_of(
    st.integers(0, 0xFFFF)
    .filter(lambda raw: raw & 0x0FFF not in SPECIAL)
    .map(ieee11073.decode_sfloat),
    st.sampled_from([math.nan, math.inf, -math.inf]),
)
octets = st.integers(0, 0xFF)
measurements = st.builds(
    CgmMeasurement,
    glucose_mg_dl=sfloats,
    time_offset_min=st.integers(0, 0xFFFF),
    status_octet=st.none() | octets.map(CgmStatusOctet),
    cal_temp_octet=st.none() | octets.map(CgmCalTempOctet),
    warning_octet=st.none() | octets.map(CgmWarningOctet),
    trend_mg_dl_per_min=st.none() | sfloats,
    quality_pct=st.none() | sfloats,
)


@given(st.lists(measurements, min_size=1, max_size=4), st.booleans())
@settings(max_examples=300)
def test_measurement_round_trip(records: list[CgmMeasurement], e2e: bool) -> None:
    data = cgm.encode_measurements(records, e2e_crc=e2e)
    assert cgm.parse_measurements(data, e2e_crc=e2e) == records


features = st.builds(
    CgmFeature,
    features=st.integers(0, 0xFFFFFF).map(CgmFeatureFlag),
    sample_type=st.integers(0, 15).map(SampleType),
    sample_location=st.integers(0, 15).map(CgmSampleLocation),
)


@given(features)
def test_feature_round_trip(feature: CgmFeature) -> None:
    assert cgm.parse_feature(cgm.encode_feature(feature)) == feature


device_times = st.datetimes(
    min_value=datetime(1582, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)
).map(lambda d: d.replace(microsecond=0))


@given(
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFF),
    st.none() | device_times,
    st.integers(-128, 127),
    octets,
    st.booleans(),
)
@settings(max_examples=200)
def test_small_characteristics_round_trip(
    offset: int, status: int, start: datetime | None, zone: int, dst: int, e2e: bool
) -> None:
    cgm_status = CgmStatus(offset, CgmSensorStatus(status))
    assert cgm.parse_status(cgm.encode_status(cgm_status, e2e_crc=e2e), e2e_crc=e2e) == cgm_status
    sst = CgmSessionStartTime(start, zone, DstOffset(dst))
    encoded = cgm.encode_session_start_time(sst, e2e_crc=e2e)
    assert cgm.parse_session_start_time(encoded, e2e_crc=e2e) == sst
    srt = CgmSessionRunTime(offset)
    encoded = cgm.encode_session_run_time(srt, e2e_crc=e2e)
    assert cgm.parse_session_run_time(encoded, e2e_crc=e2e) == srt


calibrations = st.builds(
    CalibrationRecord,
    glucose_mg_dl=sfloats,
    calibration_time_min=st.integers(0, 0xFFFF),
    sample_type=st.integers(0, 15).map(SampleType),
    sample_location=st.integers(0, 15).map(CgmSampleLocation),
    next_calibration_time_min=st.integers(0, 0xFFFF),
    record_number=st.integers(0, 0xFFFF),
    status=octets.map(CalibrationStatus),
)


@st.composite
def socp_messages(draw: st.DrawFn) -> SocpMessage:
    opcode = draw(st.sampled_from(list(SocpOpcode)))
    kind = cgm._OPERANDS[opcode]
    operands: dict[object, dict[str, object]] = {
        cgm._Operand.NONE: {},
        cgm._Operand.INTERVAL: {"communication_interval_min": draw(octets)},
        cgm._Operand.CALIBRATION: {"calibration": draw(calibrations)},
        cgm._Operand.RECORD_NUMBER: {"record_number": draw(st.integers(0, 0xFFFF))},
        cgm._Operand.LEVEL: {"level_mg_dl": draw(sfloats)},
        cgm._Operand.RATE: {"rate_mg_dl_per_min": draw(sfloats)},
        cgm._Operand.RESPONSE: {
            "request_opcode": SocpOpcode(draw(octets)),
            "response_code": SocpResponseCode(draw(octets)),
        },
    }
    return SocpMessage(opcode, **operands[kind])  # type: ignore[arg-type]


@given(socp_messages(), st.booleans())
@settings(max_examples=300)
def test_socp_round_trip(message: SocpMessage, e2e: bool) -> None:
    data = cgm.encode_socp(message, e2e_crc=e2e)
    parse = cgm.parse_socp_response if message.is_response else cgm.parse_socp_request
    assert parse(data, e2e_crc=e2e) == message


@seed(2027)
@settings(max_examples=2500, deadline=None)
@given(st.binary(max_size=32), st.booleans())
def test_fuzz_only_parse_error(data: bytes, e2e: bool) -> None:
    parsers = (
        lambda d: cgm.parse_measurements(d, e2e_crc=e2e),
        cgm.parse_feature,
        lambda d: cgm.parse_status(d, e2e_crc=e2e),
        lambda d: cgm.parse_session_start_time(d, e2e_crc=e2e),
        lambda d: cgm.parse_session_run_time(d, e2e_crc=e2e),
        lambda d: cgm.parse_socp_request(d, e2e_crc=e2e),
        lambda d: cgm.parse_socp_response(d, e2e_crc=e2e),
    )
    for parse in parsers:
        try:
            parse(data)
        except ParseError:
            pass


@seed(2028)
@settings(max_examples=500, deadline=None)
@given(st.lists(measurements, min_size=1, max_size=3), st.data())
def test_fuzz_corrupted_crc_records(records: list[CgmMeasurement], data: st.DataObject) -> None:
    """Flipping any bit of a CRC-protected notification is detected (or, if it hits a size
    byte, rejected as malformed): never a silently wrong reading."""
    encoded = bytearray(cgm.encode_measurements(records, e2e_crc=True))
    position = data.draw(st.integers(0, len(encoded) - 1))
    encoded[position] ^= 1 << data.draw(st.integers(0, 7))
    with pytest.raises(ParseError):
        cgm.parse_measurements(bytes(encoded), e2e_crc=True)
