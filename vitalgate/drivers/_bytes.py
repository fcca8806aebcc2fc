"""Bounds-checked little-endian readers and writers shared by the GATT codecs.

Every GATT characteristic value is little-endian (Bluetooth Core Spec Vol 3 Part G 3.3.3.5 /
GSS 2.2). :class:`ByteReader` turns every short read into a
:class:`~vitalgate.errors.ParseError` carrying the profile, the offset of the failed read and the
whole payload, so no codec can leak ``IndexError`` or ``struct.error``.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Self

from vitalgate.drivers import ieee11073
from vitalgate.errors import ParseError

__all__ = ["ByteReader", "ByteWriter", "OpenIntEnum"]


class OpenIntEnum(enum.IntEnum):
    """An IntEnum that accepts codes it does not name (as bumble's ``OpenIntEnum`` does).

    Bluetooth SIG enumerations reserve codes for future use; a newer device may send one. An
    unknown code becomes a pseudo-member named ``<Enum>_<code>`` that keeps its integer value, so
    decoding never fails on it and re-encoding sends the same code.
    """

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        if not isinstance(value, int) or isinstance(value, bool):
            return None
        member = int.__new__(cls, value)
        member._name_ = f"{cls.__name__}_{value:#x}"
        member._value_ = value
        return member


class ByteReader:
    """Sequential little-endian reads over ``data``; short reads raise ParseError."""

    __slots__ = ("_data", "_offset", "profile")

    def __init__(self, data: bytes, profile: str) -> None:
        self._data = bytes(data)
        self._offset = 0
        self.profile = profile

    @property
    def data(self) -> bytes:
        """The whole payload."""
        return self._data

    @property
    def offset(self) -> int:
        """Offset of the next byte to read."""
        return self._offset

    @property
    def remaining(self) -> int:
        """Bytes left to read."""
        return len(self._data) - self._offset

    def error(self, message: str, *, offset: int | None = None) -> ParseError:
        """A ParseError for this payload (at the current offset unless given)."""
        return ParseError(
            self.profile,
            message,
            offset=self._offset if offset is None else offset,
            payload=self._data,
        )

    def _take(self, size: int, what: str) -> bytes:
        if size < 0:
            raise self.error(f"negative length {size} for {what}")
        if self.remaining < size:
            raise self.error(f"truncated: {what} needs {size} byte(s), {self.remaining} left")
        chunk = self._data[self._offset : self._offset + size]
        self._offset += size
        return chunk

    def _uint(self, size: int, what: str) -> int:
        return int.from_bytes(self._take(size, what), "little")

    def _sint(self, size: int, what: str) -> int:
        return int.from_bytes(self._take(size, what), "little", signed=True)

    def u8(self, what: str = "u8") -> int:
        return self._uint(1, what)

    def s8(self, what: str = "s8") -> int:
        return self._sint(1, what)

    def u16(self, what: str = "u16") -> int:
        return self._uint(2, what)

    def s16(self, what: str = "s16") -> int:
        return self._sint(2, what)

    def u24(self, what: str = "u24") -> int:
        return self._uint(3, what)

    def u32(self, what: str = "u32") -> int:
        return self._uint(4, what)

    def s32(self, what: str = "s32") -> int:
        return self._sint(4, what)

    def sfloat(self, what: str = "SFLOAT") -> float:
        """An IEEE 11073 16-bit SFLOAT (NaN / NRes / reserved -> nan)."""
        return ieee11073.decode_sfloat(self.u16(what))

    def float32(self, what: str = "FLOAT") -> float:
        """An IEEE 11073 32-bit FLOAT (NaN / NRes / reserved -> nan)."""
        return ieee11073.decode_float(self.u32(what))

    def date_time(self, what: str = "Date Time") -> datetime | None:
        """A 7-byte Date Time (0x2A08); None when year, month or day is 0 (not known)."""
        start = self._offset
        chunk = self._take(ieee11073.DATE_TIME_SIZE, what)
        try:
            return ieee11073.parse_date_time(chunk, profile=self.profile)
        except ParseError as exc:
            raise self.error(f"{what}: {exc.reason}", offset=start) from exc

    def bytes_(self, size: int, what: str = "bytes") -> bytes:
        return self._take(size, what)

    def rest(self) -> bytes:
        """All remaining bytes (possibly none)."""
        return self._take(self.remaining, "rest")

    def expect_end(self) -> None:
        """Raise ParseError when bytes are left over (over-long input)."""
        if self.remaining:
            raise self.error(f"{self.remaining} unexpected trailing byte(s)")


class ByteWriter:
    """Little-endian writes matching :class:`ByteReader`; range errors raise ValueError."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def __bytes__(self) -> bytes:
        return bytes(self._buffer)

    def __len__(self) -> int:
        return len(self._buffer)

    def getvalue(self) -> bytes:
        return bytes(self._buffer)

    def _uint(self, value: int, size: int, what: str) -> ByteWriter:
        if not 0 <= value < 1 << (8 * size):
            raise ValueError(f"{what} {value} does not fit in u{8 * size}")
        self._buffer += value.to_bytes(size, "little")
        return self

    def _sint(self, value: int, size: int, what: str) -> ByteWriter:
        bound = 1 << (8 * size - 1)
        if not -bound <= value < bound:
            raise ValueError(f"{what} {value} does not fit in s{8 * size}")
        self._buffer += value.to_bytes(size, "little", signed=True)
        return self

    def u8(self, value: int, what: str = "u8") -> ByteWriter:
        return self._uint(value, 1, what)

    def s8(self, value: int, what: str = "s8") -> ByteWriter:
        return self._sint(value, 1, what)

    def u16(self, value: int, what: str = "u16") -> ByteWriter:
        return self._uint(value, 2, what)

    def s16(self, value: int, what: str = "s16") -> ByteWriter:
        return self._sint(value, 2, what)

    def u24(self, value: int, what: str = "u24") -> ByteWriter:
        return self._uint(value, 3, what)

    def u32(self, value: int, what: str = "u32") -> ByteWriter:
        return self._uint(value, 4, what)

    def s32(self, value: int, what: str = "s32") -> ByteWriter:
        return self._sint(value, 4, what)

    def sfloat(self, value: float, max_decimals: int = 8) -> ByteWriter:
        """An SFLOAT with the exponent chosen by :func:`ieee11073.best_sfloat`."""
        return self.u16(ieee11073.best_sfloat(value, max_decimals))

    def sfloat_raw(self, raw: int) -> ByteWriter:
        return self.u16(raw, "SFLOAT")

    def float32(self, value: float, max_decimals: int = 128) -> ByteWriter:
        """A FLOAT with the exponent chosen by :func:`ieee11073.best_float`."""
        return self.u32(ieee11073.best_float(value, max_decimals))

    def date_time(self, value: datetime | None) -> ByteWriter:
        self._buffer += ieee11073.encode_date_time(value)
        return self

    def bytes_(self, value: bytes) -> ByteWriter:
        self._buffer += value
        return self
