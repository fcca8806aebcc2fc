"""Time correction: timezone once, drift interpolation, reset clocks, DST, future stamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vitalgate.gateway.registry import ClockAnchor
from vitalgate.gateway.timefix import (
    TimeFixer,
    anchor_after_sync,
    local_to_utc,
    measure_clock,
    utc_to_local,
)
from vitalgate.readings import QualityFlag as Q

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
CET_S = 3600.0


def anchor_ok(at: datetime) -> ClockAnchor:
    """The anchor right after the gateway set the clock to Berlin time at ``at``."""
    offset = at.astimezone(BERLIN).utcoffset()
    assert offset is not None
    return ClockAnchor(at, offset.total_seconds())


def test_local_to_utc_and_back() -> None:
    assert local_to_utc(datetime(2026, 11, 25, 13, 0), BERLIN) == NOW
    assert utc_to_local(NOW, BERLIN) == datetime(2026, 11, 25, 13, 0)
    # Autumn fold: the first occurrence (CEST, UTC+2).
    assert local_to_utc(datetime(2026, 10, 25, 2, 30), BERLIN) == datetime(
        2026, 10, 25, 0, 30, tzinfo=UTC
    )
    with pytest.raises(ValueError):
        local_to_utc(NOW, BERLIN)


def test_measure_clock() -> None:
    check = measure_clock(datetime(2026, 11, 25, 13, 0, 5), NOW, BERLIN)
    assert check.raw_offset_s == pytest.approx(CET_S + 5)
    assert check.offset_s == pytest.approx(5)
    assert not check.unset
    assert measure_clock(None, NOW, BERLIN).offset_s is None


def test_no_device_time() -> None:
    fix = TimeFixer(tz=BERLIN, check=None, anchor=None, tolerance_s=1.0).fix(None, NOW)
    assert fix.measured_at == NOW
    assert fix.flags == {Q.NO_DEVICE_TIME}


def test_correct_clock_is_left_alone() -> None:
    check = measure_clock(utc_to_local(NOW, BERLIN) + timedelta(seconds=0.5), NOW, BERLIN)
    fixer = TimeFixer(
        tz=BERLIN, check=check, anchor=anchor_ok(NOW - timedelta(days=1)), tolerance_s=1.0
    )
    stamp = utc_to_local(NOW - timedelta(hours=3), BERLIN)
    fix = fixer.fix(stamp, NOW)
    assert fix.measured_at == NOW - timedelta(hours=3)
    assert fix.flags == frozenset()


def test_linear_drift_is_interpolated() -> None:
    # Set to the exact time a day ago; runs 100 ppm fast: +8.64 s now.
    anchor = anchor_ok(NOW - timedelta(days=1))
    drift = 100e-6
    check = measure_clock(utc_to_local(NOW, BERLIN) + timedelta(seconds=86400 * drift), NOW, BERLIN)
    assert check.offset_s == pytest.approx(8.64)
    fixer = TimeFixer(tz=BERLIN, check=check, anchor=anchor, tolerance_s=1.0)
    for hours in (2, 12, 20):
        true = anchor.at + timedelta(hours=hours)
        # The device stamps whole seconds of its drifting clock.
        stamp = utc_to_local(true, BERLIN) + timedelta(seconds=round(hours * 3600 * drift))
        fix = fixer.fix(stamp, NOW)
        # Corrected by whole seconds: within a second of the truth, on a whole second.
        assert abs((fix.measured_at - true).total_seconds()) <= 1.0
        assert fix.measured_at.microsecond == 0
        assert fix.applied_offset_s == round(fix.applied_offset_s)
        assert Q.CLOCK_CORRECTED in fix.flags


def test_device_ignoring_dst() -> None:
    # Set on 2026-10-11 (CEST, UTC+2); the device keeps UTC+2 after the 25 October change.
    set_at = datetime(2026, 10, 11, 8, 0, tzinfo=UTC)
    anchor = ClockAnchor(set_at, 7200.0)
    device_now = (NOW + timedelta(hours=2)).replace(tzinfo=None)
    check = measure_clock(device_now, NOW, BERLIN)
    assert check.offset_s == pytest.approx(3600)  # an hour off the patient's wall clock
    fixer = TimeFixer(tz=BERLIN, check=check, anchor=anchor, tolerance_s=1.0)
    for true in (datetime(2026, 10, 20, 6, 0, tzinfo=UTC), datetime(2026, 11, 2, 6, 0, tzinfo=UTC)):
        stamp = (true + timedelta(hours=2)).replace(tzinfo=None)
        assert fixer.fix(stamp, NOW).measured_at == true


def test_reset_clock_readings_are_placed() -> None:
    # Battery change 5 h ago: the clock restarted at 2000-01-01 00:00:00.
    reset_at = NOW - timedelta(hours=5)
    device_now = datetime(2000, 1, 1) + (NOW - reset_at)
    check = measure_clock(device_now, NOW, BERLIN)
    assert check.unset
    fixer = TimeFixer(
        tz=BERLIN, check=check, anchor=anchor_ok(NOW - timedelta(days=1)), tolerance_s=1.0
    )
    true = reset_at + timedelta(hours=2)
    fix = fixer.fix(datetime(2000, 1, 1, 2, 0), NOW)
    assert fix.measured_at == true
    assert fix.flags == {Q.CLOCK_UNSET, Q.CLOCK_CORRECTED}
    # A reading taken before the reset keeps its own (good) stamp.
    before = NOW - timedelta(hours=10)
    fix = fixer.fix(utc_to_local(before, BERLIN), NOW)
    assert fix.measured_at == before
    assert fix.flags == frozenset()
    # Without a clock check an unset stamp cannot be placed: receipt time, flagged.
    blind = TimeFixer(tz=BERLIN, check=None, anchor=None, tolerance_s=1.0)
    fix = blind.fix(datetime(2000, 1, 1, 2, 0), NOW)
    assert fix.measured_at == NOW
    assert Q.CLOCK_UNSET in fix.flags


def test_future_stamp_is_clamped() -> None:
    fixer = TimeFixer(tz=BERLIN, check=None, anchor=None, tolerance_s=1.0)
    fix = fixer.fix(utc_to_local(NOW + timedelta(days=2), BERLIN), NOW)
    assert fix.measured_at == NOW
    assert fix.flags == {Q.CLOCK_CORRECTED}


def test_anchor_after_sync() -> None:
    check = measure_clock(datetime(2000, 1, 1, 1), NOW, BERLIN)
    assert anchor_after_sync(check, None) is None
    readback = measure_clock(utc_to_local(NOW, BERLIN), NOW, BERLIN)
    assert anchor_after_sync(check, readback) == ClockAnchor(NOW, CET_S, check.raw_offset_s)


@given(
    offset_s=st.floats(min_value=-7200, max_value=7200),
    age_s=st.floats(min_value=0, max_value=86400 * 3),
)
def test_constant_offset_always_recovered(offset_s: float, age_s: float) -> None:
    true = NOW - timedelta(seconds=age_s)
    check = measure_clock(utc_to_local(NOW, BERLIN) + timedelta(seconds=offset_s), NOW, BERLIN)
    anchor = ClockAnchor(NOW - timedelta(days=4), CET_S + offset_s)
    fixer = TimeFixer(tz=BERLIN, check=check, anchor=anchor, tolerance_s=1.0)
    stamp = utc_to_local(true, BERLIN) + timedelta(seconds=offset_s)
    fix = fixer.fix(stamp, NOW)
    assert abs((fix.measured_at - true).total_seconds()) <= 1.0 + 1e-6


def test_fast_clock_set_during_sync_still_corrects_the_records_it_held() -> None:
    """A clock 150 s fast stamped a record before the gateway set it; that stamp is later
    than the read-back after the set, but it is an old record: it gets the drift correction."""
    day_ago = NOW - timedelta(days=1)
    check = measure_clock(
        datetime(2026, 11, 25, 13, 2, 30), NOW, BERLIN
    )  # device 150 s ahead of Berlin time
    readback = measure_clock(datetime(2026, 11, 25, 13, 0, 1), NOW + timedelta(seconds=1), BERLIN)
    fixer = TimeFixer(
        tz=BERLIN, check=check, anchor=anchor_ok(day_ago), tolerance_s=1.0, set_to=readback
    )
    # measured 2 min ago (true 11:58:00 UTC), stamped 150 s * (1 - 120/86400) ahead
    stamped = datetime(2026, 11, 25, 13, 0, 30)
    fix = fixer.fix(stamped, NOW)
    truth = NOW - timedelta(minutes=2)
    assert abs((fix.measured_at - truth).total_seconds()) < 1.0
    assert Q.CLOCK_CORRECTED in fix.flags
    # a stamp beyond what the clock showed before the set was made after it: taken as is
    after = fixer.fix(datetime(2026, 11, 25, 13, 3, 0), NOW + timedelta(minutes=3))
    assert after.measured_at == datetime(2026, 11, 25, 12, 3, tzinfo=UTC)
    assert Q.CLOCK_CORRECTED not in after.flags
