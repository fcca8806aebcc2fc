"""Beat detection for PPG and ECG by two event-related moving averages.

PPG: Elgendi M et al., "Systolic Peak Detection in Acceleration Photoplethysmograms Measured from
Emergency Responders in Tropical Conditions", PLoS One 2013;8:e76585 -- band-pass 0.5-8 Hz,
clip negatives, square, moving averages over 111 ms (peak) and 667 ms (beat); blocks where the
peak average exceeds the beat average plus beta = 0.02 times the mean squared signal and last at
least 111 ms hold one systolic peak each (the block's maximum); peaks closer than 300 ms to the
previous one are dropped (the same parameters as neurokit2's ``ppg_findpeaks(method="elgendi")``).

ECG: Elgendi M et al., "Frequency Bands Effects on QRS Detection", BIOSIGNALS 2010 -- band-pass
8-20 Hz, square, moving averages over 97 ms (QRS) and 611 ms (beat), beta = 0.08, refined to the
largest absolute band-passed sample within +-60 ms.

All functions take a 1-D signal and its sampling rate in Hz and return int64 sample indices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from vitalgate.signal.filters import bandpass

__all__ = [
    "ECG_WINDOWS",
    "PPG_WINDOWS",
    "TwoAverageWindows",
    "ecg_r_peaks",
    "moving_average",
    "ppg_peaks",
    "two_average_peaks",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class TwoAverageWindows:
    """Parameters of the two-moving-average detector (Elgendi 2010, 2013), in seconds."""

    peak_window_s: float
    beat_window_s: float
    beta: float
    min_interval_s: float


PPG_WINDOWS = TwoAverageWindows(
    peak_window_s=0.111, beat_window_s=0.667, beta=0.02, min_interval_s=0.3
)
ECG_WINDOWS = TwoAverageWindows(
    peak_window_s=0.097, beat_window_s=0.611, beta=0.08, min_interval_s=0.25
)


def moving_average(x: FloatArray, width: int) -> FloatArray:
    """Centred boxcar mean of ``width`` samples; truncated (renormalised) at the ends."""
    n = x.size
    if width <= 1 or n == 0:
        return x.astype(np.float64, copy=True)
    cs = np.empty(n + 1)
    cs[0] = 0.0
    np.cumsum(x, out=cs[1:])
    half_lo = width // 2
    half_hi = width - half_lo
    out = np.empty(n)
    if n >= width:
        # Interior: full windows [i - half_lo, i + half_hi) by slicing, no index arrays.
        out[half_lo : n - half_hi + 1] = (cs[width:] - cs[: n - width + 1]) / width
        edges = np.r_[0 : min(half_lo, n), max(n - half_hi + 1, half_lo) : n]
    else:
        edges = np.arange(n)
    lo = np.maximum(edges - half_lo, 0)
    hi = np.minimum(edges + half_hi, n)
    out[edges] = (cs[hi] - cs[lo]) / (hi - lo)
    return out


def _block_maxima(x: FloatArray, starts: IntArray, ends: IntArray) -> IntArray:
    """Index of the (first) maximum of ``x`` in each block [start, end); empty blocks skipped.

    Blocks may overlap. Vectorised: the blocks' samples are gathered once, maxima come from
    ``np.maximum.reduceat`` and the first sample equal to its block's maximum is returned.
    """
    keep = ends > starts
    starts, ends = starts[keep], ends[keep]
    if starts.size == 0:
        return np.empty(0, dtype=np.int64)
    lengths = ends - starts
    offsets = np.cumsum(lengths) - lengths
    ids = np.repeat(np.arange(starts.size), lengths)
    positions = np.arange(int(lengths.sum())) + np.repeat(starts - offsets, lengths)
    vals = x[positions]
    maxima = np.maximum.reduceat(vals, offsets)
    hits = np.flatnonzero(vals == maxima[ids])
    hit_ids = ids[hits]
    first = np.concatenate(([True], hit_ids[1:] != hit_ids[:-1]))
    return np.asarray(positions[hits[first]], dtype=np.int64)


def _enforce_min_interval(peaks: IntArray, min_gap: int, last_peak: int | None) -> IntArray:
    if peaks.size == 0:
        return peaks
    d = np.diff(peaks)
    if last_peak is None and (d > min_gap).all():
        return peaks
    keep: list[int] = []
    prev = -(10**18) if last_peak is None else last_peak
    for p in peaks.tolist():
        if p - prev > min_gap:
            keep.append(p)
            prev = p
    return np.asarray(keep, dtype=np.int64)


def two_average_peaks(
    x: ArrayLike,
    *,
    sampling_rate_hz: float,
    windows: TwoAverageWindows,
    energy_mean: float | None = None,
) -> IntArray:
    """The two-moving-average block detector on an already band-passed signal.

    ``energy_mean`` is the mean of the clipped, squared signal used in the threshold; by default
    it is taken over ``x`` itself (Elgendi 2013). Returns peak indices (block maxima of ``x``).
    """
    sig = np.asarray(x, dtype=np.float64)
    if sig.ndim != 1:
        raise ValueError("signal must be one-dimensional")
    if sampling_rate_hz <= 0:
        raise ValueError(f"sampling_rate_hz must be > 0, got {sampling_rate_hz}")
    if sig.size < 3:
        return np.empty(0, dtype=np.int64)
    clipped = np.maximum(sig, 0.0)
    sq = clipped * clipped
    w_peak = round(windows.peak_window_s * sampling_rate_hz)
    w_beat = round(windows.beat_window_s * sampling_rate_hz)
    ma_peak = moving_average(sq, w_peak)
    ma_beat = moving_average(sq, w_beat)
    mean = float(np.mean(sq)) if energy_mean is None else energy_mean
    waves = ma_peak > ma_beat + windows.beta * mean
    edges = np.diff(waves.astype(np.int8))
    starts = np.flatnonzero(edges == 1) + 1
    ends = np.flatnonzero(edges == -1) + 1
    if waves[0]:
        starts = np.concatenate(([0], starts))
    if waves[-1]:
        ends = np.concatenate((ends, [sig.size]))
    long_enough = (ends - starts) >= w_peak
    starts, ends = starts[long_enough], ends[long_enough]
    peaks = _block_maxima(sig, starts, ends)
    return _enforce_min_interval(peaks, round(windows.min_interval_s * sampling_rate_hz), None)


def ppg_peaks(
    ppg: ArrayLike,
    *,
    sampling_rate_hz: float,
    low_hz: float = 0.5,
    high_hz: float = 8.0,
    prefiltered: bool = False,
) -> IntArray:
    """Systolic peaks of a PPG (Elgendi et al. 2013): zero-phase 0.5-8 Hz order-3 band-pass (unless
    ``prefiltered``), then :func:`two_average_peaks` with :data:`PPG_WINDOWS`."""
    x = np.asarray(ppg, dtype=np.float64)
    if not prefiltered:
        x = bandpass(x, sampling_rate_hz=sampling_rate_hz, low_hz=low_hz, high_hz=high_hz, order=3)
    return two_average_peaks(x, sampling_rate_hz=sampling_rate_hz, windows=PPG_WINDOWS)


def ecg_r_peaks(ecg: ArrayLike, *, sampling_rate_hz: float) -> IntArray:
    """R peaks of an ECG (Elgendi et al. 2010): 8-20 Hz band-pass, two moving averages over the
    squared signal, each block's peak refined to the largest |band-passed ECG| within +-60 ms;
    peaks within 60 ms of either end of the recording are dropped."""
    x = np.asarray(ecg, dtype=np.float64)
    filtered = bandpass(x, sampling_rate_hz=sampling_rate_hz, low_hz=8.0, high_hz=20.0, order=3)
    # two_average_peaks squares its (clipped) input: pass |x| so the averages run over x**2.
    blocks = two_average_peaks(
        np.abs(filtered), sampling_rate_hz=sampling_rate_hz, windows=ECG_WINDOWS
    )
    if blocks.size == 0:
        return blocks
    half = max(1, round(0.06 * sampling_rate_hz))
    lo = np.maximum(blocks - half, 0)
    hi = np.minimum(blocks + half + 1, x.size)
    refined = _block_maxima(np.abs(filtered), lo.astype(np.int64), hi.astype(np.int64))
    # A QRS cut by the edge of the recording cannot be located: drop it.
    refined = np.unique(refined[(refined >= half) & (refined < x.size - half)])
    return _enforce_min_interval(
        refined, round(ECG_WINDOWS.min_interval_s * sampling_rate_hz), None
    )
