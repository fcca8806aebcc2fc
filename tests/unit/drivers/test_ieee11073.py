"""IEEE 11073-20601 SFLOAT / FLOAT, the Date Time structure (0x2A08) and the byte helpers.

Vectors are worked out by hand from the number formats: SFLOAT = 4-bit exponent (bits 12-15)
+ 12-bit mantissa, FLOAT = 8-bit exponent + 24-bit mantissa, both two's complement; reserved
mantissas per IEEE 11073-20601 (also in the GSS "medfloat16" / "medfloat32" definitions).
"""

from __future__ import annotations

import math
from datetime import datetime

import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st

from vitalgate.drivers import ieee11073 as f
from vitalgate.drivers._bytes import ByteReader, ByteWriter, OpenIntEnum
from vitalgate.errors import ParseError

SFLOAT_SPECIAL_MANTISSAS = {0x7FE, 0x7FF, 0x800, 0x801, 0x802}


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (0x0000, 0.0),
        (0x0072, 114.0),
        (0xF4B5, 120.5),  # exponent -1, mantissa 1205
        (0xF014, 2.0),  # 2.0 with one decimal: the exponent carries precision
        (0x0002, 2.0),
        (0x0FFF, -1.0),  # mantissa 0xFFF = -1
        (0xFFF1, -1.5),  # exponent -1, mantissa -15
        (0x1002, 20.0),  # exponent +1
        (0x7001, 1e7),  # largest exponent
        (0x8001, 1e-8),  # smallest exponent
        (0x07FD, 2045.0),  # largest regular mantissa
        (0x0803, -2045.0),  # smallest regular mantissa
        (0xC00C, 0.0012),  # 120 mg/dL in kg/L
        (0x07FE, math.inf),
        (0x0802, -math.inf),
        (0x07FF, math.nan),
        (0x0800, math.nan),  # NRes
        (0x0801, math.nan),  # reserved
    ],
    ids=lambda v: f"{v:#06x}" if isinstance(v, int) else repr(v),
)
def test_decode_sfloat_vectors(raw: int, value: float) -> None:
    # IEEE 11073-20601 SFLOAT-Type; GSS medfloat16 special values +INF/NaN/NRes/RFU/-INF.
    assert _same(f.decode_sfloat(raw), value)


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (0x00000000, 0.0),
        (0xFF00016E, 36.6),  # exponent -1, mantissa 366
        (0xFE000001, 0.01),
        (0x00FFFFFF, -1.0),
        (0x02000005, 500.0),
        (0x007FFFFD, 8388605.0),  # largest regular mantissa
        (0x007FFFFE, math.inf),
        (0x00800002, -math.inf),
        (0x007FFFFF, math.nan),
        (0x00800000, math.nan),  # NRes
        (0x00800001, math.nan),  # reserved
    ],
    ids=lambda v: f"{v:#010x}" if isinstance(v, int) else repr(v),
)
def test_decode_float_vectors(raw: int, value: float) -> None:
    # IEEE 11073-20601 FLOAT-Type; GSS medfloat32 special values.
    assert _same(f.decode_float(raw), value)


@pytest.mark.parametrize(
    ("value", "exponent", "raw"),
    [
        (120.5, -1, 0xF4B5),
        (2.0, -1, 0xF014),
        (-1.5, -1, 0xFFF1),
        (20.0, 1, 0x1002),
        (0.0012, -4, 0xC00C),
        (1.25, -1, 0xF00C),  # 12.5 rounds half to even -> 12
        (math.nan, 0, 0x07FF),
        (math.inf, 0, 0x07FE),
        (-math.inf, 0, 0x0802),
    ],
    ids=["120.5", "2.0-one-decimal", "-1.5", "20-exp1", "kg/L", "half-even", "nan", "inf", "-inf"],
)
def test_encode_sfloat_vectors(value: float, exponent: int, raw: int) -> None:
    assert f.encode_sfloat(value, exponent) == raw


