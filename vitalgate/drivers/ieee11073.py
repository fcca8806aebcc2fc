"""IEEE 11073-20601 numbers (SFLOAT, FLOAT) and the Bluetooth Date Time structure (0x2A08).

References:

* IEEE 11073-20601 (Personal Health Devices, Optimized Exchange Protocol),
  ("FLOAT-Type" / "SFLOAT-Type"), as used by the Bluetooth GATT Specification Supplement (GSS)
  data types "medfloat16" (= SFLOAT) and "medfloat32" (= FLOAT).
* GSS "Date Time" (0x2A08): year u16 (1582..9999, 0 = not known), month u8 (1..12,
  0 = not known), day u8 (1..31, 0 = not known), hours (0..23), minutes (0..59), seconds (0..59).

SFLOAT is 16 bits: a 4-bit two's-complement exponent (bits 12-15) and a 12-bit two's-complement
mantissa (bits 0-11); value = mantissa * 10**exponent. FLOAT is 32 bits: an 8-bit exponent
(bits 24-31) and a 24-bit mantissa. Some mantissas are reserved for special values (defined with
exponent 0; this decoder recognises them by the mantissa alone, the way the spec reserves those
mantissas, so a special value with a stray exponent still decodes as special):

=========  ==============  ==================
value      SFLOAT mant.    FLOAT mantissa
=========  ==============  ==================
+INFINITY  0x07FE (+2046)  0x7FFFFE (+2^23-2)
NaN        0x07FF (+2047)  0x7FFFFF (+2^23-1)
NRes       0x0800 (-2048)  0x800000 (-2^23)
Reserved   0x0801 (-2047)  0x800001 (-2^23+1)
-INFINITY  0x0802 (-2046)  0x800002 (-2^23+2)
=========  ==============  ==================

NaN, NRes (not at this resolution) and the reserved value all decode to ``nan``; the exponent
carries precision (``0xF014`` is 2.0 with one decimal), which a Python float cannot keep, so
encoders choose an exponent with :func:`best_sfloat` / :func:`best_float`.

Decoding divides the mantissa by an exact power of ten, so a decoded value is the float nearest
to the decimal the device meant (``0xF4B5`` -> 120.5, exactly ``float("120.5")``).
"""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal
from fractions import Fraction

from vitalgate.errors import ParseError

__all__ = [
    "DATE_TIME_SIZE",
    "FLOAT_INFINITY",
    "FLOAT_NAN",
    "FLOAT_NEGATIVE_INFINITY",
    "FLOAT_NRES",
    "FLOAT_RESERVED",
    "SFLOAT_INFINITY",
    "SFLOAT_NAN",
    "SFLOAT_NEGATIVE_INFINITY",
    "SFLOAT_NRES",
    "SFLOAT_RESERVED",
    "best_float",
    "best_sfloat",
    "decode_float",
    "decode_sfloat",
    "encode_date_time",
    "encode_float",
    "encode_sfloat",
    "parse_date_time",
]

# SFLOAT special values (exponent 0).
SFLOAT_INFINITY = 0x07FE
SFLOAT_NAN = 0x07FF
SFLOAT_NRES = 0x0800
SFLOAT_RESERVED = 0x0801
SFLOAT_NEGATIVE_INFINITY = 0x0802

# FLOAT special values (exponent 0).
FLOAT_INFINITY = 0x007FFFFE
FLOAT_NAN = 0x007FFFFF
FLOAT_NRES = 0x00800000
FLOAT_RESERVED = 0x00800001
FLOAT_NEGATIVE_INFINITY = 0x00800002

_SFLOAT_MANTISSA_MAX = 2045  # +2046..+2047 and -2048..-2046 are special
_SFLOAT_EXPONENT_MIN, _SFLOAT_EXPONENT_MAX = -8, 7
_FLOAT_MANTISSA_MAX = 2**23 - 3  # 8_388_605
_FLOAT_EXPONENT_MIN, _FLOAT_EXPONENT_MAX = -128, 127

DATE_TIME_SIZE = 7
_DATE_TIME_PROFILE = "date_time"


def _signed(raw: int, bits: int) -> int:
    sign_bit = 1 << (bits - 1)
    return (raw & (sign_bit - 1)) - (raw & sign_bit)


