"""Seeded physiology: plausible ranges, morning surge, CGM lag, HRV, PPG."""

from __future__ import annotations

import numpy as np
import pytest

from vitalgate.firmware_sim import physiology as ph


def test_blood_pressure_morning_surge_and_ranges() -> None:
    rng = np.random.default_rng(1)
    hours = np.tile(np.arange(0.0, 24.0, 0.25), 30)
    bp = ph.blood_pressure(hours, profile=ph.HYPERTENSIVE, rng=rng)
    assert bp.systolic_mmhg.min() > 100 and bp.systolic_mmhg.max() < 210
    assert np.all(bp.diastolic_mmhg < bp.systolic_mmhg)
    night = bp.systolic_mmhg[(hours >= 2) & (hours < 5)].mean()
    morning = bp.systolic_mmhg[(hours >= 7.5) & (hours < 8.5)].mean()
    afternoon = bp.systolic_mmhg[(hours >= 14) & (hours < 16)].mean()
    assert morning - night > 25  # sleep-trough surge (Kario 2003)
    assert morning > afternoon + 10
    normal = ph.blood_pressure(hours, profile=ph.NORMOTENSIVE, rng=rng)
    assert normal.systolic_mmhg.mean() < bp.systolic_mmhg.mean() - 20
    assert 0 < bp.irregular_pulse.mean() < 0.15


def test_blood_pressure_is_reproducible() -> None:
    a = ph.blood_pressure([8.0, 20.0], profile=ph.HYPERTENSIVE, rng=np.random.default_rng(5))
    b = ph.blood_pressure([8.0, 20.0], profile=ph.HYPERTENSIVE, rng=np.random.default_rng(5))
    assert np.array_equal(a.systolic_mmhg, b.systolic_mmhg)


def _trace(seed: int) -> ph.GlucoseTrace:
    rng = np.random.default_rng(seed)
    schedule = ph.daily_diabetes_schedule(
        start_local_hour=0.0,
        days=3,
        rng=rng,
        insulin_units_per_10g_carb=1.0,
        exercise_days_per_week=3.0,
    )
    return ph.simulate_glucose(
        duration_min=3 * 1440,
        step_min=1.0,
        params=ph.TYPE2_DIABETIC,
        meals=schedule.meals,
        insulin=schedule.insulin,
        exercise=schedule.exercise,
        rng=rng,
    )


def test_type2_glucose_plausible_with_meal_excursions() -> None:
    g = _trace(2).plasma_glucose_mg_dl
    assert g.min() > 60 and g.max() < 400
    assert 120 < g.mean() < 220
    assert g.max() - g.min() > 60  # postprandial excursions


def test_cgm_lags_plasma() -> None:
    trace = _trace(3)
    cgm = ph.cgm_from_plasma(
        trace,
        interval_min=1.0,
        lag_time_constant_min=8.0,
        noise_sd_mg_dl=0.0,
        dropouts_per_day=0.0,
        rng=np.random.default_rng(3),
    )
    plasma = trace.plasma_glucose_mg_dl - trace.plasma_glucose_mg_dl.mean()
    inter = cgm.interstitial_mg_dl - cgm.interstitial_mg_dl.mean()
    lags = range(0, 30)
    corr = [np.dot(plasma[: plasma.size - k], inter[k:]) for k in lags]
    best = int(np.argmax(corr))
    assert 4 <= best <= 12


def test_cgm_noise_and_dropouts() -> None:
    cgm = ph.cgm_from_plasma(
        _trace(4),
        interval_min=5.0,
        lag_time_constant_min=8.0,
        noise_sd_mg_dl=6.0,
        dropouts_per_day=3.0,
        rng=np.random.default_rng(4),
    )
    assert cgm.dropout.any() and np.isnan(cgm.glucose_mg_dl[cgm.dropout]).all()
    ok = cgm.glucose_mg_dl[~cgm.dropout]
    assert ok.min() >= 40 and ok.max() <= 400


def test_rr_intervals_hrv_and_ectopics() -> None:
    rr = ph.rr_intervals(
        duration_s=600,
        mean_heart_rate_bpm=65,
        rng=np.random.default_rng(6),
        ectopic_probability=0.01,
    )
    assert 60 / rr.rr_intervals_s.mean() == pytest.approx(65, abs=3)
    assert 0.01 < rr.rr_intervals_s.std() < 0.1
    assert rr.ectopic.any()
    i = int(np.flatnonzero(rr.ectopic)[0])
    assert rr.rr_intervals_s[i] < rr.rr_intervals_s[i + 1]  # compensatory pause


@pytest.mark.parametrize("fs", [64.0, 128.0, 256.0])
def test_ppg_beats_at_rr_rate_and_motion_from_accelerometer(fs: float) -> None:
    rng = np.random.default_rng(7)
    rr = ph.rr_intervals(duration_s=60, mean_heart_rate_bpm=72, rng=rng)
    ppg = ph.simulate_ppg(rr, sampling_rate_hz=fs, rng=rng, motion_fraction=0.0)
    spectrum = np.abs(np.fft.rfft(ppg.ppg - ppg.ppg.mean()))
    freqs = np.fft.rfftfreq(ppg.ppg.size, 1 / fs)
    band = (freqs > 0.7) & (freqs < 3.0)
    peak_hz = freqs[band][np.argmax(spectrum[band])]
    assert peak_hz * 60 == pytest.approx(60 / rr.rr_intervals_s.mean(), abs=6)
    moving = ph.simulate_ppg(rr, sampling_rate_hz=fs, rng=rng, motion_fraction=0.5)
    assert moving.motion_artifact.any()
    assert moving.accelerometer.acceleration_g.shape == (moving.ppg.size, 3)


def test_spo2_temperature_weight() -> None:
    rng = np.random.default_rng(8)
    s = ph.spo2(
        np.arange(0, 3600 * 4, 1.0),
        baseline_pct=96,
        pulse_rate_bpm=70,
        desaturations_per_hour=2,
        rng=rng,
    )
    assert s.desaturation.any() and s.spo2_pct[s.desaturation].min() <= 92
    assert s.spo2_pct.min() >= 70 and s.spo2_pct.max() <= 100
    t = ph.body_temperature_c(np.arange(0, 24, 0.5), rng=rng)
    assert t.min() > 35.8 and t.max() < 37.8
    w = ph.body_weight_kg(np.arange(30.0), rng=rng, baseline_kg=82.0, trend_kg_per_day=0.05)
    assert w[-5:].mean() > w[:5].mean()