@pytest.mark.parametrize(
    ("value", "exponent"),
    [(2046.0, 0), (-2046.0, 0), (1.0, 8), (1.0, -9), (204.6, -1)],
    ids=["mantissa>2045", "mantissa<-2045", "exponent>7", "exponent<-8", "204.6-needs-2046"],
)
def test_encode_sfloat_out_of_range(value: float, exponent: int) -> None:
    with pytest.raises(ValueError):
        f.encode_sfloat(value, exponent)


def test_encode_float_vectors_and_range() -> None:
    assert f.encode_float(36.6, -1) == 0xFF00016E
    assert f.encode_float(math.nan, 0) == 0x007FFFFF
    assert f.encode_float(math.inf, 0) == 0x007FFFFE
    assert f.encode_float(-math.inf, 0) == 0x00800002
    with pytest.raises(ValueError):
        f.encode_float(8388606.0, 0)
    with pytest.raises(ValueError):
        f.encode_float(1.0, 128)


@pytest.mark.parametrize(
    ("value", "max_decimals", "raw"),
    [
        (120.5, 8, 0xF4B5),
        (2.0, 8, 0x0002),  # shortest exact exponent
        (30000.0, 1, 0x212C),  # too big for exponent 0: 300e2
        (0.0012, 8, 0xC00C),
        (120.123, 1, 0xF4B1),  # rounded to one decimal
        (120.123, 8, 0xF4B1),  # the finest exponent that fits is -1
        (math.nan, 0, 0x07FF),
    ],
    ids=["120.5", "2.0", "30000", "0.0012", "round-1dp", "finest-fit", "nan"],
)
def test_best_sfloat(value: float, max_decimals: int, raw: int) -> None:
    assert f.best_sfloat(value, max_decimals) == raw


def test_best_sfloat_too_large() -> None:
    with pytest.raises(ValueError):
        f.best_sfloat(2.046e10, 0)


def test_sfloat_exhaustive_round_trip() -> None:
    """Every regular SFLOAT re-encodes to itself with its exponent, and best_sfloat keeps the
    value (all 65536 codes: cheap and complete)."""
    for raw in range(0x10000):
        value = f.decode_sfloat(raw)
        if (raw & 0x0FFF) in SFLOAT_SPECIAL_MANTISSAS:
            assert math.isnan(value) or math.isinf(value)
            continue
        exponent = ((raw >> 12) ^ 0x8) - 0x8
        assert f.encode_sfloat(value, exponent) == raw
        assert f.decode_sfloat(f.best_sfloat(value, 8)) == value


@given(mantissa=st.integers(-(2**23 - 3), 2**23 - 3), exponent=st.integers(-128, 127))
@settings(max_examples=500)
def test_float_round_trip(mantissa: int, exponent: int) -> None:
    raw = ((exponent & 0xFF) << 24) | (mantissa & 0xFFFFFF)
    value = f.decode_float(raw)
    assert f.encode_float(value, exponent) == raw
    assert f.decode_float(f.best_float(value, 128)) == value


# --- Date Time (0x2A08) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (bytes.fromhex("ea070b19071e00"), datetime(2026, 11, 25, 7, 30, 0)),
        (bytes.fromhex("2e060101000000"), datetime(1582, 1, 1, 0, 0, 0)),
        (bytes.fromhex("0f270c1f173b3b"), datetime(9999, 12, 31, 23, 59, 59)),
        (bytes(7), None),  # all "not known"
        (bytes.fromhex("00000b19071e00"), None),  # year not known
        (bytes.fromhex("ea070019071e00"), None),  # month not known
        (bytes.fromhex("ea070b00071e00"), None),  # day not known
    ],
    ids=["2026-11-25T07:30", "min-year-1582", "max-9999", "unknown", "year-0", "month-0", "day-0"],
)
def test_parse_date_time(data: bytes, expected: datetime | None) -> None:
    # GSS Date Time: year 1582..9999 (0 unknown), month 1..12 (0 unknown), day 1..31 (0 unknown).
    assert f.parse_date_time(data) == expected


