"""Current Time Service codecs (CTS v1.1 section 3; GSS 3.62 Current Time 0x2A2B, Local Time
Information 0x2A0F)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vitalgate.drivers import current_time as cts
from vitalgate.drivers.current_time import (
    AdjustReason,
    CurrentTime,
    DayOfWeek,
    DstOffset,
    LocalTimeInformation,
)
from vitalgate.errors import ParseError

# 2024-03-15 08:30:05 was a Friday (ISO day 5).
FRI = datetime(2024, 3, 15, 8, 30, 5)
FRI_HEX = "e807030f081e05"

CURRENT_TIME_VECTORS = [
    pytest.param(
        FRI_HEX + "05" + "80" + "01",
        CurrentTime(FRI, DayOfWeek.FRIDAY, fractions256=128, adjust_reason=AdjustReason(1)),
        id="GSS-3.62-exact-time-256-manual-update",
    ),
    pytest.param(
        FRI_HEX + "05" + "00" + "06",
        CurrentTime(
            FRI,
            DayOfWeek.FRIDAY,
            adjust_reason=AdjustReason.EXTERNAL_REFERENCE_TIME_UPDATE
            | AdjustReason.CHANGE_OF_TIME_ZONE,
        ),
        id="GSS-3.62-adjust-reason-b1-b2",
    ),
    pytest.param(
        FRI_HEX + "05" + "ff" + "08",
        CurrentTime(FRI, DayOfWeek.FRIDAY, fractions256=255, adjust_reason=AdjustReason(8)),
        id="GSS-3.62-adjust-reason-b3-dst-fractions-255",
    ),
    pytest.param(
        "00000000000000" + "00" + "00" + "00",
        CurrentTime(None, DayOfWeek.UNKNOWN),
        id="GSS-3.70-date-time-not-known-day-of-week-0",
    ),
    pytest.param(
        FRI_HEX + "09" + "00" + "f0",
        CurrentTime(FRI, DayOfWeek(9), adjust_reason=AdjustReason(0xF0)),
        id="GSS-3.62-reserved-day-and-adjust-bits-kept",
    ),
]


@pytest.mark.parametrize(("payload", "expected"), CURRENT_TIME_VECTORS)
def test_current_time_vectors(payload: str, expected: CurrentTime) -> None:
    data = bytes.fromhex(payload)
    assert cts.parse_current_time(data) == expected
    assert cts.encode_current_time(expected) == data


def test_encode_from_datetime_to_set_device_clock() -> None:
    data = cts.encode_current_time(FRI.replace(microsecond=500_000))
    assert data == bytes.fromhex(FRI_HEX + "05" + "80" + "01")
    data = cts.encode_current_time(
        datetime(2024, 3, 17, 23, 59, 59, 999_999),
        adjust_reason=AdjustReason.EXTERNAL_REFERENCE_TIME_UPDATE,
    )
    assert data == bytes.fromhex("e8070311173b3b" + "07" + "ff" + "02")


def test_exact_time_adds_fractions() -> None:
    current = cts.parse_current_time(bytes.fromhex(FRI_HEX + "05" + "40" + "00"))
    assert current.exact_time == FRI + timedelta(seconds=0.25)
    assert CurrentTime(None, DayOfWeek.UNKNOWN).exact_time is None


def test_encode_rejects_aware_and_mixed_arguments() -> None:
    with pytest.raises(ValueError, match="naive"):
        cts.encode_current_time(datetime(2024, 3, 15, tzinfo=UTC))
    with pytest.raises(TypeError):
        cts.encode_current_time(
            CurrentTime(FRI, DayOfWeek.FRIDAY), adjust_reason=AdjustReason.MANUAL_TIME_UPDATE
        )
    with pytest.raises(ValueError, match="fractions256"):
        CurrentTime(FRI.replace(microsecond=1), DayOfWeek.FRIDAY)
    with pytest.raises(ValueError, match="fractions256"):
        CurrentTime(FRI, DayOfWeek.FRIDAY, fractions256=256)


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param("", id="empty"),
        pytest.param(FRI_HEX + "0580", id="adjust-reason-missing"),
        pytest.param(FRI_HEX + "058001ff", id="over-long"),
        pytest.param("e807020f181e05" + "058001", id="hour-24"),
        pytest.param("e807023e081e05" + "058001", id="feb-62"),
        pytest.param("0006030f081e05" + "058001", id="year-1536-before-1582"),
    ],
)
def test_malformed_current_time_raises_parse_error(payload: str) -> None:
    data = bytes.fromhex(payload)
    with pytest.raises(ParseError) as info:
        cts.parse_current_time(data)
    assert info.value.profile == "current_time"
    assert info.value.payload == data


LOCAL_TIME_VECTORS = [
    pytest.param("0000", LocalTimeInformation(0, DstOffset.STANDARD_TIME), timedelta(0), id="utc"),
    pytest.param(
        "0400",
        LocalTimeInformation(4, DstOffset.STANDARD_TIME),
        timedelta(hours=1),
        id="cet-winter",
    ),
    pytest.param(
        "0404",
        LocalTimeInformation(4, DstOffset.DAYLIGHT_TIME),
        timedelta(hours=2),
        id="cest-summer-dst-4",
    ),
    pytest.param(
        "ec04",
        LocalTimeInformation(-20, DstOffset.DAYLIGHT_TIME),
        timedelta(hours=-4),
        id="new-york-edt-negative-s8",
    ),
    pytest.param(
        "1600",
        LocalTimeInformation(22, DstOffset.STANDARD_TIME),
        timedelta(hours=5, minutes=30),
        id="india-half-hour-zone",
    ),
    pytest.param(
        "2a02",
        LocalTimeInformation(42, DstOffset.HALF_AN_HOUR_DAYLIGHT_TIME),
        timedelta(hours=11),
        id="lord-howe-half-hour-dst-2",
    ),
    pytest.param(
        "d008",
        LocalTimeInformation(-48, DstOffset.DOUBLE_DAYLIGHT_TIME),
        timedelta(hours=-10),
        id="minimum-zone-double-dst-8",
    ),
    pytest.param(
        "3800", LocalTimeInformation(56, DstOffset.STANDARD_TIME), timedelta(hours=14), id="max"
    ),
    pytest.param(
        "80ff", LocalTimeInformation(None, DstOffset.UNKNOWN), None, id="not-known-minus128-255"
    ),
    pytest.param("0401", LocalTimeInformation(4, DstOffset(1)), None, id="reserved-dst-code-kept"),
]


@pytest.mark.parametrize(("payload", "expected", "utc_offset"), LOCAL_TIME_VECTORS)
def test_local_time_information_vectors(
    payload: str, expected: LocalTimeInformation, utc_offset: timedelta | None
) -> None:
    data = bytes.fromhex(payload)
    parsed = cts.parse_local_time_information(data)
    assert parsed == expected
    assert parsed.utc_offset == utc_offset
    assert cts.encode_local_time_information(expected) == data


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param("", id="empty"),
        pytest.param("04", id="dst-missing"),
        pytest.param("040400", id="over-long"),
        pytest.param("3900", id="time-zone-57"),
        pytest.param("cf00", id="time-zone-minus-49"),
    ],
)
def test_malformed_local_time_information(payload: str) -> None:
    with pytest.raises(ParseError):
        cts.parse_local_time_information(bytes.fromhex(payload))


def test_local_time_information_for_datetime() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    summer = LocalTimeInformation.for_datetime(datetime(2024, 7, 1, 12, tzinfo=berlin))
    assert summer == LocalTimeInformation(4, DstOffset.DAYLIGHT_TIME)
    winter = LocalTimeInformation.for_datetime(datetime(2024, 1, 1, 12, tzinfo=berlin))
    assert winter == LocalTimeInformation(4, DstOffset.STANDARD_TIME)
    fixed = LocalTimeInformation.for_datetime(
        datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=-3, minutes=-30)))
    )
    assert fixed == LocalTimeInformation(-14, DstOffset.STANDARD_TIME)
    with pytest.raises(ValueError, match="aware"):
        LocalTimeInformation.for_datetime(datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="quarter"):
        LocalTimeInformation.for_datetime(
            datetime(2024, 1, 1, tzinfo=timezone(timedelta(minutes=10)))
        )


device_local = st.datetimes(
    min_value=datetime(1582, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)
)


@given(
    st.builds(
        CurrentTime,
        date_time=st.none() | device_local.map(lambda dt: dt.replace(microsecond=0)),
        day_of_week=st.integers(0, 255).map(DayOfWeek),
        fractions256=st.integers(0, 255),
        adjust_reason=st.integers(0, 255).map(AdjustReason),
    )
)
def test_current_time_round_trip(current: CurrentTime) -> None:
    assert cts.parse_current_time(cts.encode_current_time(current)) == current


@given(device_local)
def test_set_clock_from_datetime(value: datetime) -> None:
    parsed = cts.parse_current_time(cts.encode_current_time(value))
    assert parsed.date_time == value.replace(microsecond=0)
    assert parsed.day_of_week == value.isoweekday()
    assert parsed.exact_time is not None
    # floor to 1/256 s (3906.25 us): the device clock is never ahead of the requested time
    assert timedelta(0) <= value - parsed.exact_time <= timedelta(microseconds=3906)
    assert parsed.adjust_reason == AdjustReason.MANUAL_TIME_UPDATE


@given(
    st.builds(
        LocalTimeInformation,
        time_zone_quarter_hours=st.none() | st.integers(-48, 56),
        dst_offset=st.integers(0, 255).map(DstOffset),
    )
)
def test_local_time_information_round_trip(info: LocalTimeInformation) -> None:
    data = cts.encode_local_time_information(info)
    assert cts.parse_local_time_information(data) == info


def test_fuzz_only_parse_error() -> None:
    rng = random.Random(0x1805)
    decoded = 0
    for _ in range(4000):
        data = rng.randbytes(rng.choice((0, 1, 2, 3, 9, 10, 10, 10, 11)))
        for parse in (cts.parse_current_time, cts.parse_local_time_information):
            try:
                parse(data)
            except ParseError:
                continue
            decoded += 1
    assert decoded > 0
