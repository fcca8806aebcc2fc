"""CGM metrics against a plain independent computation from the consensus definitions."""

from __future__ import annotations

import datetime as dt
import itertools
import math
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.unit.signal.cgm_data import T0_NS, synthetic_cgm
from vitalgate.signal import cgm
from vitalgate.signal.units import mg_dl_to_mmol_l, mmol_l_to_mg_dl

NS = 1_000_000_000


def _reference_mage(values: list[float], sd: float) -> float:
    """Zig-zag with a 1-SD reversal threshold, walked point by point; Service's MAGE+/-."""
    swings: list[float] = []
    state = "none"
    lo = hi = pivot = cand = values[0]
    for v in values[1:]:
        if state == "none":
            lo, hi = min(lo, v), max(hi, v)
            if v - lo >= sd:
                state, pivot, cand = "up", lo, v
            elif hi - v >= sd:
                state, pivot, cand = "down", hi, v
        elif state == "up":
            if v > cand:
                cand = v
            elif cand - v >= sd:
                swings.append(cand - pivot)
                state, pivot, cand = "down", cand, v
        elif v < cand:
            cand = v
        elif v - cand >= sd:
            swings.append(cand - pivot)
            state, pivot, cand = "up", cand, v
    if state != "none" and abs(cand - pivot) >= sd:
        swings.append(cand - pivot)
    if not swings:
        return math.nan
    if swings[0] > 0:
        ups = [s for s in swings if s > 0]
        return sum(ups) / len(ups)
    downs = [-s for s in swings if s < 0]
    return sum(downs) / len(downs)


def _reference_metrics(g: list[float], t_ns: list[int], interval_s: float) -> dict[str, float]:
    pairs = sorted(zip(t_ns, g, strict=True))
    values = [v for _, v in pairs]
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    below70 = sum(1 for v in values if v < 70)
    below54 = sum(1 for v in values if v < 54)
    above180 = sum(1 for v in values if v > 180)
    above250 = sum(1 for v in values if v > 250)
    in_range = sum(1 for v in values if 70 <= v <= 180)
    lbgi = hbgi = 0.0
    for v in values:
        f = 1.509 * (math.log(v) ** 1.084 - 5.381)
        risk = 10 * f * f
        if f < 0:
            lbgi += risk
        else:
            hbgi += risk
    vlow, low = 100 * below54 / n, 100 * (below70 - below54) / n
    vhigh, high = 100 * above250 / n, 100 * (above180 - above250) / n
    gri = min(100.0, 3.0 * vlow + 2.4 * low + 1.6 * vhigh + 0.8 * high)
    first, last = pairs[0][0], pairs[-1][0]
    possible = round((last - first) / (interval_s * NS)) + 1
    distinct = len({tt for tt, _ in pairs})
    return {
        "readings": n,
        "mean_mg_dl": mean,
        "sd_mg_dl": sd,
        "cv_pct": 100 * sd / mean,
        "gmi_pct": 3.31 + 0.02392 * mean,
        "tir_pct": 100 * in_range / n,
        "tbr_pct": 100 * below70 / n,
        "tbr_level2_pct": 100 * below54 / n,
        "tar_pct": 100 * above180 / n,
        "tar_level2_pct": 100 * above250 / n,
        "active_pct": min(100.0, 100 * distinct / possible),
        "lbgi": lbgi / n,
        "hbgi": hbgi / n,
        "gri": gri,
        "mage_mg_dl": _reference_mage(values, sd),
        "days": ((last - first) / NS + interval_s) / 86_400,
        "gaps": sum(1 for a, b in itertools.pairwise(pairs) if b[0] - a[0] > 900 * NS),
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_metrics_equal_plain_reference(seed: int) -> None:
    g, t = synthetic_cgm(14, seed=seed)
    out = cgm.metrics(g, t, sampling_interval_s=300)
    ref = _reference_metrics(g.tolist(), t.tolist(), 300.0)
    for name, expected in ref.items():
        assert getattr(out, name) == pytest.approx(expected, rel=1e-9, abs=1e-9), name
    assert out.tbr_pct > 0 and out.tar_pct > 0 and out.gaps > 0  # the data exercise every range
    assert out.sufficient is (out.days >= 14 and out.active_pct >= 70)


def test_metrics_hand_vector() -> None:
    g = [50.0, 60.0, 100.0, 150.0, 180.0, 181.0, 260.0, 70.0, 54.0, 53.9]
    t = T0_NS + np.arange(10, dtype=np.int64) * 300 * NS
    out = cgm.metrics(g, t)
    assert out.sampling_interval_s == 300.0
    assert out.tbr_pct == pytest.approx(40.0)  # 50, 60, 54, 53.9
    assert out.tbr_level2_pct == pytest.approx(20.0)  # 50, 53.9
    assert out.tir_pct == pytest.approx(40.0)  # 100, 150, 180, 70
    assert out.tar_pct == pytest.approx(20.0)  # 181, 260
    assert out.tar_level2_pct == pytest.approx(10.0)
    assert out.active_pct == 100.0 and out.gaps == 0
    assert out.gri == 100.0  # 3.0 * 20 + 2.4 * 20 + 1.6 * 10 + 0.8 * 10 = 132, capped
    assert out.gri_hypo_component == pytest.approx(20 + 0.8 * 20)
    assert out.gri_hyper_component == pytest.approx(10 + 0.5 * 10)


def test_mage_simple_oscillation() -> None:
    # Each rise and fall is 100 mg/dL; SD ~ 54.8 < 100, so every leg is an excursion.
    assert cgm.mage([100.0, 200.0, 100.0, 200.0, 100.0]) == pytest.approx(100.0)
    assert math.isnan(cgm.mage([100.0, 100.0, 100.0]))


def test_metrics_ignores_nan_and_counts_them_missing() -> None:
    g, t = synthetic_cgm(3, seed=5, gaps=False)
    g2 = g.copy()
    g2[::10] = np.nan
    full = cgm.metrics(g, t, sampling_interval_s=300)
    holed = cgm.metrics(g2, t, sampling_interval_s=300)
    assert holed.readings == full.readings - g[::10].size
    assert holed.active_pct < full.active_pct


def test_metrics_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="one length"):
        cgm.metrics([100.0, 110.0], np.array([0], dtype=np.int64))
    with pytest.raises(ValueError, match="at least 2"):
        cgm.metrics([100.0], np.array([0], dtype=np.int64))
    with pytest.raises(ValueError, match="> 0"):
        cgm.metrics([100.0, -5.0], np.array([0, 300 * NS], dtype=np.int64))


