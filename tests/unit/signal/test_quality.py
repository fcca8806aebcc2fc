"""Plausibility and quality flags: flag, never delete."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vitalgate.readings import (
    BloodPressureReading,
    CgmReading,
    DeviceIdentity,
    GlucoseReading,
    PulseOximetryReading,
    QualityFlag,
)
from vitalgate.signal import quality

F = QualityFlag
DEV = DeviceIdentity(address="AA:BB:CC:DD:EE:FF", manufacturer="Acme", model="BP1", serial="1")
T0 = dt.datetime(2026, 1, 5, 7, 0, tzinfo=dt.UTC)


def _bp(s: float, d: float, *, minutes: float = 0, flags: frozenset[F] = frozenset()):  # type: ignore[no-untyped-def]
    at = T0 + dt.timedelta(minutes=minutes)
    return BloodPressureReading(
        patient_id="p1",
        device=DEV,
        measured_at=at,
        received_at=at,
        systolic_mmhg=s,
        diastolic_mmhg=d,
        flags=flags,
    )


STATUS = [
    (0x0000, frozenset()),
    (0x0001, frozenset({F.BODY_MOVEMENT})),
    (0x0002, frozenset({F.CUFF_TOO_LOOSE})),
    (0x0004, frozenset({F.IRREGULAR_PULSE})),
    (0x0008, frozenset({F.PULSE_RATE_OUT_OF_RANGE})),
    (0x0010, frozenset({F.PULSE_RATE_OUT_OF_RANGE})),
    (0x0018, frozenset({F.PULSE_RATE_OUT_OF_RANGE})),
    (0x0020, frozenset({F.IMPROPER_POSITION})),
    (0x0025, frozenset({F.BODY_MOVEMENT, F.IRREGULAR_PULSE, F.IMPROPER_POSITION})),
    (0xFFC0, frozenset()),  # reserved bits ignored
]


@pytest.mark.parametrize(("status", "flags"), STATUS, ids=[f"{s:#06x}" for s, _ in STATUS])
def test_bp_status_flags(status: int, flags: frozenset[F]) -> None:
    assert quality.bp_status_flags(status) == flags


CHECKS = [
    ("normal", 120, 80, frozenset()),
    ("inverted", 80, 120, frozenset({F.IMPLAUSIBLE})),
    ("equal", 100, 100, frozenset({F.IMPLAUSIBLE})),
    ("narrow_pp", 100, 95, frozenset({F.IMPLAUSIBLE})),
    ("wide_pp", 260, 90, frozenset({F.IMPLAUSIBLE})),
    ("systolic_range", 320, 90, frozenset({F.IMPLAUSIBLE})),
    ("nan", math.nan, 80, frozenset({F.IMPLAUSIBLE})),
    ("crisis_but_plausible", 220, 130, frozenset()),
]


@pytest.mark.parametrize(("s", "d", "flags"), [c[1:] for c in CHECKS], ids=[c[0] for c in CHECKS])
def test_check_blood_pressure(s: float, d: float, flags: frozenset[F]) -> None:
    r = _bp(s, d, flags=frozenset({F.CLOCK_CORRECTED}))
    out = quality.check(r)
    assert out.flags == flags | {F.CLOCK_CORRECTED}
    assert out.reading_id == r.reading_id
    assert type(out) is BloodPressureReading
    assert out.systolic_mmhg is r.systolic_mmhg  # never changed


def test_bp_plausible_matches_check() -> None:
    s = np.array([c[1] for c in CHECKS], dtype=float)
    d = np.array([c[2] for c in CHECKS], dtype=float)
    assert quality.bp_plausible(s, d).tolist() == [not c[3] for c in CHECKS]


@pytest.mark.parametrize(
    ("sample_type", "location", "flag", "flags"),
    [
        (1, 1, False, frozenset()),
        (10, 1, False, frozenset({F.CONTROL_SOLUTION})),
        (1, 4, False, frozenset({F.CONTROL_SOLUTION})),
        (None, None, True, frozenset({F.CONTROL_SOLUTION})),
    ],
    ids=["capillary", "type10", "location4", "field"],
)
def test_check_glucose_control_solution(
    sample_type: int | None, location: int | None, flag: bool, flags: frozenset[F]
) -> None:
    r = GlucoseReading(
        patient_id="p1",
        device=DEV,
        measured_at=T0,
        received_at=T0,
        glucose_mg_dl=110.0,
        sample_type=sample_type,
        sample_location=location,
        is_control_solution=flag,
        sequence_number=3,
    )
    out = quality.check(r)
    assert out.flags == flags
    assert out.is_clinical is (not flags)


def test_check_spo2_and_cgm_ranges() -> None:
    spo2 = PulseOximetryReading(
        patient_id="p1", device=DEV, measured_at=T0, received_at=T0, spo2_pct=30.0
    )
    assert quality.check(spo2).flags == {F.IMPLAUSIBLE}
    cgm = CgmReading(
        patient_id="p1",
        device=DEV,
        measured_at=T0,
        received_at=T0,
        glucose_mg_dl=float("nan"),
        time_offset_min=5,
    )
    assert quality.check(cgm).flags == {F.IMPLAUSIBLE}


def test_plausible_mask_unknown_field() -> None:
    assert quality.plausible_mask([97, 101, np.nan], field="spo2_pct").tolist() == [
        True,
        False,
        False,
    ]
    with pytest.raises(ValueError, match="no plausible range"):
        quality.plausible_mask([1.0], field="nope")


def test_robust_z_and_outliers() -> None:
    x = np.array([10.0, 11, 9, 10, 12, 10, 50, np.nan])
    z = quality.robust_z(x)
    med = 10.0
    mad = float(np.median(np.abs(x[:7] - med)))
    assert z[6] == pytest.approx(0.6745 * 40 / mad)
    assert math.isnan(z[7])
    assert quality.robust_z_outlier_mask(x).tolist() == [False] * 6 + [True, False]


def test_hampel_flags_spike_not_trend() -> None:
    rng = np.random.default_rng(3)
    x = np.linspace(100, 200, 200) + rng.normal(0, 2, 200)
    x[50] += 40
    x[120] = np.nan
    mask = quality.hampel_mask(x, half_window=5, n_sigmas=4.0)
    assert mask[50]
    assert not mask[120]
    assert mask.sum() <= 4  # the linear rise itself is not flagged


def test_duplicate_mask_order_independent() -> None:
    t = np.array([0, 30, 200, 10, 5000], dtype=np.int64) * 1_000_000_000
    v = np.array([[120, 80], [120, 80], [120, 80], [121, 80], [120, 80]], dtype=float)
    m = quality.duplicate_mask(t, v, window_s=60)
    assert m.tolist() == [False, True, False, False, False]
    perm = np.array([4, 2, 0, 3, 1])
    assert quality.duplicate_mask(t[perm], v[perm], window_s=60).tolist() == m[perm].tolist()


def test_check_batch_flags_duplicates_outliers_keeps_everything() -> None:
    rng = np.random.default_rng(11)
    readings = [
        _bp(float(125 + rng.normal(0, 2)), float(80 + rng.normal(0, 1)), minutes=60 * i)
        for i in range(12)
    ]
    readings.insert(6, _bp(190.0, 80.0, minutes=60 * 5 + 30))  # spike
    dup = _bp(readings[2].systolic_mmhg, readings[2].diastolic_mmhg, minutes=120.5)
    readings.append(dup)
    readings.append(_bp(80.0, 120.0, minutes=60 * 20))  # implausible, not an outlier
    out = quality.check_batch(readings)
    assert len(out) == len(readings)
    assert [r.reading_id for r in out] == [r.reading_id for r in readings]
    assert out[6].flags == {F.OUTLIER}
    assert out[-2].flags == {F.DUPLICATE}
    assert out[-1].flags == {F.IMPLAUSIBLE}
    assert all(not r.flags for i, r in enumerate(out) if i not in (6, len(out) - 2, len(out) - 1))


def test_hampel_integer_series_with_zero_mad_uses_floor() -> None:
    x = np.array([125.0] * 6 + [190.0] + [125.0, 126.0, 125.0, 125.0, 124.0])
    assert quality.hampel_mask(x, half_window=5).sum() == 0
    assert np.flatnonzero(quality.hampel_mask(x, half_window=5, min_deviation=15)).tolist() == [6]


@settings(max_examples=100, deadline=None)
@given(
    st.floats(0, 400) | st.just(math.nan),
    st.floats(0, 300) | st.just(math.nan),
    st.sets(st.sampled_from(list(F))),
)
def test_check_only_adds_flags_and_is_idempotent(s: float, d: float, flags: set[F]) -> None:
    r = _bp(s, d, flags=frozenset(flags))
    once = quality.check(r)
    assert once.flags >= r.flags
    assert quality.check(once) == once
    assert (F.IMPLAUSIBLE in once.flags) or bool(quality.bp_plausible([s], [d])[0])


def test_heart_rate_contact_and_glucose_status() -> None:
    from vitalgate.readings import HeartRateReading

    hr = HeartRateReading(
        patient_id="p1",
        device=DEV,
        measured_at=T0,
        received_at=T0,
        heart_rate_bpm=72.0,
        sensor_contact=False,
    )
    assert quality.check(hr).flags == {F.NO_SENSOR_CONTACT}
    assert quality.check(hr.replace(sensor_contact=None)).flags == frozenset()
    assert quality.glucose_sensor_status_flags(0) == frozenset()
    assert quality.glucose_sensor_status_flags(0x0040) == {F.SENSOR_STATUS}
    with pytest.raises(ValueError):
        quality.glucose_sensor_status_flags(0x10000)
