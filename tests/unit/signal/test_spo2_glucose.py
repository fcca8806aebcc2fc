"""SpO2 desaturation events and glucose-meter statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vitalgate.readings import Meal
from vitalgate.signal import glucose, spo2
from vitalgate.signal.glucose import GlucoseLevel as L

NS = 1_000_000_000
T0 = np.datetime64("2026-02-01T22:00:00", "ns").astype(np.int64)


def _one_hz(values: np.ndarray) -> np.ndarray:
    return T0 + np.arange(values.size, dtype=np.int64) * NS


def test_desaturation_events_by_3pct_rule() -> None:
    rng = np.random.default_rng(2)
    x = 96 + rng.normal(0, 0.3, 3600)
    x[600:620] = 91.5  # 20 s, -4.5 points: event
    x[1200:1205] = 90.0  # 5 s: too short
    x[1800:1830] = 94.5  # -1.5 points: too shallow
    x[2400:2460] = 88.0  # 60 s: event, below 90
    x[3000:3010] = 20.0  # implausible: ignored
    out = spo2.desaturations(x, _one_hz(x))
    assert [(int((e.start_utc_ns - T0) // NS), round(e.duration_s)) for e in out.events] == [
        (600, 20),
        (2400, 60),
    ]
    assert out.events[1].nadir_pct == 88.0
    assert out.events[1].drop_pct == pytest.approx(8.0, abs=0.3)
    assert out.valid_hours == pytest.approx(3590 / 3600, abs=1e-3)
    assert out.odi_per_h == pytest.approx(2 / out.valid_hours)
    assert out.t90_pct == pytest.approx(100 * 60 / 3590)  # 90.0 itself is not below 90


def test_spo2_plausible_mask() -> None:
    assert spo2.plausible_mask([99, 100.5, 49, np.nan, 70]).tolist() == [
        True,
        False,
        False,
        False,
        True,
    ]


GLUCOSE_LEVELS = [
    (53.9, L.HYPO_LEVEL_2),
    (54.0, L.HYPO_LEVEL_1),
    (69.9, L.HYPO_LEVEL_1),
    (70.0, L.IN_RANGE),
    (180.0, L.IN_RANGE),
    (180.1, L.HYPER_LEVEL_1),
    (250.0, L.HYPER_LEVEL_1),
    (250.1, L.HYPER_LEVEL_2),
]


@pytest.mark.parametrize(("g", "level"), GLUCOSE_LEVELS, ids=[str(g) for g, _ in GLUCOSE_LEVELS])
def test_glucose_levels(g: float, level: L) -> None:
    assert glucose.classify(g) is level
    assert glucose.classify_many([g]).tolist() == [int(level)]


def test_glucose_classify_rejects_nan() -> None:
    with pytest.raises(ValueError):
        glucose.classify(math.nan)
    assert glucose.classify_many([math.nan, -1.0]).tolist() == [-128, -128]


def test_events_skip_non_clinical_and_sort() -> None:
    g = [50.0, 120.0, 300.0, 65.0, 40.0]
    t = T0 + np.array([4, 3, 2, 1, 0], dtype=np.int64) * 3600 * NS
    out = glucose.events(g, t, clinical=[True, True, True, True, False])
    assert [(e.glucose_mg_dl, e.level) for e in out] == [
        (65.0, L.HYPO_LEVEL_1),
        (300.0, L.HYPER_LEVEL_2),
        (50.0, L.HYPO_LEVEL_2),
    ]


def test_stats_by_meal() -> None:
    g = [95.0, 140.0, 60.0, 190.0, 170.0, 400.0, 110.0]
    meals = [Meal.FASTING, "fasting", Meal.FASTING, Meal.POSTPRANDIAL, "postprandial", None, None]
    out = glucose.stats_by_meal(g, meals, clinical=[True] * 5 + [False, True])
    assert set(out) == {Meal.FASTING, Meal.POSTPRANDIAL, None}
    fasting = out[Meal.FASTING]
    assert fasting.n == 3
    assert fasting.mean_mg_dl == pytest.approx(295 / 3)
    assert fasting.sd_mg_dl == pytest.approx(float(np.std([95, 140, 60], ddof=1)))
    assert fasting.in_target_pct == pytest.approx(100 / 3)  # only 95 is within 80-130
    assert fasting.hypo_level1_count == 1 and fasting.hypo_level2_count == 0
    post = out[Meal.POSTPRANDIAL]
    assert post.in_target_pct == 50.0 and post.hyper_level1_count == 1
    assert out[None].n == 1 and math.isnan(out[None].sd_mg_dl)


def test_glucose_reexports_units() -> None:
    assert glucose.mmol_l_to_mg_dl(glucose.mg_dl_to_mmol_l(100.0)) == pytest.approx(100.0)
    assert glucose.mg_dl_to_mmol_l(18.016) == pytest.approx(1.0)