def test_agp_equals_per_bin_percentiles() -> None:
    g, t = synthetic_cgm(20, seed=9)
    out = cgm.agp(g, t, tz="Europe/Berlin", days=14)
    zone = ZoneInfo("Europe/Berlin")
    end = int(t.max())
    bins: dict[int, list[float]] = {}
    for value, tt in zip(g.tolist(), t.tolist(), strict=True):
        if tt <= end - 14 * 86_400 * NS:
            continue
        local = dt.datetime.fromtimestamp(tt / NS, dt.UTC).astimezone(zone)
        bins.setdefault((local.hour * 60 + local.minute) // 5, []).append(value)
    assert out.readings == sum(len(v) for v in bins.values())
    assert out.time_of_day_min.shape == (288,)
    for b in range(288):
        values = bins.get(b, [])
        assert out.counts[b] == len(values)
        if not values:
            assert math.isnan(out.p50_mg_dl[b])
            continue
        for p, arr in (
            (5, out.p5_mg_dl),
            (25, out.p25_mg_dl),
            (50, out.p50_mg_dl),
            (75, out.p75_mg_dl),
            (95, out.p95_mg_dl),
        ):
            assert arr[b] == pytest.approx(float(np.percentile(values, p)), rel=1e-12)
    with pytest.raises(ValueError):
        out.p50_mg_dl[0] = 1.0  # read-only


def _ts(minutes: list[float]) -> np.ndarray:
    return T0_NS + (np.asarray(minutes) * 60 * NS).astype(np.int64)


def _five_min(values: list[float]) -> tuple[list[float], np.ndarray]:
    return values, _ts([5.0 * i for i in range(len(values))])


EPISODES = [
    # name, values at 5-min spacing, level, expected [(start_idx, end_idx, recovered, nadir)]
    ("15min_then_recovery", [100, 65, 60, 66, 80, 90, 95, 100], 1, [(1, 4, True, 60)]),
    ("10min_is_no_episode", [100, 65, 60, 80, 90, 95, 100], 1, []),
    (
        "short_recovery_merges",
        [100, 65, 60, 62, 64, 80, 85, 66, 65, 64, 90, 95, 100],
        1,
        [(1, 10, True, 60)],
    ),
    ("until_end_of_data", [100, 65, 60, 62, 64], 1, [(1, 4, False, 60)]),
    ("level2", [100, 50, 52, 53, 60, 50, 90, 95, 100], 2, [(1, 6, True, 50)]),
    ("recovery_needs_15min", [100, 65, 60, 62, 80, 85], 1, [(1, 3, False, 60)]),
]


@pytest.mark.parametrize(
    ("values", "level", "expected"), [e[1:] for e in EPISODES], ids=[e[0] for e in EPISODES]
)
def test_hypo_episodes(
    values: list[float], level: int, expected: list[tuple[int, int, bool, float]]
) -> None:
    g, t = _five_min(values)
    out = cgm.episodes(g, t, level=level, sampling_interval_s=300)  # type: ignore[arg-type]
    got = [
        (
            int((e.start_utc_ns - T0_NS) // (300 * NS)),
            int((e.end_utc_ns - T0_NS) // (300 * NS)),
            e.recovered,
            e.extreme_mg_dl,
        )
        for e in out
    ]
    assert got == expected


def test_episode_cut_by_gap_and_hyper() -> None:
    g = [100.0, 60, 60, 60, 60, 60, 100, 100, 100]
    t = _ts([0, 5, 10, 15, 60, 65, 70, 75, 80])  # 45-min gap after the 4th reading
    out = cgm.episodes(g, t, level=1, sampling_interval_s=300)
    assert [(e.recovered, e.start_utc_ns) for e in out] == [(False, int(t[1]))]
    hyper = cgm.episodes(
        [150.0, 260, 270, 255, 150, 150, 150],
        _five_min([0] * 7)[1],
        level=2,
        kind="hyper",
        sampling_interval_s=300,
    )
    assert len(hyper) == 1 and hyper[0].extreme_mg_dl == 270.0 and hyper[0].recovered


def test_find_gaps_and_resample_never_bridge() -> None:
    t = _ts([0, 5, 10, 40, 45])
    g = [100.0, 110, 120, 200, 210]
    gaps = cgm.find_gaps(t)
    assert gaps.count == 1 and gaps.duration_s.tolist() == [1800.0]
    grid, values = cgm.resample(g, t, interval_s=300)
    assert grid.size == 10
    assert values.tolist()[:3] == [100.0, 110.0, 120.0]
    assert all(math.isnan(v) for v in values[3:8])
    assert values.tolist()[8:] == [200.0, 210.0]
    _, smooth = cgm.smooth_for_display(g, t, window_s=900)
    assert smooth.tolist() == [105.0, 110.0, 115.0, 205.0, 205.0]


glucose_arrays = hnp.arrays(
    np.float64,
    st.integers(2, 300),
    elements=st.floats(20, 500, allow_nan=False),
)


@settings(max_examples=60, deadline=None)
@given(glucose_arrays)
def test_ranges_sum_to_100(g: np.ndarray) -> None:
    t = T0_NS + np.arange(g.size, dtype=np.int64) * 300 * NS
    out = cgm.metrics(g, t)
    assert out.tir_pct + out.tbr_pct + out.tar_pct == pytest.approx(100.0)
    assert out.tbr_level2_pct <= out.tbr_pct and out.tar_level2_pct <= out.tar_pct


@settings(max_examples=40, deadline=None)
@given(glucose_arrays, st.randoms(use_true_random=False))
def test_metrics_do_not_depend_on_order(g: np.ndarray, rnd: object) -> None:
    t = T0_NS + np.arange(g.size, dtype=np.int64) * 300 * NS
    t[::7] = t[0]  # ties in time too
    perm = np.arange(g.size)
    rnd.shuffle(perm)  # type: ignore[attr-defined]
    a = cgm.metrics(g, t, sampling_interval_s=300)
    b = cgm.metrics(g[perm], t[perm], sampling_interval_s=300)
    assert str(a) == str(b)  # identical, NaN included


@settings(max_examples=100, deadline=None)
@given(st.floats(1, 1000, allow_nan=False))
def test_units_round_trip(mg_dl: float) -> None:
    assert mmol_l_to_mg_dl(mg_dl_to_mmol_l(mg_dl)) == pytest.approx(mg_dl, rel=1e-12)
    arr = np.array([mg_dl, mg_dl / 2])
    assert np.allclose(mmol_l_to_mg_dl(mg_dl_to_mmol_l(arr)), arr, rtol=1e-12)
    assert mg_dl_to_mmol_l(180.16) == pytest.approx(10.0, rel=1e-3)


def test_from_readings_and_datetimes() -> None:
    from vitalgate.readings import CgmReading, DeviceIdentity, QualityFlag

    dev = DeviceIdentity(address="AA:BB:CC:DD:EE:02")
    start = dt.datetime(2026, 3, 28, 22, 0, tzinfo=dt.UTC)
    readings = [
        CgmReading(
            patient_id="p",
            device=dev,
            measured_at=start + dt.timedelta(minutes=5 * i),
            received_at=start,
            glucose_mg_dl=100.0 + i,
            time_offset_min=5 * i,
            flags=frozenset({QualityFlag.IMPLAUSIBLE}) if i == 3 else frozenset(),
        )
        for i in range(12)
    ]
    g, t = cgm.from_readings(readings)
    assert g.size == 11 and 103.0 not in g.tolist()
    by_dt = cgm.metrics(g, [r.measured_at for r in readings if r.is_clinical])
    assert by_dt == cgm.metrics(g, t)
