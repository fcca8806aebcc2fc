"""Filters (zero-phase and streaming) and ECG/PPG beat detection."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal as sps

from tests.unit.signal.ppg_data import synthetic_ppg
from vitalgate.signal import filters, peaks

FS = 250.0


def test_bandpass_passes_band_and_rejects_outside() -> None:
    t = np.arange(int(60 * FS)) / FS
    inside = np.sin(2 * np.pi * 2.0 * t)
    outside = np.sin(2 * np.pi * 0.05 * t) + np.sin(2 * np.pi * 40 * t)
    y = filters.bandpass(inside + outside, sampling_rate_hz=FS, low_hz=0.5, high_hz=8.0)
    core = slice(int(20 * FS), int(40 * FS))
    assert np.max(np.abs(y[core] - inside[core])) < 0.03  # zero phase, unit gain in band


def test_bandpass_axis_and_validation() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 1000))
    y = filters.bandpass(x, sampling_rate_hz=FS, low_hz=1, high_hz=10)
    yt = filters.bandpass(x.T, sampling_rate_hz=FS, low_hz=1, high_hz=10, axis=0)
    np.testing.assert_allclose(y, yt.T)
    with pytest.raises(ValueError, match="high_hz"):
        filters.bandpass(x, sampling_rate_hz=FS, low_hz=1, high_hz=200)
    with pytest.raises(ValueError, match="low_hz must be <"):
        filters.bandpass(x, sampling_rate_hz=FS, low_hz=10, high_hz=5)


def test_streaming_filter_equals_one_shot_sosfilt() -> None:
    rng = np.random.default_rng(1)
    x = 5.0 + rng.normal(size=2000)
    stream = filters.StreamingFilter.bandpass(sampling_rate_hz=FS, low_hz=0.5, high_hz=8.0)
    sos = filters.design("bandpass", sampling_rate_hz=FS, low_hz=0.5, high_hz=8.0)
    expected, _ = sps.sosfilt(sos, x, zi=sps.sosfilt_zi(sos) * x[0])
    cuts = np.sort(rng.choice(np.arange(1, x.size), size=60, replace=False))
    got = np.concatenate([stream.process(p) for p in np.split(x, cuts)])
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_ecg_r_peaks_on_neurokit_simulation() -> None:
    nk = pytest.importorskip("neurokit2")
    ecg = nk.ecg_simulate(duration=60, sampling_rate=500, heart_rate=72, random_state=3)
    _, info = nk.ecg_peaks(ecg, sampling_rate=500)
    truth = np.asarray(info["ECG_R_Peaks"])
    found = peaks.ecg_r_peaks(ecg, sampling_rate_hz=500)
    assert abs(found.size - truth.size) <= 1
    dist = np.abs(found[:, None] - truth[None, :]).min(axis=1)
    assert np.median(dist) <= 3  # samples at 500 Hz
    hr = 60.0 / np.mean(np.diff(found) / 500)
    assert hr == pytest.approx(72, abs=2)


def test_ppg_peaks_match_synthetic_beats() -> None:
    s = synthetic_ppg(120, sampling_rate_hz=128, seed=4)
    found = peaks.ppg_peaks(s.ppg, sampling_rate_hz=128) / 128
    assert found.size == s.beat_times_s.size
    assert np.abs(found - s.beat_times_s).max() < 0.03
