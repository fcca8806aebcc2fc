"""Pulse oximetry: plausibility and oxygen-desaturation events.

* Plausible SpO2: 50-100 % (below 50 % pulse oximeters are neither calibrated nor accurate; ISO
  80601-2-61 requires accuracy claims only for 70-100 %), finite, and a pulse rate of 25-250 bpm
  where given (see :mod:`vitalgate.signal.quality`).
* Desaturation: a fall of >= 3 percentage points from the baseline lasting >= 10 s (Berry RB et
  al., "Rules for scoring respiratory events in sleep: update of the 2007 AASM Manual", J Clin
  Sleep Med 2012;8:597 -- the 3 % rule; the oxygen desaturation index ODI3 counts such events per
  hour of valid recording). The baseline of each sample is the mean of the plausible readings in
  the preceding ``baseline_window_s`` (120 s), a common running-mean baseline (e.g. Vat S et al.,
  Sleep 2020); an event ends when SpO2 is back above (event baseline - drop).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from vitalgate.signal.quality import plausible_mask as _plausible
from vitalgate.signal.units import NS_PER_S, as_utc_ns

__all__ = ["Desaturation", "DesaturationSummary", "desaturations", "plausible_mask"]


def plausible_mask(spo2_pct: ArrayLike) -> NDArray[np.bool_]:
    """True where an SpO2 value is finite and within 50-100 %."""
    return _plausible(spo2_pct, field="spo2_pct")


@dataclass(frozen=True, slots=True)
class Desaturation:
    """One desaturation event: UTC ns bounds, duration, baseline and nadir in %, drop in points."""

    start_utc_ns: int
    end_utc_ns: int
    duration_s: float
    baseline_pct: float
    nadir_pct: float
    drop_pct: float


@dataclass(frozen=True, slots=True)
class DesaturationSummary:
    """All events plus ODI (events per hour of valid recording) and the time below 90 %."""

    events: tuple[Desaturation, ...]
    valid_hours: float
    odi_per_h: float
    t90_pct: float


def desaturations(
    spo2_pct: ArrayLike,
    timestamps: ArrayLike | Sequence[dt.datetime],
    *,
    drop_pct: float = 3.0,
    min_duration_s: float = 10.0,
    baseline_window_s: float = 120.0,
    max_gap_s: float = 30.0,
) -> DesaturationSummary:
    """Desaturation events of >= ``drop_pct`` points for >= ``min_duration_s`` (AASM 2012).

    Implausible readings are ignored (neither baseline nor event). A gap > ``max_gap_s`` ends an
    event and is not counted as valid time. ``t90_pct``: % of valid time below 90 %.
    """
    x = np.asarray(spo2_pct, dtype=np.float64)
    t = as_utc_ns(timestamps)
    if x.shape != t.shape or x.ndim != 1:
        raise ValueError("spo2_pct and timestamps must be 1-D of one length")
    order = np.argsort(t, kind="stable")
    x, t = x[order], t[order]
    ok = plausible_mask(x)
    if np.count_nonzero(ok) < 2:
        return DesaturationSummary((), 0.0, math.nan, math.nan)
    all_dt = np.diff(t)
    step = float(np.median(all_dt[all_dt > 0])) if np.any(all_dt > 0) else float(NS_PER_S)
    # Valid time: each plausible reading holds until the next reading (at most max_gap_s); the
    # last one for one sampling step.
    hold = np.concatenate((all_dt, [step])).astype(np.float64)
    hold[hold > max_gap_s * NS_PER_S] = 0.0
    hold[~ok] = 0.0
    valid_ns = float(hold.sum())
    below90 = float(hold[x < 90].sum())
    x, t = x[ok], t[ok]
    n = x.size
    dt_ns = np.diff(t)
    # Trailing mean over [t - window, t) of earlier readings.
    cs = np.concatenate(([0.0], np.cumsum(x)))
    lo = np.searchsorted(t, t - round(baseline_window_s * NS_PER_S), side="left")
    hi = np.arange(n)
    count = hi - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        baseline = np.where(count > 0, (cs[hi] - cs[lo]) / count, np.nan)
    events: list[Desaturation] = []
    i = 0
    gap_after = np.concatenate((dt_ns > max_gap_s * NS_PER_S, [True]))
    while i < n:
        b = baseline[i]
        if not (np.isfinite(b) and x[i] <= b - drop_pct):
            i += 1
            continue
        j = i
        while not gap_after[j] and x[j + 1] <= b - drop_pct:
            j += 1
        duration = float(t[j] - t[i] + step) / NS_PER_S
        if duration >= min_duration_s:
            nadir = float(x[i : j + 1].min())
            events.append(
                Desaturation(
                    start_utc_ns=int(t[i]),
                    end_utc_ns=int(t[j]),
                    duration_s=duration,
                    baseline_pct=float(b),
                    nadir_pct=nadir,
                    drop_pct=float(b) - nadir,
                )
            )
        i = j + 1
    hours = valid_ns / NS_PER_S / 3600.0
    return DesaturationSummary(
        events=tuple(events),
        valid_hours=hours,
        odi_per_h=len(events) / hours if hours > 0 else math.nan,
        t90_pct=100.0 * below90 / valid_ns,
    )
