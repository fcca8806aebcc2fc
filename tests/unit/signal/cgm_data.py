"""A seeded CGM trace synthesiser shared by the CGM tests and the benchmark."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

T0_NS = np.datetime64("2026-03-20T00:00:00", "ns").astype(np.int64)  # spans the EU DST change


def synthetic_cgm(
    days: float, *, seed: int, interval_s: int = 300, gaps: bool = True
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Glucose (mg/dL, clipped to the sensor's 40-400) and UTC ns timestamps.

    Meals as three daily bumps, a slow random walk, sensor noise, a few deep night-time lows, and
    (if ``gaps``) some 20-180 min signal losses plus 2 % single dropouts.
    """
    rng = np.random.default_rng(seed)
    n = int(days * 86_400 / interval_s)
    t_s = np.arange(n, dtype=np.int64) * interval_s
    hour = (t_s / 3600.0) % 24
    meals = sum(70 * np.exp(-0.5 * ((hour - h) / 1.0) ** 2) for h in (7.5, 12.5, 19.0))
    walk = np.cumsum(rng.normal(0, 1.5, n))
    walk -= np.convolve(walk, np.ones(288) / 288, mode="same")
    lows = np.zeros(n)
    for start in rng.choice(n - 24, size=max(1, int(days / 3)), replace=False):
        lows[start : start + 12 + int(rng.integers(0, 12))] -= 70 + 20 * rng.random()
    g = 120 + meals + walk + lows + rng.normal(0, 6, n)
    g = np.clip(np.round(g), 40, 400)
    keep = np.ones(n, dtype=bool)
    if gaps:
        for start in rng.choice(n - 40, size=max(1, int(days)), replace=False):
            keep[start : start + int(rng.integers(4, 36))] = False
        keep &= rng.random(n) > 0.02
    t_ns = T0_NS + t_s * 1_000_000_000 + rng.integers(-20, 20, n) * 1_000_000_000
    return g[keep].astype(np.float64), t_ns[keep]