def _scale(mantissa: int, exponent: int) -> float:
    # Exact integer arithmetic, one correctly rounded conversion to float.
    if exponent >= 0:
        return float(mantissa * 10**exponent)
    divisor: int = 10**-exponent
    return mantissa / divisor


def _decode(raw: int, *, exponent_bits: int, mantissa_bits: int) -> float:
    mantissa_raw = raw & ((1 << mantissa_bits) - 1)
    top = 1 << (mantissa_bits - 1)
    if mantissa_raw == top - 2:
        return math.inf
    if mantissa_raw in (top - 1, top, top + 1):  # NaN, NRes, reserved
        return math.nan
    if mantissa_raw == top + 2:
        return -math.inf
    exponent = _signed(raw >> mantissa_bits, exponent_bits)
    return _scale(_signed(mantissa_raw, mantissa_bits), exponent)


def _encode(
    value: float,
    exponent: int,
    *,
    exponent_bits: int,
    mantissa_bits: int,
    mantissa_max: int,
    exponent_range: tuple[int, int],
    kind: str,
) -> int:
    top = 1 << (mantissa_bits - 1)
    if math.isnan(value):
        return top - 1
    if math.isinf(value):
        return top - 2 if value > 0 else top + 2
    low, high = exponent_range
    if not low <= exponent <= high:
        raise ValueError(f"{kind} exponent {exponent} outside {low}..{high}")
    mantissa = round(Fraction(value) / Fraction(10) ** exponent)
    if abs(mantissa) > mantissa_max:
        raise ValueError(
            f"{kind}: {value!r} needs mantissa {mantissa} at exponent {exponent}, "
            f"outside -{mantissa_max}..{mantissa_max}"
        )
    mantissa_mask = (1 << mantissa_bits) - 1
    exponent_mask = (1 << exponent_bits) - 1
    return ((exponent & exponent_mask) << mantissa_bits) | (mantissa & mantissa_mask)


def decode_sfloat(raw: int) -> float:
    """Decode a 16-bit IEEE 11073 SFLOAT; NaN, NRes and reserved give ``nan``."""
    if not 0 <= raw <= 0xFFFF:
        raise ValueError(f"SFLOAT raw value {raw} is not a u16")
    return _decode(raw, exponent_bits=4, mantissa_bits=12)


def encode_sfloat(value: float, exponent: int) -> int:
    """Encode ``value`` as an SFLOAT with the given exponent (-8..7), rounding half to even.

    ``nan`` encodes as NaN (0x07FF), infinities as +INF / -INF. Raises ValueError when the
    exponent is out of range or the mantissa does not fit in -2045..2045.
    """
    return _encode(
        value,
        exponent,
        exponent_bits=4,
        mantissa_bits=12,
        mantissa_max=_SFLOAT_MANTISSA_MAX,
        exponent_range=(_SFLOAT_EXPONENT_MIN, _SFLOAT_EXPONENT_MAX),
        kind="SFLOAT",
    )


def decode_float(raw: int) -> float:
    """Decode a 32-bit IEEE 11073 FLOAT; NaN, NRes and reserved give ``nan``."""
    if not 0 <= raw <= 0xFFFFFFFF:
        raise ValueError(f"FLOAT raw value {raw} is not a u32")
    return _decode(raw, exponent_bits=8, mantissa_bits=24)


def encode_float(value: float, exponent: int) -> int:
    """Encode ``value`` as a FLOAT with the given exponent (-128..127), rounding half to even.

    ``nan`` encodes as NaN (0x007FFFFF), infinities as +INF / -INF. Raises ValueError when the
    exponent is out of range or the mantissa does not fit in -(2**23-3)..2**23-3.
    """
    return _encode(
        value,
        exponent,
        exponent_bits=8,
        mantissa_bits=24,
        mantissa_max=_FLOAT_MANTISSA_MAX,
        exponent_range=(_FLOAT_EXPONENT_MIN, _FLOAT_EXPONENT_MAX),
        kind="FLOAT",
    )


