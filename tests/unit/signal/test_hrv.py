"""HRV against neurokit2 on the same RR series, frequency domain on known modulations."""

from __future__ import annotations

import numpy as np
import pytest

from tests.unit.signal.ppg_data import synthetic_rr
from vitalgate.signal import hrv

nk = pytest.importorskip("neurokit2")


def _peaks_ms(rr_s: np.ndarray) -> np.ndarray:
    """Peak sample indices at 1000 Hz whose differences are exactly the (rounded) RR in ms."""
    rr_ms = np.round(rr_s * 1000).astype(np.int64)
    return np.concatenate(([1000], 1000 + np.cumsum(rr_ms)))


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_time_domain_within_1pct_of_neurokit2(seed: int) -> None:
    rr = synthetic_rr(300, seed=seed, mean_hr_bpm=60 + 5 * seed)
    peaks = _peaks_ms(rr)
    rr_exact = np.diff(peaks) / 1000.0
    ref = nk.hrv_time(peaks, sampling_rate=1000)
    out = hrv.time_domain(rr_exact)
    assert out.n_intervals == rr_exact.size
    assert out.mean_nn_ms == pytest.approx(float(ref["HRV_MeanNN"].iloc[0]), rel=0.01)
    assert out.sdnn_ms == pytest.approx(float(ref["HRV_SDNN"].iloc[0]), rel=0.01)
    assert out.rmssd_ms == pytest.approx(float(ref["HRV_RMSSD"].iloc[0]), rel=0.01)
    assert out.sdsd_ms == pytest.approx(float(ref["HRV_SDSD"].iloc[0]), rel=0.01)
    assert out.pnn50_pct == pytest.approx(float(ref["HRV_pNN50"].iloc[0]), rel=0.01)
    assert out.pnn20_pct == pytest.approx(float(ref["HRV_pNN20"].iloc[0]), rel=0.01)
    assert out.mean_hr_bpm == pytest.approx(60_000 / float(ref["HRV_MeanNN"].iloc[0]), rel=0.01)


def test_time_domain_hand_vector() -> None:
    rr = [0.8, 0.86, 0.84, 0.9, 0.8]
    out = hrv.time_domain(rr)
    d = np.diff(np.array(rr) * 1000)  # 60, -20, 60, -100
    assert out.rmssd_ms == pytest.approx(float(np.sqrt(np.mean(d**2))))
    assert out.nn50 == 3
    assert out.pnn50_pct == pytest.approx(100 * 3 / 5)  # denominator: intervals, not differences
    assert out.mean_hr_bpm == pytest.approx(60_000 / 840)
    with pytest.raises(ValueError, match="at least 2"):
        hrv.time_domain([0.8])
    with pytest.raises(ValueError, match="> 0"):
        hrv.time_domain([0.8, -0.1])


def test_frequency_domain_recovers_band_powers() -> None:
    t, rr = 0.0, []
    while t < 300:
        r = 0.8 + 0.03 * np.sin(2 * np.pi * 0.1 * t) + 0.02 * np.sin(2 * np.pi * 0.25 * t)
        rr.append(r)
        t += r
    out = hrv.frequency_domain(rr)
    assert out.lf_ms2 == pytest.approx(30**2 / 2, rel=0.05)  # variance of a 30 ms sinusoid
    assert out.hf_ms2 == pytest.approx(20**2 / 2, rel=0.05)
    assert out.lf_hf == pytest.approx(450 / 200, rel=0.07)
    assert out.lf_nu + out.hf_nu == pytest.approx(100.0)
    assert out.peak_lf_hz == pytest.approx(0.1, abs=0.005)
    assert out.peak_hf_hz == pytest.approx(0.25, abs=0.005)


def test_correct_rr_fixes_ectopics_and_artifacts() -> None:
    rng = np.random.default_rng(5)
    rr = 0.8 + rng.normal(0, 0.02, 200)
    bad = rr.copy()
    bad[50] = 0.45  # premature beat
    bad[51] = 1.15  # compensatory pause
    bad[120] = 3.5  # missed detections
    bad[160] = np.nan
    out = hrv.correct_rr(bad)
    assert out.artifact[[120, 160]].all()
    assert out.ectopic[[50, 51]].all()
    assert (out.artifact | out.ectopic).sum() == 4
    assert np.abs(out.rr_intervals_s - rr)[[50, 51, 120, 160]].max() < 0.08
    assert out.corrected_fraction == pytest.approx(4 / 200)
    clean = hrv.time_domain(out.rr_intervals_s)
    assert clean.rmssd_ms == pytest.approx(hrv.time_domain(rr).rmssd_ms, rel=0.15)


@pytest.mark.parametrize("segment_s", [300.0, None])
def test_recurrence_equals_scipy_lombscargle(segment_s: float | None) -> None:
    rr = synthetic_rr(1200, seed=9)
    fast = hrv.frequency_domain(rr, segment_s=segment_s)
    ref = hrv.frequency_domain(rr, segment_s=segment_s, implementation="scipy")
    for name in ("vlf_ms2", "lf_ms2", "hf_ms2", "lf_hf", "peak_lf_hz", "peak_hf_hz"):
        assert getattr(fast, name) == pytest.approx(getattr(ref, name), rel=1e-9), name


def test_segmented_spectrum_recovers_modulation_of_long_recording() -> None:
    t, rr = 0.0, []
    while t < 1800:
        r = 0.9 + 0.025 * np.sin(2 * np.pi * 0.09 * t) + 0.03 * np.sin(2 * np.pi * 0.3 * t)
        rr.append(r)
        t += r
    for segment_s in (300.0, None):
        out = hrv.frequency_domain(rr, segment_s=segment_s)
        assert out.lf_ms2 == pytest.approx(25**2 / 2, rel=0.06), segment_s
        assert out.hf_ms2 == pytest.approx(30**2 / 2, rel=0.06), segment_s


def test_window_rmssd_reports_only_usable_windows() -> None:
    from vitalgate.signal.hrv import rmssd_ms

    rng = np.random.default_rng(3)
    rr = 0.8 + rng.normal(0.0, 0.03, 300)
    expected = float(np.sqrt(np.mean(np.diff(rr * 1000.0) ** 2)))
    got = rmssd_ms(rr)
    assert got is not None and abs(got - expected) < 0.05 + 0.02 * expected
    assert rmssd_ms(rr[:10]) is None  # too short
    broken = rr.copy()
    broken[::3] = 3.0  # a third of the beats are artifacts: not reported
    assert rmssd_ms(broken) is None
    one_ectopic = rr.copy()
    one_ectopic[100] = 0.45  # corrected, so RMSSD stays near the clean value
    fixed = rmssd_ms(one_ectopic)
    assert fixed is not None and abs(fixed - expected) < 0.2 * expected
