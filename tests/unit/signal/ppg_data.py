"""A seeded PPG synthesiser with known RR intervals (tests and benchmarks)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class SyntheticPpg:
    ppg: NDArray[np.float64]
    accel_g: NDArray[np.float64]  # (n, 3) at the PPG rate
    beat_times_s: NDArray[np.float64]  # systolic peak times
    rr_intervals_s: NDArray[np.float64]
    motion: NDArray[np.bool_]  # per sample: inside a motion episode
    sampling_rate_hz: float


def synthetic_rr(duration_s: float, *, seed: int, mean_hr_bpm: float = 70.0) -> NDArray[np.float64]:
    """RR intervals with respiratory (0.25 Hz) and Mayer-wave (0.1 Hz) modulation plus noise."""
    rng = np.random.default_rng(seed)
    rr: list[float] = []
    t = 0.0
    base = 60.0 / mean_hr_bpm
    drift_phase = rng.uniform(0, 2 * np.pi)
    while t < duration_s + 2.0:
        r = (
            base
            + 0.04 * np.sin(2 * np.pi * 0.25 * t)
            + 0.03 * np.sin(2 * np.pi * 0.1 * t + 1.0)
            + 0.05 * np.sin(2 * np.pi * t / 600.0 + drift_phase)
            + rng.normal(0, 0.012)
        )
        rr.append(r)
        t += r
    return np.asarray(rr)


def synthetic_ppg(
    duration_s: float,
    *,
    sampling_rate_hz: float,
    seed: int,
    mean_hr_bpm: float = 70.0,
    noise: float = 0.03,
    motion_episodes: tuple[tuple[float, float], ...] = (),
) -> SyntheticPpg:
    """A PPG whose beats follow :func:`synthetic_rr`: each pulse a systolic Gaussian plus a smaller
    delayed diastolic wave, on respiratory baseline wander, with white noise; during each
    ``(start_s, end_s)`` motion episode a large 1.5-2.5 Hz movement component is added to the PPG
    and the accelerometer shows the same movement."""
    rng = np.random.default_rng(seed + 1000)
    rr = synthetic_rr(duration_s, seed=seed, mean_hr_bpm=mean_hr_bpm)
    n = int(duration_s * sampling_rate_hz)
    t = np.arange(n) / sampling_rate_hz
    beats = 0.5 + np.cumsum(rr)
    beats = beats[beats < duration_s]
    ppg = np.zeros(n)
    for bt, r in zip(beats, rr[1 : beats.size + 1], strict=False):
        lo = max(0, int((bt - 0.4) * sampling_rate_hz))
        hi = min(n, int((bt + 0.9) * sampling_rate_hz))
        tt = t[lo:hi] - bt
        ppg[lo:hi] += np.exp(-0.5 * (tt / 0.09) ** 2) + 0.4 * np.exp(
            -0.5 * ((tt - 0.32 * r) / 0.12) ** 2
        )
    ppg += 0.3 * np.sin(2 * np.pi * 0.25 * t) + rng.normal(0, noise, n)
    accel = np.zeros((n, 3))
    accel[:, 2] = 1.0
    accel += rng.normal(0, 0.004, (n, 3))
    motion = np.zeros(n, dtype=bool)
    for start, end in motion_episodes:
        m = (t >= start) & (t < end)
        motion |= m
        f = rng.uniform(1.5, 2.5)
        move = np.sin(2 * np.pi * f * t[m]) + 0.5 * np.sin(2 * np.pi * 2 * f * t[m] + 0.3)
        ppg[m] += 2.0 * move + rng.normal(0, 0.3, m.sum())
        accel[m, 0] += 0.4 * move
        accel[m, 2] += 0.3 * np.sin(2 * np.pi * f * t[m] + 1.0)
    rr_true = np.diff(beats)
    return SyntheticPpg(ppg, accel, beats, rr_true, motion, sampling_rate_hz)
