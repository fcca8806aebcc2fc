"""Continuous glucose monitoring: consensus metrics, AGP, episodes, gaps, display smoothing.

References:

* Battelino T et al., "Clinical Targets for Continuous Glucose Monitoring Data Interpretation:
  Recommendations From the International Consensus on Time in Range", Diabetes Care
  2019;42:1593-1603 (TIR 70-180, TBR < 70 and < 54, TAR > 180 and > 250 mg/dL, CV, GMI, % time
  CGM is active, >= 14 days, AGP).
* Danne T et al., "International Consensus on Use of Continuous Glucose Monitoring", Diabetes Care
  2017;40:1631-1640 (hypoglycaemia level 1 < 70 / level 2 < 54 mg/dL; an episode is >= 15
  consecutive minutes below the threshold and ends after >= 15 consecutive minutes at or above it).
* Bergenstal RM et al., "Glucose Management Indicator (GMI)", Diabetes Care 2018;41:2275
  (GMI % = 3.31 + 0.02392 x mean glucose in mg/dL).
* Service FJ et al., "Mean amplitude of glycemic excursions", Diabetes 1970;19:644 (MAGE).
* Kovatchev BP et al., Diabetes Care 1998;21:1870 and Diabetes Technol Ther 2002;4:295
  (LBGI/HBGI: f(BG) = 1.509 (ln(BG)^1.084 - 5.381), risk = 10 f^2).
* Klonoff DC et al., "A Glycemia Risk Index (GRI) of Hypoglycemia and Hyperglycemia for
  Continuous Glucose Monitoring Validated by Clinician Ratings", J Diabetes Sci Technol
  2023;17:1226 (GRI = 3.0 VLow + 2.4 Low + 1.6 VHigh + 0.8 High, capped at 100).

Conventions: glucose in mg/dL, times UTC (int64 ns, datetime64 or aware datetimes). Percentages of
time are percentages of the valid readings (at a regular sampling interval the same thing);
nothing is interpolated for metrics, so a gap (> 15 min without a reading) simply contributes no
readings and lowers ``active_pct``. The SD is the **sample** SD (ddof = 1), as in R's ``sd`` used by
iglu and by most CGM software. Readings are ordered by (time, value) first, so no result depends
on the input order.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from vitalgate.readings import CgmReading
from vitalgate.signal.units import NS_PER_S, as_utc_ns, local_offsets_s

__all__ = [
    "DEFAULT_MAX_GAP_S",
    "Agp",
    "CgmMetrics",
    "Episode",
    "Gaps",
    "agp",
    "episodes",
    "find_gaps",
    "from_readings",
    "gri",
    "mage",
    "metrics",
    "resample",
    "risk_indices",
    "smooth_for_display",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: A gap is more than 15 minutes without a reading (Battelino 2019; no interpolation across it).
DEFAULT_MAX_GAP_S = 900.0
_DAY_NS = 86_400 * NS_PER_S
_AGP_PERCENTILES = (5.0, 25.0, 50.0, 75.0, 95.0)


def from_readings(readings: Iterable[CgmReading]) -> tuple[FloatArray, IntArray]:
    """(glucose_mg_dl, measured_at as UTC ns) of the clinical readings, in the given order.

    Readings flagged non-clinical (implausible, control solution) are left out, as the consensus
    metrics must not see them.
    """
    kept = [r for r in readings if r.is_clinical]
    g = np.fromiter((r.glucose_mg_dl for r in kept), np.float64, len(kept))
    t = as_utc_ns([r.measured_at for r in kept]) if kept else np.empty(0, np.int64)
    return g, t


def _prepare(
    glucose_mg_dl: ArrayLike, timestamps: ArrayLike | Sequence[dt.datetime]
) -> tuple[FloatArray, IntArray]:
    g = np.asarray(glucose_mg_dl, dtype=np.float64)
    t = as_utc_ns(timestamps)
    if g.ndim != 1 or g.shape != t.shape:
        raise ValueError(
            f"glucose_mg_dl and timestamps must be 1-D of one length, got {g.shape} and {t.shape}"
        )
    ok = np.isfinite(g)
    if not ok.all():
        g, t = g[ok], t[ok]
    if np.any(g <= 0):
        raise ValueError("glucose_mg_dl must be > 0")
    if t.size > 1 and bool(np.all(t[1:] > t[:-1])):
        return g, t  # already in (time, value) order: strictly increasing times
    order = np.lexsort((g, t))
    return g[order], t[order]


def _interval_s(t: IntArray, sampling_interval_s: float | None) -> float:
    if sampling_interval_s is not None:
        if not sampling_interval_s > 0:
            raise ValueError(f"sampling_interval_s must be > 0, got {sampling_interval_s}")
        return float(sampling_interval_s)
    d = np.diff(t)
    d = d[d > 0]
    if d.size == 0:
        raise ValueError("cannot infer the sampling interval: pass sampling_interval_s")
    return float(np.median(d)) / NS_PER_S


@dataclass(frozen=True, slots=True)
class Gaps:
    """Gaps in a CGM trace: the readings either side of each gap (UTC ns) and its length."""

    start_utc_ns: IntArray
    end_utc_ns: IntArray
    duration_s: FloatArray

    @property
    def count(self) -> int:
        return int(self.duration_s.size)


def find_gaps(
    timestamps: ArrayLike | Sequence[dt.datetime], *, max_gap_s: float = DEFAULT_MAX_GAP_S
) -> Gaps:
    """Intervals longer than ``max_gap_s`` between consecutive readings (sorted by time)."""
    t = np.sort(as_utc_ns(timestamps))
    d = np.diff(t)
    at = np.flatnonzero(d > max_gap_s * NS_PER_S)
    return Gaps(t[at], t[at + 1], d[at].astype(np.float64) / NS_PER_S)


def _turning_points(g: FloatArray) -> FloatArray:
    if g.size < 3:
        return g
    keep = np.concatenate(([True], np.diff(g) != 0))
    v = g[keep]
    if v.size < 3:
        return v
    s = np.sign(np.diff(v))
    turn = np.flatnonzero(s[1:] != s[:-1]) + 1
    return v[np.concatenate(([0], turn, [v.size - 1]))]


def mage(glucose_mg_dl: ArrayLike, *, sd_mg_dl: float | None = None) -> float:
    """Mean amplitude of glycaemic excursions (Service et al. 1970), mg/dL, of a time-ordered trace.

    Excursions are the legs of the trace's zig-zag with a reversal threshold of 1 SD (sample SD
    unless ``sd_mg_dl`` is given): a peak or nadir is confirmed once the trace has moved back by
    at least 1 SD from it. As in Service's definition, MAGE averages the excursions in the
    direction of the first one (MAGE+ if it rises, MAGE- if it falls); the last, unreversed leg
    counts when it is >= 1 SD. NaN when no excursion reaches 1 SD.
    """
    g = np.asarray(glucose_mg_dl, dtype=np.float64)
    g = g[np.isfinite(g)]
    if g.size < 2:
        return math.nan
    sd = float(np.std(g, ddof=1)) if sd_mg_dl is None else float(sd_mg_dl)
    if not sd > 0:
        return math.nan
    pts = _turning_points(g).tolist()
    swings: list[float] = []
    direction = 0
    lo = hi = pivot = cand = pts[0]
    for v in pts[1:]:
        if direction == 0:
            lo = min(lo, v)
            hi = max(hi, v)
            if v - lo >= sd:
                direction, pivot, cand = 1, lo, v
            elif hi - v >= sd:
                direction, pivot, cand = -1, hi, v
        elif direction > 0:
            if v > cand:
                cand = v
            elif cand - v >= sd:
                swings.append(cand - pivot)
                direction, pivot, cand = -1, cand, v
        elif v < cand:
            cand = v
        elif v - cand >= sd:
            swings.append(cand - pivot)
            direction, pivot, cand = 1, cand, v
    if direction != 0 and abs(cand - pivot) >= sd:
        swings.append(cand - pivot)
    if not swings:
        return math.nan
    arr = np.asarray(swings)
    first_up = arr[0] > 0
    sel = arr[arr > 0] if first_up else -arr[arr < 0]
    return float(np.mean(sel))


def risk_indices(glucose_mg_dl: ArrayLike) -> tuple[float, float]:
    """(LBGI, HBGI) of Kovatchev et al. (1998, 2002); glucose in mg/dL."""
    g = np.asarray(glucose_mg_dl, dtype=np.float64)
    g = g[np.isfinite(g) & (g > 0)]
    if g.size == 0:
        return math.nan, math.nan
    f = 1.509 * (np.log(g) ** 1.084 - 5.381)
    r = 10.0 * f * f
    return float(np.mean(np.where(f < 0, r, 0.0))), float(np.mean(np.where(f > 0, r, 0.0)))


def gri(
    very_low_pct: float, low_pct: float, high_pct: float, very_high_pct: float
) -> tuple[float, float, float]:
    """Glycemia Risk Index (Klonoff et al. 2023) -> (GRI, hypo component, hyper component).

    Arguments are % of time < 54, 54-69, 181-250 and > 250 mg/dL. Hypo component =
    VLow + 0.8 Low, hyper component = VHigh + 0.5 High, GRI = 3.0 hypo + 1.6 hyper, capped at 100.
    """
    hypo = very_low_pct + 0.8 * low_pct
    hyper = very_high_pct + 0.5 * high_pct
    return min(100.0, 3.0 * hypo + 1.6 * hyper), hypo, hyper


@dataclass(frozen=True, slots=True)
class CgmMetrics:
    """The consensus CGM metrics (Battelino 2019) and glycaemic-variability indices.

    Glucose in mg/dL, percentages in %. ``tbr_pct`` (< 70) includes ``tbr_level2_pct`` (< 54) and
    ``tar_pct`` (> 180) includes ``tar_level2_pct`` (> 250), so tir + tbr + tar = 100.
    ``sd_mg_dl`` is the sample SD (ddof = 1). ``active_pct`` = readings present / readings
    expected over ``days`` at ``sampling_interval_s``, capped at 100. ``sufficient`` follows the
    consensus: >= 14 days with >= 70 % of data.
    """

    readings: int
    days: float
    sampling_interval_s: float
    active_pct: float
    gaps: int
    mean_mg_dl: float
    sd_mg_dl: float
    cv_pct: float
    gmi_pct: float
    tir_pct: float
    tbr_pct: float
    tbr_level2_pct: float
    tar_pct: float
    tar_level2_pct: float
    mage_mg_dl: float
    lbgi: float
    hbgi: float
    gri: float
    gri_hypo_component: float
    gri_hyper_component: float
    sufficient: bool


def metrics(
    glucose_mg_dl: ArrayLike,
    timestamps: ArrayLike | Sequence[dt.datetime],
    *,
    sampling_interval_s: float | None = None,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
) -> CgmMetrics:
    """All consensus metrics of one CGM trace (Battelino et al., Diabetes Care 2019;42:1593).

    ``sampling_interval_s`` is the sensor's nominal interval (300 for 5-min sensors); when None
    it is inferred as the median spacing of the readings. Non-finite readings are dropped (they
    count as missing). No interpolation: see the module docstring. Raises ``ValueError`` for
    mismatched lengths, non-positive glucose, or fewer than 2 readings.
    """
    g, t = _prepare(glucose_mg_dl, timestamps)
    n = int(g.size)
    if n < 2:
        raise ValueError(f"need at least 2 readings, got {n}")
    interval_s = _interval_s(t, sampling_interval_s)
    interval_ns = interval_s * NS_PER_S
    period_ns = float(t[-1] - t[0]) + interval_ns
    expected = max(1, round(period_ns / interval_ns))
    distinct = int(np.count_nonzero(np.diff(t))) + 1
    active = min(100.0, 100.0 * distinct / expected)
    mean = float(np.mean(g))
    sd = float(np.std(g, ddof=1))
    scale = 100.0 / n
    n_lt54 = int(np.count_nonzero(g < 54))
    n_lt70 = int(np.count_nonzero(g < 70))
    n_gt180 = int(np.count_nonzero(g > 180))
    n_gt250 = int(np.count_nonzero(g > 250))
    tbr, tbr2 = n_lt70 * scale, n_lt54 * scale
    tar, tar2 = n_gt180 * scale, n_gt250 * scale
    tir = (n - n_lt70 - n_gt180) * scale
    index, hypo, hyper = gri(tbr2, tbr - tbr2, tar - tar2, tar2)
    lbgi, hbgi = risk_indices(g)
    days = period_ns / _DAY_NS
    return CgmMetrics(
        readings=n,
        days=days,
        sampling_interval_s=interval_s,
        active_pct=active,
        gaps=int(np.count_nonzero(np.diff(t) > max_gap_s * NS_PER_S)),
        mean_mg_dl=mean,
        sd_mg_dl=sd,
        cv_pct=100.0 * sd / mean,
        gmi_pct=3.31 + 0.02392 * mean,
        tir_pct=tir,
        tbr_pct=tbr,
        tbr_level2_pct=tbr2,
        tar_pct=tar,
        tar_level2_pct=tar2,
        mage_mg_dl=mage(g, sd_mg_dl=sd),
        lbgi=lbgi,
        hbgi=hbgi,
        gri=index,
        gri_hypo_component=hypo,
        gri_hyper_component=hyper,
        sufficient=days >= 14.0 and active >= 70.0,
    )


@dataclass(frozen=True, slots=True, eq=False)
class Agp:
    """Ambulatory glucose profile: percentiles of glucose (mg/dL) by local time of day.

    One entry per ``bin_minutes`` bin starting at ``time_of_day_min`` (local wall clock in the
    zone given). Percentiles use linear interpolation between order statistics (NumPy's default,
    Hyndman & Fan type 7); bins without readings hold NaN. Arrays are read-only.
    """

    time_of_day_min: IntArray
    p5_mg_dl: FloatArray
    p25_mg_dl: FloatArray
    p50_mg_dl: FloatArray
    p75_mg_dl: FloatArray
    p95_mg_dl: FloatArray
    counts: IntArray
    readings: int
    days: int
    start_utc_ns: int
    end_utc_ns: int


def _grouped_percentiles(
    values: FloatArray, groups: IntArray, n_groups: int, percentiles: Sequence[float]
) -> tuple[list[FloatArray], IntArray]:
    order = np.lexsort((values, groups))
    v = values[order]
    counts = np.bincount(groups, minlength=n_groups).astype(np.int64)
    starts = np.cumsum(counts) - counts
    has = counts > 0
    c = np.maximum(counts, 1)
    out: list[FloatArray] = []
    for p in percentiles:
        pos = (c - 1) * (p / 100.0)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, c - 1)
        frac = pos - lo
        if v.size:
            a = v[np.minimum(starts + lo, v.size - 1)]
            b = v[np.minimum(starts + hi, v.size - 1)]
            q = a + (b - a) * frac
        else:
            q = np.zeros(n_groups)
        out.append(np.where(has, q, np.nan))
    return out, counts


def _readonly(a: NDArray[np.generic]) -> None:
    a.setflags(write=False)


def agp(
    glucose_mg_dl: ArrayLike,
    timestamps: ArrayLike | Sequence[dt.datetime],
    *,
    tz: str | dt.tzinfo,
    days: int = 14,
    bin_minutes: int = 5,
) -> Agp:
    """The AGP modal day: 5/25/50/75/95th percentiles by local time of day (Battelino 2019).

    Uses the ``days`` days up to the last reading (a 14-day window by default), readings binned by
    local wall-clock time in the patient's zone ``tz`` on a ``bin_minutes`` grid (5 min: 288 bins).
    No smoothing across bins: the figure may smooth for display.
    """
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    if bin_minutes < 1 or 1440 % bin_minutes:
        raise ValueError(f"bin_minutes must divide 1440, got {bin_minutes}")
    g, t = _prepare(glucose_mg_dl, timestamps)
    if t.size == 0:
        raise ValueError("no readings")
    end = int(t[-1])
    start = end - days * _DAY_NS
    sel = t > start
    g, t = g[sel], t[sel]
    local = t + local_offsets_s(t, tz) * NS_PER_S
    bin_ns = bin_minutes * 60 * NS_PER_S
    n_bins = 1440 // bin_minutes
    groups = (local % _DAY_NS) // bin_ns
    qs, counts = _grouped_percentiles(g, groups, n_bins, _AGP_PERCENTILES)
    tod = np.arange(n_bins, dtype=np.int64) * bin_minutes
    for a in (*qs, counts, tod):
        _readonly(a)
    return Agp(
        time_of_day_min=tod,
        p5_mg_dl=qs[0],
        p25_mg_dl=qs[1],
        p50_mg_dl=qs[2],
        p75_mg_dl=qs[3],
        p95_mg_dl=qs[4],
        counts=counts,
        readings=int(g.size),
        days=days,
        start_utc_ns=start,
        end_utc_ns=end,
    )


@dataclass(frozen=True, slots=True)
class Episode:
    """A hypo- or hyperglycaemic episode (Danne 2017; Battelino 2019).

    ``start_utc_ns`` is the first reading beyond the threshold; ``end_utc_ns`` the first reading
    of the >= 15 min recovery when ``recovered``, else the last reading beyond the threshold
    (data ended or a gap interrupted the episode). ``extreme_mg_dl`` is the nadir (hypo) or the
    peak (hyper).
    """

    start_utc_ns: int
    end_utc_ns: int
    duration_s: float
    extreme_mg_dl: float
    recovered: bool


def _runs(flag: NDArray[np.bool_], breaks: NDArray[np.bool_]) -> tuple[IntArray, IntArray]:
    """Start and end (inclusive) indices of runs of equal ``flag`` not crossing ``breaks``."""
    n = flag.size
    change = np.flatnonzero((flag[1:] != flag[:-1]) | breaks) + 1
    starts = np.concatenate(([0], change)).astype(np.int64)
    ends = np.concatenate((change - 1, [n - 1])).astype(np.int64)
    return starts, ends


def episodes(
    glucose_mg_dl: ArrayLike,
    timestamps: ArrayLike | Sequence[dt.datetime],
    *,
    level: Literal[1, 2],
    kind: Literal["hypo", "hyper"] = "hypo",
    sampling_interval_s: float | None = None,
    min_duration_s: float = 900.0,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
) -> tuple[Episode, ...]:
    """CGM episodes per the consensus (Danne et al. 2017; Battelino et al. 2019).

    Hypo level 1: < 70 mg/dL, level 2: < 54; hyper level 1: > 180, level 2: > 250. An episode
    starts with readings beyond the threshold lasting >= ``min_duration_s`` (15 min) and ends
    with readings back within it lasting >= 15 min; shorter recoveries do not split an episode.
    A run of n readings lasts (t_last - t_first) + the sampling interval (three 5-min readings =
    15 min). A gap > ``max_gap_s`` ends a run: an episode cut by a gap or by the end of data is
    reported with ``recovered=False``.
    """
    thresholds = {("hypo", 1): 70.0, ("hypo", 2): 54.0, ("hyper", 1): 180.0, ("hyper", 2): 250.0}
    try:
        threshold = thresholds[(kind, level)]
    except KeyError as exc:
        raise ValueError(f"unknown episode kind/level {kind!r}/{level!r}") from exc
    g, t = _prepare(glucose_mg_dl, timestamps)
    if g.size == 0:
        return ()
    if g.size > 1 or sampling_interval_s is not None:
        interval_ns = _interval_s(t, sampling_interval_s) * NS_PER_S
    else:
        interval_ns = 0.0
    beyond = g < threshold if kind == "hypo" else g > threshold
    breaks = np.diff(t) > max_gap_s * NS_PER_S
    starts, ends = _runs(beyond, breaks)
    durations = (t[ends] - t[starts]).astype(np.float64) + interval_ns
    long_enough = durations >= min_duration_s * NS_PER_S
    # A run that ends at a gap (or at the end of data) is followed by no observed recovery.
    cut = np.concatenate((breaks[ends[:-1]], [True])) if ends.size else np.zeros(0, bool)
    found: list[Episode] = []
    current: int | None = None  # index of the run that started the open episode
    last_beyond: int = 0
    for r in range(starts.size):
        s = int(starts[r])
        if beyond[s]:
            if current is None and long_enough[r]:
                current = r
            if current is not None:
                last_beyond = r
                if cut[r]:
                    found.append(_episode(g, t, starts[current], ends[r], kind, recovered=False))
                    current = None
        elif current is not None and long_enough[r]:
            seg = slice(int(starts[current]), int(ends[last_beyond]) + 1)
            found.append(
                Episode(
                    start_utc_ns=int(t[starts[current]]),
                    end_utc_ns=int(t[s]),
                    duration_s=float(t[s] - t[starts[current]]) / NS_PER_S,
                    extreme_mg_dl=float(g[seg].min() if kind == "hypo" else g[seg].max()),
                    recovered=True,
                )
            )
            current = None
        elif current is not None and cut[r]:
            found.append(_episode(g, t, starts[current], ends[last_beyond], kind, recovered=False))
            current = None
    return tuple(found)


def _episode(
    g: FloatArray,
    t: IntArray,
    first: np.int64 | int,
    last: np.int64 | int,
    kind: str,
    *,
    recovered: bool,
) -> Episode:
    seg = g[int(first) : int(last) + 1]
    return Episode(
        start_utc_ns=int(t[first]),
        end_utc_ns=int(t[last]),
        duration_s=float(t[last] - t[first]) / NS_PER_S,
        extreme_mg_dl=float(seg.min() if kind == "hypo" else seg.max()),
        recovered=recovered,
    )


def resample(
    glucose_mg_dl: ArrayLike,
    timestamps: ArrayLike | Sequence[dt.datetime],
    *,
    interval_s: float,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
) -> tuple[IntArray, FloatArray]:
    """Readings on a regular grid (UTC ns, mg/dL) for display: linear interpolation between
    readings at most ``max_gap_s`` apart, NaN inside longer gaps (never bridged)."""
    g, t = _prepare(glucose_mg_dl, timestamps)
    if g.size == 0:
        return np.empty(0, np.int64), np.empty(0)
    step = round(interval_s * NS_PER_S)
    grid = np.arange(int(t[0]), int(t[-1]) + 1, step, dtype=np.int64)
    values = np.interp(grid.astype(np.float64), t.astype(np.float64), g)
    right = np.clip(np.searchsorted(t, grid, side="left"), 1, max(t.size - 1, 1))
    span = t[right] - t[right - 1] if t.size > 1 else np.zeros(grid.size, np.int64)
    exact = np.isin(grid, t)
    values[(span > max_gap_s * NS_PER_S) & ~exact] = np.nan
    return grid, values


def smooth_for_display(
    glucose_mg_dl: ArrayLike,
    timestamps: ArrayLike | Sequence[dt.datetime],
    *,
    window_s: float,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
) -> tuple[IntArray, FloatArray]:
    """Centred moving average over ``window_s`` seconds, never across a gap > ``max_gap_s``.

    For display only: metrics are always computed on the raw readings. Returns the time-sorted
    timestamps (UTC ns) and the smoothed values.
    """
    g, t = _prepare(glucose_mg_dl, timestamps)
    n = g.size
    if n == 0:
        return t, g
    half = round(window_s * NS_PER_S / 2)
    seg = np.concatenate(([0], np.cumsum(np.diff(t) > max_gap_s * NS_PER_S)))
    seg_start = np.searchsorted(seg, seg, side="left")
    seg_end = np.searchsorted(seg, seg, side="right")
    lo = np.maximum(np.searchsorted(t, t - half, side="left"), seg_start)
    hi = np.minimum(np.searchsorted(t, t + half, side="right"), seg_end)
    cs = np.concatenate(([0.0], np.cumsum(g)))
    return t, (cs[hi] - cs[lo]) / (hi - lo)