@pytest.mark.parametrize(
    "data",
    [
        bytes.fromhex("ea070d19071e00"),  # month 13
        bytes.fromhex("ea070b19181e00"),  # hour 24
        bytes.fromhex("ea070b19073c00"),  # minute 60
        bytes.fromhex("ea070b19071e3c"),  # second 60
        bytes.fromhex("ea07021e000000"),  # 30 February
        bytes.fromhex("e8030101000000"),  # year 1000 (< 1582)
        bytes.fromhex("ea070b19071e"),  # 6 bytes
        bytes.fromhex("ea070b19071e0000"),  # 8 bytes
    ],
    ids=["month-13", "hour-24", "minute-60", "second-60", "feb-30", "year-1000", "short", "long"],
)
def test_parse_date_time_invalid(data: bytes) -> None:
    with pytest.raises(ParseError):
        f.parse_date_time(data)


def test_encode_date_time() -> None:
    assert f.encode_date_time(datetime(2026, 11, 25, 7, 30, 0, 999)) == bytes.fromhex(
        "ea070b19071e00"
    )
    assert f.encode_date_time(None) == bytes(7)
    with pytest.raises(ValueError):
        f.encode_date_time(datetime(1500, 1, 1))


@given(st.datetimes(min_value=datetime(1582, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)))
@settings(max_examples=300)
def test_date_time_round_trip(moment: datetime) -> None:
    moment = moment.replace(microsecond=0)
    assert f.parse_date_time(f.encode_date_time(moment)) == moment


@seed(11073)
@settings(max_examples=2000, deadline=None)
@given(st.binary(min_size=0, max_size=9))
def test_fuzz_date_time_only_parse_error(data: bytes) -> None:
    try:
        result = f.parse_date_time(data)
    except ParseError:
        return
    assert result is None or isinstance(result, datetime)


# --- ByteReader / ByteWriter -------------------------------------------------------------------


def test_byte_reader_reads_little_endian() -> None:
    reader = ByteReader(bytes.fromhex("01 0201 feff 030201 04030201 fcffffff ff"), "test")
    assert reader.u8() == 1
    assert reader.u16() == 0x0102
    assert reader.s16() == -2
    assert reader.u24() == 0x010203
    assert reader.u32() == 0x01020304
    assert reader.s32() == -4
    assert reader.remaining == 1
    assert reader.s8() == -1
    reader.expect_end()


def test_byte_reader_short_read_is_parse_error_with_offset() -> None:
    reader = ByteReader(b"\x01\x02\x03", "test")
    reader.u16()
    with pytest.raises(ParseError) as info:
        reader.u16("field")
    assert info.value.profile == "test"
    assert info.value.offset == 2
    assert info.value.payload == b"\x01\x02\x03"
    assert "field" in str(info.value)


def test_byte_reader_expect_end_rejects_trailing() -> None:
    reader = ByteReader(b"\x01\x02", "test")
    reader.u8()
    with pytest.raises(ParseError) as info:
        reader.expect_end()
    assert info.value.offset == 1


def test_byte_reader_date_time_error_points_at_field() -> None:
    reader = ByteReader(b"\x00" + bytes.fromhex("ea070d19071e00"), "test")
    reader.u8()
    with pytest.raises(ParseError) as info:
        reader.date_time()
    assert info.value.offset == 1


def test_byte_writer_matches_reader() -> None:
    data = (
        ByteWriter()
        .u8(1)
        .u16(0x0102)
        .s16(-2)
        .u24(0x010203)
        .u32(0x01020304)
        .s32(-4)
        .s8(-1)
        .sfloat(120.5)
        .float32(36.6, 1)
        .date_time(datetime(2026, 11, 25, 7, 30))
        .bytes_(b"\xaa")
        .getvalue()
    )
    assert data == bytes.fromhex("01 0201 feff 030201 04030201 fcffffff ff b5f4 6e0100ff") + (
        bytes.fromhex("ea070b19071e00aa")
    )
    with pytest.raises(ValueError):
        ByteWriter().u8(256)
    with pytest.raises(ValueError):
        ByteWriter().s16(0x8000)


def test_open_int_enum_keeps_unknown_codes() -> None:
    class Colour(OpenIntEnum):
        RED = 1

    assert Colour(1) is Colour.RED
    unknown = Colour(9)
    assert unknown == 9
    assert int(unknown) == 9
    assert "9" in unknown.name
