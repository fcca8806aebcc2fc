"""Battery Service (0x180F): Battery Level (0x2A19).

References: Bluetooth Battery Service (BAS) v1.0 section 3.1 (Battery Level); GATT
Specification Supplement (GSS) "Battery Level" (0x2A19): one u8, percent of full charge,
0..100; 101..255 are reserved (prohibited), so they raise ParseError here.
"""

from __future__ import annotations

from vitalgate.drivers import uuids
from vitalgate.drivers._bytes import ByteReader, ByteWriter

__all__ = [
    "BATTERY_LEVEL_UUID",
    "BATTERY_SERVICE_UUID",
    "PROFILE",
    "encode_battery_level",
    "parse_battery_level",
]

PROFILE = "battery"

BATTERY_SERVICE_UUID = uuids.BATTERY_SERVICE
BATTERY_LEVEL_UUID = uuids.BATTERY_LEVEL

_MAX_PCT = 100


def parse_battery_level(data: bytes) -> int:
    """Decode Battery Level (0x2A19) to percent (0..100); other values raise ParseError."""
    reader = ByteReader(data, PROFILE)
    level_pct = reader.u8("battery level")
    if level_pct > _MAX_PCT:
        raise reader.error(f"battery level {level_pct} % outside 0..100", offset=0)
    reader.expect_end()
    return level_pct


def encode_battery_level(level_pct: int) -> bytes:
    """Encode Battery Level; ValueError outside 0..100 %."""
    if not 0 <= level_pct <= _MAX_PCT:
        raise ValueError(f"battery level {level_pct} % outside 0..100")
    return ByteWriter().u8(level_pct, "battery level").getvalue()