def _best_exponent(
    value: float, max_decimals: int, mantissa_max: int, exponent_range: tuple[int, int], kind: str
) -> int:
    low, high = exponent_range
    if max_decimals < 0:
        raise ValueError(f"max_decimals must be >= 0, got {max_decimals}")
    finest = max(-max_decimals, low)
    # 1. Exact: the shortest decimal that reads back as ``value`` (its repr), written with the
    #    largest exponent <= 0 that keeps it an integer mantissa.
    _, digits, decimal_exponent = Decimal(repr(value)).as_tuple()
    assert isinstance(decimal_exponent, int)  # finite values only
    mantissa = int("".join(map(str, digits)))
    while mantissa and mantissa % 10 == 0:
        mantissa //= 10
        decimal_exponent += 1
    exponent = 0 if mantissa == 0 else min(0, decimal_exponent)
    if exponent >= finest and mantissa * 10 ** (decimal_exponent - exponent) <= mantissa_max:
        return exponent
    # 2. Otherwise the finest exponent whose (rounded) mantissa fits. Below 10**(F - digits),
    #    F = floor(log10|value|), the mantissa cannot fit, so start there.
    start = max(finest, math.floor(math.log10(abs(value))) - len(str(mantissa_max)))
    exact = Fraction(value)
    for exponent in range(start, high + 1):
        if abs(round(exact / Fraction(10) ** exponent)) <= mantissa_max:
            return exponent
    raise ValueError(f"{kind}: {value!r} is too large to encode")


def best_sfloat(value: float, max_decimals: int) -> int:
    """Encode ``value`` as an SFLOAT, choosing the exponent.

    Uses the shortest exponent in ``0..-max_decimals`` that represents ``value`` exactly, or else
    the finest exponent (at most ``max_decimals`` decimals) whose mantissa fits, so large values
    get positive exponents. Every value decoded from an SFLOAT with at most ``max_decimals``
    decimals round-trips exactly. Raises ValueError when ``|value|`` exceeds 2045e7.
    """
    if math.isnan(value) or math.isinf(value):
        return encode_sfloat(value, 0)
    exponent = _best_exponent(
        value,
        max_decimals,
        _SFLOAT_MANTISSA_MAX,
        (_SFLOAT_EXPONENT_MIN, _SFLOAT_EXPONENT_MAX),
        "SFLOAT",
    )
    return encode_sfloat(value, exponent)


def best_float(value: float, max_decimals: int) -> int:
    """Encode ``value`` as a FLOAT, choosing the exponent like :func:`best_sfloat`."""
    if math.isnan(value) or math.isinf(value):
        return encode_float(value, 0)
    exponent = _best_exponent(
        value,
        max_decimals,
        _FLOAT_MANTISSA_MAX,
        (_FLOAT_EXPONENT_MIN, _FLOAT_EXPONENT_MAX),
        "FLOAT",
    )
    return encode_float(value, exponent)


def parse_date_time(data: bytes, *, profile: str = _DATE_TIME_PROFILE) -> datetime | None:
    """Decode a 7-byte Date Time (GSS "Date Time", 0x2A08) to a naive datetime.

    Returns None when the year, month or day is 0 ("not known"). Raises ParseError for a wrong
    length or for fields outside the spec ranges (year 1582..9999, hours 0..23, minutes and
    seconds 0..59, a day that does not exist in its month).
    """
    if len(data) != DATE_TIME_SIZE:
        raise ParseError(
            profile,
            f"Date Time needs {DATE_TIME_SIZE} bytes, got {len(data)}",
            offset=min(len(data), DATE_TIME_SIZE),
            payload=data,
        )
    year = data[0] | (data[1] << 8)
    month, day, hours, minutes, seconds = data[2], data[3], data[4], data[5], data[6]
    if year == 0 or month == 0 or day == 0:
        return None
    if not 1582 <= year <= 9999:
        raise ParseError(profile, f"Date Time year {year} outside 1582..9999", payload=data)
    try:
        return datetime(year, month, day, hours, minutes, seconds)  # device-local, naive by design
    except ValueError as exc:
        raise ParseError(profile, f"invalid Date Time: {exc}", payload=data) from exc


def encode_date_time(value: datetime | None) -> bytes:
    """Encode a naive device-local datetime as a 7-byte Date Time; None gives all zeros.

    Microseconds are dropped (the structure has whole seconds). Raises ValueError for an aware
    datetime (convert to device-local time at the edge first) or a year before 1582.
    """
    if value is None:
        return bytes(DATE_TIME_SIZE)
    if value.tzinfo is not None:
        raise ValueError("Date Time carries device-local time: pass a naive datetime")
    if value.year < 1582:
        raise ValueError(f"Date Time year {value.year} is before 1582")
    return bytes(
        (
            value.year & 0xFF,
            value.year >> 8,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
        )
    )
