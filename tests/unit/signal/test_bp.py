"""Blood pressure: ACC/AHA categories at every boundary, home-BP summary, trend, surge, ARV."""

from __future__ import annotations

import datetime as dt
import math
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vitalgate.readings import BloodPressureReading, DeviceIdentity
from vitalgate.signal import bp, quality
from vitalgate.signal.bp import BpCategory

C = BpCategory

BOUNDARIES = [
    (119, 79, C.NORMAL),
    (120, 79, C.ELEVATED),
    (129, 79, C.ELEVATED),
    (130, 79, C.STAGE_1),
    (119, 80, C.STAGE_1),
    (139, 89, C.STAGE_1),
    (140, 89, C.STAGE_2),
    (139, 90, C.STAGE_2),
    (140, 90, C.STAGE_2),
    (180, 120, C.STAGE_2),
    (181, 100, C.CRISIS),
    (150, 121, C.CRISIS),
    (181, 121, C.CRISIS),
    # mixed: the higher category wins
    (110, 85, C.STAGE_1),
    (125, 85, C.STAGE_1),
    (125, 95, C.STAGE_2),
    (145, 70, C.STAGE_2),
    (100, 121, C.CRISIS),
    (185, 60, C.CRISIS),
    (135, 79, C.STAGE_1),
    (129.6, 79.9, C.ELEVATED),
]


@pytest.mark.parametrize(
    ("systolic", "diastolic", "expected"), BOUNDARIES, ids=[f"{s}/{d}" for s, d, _ in BOUNDARIES]
)
def test_classify_boundaries(systolic: float, diastolic: float, expected: BpCategory) -> None:
    assert bp.classify(systolic, diastolic) is expected


def test_classify_many_matches_scalar() -> None:
    s = np.array([s for s, _, _ in BOUNDARIES] + [math.nan, -1.0])
    d = np.array([d for _, d, _ in BOUNDARIES] + [80.0, 80.0])
    codes = bp.classify_many(s, d)
    assert codes.dtype == np.int8
    assert codes[:-2].tolist() == [int(e) for _, _, e in BOUNDARIES]
    assert codes[-2:].tolist() == [-1, -1]


def test_classify_rejects_nan() -> None:
    with pytest.raises(ValueError, match="finite"):
        bp.classify(math.nan, 80)


def _week(
    tz: str,
    first: dt.date,
    *,
    day_values: dict[int, tuple[float, float]],
    skip: set[tuple[int, str]] = frozenset(),  # type: ignore[assignment]
) -> tuple[list[dt.datetime], list[float], list[float]]:
    zone = ZoneInfo(tz)
    times: list[dt.datetime] = []
    sys_: list[float] = []
    dia: list[float] = []
    for day in range(7):
        date = first + dt.timedelta(days=day)
        s, d = day_values.get(day, (130.0, 80.0))
        for session, hour in (("morning", 7), ("evening", 21)):
            if (day, session) in skip:
                continue
            for minute in (0, 2):
                local = dt.datetime.combine(date, dt.time(hour, minute), tzinfo=zone)
                times.append(local.astimezone(dt.UTC))
                sys_.append(s + (5.0 if session == "morning" else 0.0))
                dia.append(d)
    return times, sys_, dia


def test_home_bp_summary_discards_day_one_and_counts_sessions() -> None:
    # Across the US DST change (2026-03-08): local 07:00 / 21:00 stay morning / evening.
    times, s, d = _week(
        "America/New_York",
        dt.date(2026, 3, 5),
        day_values={0: (190.0, 110.0)},
        skip={(3, "evening")},
    )
    out = bp.home_bp_summary(times, s, d, tz="America/New_York")
    assert out.first_day == dt.date(2026, 3, 5)
    assert out.last_day == dt.date(2026, 3, 11)
    assert out.readings_used == 22
    assert out.readings_excluded == 4  # day 1: two sessions x two readings
    assert out.morning_count == 12
    assert out.evening_count == 10
    assert out.sessions_expected == 12
    assert out.sessions_with_readings == 11
    assert out.adherence_pct == pytest.approx(100 * 11 / 12)
    assert out.mean_systolic_mmhg == pytest.approx((12 * 135 + 10 * 130) / 22)
    assert out.mean_diastolic_mmhg == pytest.approx(80.0)
    assert out.morning_mean_systolic_mmhg == pytest.approx(135.0)
    assert out.evening_mean_systolic_mmhg == pytest.approx(130.0)
    assert out.above_threshold is False  # 132.7 / 80 < 135 / 85
    assert out.sufficient is True
    assert out.category is BpCategory.STAGE_1


