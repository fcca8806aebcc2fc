"""Blood pressure: ACC/AHA category, home-BP protocol summary, trend, morning surge, variability.

References:

* Whelton PK et al., "2017 ACC/AHA ... Guideline for the Prevention, Detection, Evaluation, and
  Management of High Blood Pressure in Adults", Hypertension 2018;71:e13 (categories; the higher
  category of systolic and diastolic wins; home equivalent of office 130/80 is 130/80 and of
  140/90 is 135/85, Table 11).
* Hypertensive crisis: systolic > 180 and/or diastolic > 120 mmHg (same guideline, section 11.2).
* Stergiou GS et al., "2021 European Society of Hypertension practice guidelines for office and
  out-of-office blood pressure measurement", J Hypertens 2021;39:1293 (home protocol: duplicate
  morning and evening readings for 7 days, discard day 1, average the rest, >= 12 readings; home
  hypertension at a mean >= 135/85 mmHg).
* Kario K et al., Hypertension 2003;42:123 / Kario K, Hypertension 2010;56:765 (home morning
  hypertension: the morning-evening difference, ME-dif = morning SBP - evening SBP).
* Mena L et al., J Hypertens 2005;23:505 (average real variability, ARV).
* Sen PK, J Am Stat Assoc 1968;63:1379 (Theil-Sen slope; scipy.stats.theilslopes).
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from vitalgate.readings import BloodPressureReading
from vitalgate.signal.units import NS_PER_S, as_utc_ns, local_offsets_s

__all__ = [
    "HOME_THRESHOLD_DIASTOLIC_MMHG",
    "HOME_THRESHOLD_SYSTOLIC_MMHG",
    "BpCategory",
    "HomeBpSummary",
    "MorningSurge",
    "Trend",
    "Variability",
    "classify",
    "classify_many",
    "from_readings",
    "home_bp_summary",
    "morning_surge",
    "trend",
    "variability",
]

HOME_THRESHOLD_SYSTOLIC_MMHG = 135.0
HOME_THRESHOLD_DIASTOLIC_MMHG = 85.0
_SECONDS_PER_WEEK = 7 * 86_400


class BpCategory(enum.IntEnum):
    """2017 ACC/AHA blood-pressure category; the integer is the code of :func:`classify_many`
    and orders the categories (the higher one wins)."""

    NORMAL = 0
    ELEVATED = 1
    STAGE_1 = 2
    STAGE_2 = 3
    CRISIS = 4


def classify(systolic_mmhg: float, diastolic_mmhg: float) -> BpCategory:
    """The 2017 ACC/AHA category of one reading (or of an average of readings).

    Normal < 120 and < 80; elevated 120-129 and < 80; stage 1 130-139 or 80-89; stage 2 >= 140 or
    >= 90; crisis > 180 and/or > 120 (Whelton et al. 2017). The higher of the systolic and the
    diastolic category wins, so 125/85 is stage 1. Thresholds are half-open, so 129.6 is elevated.
    Raises ``ValueError`` for a non-finite or negative pressure.
    """
    s = float(systolic_mmhg)
    d = float(diastolic_mmhg)
    if not (math.isfinite(s) and math.isfinite(d)) or s < 0 or d < 0:
        raise ValueError(f"blood pressure must be finite and >= 0, got {s}/{d}")
    if s > 180 or d > 120:
        return BpCategory.CRISIS
    if s >= 140 or d >= 90:
        return BpCategory.STAGE_2
    if s >= 130 or d >= 80:
        return BpCategory.STAGE_1
    if s >= 120:
        return BpCategory.ELEVATED
    return BpCategory.NORMAL


def classify_many(systolic_mmhg: ArrayLike, diastolic_mmhg: ArrayLike) -> NDArray[np.int8]:
    """Vectorised :func:`classify`: an int8 array of :class:`BpCategory` codes (broadcasting).

    A pair with a non-finite or negative pressure gets code -1 instead of an exception.
    """
    s = np.asarray(systolic_mmhg, dtype=np.float64)
    d = np.asarray(diastolic_mmhg, dtype=np.float64)
    s, d = np.broadcast_arrays(s, d)
    with np.errstate(invalid="ignore"):
        code = np.zeros(s.shape, dtype=np.int8)
        code[s >= 120] = BpCategory.ELEVATED
        code[(s >= 130) | (d >= 80)] = BpCategory.STAGE_1
        code[(s >= 140) | (d >= 90)] = BpCategory.STAGE_2
        code[(s > 180) | (d > 120)] = BpCategory.CRISIS
        bad = ~(np.isfinite(s) & np.isfinite(d)) | (s < 0) | (d < 0)
    code[bad] = -1
    return code


def from_readings(
    readings: Iterable[BloodPressureReading],
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    """(measured_at as UTC ns, systolic_mmhg, diastolic_mmhg) of the clinical readings.

    Readings flagged non-clinical (``IMPLAUSIBLE``) are left out; other flags (body movement,
    irregular pulse, ...) are kept, as the guideline averages every valid home reading.
    """
    kept = [r for r in readings if r.is_clinical]
    t = as_utc_ns([r.measured_at for r in kept]) if kept else np.empty(0, np.int64)
    s = np.fromiter((r.systolic_mmhg for r in kept), np.float64, len(kept))
    d = np.fromiter((r.diastolic_mmhg for r in kept), np.float64, len(kept))
    return t, s, d


@dataclass(frozen=True, slots=True)
class HomeBpSummary:
    """Home-BP protocol summary (ESH 2021 / ACC/AHA 2017); pressures in mmHg, dates local.

    ``sessions_expected`` = (days - 1) x 2 (morning + evening of each day after the discarded
    first day); ``adherence_pct`` is the share of those sessions with at least one reading.
    ``above_threshold`` is true when the mean systolic >= 135 or the mean diastolic >= 85 mmHg;
    ``sufficient`` when at least ``minimum_readings`` (12, ESH) readings were used. Means are NaN
    when no reading was used.
    """

    first_day: dt.date
    last_day: dt.date
    readings_used: int
    readings_excluded: int
    morning_count: int
    evening_count: int
    sessions_expected: int
    sessions_with_readings: int
    adherence_pct: float
    mean_systolic_mmhg: float
    mean_diastolic_mmhg: float
    morning_mean_systolic_mmhg: float
    morning_mean_diastolic_mmhg: float
    evening_mean_systolic_mmhg: float
    evening_mean_diastolic_mmhg: float
    threshold_systolic_mmhg: float
    threshold_diastolic_mmhg: float
    above_threshold: bool
    sufficient: bool
    category: BpCategory | None


def _local(times: ArrayLike | Sequence[dt.datetime], tz: str | dt.tzinfo) -> NDArray[np.int64]:
    t = as_utc_ns(times)
    return t + local_offsets_s(t, tz) * NS_PER_S


def _sessions(
    local_ns: NDArray[np.int64],
    morning_local_hours: tuple[int, int],
    evening_local_hours: tuple[int, int],
) -> tuple[NDArray[np.int64], NDArray[np.bool_], NDArray[np.bool_]]:
    day = local_ns // (86_400 * NS_PER_S)
    hour = (local_ns // (3600 * NS_PER_S)) % 24
    morning = (hour >= morning_local_hours[0]) & (hour < morning_local_hours[1])
    evening = (hour >= evening_local_hours[0]) & (hour < evening_local_hours[1])
    return day, morning, evening


def _mean(x: NDArray[np.float64]) -> float:
    return float(np.mean(x)) if x.size else math.nan


def home_bp_summary(
    times: ArrayLike | Sequence[dt.datetime],
    systolic_mmhg: ArrayLike,
    diastolic_mmhg: ArrayLike,
    *,
    tz: str | dt.tzinfo,
    first_day: dt.date | None = None,
    days: int = 7,
    discard_first_day: bool = True,
    morning_local_hours: tuple[int, int] = (4, 12),
    evening_local_hours: tuple[int, int] = (17, 24),
    threshold_systolic_mmhg: float = HOME_THRESHOLD_SYSTOLIC_MMHG,
    threshold_diastolic_mmhg: float = HOME_THRESHOLD_DIASTOLIC_MMHG,
    minimum_readings: int = 12,
) -> HomeBpSummary:
    """Summarise a home-BP monitoring week (Stergiou et al., J Hypertens 2021;39:1293).

    ``times`` are UTC (int64 ns, datetime64 or aware datetimes); sessions are assigned by local
    wall-clock time in the patient's zone ``tz``: morning ``[4, 12)`` h, evening ``[17, 24)`` h by
    default; readings outside both, outside the ``days``-day window starting at ``first_day``
    (default: the local date of the earliest reading), on the discarded first day, or with a
    non-finite pressure, are excluded and counted in ``readings_excluded``. Pass only clinical
    readings (no ``IMPLAUSIBLE`` flag).
    """
    s = np.asarray(systolic_mmhg, dtype=np.float64)
    d = np.asarray(diastolic_mmhg, dtype=np.float64)
    local_ns = _local(times, tz)
    if not (s.shape == d.shape == local_ns.shape):
        raise ValueError("times, systolic_mmhg and diastolic_mmhg must have the same length")
    if days < 2:
        raise ValueError(f"days must be >= 2, got {days}")
    day, morning, evening = _sessions(local_ns, morning_local_hours, evening_local_hours)
    epoch = dt.date(1970, 1, 1)
    if first_day is None:
        if local_ns.size == 0:
            raise ValueError("no readings and no first_day given")
        first_day = epoch + dt.timedelta(days=int(day.min()))
    first_index = (first_day - epoch).days
    rel = day - first_index
    keep_from = 1 if discard_first_day else 0
    in_window = (rel >= keep_from) & (rel < days)
    finite = np.isfinite(s) & np.isfinite(d)
    used_m = in_window & morning & finite
    used_e = in_window & evening & finite
    used = used_m | used_e
    sessions_expected = (days - keep_from) * 2
    session_keys = np.concatenate([rel[used_m] * 2, rel[used_e] * 2 + 1])
    sessions_with = int(np.unique(session_keys).size)
    mean_s = _mean(s[used])
    mean_d = _mean(d[used])
    n_used = int(used.sum())
    above = bool(n_used) and (
        mean_s >= threshold_systolic_mmhg or mean_d >= threshold_diastolic_mmhg
    )
    return HomeBpSummary(
        first_day=first_day,
        last_day=first_day + dt.timedelta(days=days - 1),
        readings_used=n_used,
        readings_excluded=int(s.size - n_used),
        morning_count=int(used_m.sum()),
        evening_count=int(used_e.sum()),
        sessions_expected=sessions_expected,
        sessions_with_readings=sessions_with,
        adherence_pct=100.0 * sessions_with / sessions_expected,
        mean_systolic_mmhg=mean_s,
        mean_diastolic_mmhg=mean_d,
        morning_mean_systolic_mmhg=_mean(s[used_m]),
        morning_mean_diastolic_mmhg=_mean(d[used_m]),
        evening_mean_systolic_mmhg=_mean(s[used_e]),
        evening_mean_diastolic_mmhg=_mean(d[used_e]),
        threshold_systolic_mmhg=threshold_systolic_mmhg,
        threshold_diastolic_mmhg=threshold_diastolic_mmhg,
        above_threshold=above,
        sufficient=n_used >= minimum_readings,
        category=classify(mean_s, mean_d) if n_used else None,
    )


@dataclass(frozen=True, slots=True)
class Trend:
    """Theil-Sen trend of a pressure series: slope in mmHg/week with its confidence interval.

    ``intercept_mmhg`` is the fitted value at the first reading's time. All values are NaN when
    fewer than 3 finite readings or a zero time span were given.
    """

    slope_mmhg_per_week: float
    ci_low_mmhg_per_week: float
    ci_high_mmhg_per_week: float
    confidence: float
    intercept_mmhg: float
    n: int
    span_days: float


def trend(
    times: ArrayLike | Sequence[dt.datetime], values_mmhg: ArrayLike, *, confidence: float = 0.95
) -> Trend:
    """Theil-Sen slope with a ``confidence`` interval (Sen 1968; ``scipy.stats.theilslopes``).

    Robust to up to ~29 % outliers; the interval is the distribution-free one of Sen (1968).
    """
    t = as_utc_ns(times)
    y = np.asarray(values_mmhg, dtype=np.float64)
    if t.shape != y.shape:
        raise ValueError("times and values_mmhg must have the same length")
    ok = np.isfinite(y)
    t, y = t[ok], y[ok]
    n = int(y.size)
    span_s = float(t.max() - t.min()) / NS_PER_S if n else 0.0
    if n < 3 or span_s <= 0:
        nan = math.nan
        return Trend(nan, nan, nan, confidence, nan, n, span_s / 86_400)
    x_weeks = (t - t.min()).astype(np.float64) / NS_PER_S / _SECONDS_PER_WEEK
    res = stats.theilslopes(y, x_weeks, alpha=confidence)
    return Trend(
        slope_mmhg_per_week=float(res[0]),
        ci_low_mmhg_per_week=float(res[2]),
        ci_high_mmhg_per_week=float(res[3]),
        confidence=confidence,
        intercept_mmhg=float(res[1]),
        n=n,
        span_days=span_s / 86_400,
    )


@dataclass(frozen=True, slots=True)
class MorningSurge:
    """Home morning-evening difference (Kario 2003/2010), systolic, mmHg.

    ``me_difference_mmhg`` = mean over days with both sessions of (morning mean - evening mean);
    ``me_average_mmhg`` = mean of (morning + evening) / 2 over the same days;
    ``morning_hypertension`` when the morning mean >= 135 mmHg; ``surge`` when
    ME-dif >= ``threshold_mmhg``. NaN when no day has both sessions.
    """

    me_difference_mmhg: float
    me_average_mmhg: float
    morning_mean_systolic_mmhg: float
    evening_mean_systolic_mmhg: float
    paired_days: int
    threshold_mmhg: float
    surge: bool
    morning_hypertension: bool


def morning_surge(
    times: ArrayLike | Sequence[dt.datetime],
    systolic_mmhg: ArrayLike,
    *,
    tz: str | dt.tzinfo,
    morning_local_hours: tuple[int, int] = (4, 12),
    evening_local_hours: tuple[int, int] = (17, 24),
    threshold_mmhg: float = 20.0,
) -> MorningSurge:
    """Home-BP morning surge as the morning-evening SBP difference (Kario, Hypertension
    2010;56:765: ME-dif >= 20 mmHg marks an exaggerated morning BP rise; morning SBP >= 135 is
    morning hypertension). Each local day with both a morning and an evening reading counts once.
    """
    s = np.asarray(systolic_mmhg, dtype=np.float64)
    local_ns = _local(times, tz)
    if s.shape != local_ns.shape:
        raise ValueError("times and systolic_mmhg must have the same length")
    day, morning, evening = _sessions(local_ns, morning_local_hours, evening_local_hours)
    ok = np.isfinite(s)
    m_days, m_inv = np.unique(day[morning & ok], return_inverse=True)
    e_days, e_inv = np.unique(day[evening & ok], return_inverse=True)
    m_means = (
        np.bincount(m_inv, weights=s[morning & ok]) / np.bincount(m_inv)
        if m_days.size
        else np.empty(0)
    )
    e_means = (
        np.bincount(e_inv, weights=s[evening & ok]) / np.bincount(e_inv)
        if e_days.size
        else np.empty(0)
    )
    both, mi, ei = np.intersect1d(m_days, e_days, return_indices=True)
    if both.size == 0:
        nan = math.nan
        return MorningSurge(nan, nan, nan, nan, 0, threshold_mmhg, False, False)
    mm = float(np.mean(m_means[mi]))
    em = float(np.mean(e_means[ei]))
    diff = float(np.mean(m_means[mi] - e_means[ei]))
    return MorningSurge(
        me_difference_mmhg=diff,
        me_average_mmhg=float(np.mean((m_means[mi] + e_means[ei]) / 2)),
        morning_mean_systolic_mmhg=mm,
        evening_mean_systolic_mmhg=em,
        paired_days=int(both.size),
        threshold_mmhg=threshold_mmhg,
        surge=diff >= threshold_mmhg,
        morning_hypertension=mm >= HOME_THRESHOLD_SYSTOLIC_MMHG,
    )


@dataclass(frozen=True, slots=True)
class Variability:
    """Reading-to-reading variability in mmHg: sample SD (ddof=1), ARV = mean |x[i+1] - x[i]|
    (Mena et al. 2005), coefficient of variation in %. Unpacks as ``sd, arv = variability(x)``."""

    sd_mmhg: float
    arv_mmhg: float
    cv_pct: float
    n: int

    def __iter__(self) -> Iterator[float]:
        return iter((self.sd_mmhg, self.arv_mmhg))


def variability(values_mmhg: ArrayLike) -> Variability:
    """SD and average real variability of a time-ordered series (non-finite values dropped).

    ARV (Mena et al., J Hypertens 2005;23:505) weights the order of readings, unlike the SD; pass
    readings sorted by time. NaN for fewer than 2 readings.
    """
    x = np.asarray(values_mmhg, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size < 2:
        return Variability(math.nan, math.nan, math.nan, int(x.size))
    sd = float(np.std(x, ddof=1))
    mean = float(np.mean(x))
    return Variability(
        sd_mmhg=sd,
        arv_mmhg=float(np.mean(np.abs(np.diff(x)))),
        cv_pct=100.0 * sd / mean if mean else math.nan,
        n=int(x.size),
    )
