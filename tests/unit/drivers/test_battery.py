"""Battery Level codec (BAS v1.0 section 3.1; GSS "Battery Level" 0x2A19)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vitalgate.drivers import battery
from vitalgate.errors import ParseError


@pytest.mark.parametrize(
    ("payload", "level_pct"),
    [
        pytest.param("00", 0, id="GSS-battery-level-empty-battery"),
        pytest.param("32", 50, id="GSS-battery-level-half"),
        pytest.param("64", 100, id="GSS-battery-level-full"),
    ],
)
def test_battery_level_vectors(payload: str, level_pct: int) -> None:
    assert battery.parse_battery_level(bytes.fromhex(payload)) == level_pct
    assert battery.encode_battery_level(level_pct) == bytes.fromhex(payload)


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param("", id="empty"),
        pytest.param("65", id="GSS-101-reserved"),
        pytest.param("ff", id="GSS-255-reserved"),
        pytest.param("6400", id="over-long"),
    ],
)
def test_malformed_battery_level_raises_parse_error(payload: str) -> None:
    data = bytes.fromhex(payload)
    with pytest.raises(ParseError) as info:
        battery.parse_battery_level(data)
    assert info.value.profile == "battery"
    assert info.value.payload == data


@pytest.mark.parametrize("level_pct", [-1, 101])
def test_encode_rejects_out_of_range(level_pct: int) -> None:
    with pytest.raises(ValueError, match=r"outside 0\.\.100"):
        battery.encode_battery_level(level_pct)


@given(st.integers(0, 100))
def test_round_trip(level_pct: int) -> None:
    assert battery.parse_battery_level(battery.encode_battery_level(level_pct)) == level_pct


def test_fuzz_only_parse_error() -> None:
    rng = random.Random(0x2A19)
    decoded = 0
    for _ in range(2000):
        data = rng.randbytes(rng.randrange(0, 4))
        try:
            assert 0 <= battery.parse_battery_level(data) <= 100
        except ParseError:
            continue
        decoded += 1
    assert decoded > 0
