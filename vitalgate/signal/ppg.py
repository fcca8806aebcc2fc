"""PPG heart rate with a signal-quality index and accelerometer motion rejection.

Pipeline (:func:`analyze`): zero-phase 0.5-8 Hz Butterworth band-pass and systolic-peak detection
(Elgendi et al., PLoS One 2013;8:e76585, see :mod:`vitalgate.signal.peaks`); the signal is cut
into windows (8 s by default); each window gets

* a template-matching signal-quality index: the mean correlation of each beat with the window's
  average beat (Orphanidou C et al., "Signal-quality indices for the electrocardiogram and
  photoplethysmogram: derivation and applications to wireless monitoring", IEEE J Biomed Health
  Inform 2015;19:832; Li Q & Clifford GD, Physiol Meas 2012;33:1491), accepted at >= 0.86;
* Orphanidou's feasibility rules: HR 40-180 bpm, no RR interval > 3 s, max/min RR < 2.2;
* motion rejection: the window is rejected when the SD of the accelerometer magnitude exceeds a
  threshold (0.05 g by default: still sitting is ~0.005 g, walking 0.2-0.5 g), since PPG peaks
  under motion follow the movement cadence, not the heart (Zhang Z et al., "TROIKA", IEEE Trans
  Biomed Eng 2015;62:522).

Heart rate per window = 60 / mean of the RR intervals with both beats inside it. :func:`analyze`
also returns the RR intervals of accepted windows for HRV (:mod:`vitalgate.signal.hrv`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from vitalgate.signal.filters import bandpass
from vitalgate.signal.peaks import PPG_WINDOWS, two_average_peaks

__all__ = ["PpgAnalysis", "analyze", "motion_mask", "template_sqi"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True, slots=True, eq=False)
class PpgAnalysis:
    """Result of :func:`analyze`; arrays are per beat or per window as named.

    ``peaks`` are sample indices; ``rr_intervals_s[i]`` is the interval ending at ``peaks[i+1]``
    and ``rr_accepted[i]`` says whether both of its beats lie in accepted windows. Per window:
    ``window_start_s``, ``window_hr_bpm`` (NaN without 2 beats), ``window_sqi`` (NaN without 3
    beats), ``window_motion`` and ``window_accepted``. ``hr_bpm`` = 60 / mean accepted RR (NaN when
    nothing was accepted).
    """

    sampling_rate_hz: float
    window_s: float
    peaks: IntArray
    rr_intervals_s: FloatArray
    rr_accepted: BoolArray
    window_start_s: FloatArray
    window_hr_bpm: FloatArray
    window_sqi: FloatArray
    window_motion: BoolArray
    window_accepted: BoolArray
    hr_bpm: float

    @property
    def accepted_fraction(self) -> float:
        n = self.window_accepted.size
        return float(np.count_nonzero(self.window_accepted)) / n if n else 0.0


def template_sqi(
    x: FloatArray, peaks: IntArray, groups: IntArray, n_groups: int, half_width: int
) -> FloatArray:
    """Mean correlation of each beat (``x`` around each peak, +-``half_width`` samples) with the
    average beat of its group (Orphanidou 2015). NaN for groups with fewer than 3 whole beats."""
    out = np.full(n_groups, np.nan)
    inside = (peaks - half_width >= 0) & (peaks + half_width < x.size)
    p, g = peaks[inside], groups[inside]
    if p.size == 0:
        return out
    offsets = np.arange(-half_width, half_width + 1)
    seg = x[p[:, None] + offsets[None, :]]
    seg = seg - seg.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(seg, axis=1)
    counts = np.bincount(g, minlength=n_groups)
    sums = np.zeros((n_groups, seg.shape[1]))
    np.add.at(sums, g, seg)
    with np.errstate(invalid="ignore", divide="ignore"):
        templates = sums / counts[:, None]
        tnorm = np.linalg.norm(templates, axis=1)
        corr = np.einsum("ij,ij->i", seg, templates[g]) / (norms * tnorm[g])
    corr = np.where(np.isfinite(corr), corr, 0.0)
    total = np.bincount(g, weights=corr, minlength=n_groups)
    ok = counts >= 3
    out[ok] = total[ok] / counts[ok]
    return out


def motion_mask(
    accel_g: ArrayLike,
    *,
    accel_sampling_rate_hz: float,
    window_s: float,
    n_windows: int,
    threshold_g: float,
) -> BoolArray:
    """True for windows in which the SD of the accelerometer magnitude exceeds ``threshold_g``.

    ``accel_g`` is (n, 3) in g (or (n,) magnitudes). Windows without accelerometer samples are
    not flagged.
    """
    a = np.asarray(accel_g, dtype=np.float64)
    mag = np.sqrt(np.einsum("ij,ij->i", a, a)) if a.ndim == 2 else np.abs(a)
    # Contiguous windows [bounds[k], bounds[k+1]): sums from cumulative sums of the magnitude
    # (centred on its mean, so the variance does not cancel catastrophically around 1 g).
    bounds = np.round(np.arange(n_windows + 1) * window_s * accel_sampling_rate_hz)
    bounds = np.minimum(bounds.astype(np.int64), mag.size)
    centred = mag - float(mag.mean()) if mag.size else mag
    cs1 = np.concatenate(([0.0], np.cumsum(centred)))
    cs2 = np.concatenate(([0.0], np.cumsum(centred * centred)))
    count = np.diff(bounds)
    s1 = np.diff(cs1[bounds])
    s2 = np.diff(cs2[bounds])
    with np.errstate(invalid="ignore", divide="ignore"):
        var = (s2 - s1 * s1 / count) / (count - 1)
        return np.asarray((count > 1) & (np.sqrt(np.maximum(var, 0.0)) > threshold_g))


def analyze(
    ppg: ArrayLike,
    *,
    sampling_rate_hz: float,
    accel_g: ArrayLike | None = None,
    accel_sampling_rate_hz: float | None = None,
    window_s: float = 8.0,
    min_sqi: float = 0.86,
    motion_threshold_g: float = 0.05,
    low_hz: float = 0.5,
    high_hz: float = 8.0,
) -> PpgAnalysis:
    """Beats, heart rate and per-window quality of a PPG recording (see the module docstring).

    ``sampling_rate_hz`` is the PPG rate; the accelerometer (``accel_g``, (n, 3) in g) has its own
    ``accel_sampling_rate_hz`` and must start at the same instant as the PPG. Raises
    ``ValueError`` for a non-finite sample.
    """
    x = np.asarray(ppg, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError("ppg must be one-dimensional")
    if not np.all(np.isfinite(x)):
        raise ValueError("ppg must be finite: split the recording at missing samples")
    if accel_g is not None and accel_sampling_rate_hz is None:
        raise ValueError("accel_sampling_rate_hz is required with accel_g")
    fs = float(sampling_rate_hz)
    filtered = bandpass(x, sampling_rate_hz=fs, low_hz=low_hz, high_hz=high_hz, order=3)
    peaks = two_average_peaks(filtered, sampling_rate_hz=fs, windows=PPG_WINDOWS)
    n_windows = max(1, math.ceil(x.size / fs / window_s))
    win_of_peak = (peaks / fs // window_s).astype(np.int64)
    rr = np.diff(peaks) / fs
    # An interval counts for a window's HR only when both of its beats lie in that window, so a
    # motion peak just before an accepted window cannot distort its first interval.
    same = win_of_peak[1:] == win_of_peak[:-1]
    rr_win = win_of_peak[1:][same]
    rr_in = rr[same]
    # Per-window HR and Orphanidou's feasibility rules.
    cnt = np.bincount(rr_win, minlength=n_windows)
    rr_sum = np.bincount(rr_win, weights=rr_in, minlength=n_windows)
    rr_max = np.zeros(n_windows)
    rr_min = np.full(n_windows, np.inf)
    np.maximum.at(rr_max, rr_win, rr_in)
    np.minimum.at(rr_min, rr_win, rr_in)
    with np.errstate(invalid="ignore", divide="ignore"):
        hr = np.where(cnt >= 1, 60.0 * cnt / rr_sum, np.nan)
        hr[cnt < 2] = np.nan
        feasible = (hr >= 40) & (hr <= 180) & (rr_max <= 3.0) & (rr_max / rr_min < 2.2)
    half = round(0.5 * float(np.median(rr)) * fs) if rr.size else round(0.4 * fs)
    sqi = template_sqi(filtered, peaks, win_of_peak, n_windows, max(half, 1))
    if accel_g is not None:
        assert accel_sampling_rate_hz is not None
        motion = motion_mask(
            accel_g,
            accel_sampling_rate_hz=accel_sampling_rate_hz,
            window_s=window_s,
            n_windows=n_windows,
            threshold_g=motion_threshold_g,
        )
    else:
        motion = np.zeros(n_windows, dtype=bool)
    with np.errstate(invalid="ignore"):
        accepted = feasible & (sqi >= min_sqi) & ~motion
    rr_ok = accepted[win_of_peak[1:]] & accepted[win_of_peak[:-1]]
    hr_all = 60.0 / float(np.mean(rr[rr_ok])) if rr_ok.any() else math.nan
    return PpgAnalysis(
        sampling_rate_hz=fs,
        window_s=window_s,
        peaks=peaks,
        rr_intervals_s=rr,
        rr_accepted=rr_ok,
        window_start_s=np.arange(n_windows, dtype=np.float64) * window_s,
        window_hr_bpm=hr,
        window_sqi=sqi,
        window_motion=motion,
        window_accepted=accepted,
        hr_bpm=hr_all,
    )
