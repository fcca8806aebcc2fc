"""Heart-rate variability from RR (NN) intervals: time domain, Lomb-Scargle frequency domain, and
ectopic/artifact correction.

References:

* Task Force of the ESC and NASPE, "Heart rate variability: standards of measurement,
  physiological interpretation and clinical use", Circulation 1996;93:1043 (SDNN, RMSSD, pNN50;
  VLF 0.0033-0.04, LF 0.04-0.15, HF 0.15-0.4 Hz; LF/HF; normalised units).
* Lomb NR, Astrophys Space Sci 1976;39:447; Scargle JD, Astrophys J 1982;263:835; Clifford GD &
  Tarassenko L, IEEE Trans Biomed Eng 2005;52:630 (Lomb-Scargle on unevenly sampled RR series, no
  resampling).
* Malik M et al., "Heart rate variability in relation to prognosis after myocardial infarction:
  selection of optimal processing techniques", Eur Heart J 1989;10:1060 (an interval differing by
  more than 20 % from its predecessor is ectopic); here compared with a local median, which does
  not let one bad interval condemn its neighbour (a documented simplification of Lipponen &
  Tarvainen, J Med Eng Technol 2019;43:173).

Conventions: SDNN is the sample SD (ddof = 1); pNN50 divides NN50 (successive differences > 50 ms)
by the number of NN **intervals** (= differences + 1), the Task Force's wording and neurokit2's
``hrv_time``; ``mean_hr_bpm`` = 60000 / mean NN (ms).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import signal as sps

__all__ = [
    "HrvFrequencyDomain",
    "HrvTimeDomain",
    "RrCorrection",
    "correct_rr",
    "frequency_domain",
    "rmssd_ms",
    "time_domain",
]

FloatArray = NDArray[np.float64]


def _rr_ms(rr_intervals_s: ArrayLike) -> FloatArray:
    rr = np.asarray(rr_intervals_s, dtype=np.float64)
    if rr.ndim != 1:
        raise ValueError("rr_intervals_s must be one-dimensional")
    rr = rr[np.isfinite(rr)]
    if np.any(rr <= 0):
        raise ValueError("rr_intervals_s must be > 0")
    return rr * 1000.0


@dataclass(frozen=True, slots=True)
class HrvTimeDomain:
    """Time-domain HRV (Task Force 1996). Intervals in ms, rates in bpm, shares in %."""

    n_intervals: int
    mean_nn_ms: float
    sdnn_ms: float
    rmssd_ms: float
    sdsd_ms: float
    nn50: int
    pnn50_pct: float
    nn20: int
    pnn20_pct: float
    mean_hr_bpm: float
    sd_hr_bpm: float


def time_domain(rr_intervals_s: ArrayLike) -> HrvTimeDomain:
    """Time-domain HRV of a series of NN intervals in seconds (correct artifacts first).

    SDNN sample SD (ddof = 1); RMSSD sqrt(mean(diff^2)); SDSD sample SD of the differences;
    pNN50 = NN50 / number of intervals x 100 (see the module docstring); mean HR = 60000 / mean
    NN; SD of HR over the instantaneous rates 60 / RR. Non-finite intervals are dropped. Raises
    ``ValueError`` for fewer than 2 intervals.
    """
    rr = _rr_ms(rr_intervals_s)
    if rr.size < 2:
        raise ValueError(f"need at least 2 RR intervals, got {rr.size}")
    d = np.diff(rr)
    ad = np.abs(d)
    mean_nn = float(np.mean(rr))
    nn50 = int(np.count_nonzero(ad > 50.0))
    nn20 = int(np.count_nonzero(ad > 20.0))
    hr = 60_000.0 / rr
    return HrvTimeDomain(
        n_intervals=int(rr.size),
        mean_nn_ms=mean_nn,
        sdnn_ms=float(np.std(rr, ddof=1)),
        rmssd_ms=float(np.sqrt(np.mean(d * d))),
        sdsd_ms=float(np.std(d, ddof=1)) if d.size > 1 else math.nan,
        nn50=nn50,
        pnn50_pct=100.0 * nn50 / rr.size,
        nn20=nn20,
        pnn20_pct=100.0 * nn20 / rr.size,
        mean_hr_bpm=60_000.0 / mean_nn,
        sd_hr_bpm=float(np.std(hr, ddof=1)),
    )


@dataclass(frozen=True, slots=True)
class HrvFrequencyDomain:
    """Frequency-domain HRV (Task Force 1996): band powers in ms^2, normalised units in %.

    ``lf_nu`` = LF / (LF + HF) x 100 and ``hf_nu`` likewise; ``lf_hf`` = LF / HF.
    """

    vlf_ms2: float
    lf_ms2: float
    hf_ms2: float
    total_ms2: float
    lf_hf: float
    lf_nu: float
    hf_nu: float
    peak_lf_hz: float
    peak_hf_hz: float


def _lomb_scargle_recurrence(
    t: FloatArray, y: FloatArray, mask: FloatArray, omega: FloatArray
) -> FloatArray:
    """Classic Lomb-Scargle periodogram (Scargle 1982, eq. 10; ``scipy.signal.lombscargle``'s
    unnormalised output) of each row of the zero-padded (segments x beats) arrays, on a uniform
    angular-frequency grid: exp(i w t) is advanced by one complex multiply per frequency instead
    of evaluating sin and cos, which is what makes it ~50x faster than scipy's. Returns
    (segments x frequencies)."""
    step = np.exp(1j * (omega[1] - omega[0]) * t) if omega.size > 1 else np.ones_like(t)
    e = np.exp(1j * omega[0] * t) * mask
    ye = np.empty((omega.size, t.shape[0]), dtype=np.complex128)
    e2 = np.empty((omega.size, t.shape[0]), dtype=np.complex128)
    for k in range(omega.size):
        ye[k] = (y * e).sum(axis=1)
        e2[k] = (e * e).sum(axis=1)
        e *= step
    n = mask.sum(axis=1)[None, :]
    r = np.abs(e2)
    rot = np.exp(-0.5j * np.angle(e2))  # e^{-i w tau}, tan(2 w tau) = S2 / C2
    z = ye * rot
    cc = (n + r) / 2
    ss = (n - r) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        p = 0.5 * (z.real**2 / cc + np.where(ss > 1e-12 * n, z.imag**2 / ss, 0.0))
    return np.asarray(p.T, dtype=np.float64)


def frequency_domain(
    rr_intervals_s: ArrayLike,
    *,
    method: Literal["lombscargle"] = "lombscargle",
    implementation: Literal["recurrence", "scipy"] = "recurrence",
    segment_s: float | None = 300.0,
    vlf_hz: tuple[float, float] = (0.0033, 0.04),
    lf_hz: tuple[float, float] = (0.04, 0.15),
    hf_hz: tuple[float, float] = (0.15, 0.4),
    resolution_hz: float = 0.001,
) -> HrvFrequencyDomain:
    """LF/HF by the Lomb-Scargle periodogram of the RR series at its beat times.

    The mean-removed NN series (ms) is evaluated at the cumulative beat times without resampling
    (Clifford & Tarassenko 2005). Recordings longer than ``segment_s`` (5 min, the Task Force's
    short-term length) are cut into consecutive ``segment_s`` segments -- a trailing remainder
    shorter than half a segment is dropped -- and their spectra averaged; ``segment_s=None``
    takes the whole series as one segment. Each periodogram is scaled to a one-sided PSD in
    ms^2/Hz whose integral equals the segment's variance (Parseval), and band powers are
    integrated with the trapezoid rule on a ``resolution_hz`` grid (refined to 1/(2 T) for
    segments longer than 500 s, as spectral peaks are ~1/T wide). ``implementation="scipy"``
    uses ``scipy.signal.lombscargle`` itself (same numbers, ~50x slower); the default evaluates
    the same formula with a trigonometric recurrence. VLF needs >= 5 min to mean anything, LF
    >= 2 min (Task Force 1996). Raises ``ValueError`` for fewer than 8 intervals.
    """
    if method != "lombscargle":
        raise ValueError(f"unknown method {method!r}")
    rr = _rr_ms(rr_intervals_s)
    if rr.size < 8:
        raise ValueError(f"need at least 8 RR intervals, got {rr.size}")
    t_all = np.cumsum(rr) / 1000.0
    t_all -= t_all[0]
    if segment_s is None or t_all[-1] < segment_s:
        seg = np.zeros(rr.size, dtype=np.int64)
    else:
        seg = (t_all // segment_s).astype(np.int64)
        last = int(seg[-1])
        if t_all[-1] - last * segment_s < segment_s / 2 and last > 0:
            keep = seg < last
            rr, t_all, seg = rr[keep], t_all[keep], seg[keep]
    counts = np.bincount(seg)
    n_seg, width = counts.size, int(counts.max())
    pos = np.arange(rr.size) - np.repeat(np.cumsum(counts) - counts, counts)
    t2 = np.zeros((n_seg, width))
    y2 = np.zeros((n_seg, width))
    m2 = np.zeros((n_seg, width))
    t2[seg, pos] = t_all
    means = np.bincount(seg, weights=rr) / counts
    y2[seg, pos] = rr - means[seg]
    m2[seg, pos] = 1.0
    first = np.zeros(n_seg)
    first[seg[::-1]] = t_all[::-1]  # first beat time of each segment
    t2 -= first[:, None] * m2  # segment-relative times keep the recurrence accurate
    durations = np.maximum(t2.max(axis=1), 1e-9)
    # Spectral peaks are ~1/T wide: the grid must be finer than that to integrate them.
    step_hz = min(resolution_hz, 1.0 / (2.0 * float(durations.max())))
    f = np.arange(max(step_hz, vlf_hz[0]), hf_hz[1] + step_hz / 2, step_hz)
    omega = 2 * np.pi * f
    if implementation == "scipy":
        pgram = np.stack(
            [
                np.asarray(
                    sps.lombscargle(t2[i, : counts[i]], y2[i, : counts[i]], omega, normalize=False)
                )
                for i in range(n_seg)
            ]
        )
    else:
        pgram = _lomb_scargle_recurrence(t2, y2, m2, omega)
    # The unnormalised periodogram is A^2 N / 4 for a sinusoid of amplitude A (variance A^2 / 2):
    # scale each segment to a one-sided PSD whose integral over frequency is its variance.
    psd = np.mean(pgram * (2.0 * durations / counts)[:, None], axis=0)

    def band(lo_hi: tuple[float, float]) -> tuple[float, float]:
        m = (f >= lo_hi[0]) & (f < lo_hi[1])
        if m.sum() < 2:
            return 0.0, math.nan
        power = float(np.trapezoid(psd[m], f[m]))
        return power, float(f[m][np.argmax(psd[m])])

    vlf, _ = band(vlf_hz)
    lf, peak_lf = band(lf_hz)
    hf, peak_hf = band(hf_hz)
    lfhf = lf + hf
    return HrvFrequencyDomain(
        vlf_ms2=vlf,
        lf_ms2=lf,
        hf_ms2=hf,
        total_ms2=vlf + lf + hf,
        lf_hf=lf / hf if hf > 0 else math.nan,
        lf_nu=100.0 * lf / lfhf if lfhf > 0 else math.nan,
        hf_nu=100.0 * hf / lfhf if lfhf > 0 else math.nan,
        peak_lf_hz=peak_lf,
        peak_hf_hz=peak_hf,
    )


@dataclass(frozen=True, slots=True)
class RrCorrection:
    """RR intervals after correction, with what was changed.

    ``artifact`` marks intervals outside the physiological range, ``ectopic`` those deviating
    from the local median by more than the threshold; both were replaced by linear interpolation
    over beat time from the nearest good intervals. Input length is preserved.
    """

    rr_intervals_s: FloatArray
    artifact: NDArray[np.bool_]
    ectopic: NDArray[np.bool_]

    @property
    def corrected_fraction(self) -> float:
        n = self.rr_intervals_s.size
        return float(np.count_nonzero(self.artifact | self.ectopic)) / n if n else 0.0


def correct_rr(
    rr_intervals_s: ArrayLike,
    *,
    min_rr_s: float = 0.3,
    max_rr_s: float = 2.0,
    relative_threshold: float = 0.2,
    half_window: int = 5,
) -> RrCorrection:
    """Flag and interpolate ectopic beats and artifacts in an RR series (seconds).

    Artifact: outside ``[min_rr_s, max_rr_s]`` (30-200 bpm) or non-finite. Ectopic: deviates from
    the median of the ``half_window`` intervals on each side (artifacts excluded) by more than
    ``relative_threshold`` (Malik et al. 1989's 20 % rule against a local median). Flagged
    intervals are replaced by linear interpolation over beat time from the good ones; a series
    with fewer than 2 good intervals is returned unchanged apart from the flags.
    """
    rr = np.asarray(rr_intervals_s, dtype=np.float64)
    if rr.ndim != 1:
        raise ValueError("rr_intervals_s must be one-dimensional")
    with np.errstate(invalid="ignore"):
        artifact = ~np.isfinite(rr) | (rr < min_rr_s) | (rr > max_rr_s)
    clean = np.where(artifact, np.nan, rr)
    n = rr.size
    if n == 0:
        return RrCorrection(rr.copy(), artifact, np.zeros(0, dtype=bool))
    padded = np.concatenate([np.full(half_window, np.nan), clean, np.full(half_window, np.nan)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half_window + 1).copy()
    windows[:, half_window] = np.nan  # compare with the neighbours, not with itself
    all_nan = np.all(np.isnan(windows), axis=1)
    windows[all_nan, half_window] = 0.0  # placeholder; such rows are not judged
    local = np.nanmedian(windows, axis=1)
    with np.errstate(invalid="ignore"):
        ectopic = ~artifact & ~all_nan & (np.abs(clean - local) > relative_threshold * local)
    bad = artifact | ectopic
    out = rr.copy()
    good = ~bad
    if good.sum() >= 2 and bad.any():
        beat_t = np.cumsum(np.where(np.isfinite(rr), rr, 0.0))
        out[bad] = np.interp(beat_t[bad], beat_t[good], rr[good])
    return RrCorrection(out, artifact, ectopic)


def rmssd_ms(
    rr_intervals_s: ArrayLike, *, min_intervals: int = 20, max_corrected_fraction: float = 0.2
) -> float | None:
    """RMSSD (ms) of one recording window after :func:`correct_rr`, or None when the window is
    too short (fewer than ``min_intervals``) or too corrupted (more than
    ``max_corrected_fraction`` of its intervals were artifacts or ectopic beats) to report.

    What the gateway attaches to heart-rate readings (``HeartRateReading.rmssd_ms``): RMSSD is
    the time-domain measure that stays valid on short recordings (30 s to 5 min; Task Force 1996
    and Munoz et al., PLoS One 2015;10:e0138921).
    """
    rr = np.asarray(rr_intervals_s, dtype=np.float64)
    if rr.ndim != 1 or rr.size < min_intervals:
        return None
    fixed = correct_rr(rr)
    if fixed.corrected_fraction > max_corrected_fraction:
        return None
    value = time_domain(fixed.rr_intervals_s).rmssd_ms
    return round(value, 1) if math.isfinite(value) else None