def test_home_bp_summary_threshold_and_ns_input() -> None:
    times, s, d = _week("Europe/Berlin", dt.date(2026, 1, 1), day_values={})
    t_ns = np.array([int(t.timestamp()) * 1_000_000_000 for t in times], dtype=np.int64)
    out = bp.home_bp_summary(t_ns, s, d, tz="Europe/Berlin", threshold_diastolic_mmhg=80)
    assert out.readings_used == 24
    assert out.adherence_pct == 100.0
    assert out.above_threshold is True  # mean diastolic 80 >= 80


def test_home_bp_summary_rejects_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        bp.home_bp_summary([dt.datetime(2026, 1, 1, 7)], [120], [80], tz="UTC")


def test_trend_recovers_slope_with_ci() -> None:
    rng = np.random.default_rng(7)
    t0 = np.datetime64("2026-01-01T07:00")
    days = np.arange(60)
    times = t0 + days.astype("timedelta64[D]")
    values = 130 + 0.5 * days + rng.normal(0, 4, days.size)  # 3.5 mmHg/week
    values[10] = 250  # an outlier Theil-Sen shrugs off
    out = bp.trend(times, values)
    assert out.n == 60
    assert out.slope_mmhg_per_week == pytest.approx(3.5, abs=0.5)
    assert out.ci_low_mmhg_per_week < 3.5 < out.ci_high_mmhg_per_week
    assert out.span_days == pytest.approx(59.0)


def test_trend_too_short_is_nan() -> None:
    out = bp.trend(np.array([0, 1], dtype=np.int64), [120.0, 121.0])
    assert math.isnan(out.slope_mmhg_per_week) and out.n == 2


def test_morning_surge() -> None:
    times, s, _ = _week("Europe/Berlin", dt.date(2026, 1, 1), day_values={})
    out = bp.morning_surge(times, s, tz="Europe/Berlin")
    assert out.paired_days == 7
    assert out.me_difference_mmhg == pytest.approx(5.0)
    assert out.me_average_mmhg == pytest.approx(132.5)
    assert out.surge is False and out.morning_hypertension is True


def test_variability_sd_and_arv() -> None:
    out = bp.variability([120.0, 130.0, 125.0, math.nan, 135.0])
    assert out.n == 4
    assert out.sd_mmhg == pytest.approx(float(np.std([120, 130, 125, 135], ddof=1)))
    assert out.arv_mmhg == pytest.approx((10 + 5 + 10) / 3)
    sd, arv = out
    assert (sd, arv) == (out.sd_mmhg, out.arv_mmhg)


@settings(max_examples=200, deadline=None)
@given(st.floats(0, 300, allow_nan=False), st.floats(0, 200, allow_nan=False))
def test_classify_many_agrees_with_classify(s: float, d: float) -> None:
    assert bp.classify_many([s], [d]).tolist() == [int(bp.classify(s, d))]
    # Raising either pressure never lowers the category.
    assert bp.classify(s + 1, d) >= bp.classify(s, d)
    assert bp.classify(s, d + 1) >= bp.classify(s, d)


def test_from_readings_skips_implausible() -> None:
    dev = DeviceIdentity(address="AA:BB:CC:DD:EE:01")
    at = dt.datetime(2026, 1, 1, 7, tzinfo=dt.UTC)
    readings = [
        BloodPressureReading(
            patient_id="p",
            device=dev,
            measured_at=at + dt.timedelta(minutes=i),
            received_at=at,
            systolic_mmhg=s,
            diastolic_mmhg=d,
        )
        for i, (s, d) in enumerate([(120.0, 80.0), (80.0, 120.0), (130.0, 85.0)])
    ]
    checked = [quality.check(r) for r in readings]
    t, s, d = bp.from_readings(checked)
    assert s.tolist() == [120.0, 130.0] and d.tolist() == [80.0, 85.0]
    assert t.tolist() == [int(checked[i].measured_at.timestamp()) * 10**9 for i in (0, 2)]
