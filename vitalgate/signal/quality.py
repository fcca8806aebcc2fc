"""Plausibility and quality checks: flag, never delete.

Everything here produces :class:`~vitalgate.readings.QualityFlag` values or boolean masks; no
reading is ever dropped or changed apart from gaining flags (STYLE habit 8: physiological
plausibility is a signal concern and produces flags, not exceptions).

* Physiological ranges per value field (:data:`PLAUSIBLE_RANGES`) are wide limits of what a living
  patient at home can show and a device can measure, not clinical targets: outside them a value is
  a device or transmission fault (flag ``IMPLAUSIBLE``, which excludes it from statistics).
* Blood pressure: systolic must exceed diastolic, and the pulse pressure must lie within
  ``[10, 150]`` mmHg (narrower or wider is not a valid oscillometric result). Device measurement
  status bits (Bluetooth Blood Pressure Service 0x2A35: b0 body movement, b1 cuff too loose,
  b2 irregular pulse, b3-b4 pulse-rate range, b5 improper position) map to flags with
  :func:`bp_status_flags`.
* Glucose: a control-solution test (sample type 10 or sample location 4, Bluetooth Glucose
  Service 0x2A18) is kept but flagged ``CONTROL_SOLUTION`` and never enters statistics.
* Series: duplicates (same value within a time tolerance) and outliers by the Hampel identifier
  (Hampel, J Am Stat Assoc 1974;69:383; moving median +- k * 1.4826 * MAD) or the global modified
  z-score (Iglewicz & Hoaglin, "How to Detect and Handle Outliers", 1993: |0.6745 (x - median) /
  MAD| > 3.5) are flagged ``DUPLICATE`` / ``OUTLIER``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from vitalgate.readings import (
    BloodPressureReading,
    CgmReading,
    GlucoseReading,
    HeartRateReading,
    QualityFlag,
    Reading,
)

__all__ = [
    "CONTROL_SOLUTION_SAMPLE_LOCATION",
    "CONTROL_SOLUTION_SAMPLE_TYPE",
    "HAMPEL_MIN_DEVIATION",
    "PLAUSIBLE_RANGES",
    "QualityLimits",
    "bp_plausible",
    "bp_status_flags",
    "check",
    "check_batch",
    "duplicate_mask",
    "glucose_sensor_status_flags",
    "hampel_mask",
    "is_control_solution",
    "plausible_mask",
    "robust_z",
    "robust_z_outlier_mask",
]

R = TypeVar("R", bound=Reading)
BoolArray = NDArray[np.bool_]
FloatArray = NDArray[np.float64]

#: Inclusive plausible range per value field name (units in the names).
PLAUSIBLE_RANGES: Mapping[str, tuple[float, float]] = MappingProxyType(
    {
        "systolic_mmhg": (50.0, 300.0),
        "diastolic_mmhg": (20.0, 200.0),
        "mean_arterial_pressure_mmhg": (30.0, 250.0),
        "pulse_rate_bpm": (25.0, 250.0),
        "heart_rate_bpm": (25.0, 250.0),
        # Meters report 10-600 mg/dL, CGMs 40-400 mg/dL; beyond 700 is not a living reading.
        "glucose_mg_dl": (10.0, 700.0),
        "trend_mg_dl_per_min": (-10.0, 10.0),
        "quality_pct": (0.0, 100.0),
        "carbohydrate_g": (0.0, 500.0),
        "hba1c_pct": (3.0, 20.0),
        "spo2_pct": (50.0, 100.0),
        "perfusion_index_pct": (0.0, 30.0),
        "temperature_c": (30.0, 45.0),
        "weight_kg": (2.0, 350.0),
        "bmi_kg_m2": (8.0, 100.0),
        "height_m": (0.4, 2.6),
        "energy_expended_kj": (0.0, 65_535.0),
        "rr_interval_s": (0.24, 2.4),
        "battery_pct": (0.0, 100.0),
        # A device clock more than ~30 years off is not a clock reading but corruption.
        "clock_offset_s": (-1.0e9, 1.0e9),
    }
)

#: Smallest deviation from the moving median that can count as an outlier, per field: about the
#: reading-to-reading repeatability of home devices (BP ~ 10-15 mmHg, meters ~ 15 %).
HAMPEL_MIN_DEVIATION: Mapping[str, float] = MappingProxyType(
    {
        "systolic_mmhg": 15.0,
        "diastolic_mmhg": 10.0,
        "glucose_mg_dl": 30.0,
        "heart_rate_bpm": 20.0,
        "spo2_pct": 4.0,
        "temperature_c": 1.0,
        "weight_kg": 3.0,
    }
)

CONTROL_SOLUTION_SAMPLE_TYPE = 10
CONTROL_SOLUTION_SAMPLE_LOCATION = 4


@dataclass(frozen=True, slots=True)
class QualityLimits:
    """Limits used by :func:`check` and :func:`check_batch`.

    ``ranges`` defaults to :data:`PLAUSIBLE_RANGES`; pulse-pressure bounds in mmHg; duplicates are
    equal values within ``duplicate_window_s``; the Hampel identifier uses ``hampel_half_window``
    neighbours on each side and ``hampel_n_sigmas`` scaled MADs. The textbook 3 neighbours and 3
    sigmas flag ~4.7 % of pure Gaussian noise (the MAD of 7 samples is itself noisy); 5 and 4 flag
    ~1.1 %, which suits a flag shown to clinicians. ``hampel_min_deviation`` is an absolute floor
    per field (a deviation must also exceed it), so that integer-valued readings with a MAD near 0
    are not flagged for ordinary measurement repeatability.
    """

    ranges: Mapping[str, tuple[float, float]] = field(default_factory=lambda: PLAUSIBLE_RANGES)
    min_pulse_pressure_mmhg: float = 10.0
    max_pulse_pressure_mmhg: float = 150.0
    duplicate_window_s: float = 60.0
    hampel_half_window: int = 5
    hampel_n_sigmas: float = 4.0
    hampel_min_deviation: Mapping[str, float] = field(default_factory=lambda: HAMPEL_MIN_DEVIATION)


DEFAULT_LIMITS = QualityLimits()


def plausible_mask(
    values: ArrayLike, *, field: str, ranges: Mapping[str, tuple[float, float]] = PLAUSIBLE_RANGES
) -> BoolArray:
    """True where a value of ``field`` (e.g. ``"spo2_pct"``) is finite and within its range."""
    try:
        lo, hi = ranges[field]
    except KeyError as exc:
        raise ValueError(f"no plausible range for field {field!r}") from exc
    x = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.isfinite(x) & (x >= lo) & (x <= hi)


def bp_plausible(
    systolic_mmhg: ArrayLike, diastolic_mmhg: ArrayLike, *, limits: QualityLimits = DEFAULT_LIMITS
) -> BoolArray:
    """True where a BP pair is plausible: both in range, systolic > diastolic, pulse pressure in
    ``[min_pulse_pressure_mmhg, max_pulse_pressure_mmhg]``."""
    s = np.asarray(systolic_mmhg, dtype=np.float64)
    d = np.asarray(diastolic_mmhg, dtype=np.float64)
    pp = s - d
    with np.errstate(invalid="ignore"):
        return (
            plausible_mask(s, field="systolic_mmhg", ranges=limits.ranges)
            & plausible_mask(d, field="diastolic_mmhg", ranges=limits.ranges)
            & (s > d)
            & (pp >= limits.min_pulse_pressure_mmhg)
            & (pp <= limits.max_pulse_pressure_mmhg)
        )


def bp_status_flags(measurement_status: int) -> frozenset[QualityFlag]:
    """Blood Pressure Measurement status bits (0x2A35) -> quality flags.

    b0 body movement, b1 cuff too loose, b2 irregular pulse, b3-b4 pulse-rate range (0 in range,
    1 above the upper limit, 2 below the lower limit, 3 reserved: flagged too), b5 improper
    measurement position. Higher bits are reserved and ignored.
    """
    if measurement_status < 0 or measurement_status > 0xFFFF:
        raise ValueError(f"measurement status must be a u16, got {measurement_status}")
    flags: set[QualityFlag] = set()
    if measurement_status & 0x01:
        flags.add(QualityFlag.BODY_MOVEMENT)
    if measurement_status & 0x02:
        flags.add(QualityFlag.CUFF_TOO_LOOSE)
    if measurement_status & 0x04:
        flags.add(QualityFlag.IRREGULAR_PULSE)
    if (measurement_status >> 3) & 0x03:
        flags.add(QualityFlag.PULSE_RATE_OUT_OF_RANGE)
    if measurement_status & 0x20:
        flags.add(QualityFlag.IMPROPER_POSITION)
    return frozenset(flags)


def glucose_sensor_status_flags(annunciation: int) -> frozenset[QualityFlag]:
    """Glucose Measurement sensor status annunciation (0x2A18, u16) -> ``SENSOR_STATUS`` when any
    bit is set (battery low, sensor malfunction, sample size insufficient, strip insertion
    error, result out of range, temperature out of range, ...): the meter doubts its result."""
    if annunciation < 0 or annunciation > 0xFFFF:
        raise ValueError(f"sensor status annunciation must be a u16, got {annunciation}")
    return frozenset({QualityFlag.SENSOR_STATUS}) if annunciation else frozenset()


def is_control_solution(sample_type: int | None, sample_location: int | None) -> bool:
    """True for a control-solution test: sample type 10 or sample location 4 (0x2A18)."""
    return (
        sample_type == CONTROL_SOLUTION_SAMPLE_TYPE
        or sample_location == CONTROL_SOLUTION_SAMPLE_LOCATION
    )


def robust_z(values: ArrayLike) -> FloatArray:
    """Modified z-score ``0.6745 (x - median) / MAD`` (Iglewicz & Hoaglin 1993).

    Non-finite values give NaN. When the MAD is 0 (more than half the values equal), values equal
    to the median score 0 and all others +-inf.
    """
    x = np.asarray(values, dtype=np.float64)
    out = np.full(x.shape, np.nan)
    ok = np.isfinite(x)
    if not ok.any():
        return out
    med = float(np.median(x[ok]))
    mad = float(np.median(np.abs(x[ok] - med)))
    dev = x[ok] - med
    if mad > 0:
        out[ok] = 0.6745 * dev / mad
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            out[ok] = np.where(dev == 0, 0.0, np.sign(dev) * np.inf)
    return out


def robust_z_outlier_mask(values: ArrayLike, *, threshold: float = 3.5) -> BoolArray:
    """True where ``|robust_z| > threshold`` (3.5 per Iglewicz & Hoaglin 1993)."""
    z = robust_z(values)
    with np.errstate(invalid="ignore"):
        return np.abs(z) > threshold


def hampel_mask(
    values: ArrayLike, *, half_window: int, n_sigmas: float = 3.0, min_deviation: float = 0.0
) -> BoolArray:
    """Hampel identifier: True where ``|x - moving median| > n_sigmas * 1.4826 * moving MAD``
    and ``> min_deviation``.

    The window holds ``half_window`` finite neighbours on each side of a sample (Hampel 1974;
    Pearson et al., "Generalized Hampel filters", EURASIP J Adv Signal Process 2016:87). Windows are
    truncated at the ends; non-finite samples are never flagged and are skipped as neighbours.
    Samples are taken in the order given (sort by time first). When the window's MAD is 0 only
    ``min_deviation`` applies; with ``min_deviation=0`` such a window flags nothing.
    """
    if half_window < 1:
        raise ValueError(f"half_window must be >= 1, got {half_window}")
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError("values must be one-dimensional")
    mask = np.zeros(x.shape, dtype=bool)
    idx = np.flatnonzero(np.isfinite(x))
    v = x[idx]
    n = v.size
    if n < 3:
        return mask
    w = 2 * half_window + 1
    # Pad by reflection-free edge handling: windows truncated at ends, done via NaN padding.
    padded = np.concatenate([np.full(half_window, np.nan), v, np.full(half_window, np.nan)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, w)
    med = np.nanmedian(windows, axis=1)
    mad = np.nanmedian(np.abs(windows - med[:, None]), axis=1)
    dev = np.abs(v - med)
    threshold = np.maximum(n_sigmas * 1.4826 * mad, min_deviation)
    out = (threshold > 0) & (dev > threshold)
    mask[idx] = out
    return mask


def duplicate_mask(
    times_utc_ns: ArrayLike, values: ArrayLike, *, window_s: float, atol: float = 1e-9
) -> BoolArray:
    """True for each sample that repeats an earlier sample's value within ``window_s`` seconds.

    ``values`` may be 1-D or 2-D (one row per sample, e.g. systolic/diastolic/pulse) and all
    columns must match. The first of a set of duplicates stays unflagged; input order does not
    matter (samples are compared in time order, ties by position).
    """
    t = np.asarray(times_utc_ns, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 1:
        v = v[:, None]
    if v.shape[0] != t.shape[0]:
        raise ValueError("times and values must have the same length")
    order = np.argsort(t, kind="stable")
    ts = t[order]
    vs = v[order]
    window_ns = round(window_s * 1e9)
    dup_sorted = np.zeros(t.shape, dtype=bool)
    # Typical home-device series are short; the look-back is bounded by the window.
    start = 0
    for i in range(1, ts.size):
        while ts[i] - ts[start] > window_ns:
            start += 1
        if start < i:
            prev = vs[start:i][~dup_sorted[start:i]]
            same = np.all(np.isclose(prev, vs[i], rtol=0.0, atol=atol, equal_nan=True), axis=1)
            if same.any():
                dup_sorted[i] = True
    out = np.zeros(t.shape, dtype=bool)
    out[order] = dup_sorted
    return out


def _value_flags(reading: Reading, limits: QualityLimits) -> set[QualityFlag]:
    flags: set[QualityFlag] = set()
    for name in reading.value_fields:
        value = getattr(reading, name)
        if value is None:
            continue
        fv = float(value)
        if math.isnan(fv):
            continue  # a missing value (NaN/NRes from the device) is not an implausible one
        lo_hi = limits.ranges.get(name)
        if lo_hi is not None and not (lo_hi[0] <= fv <= lo_hi[1]):
            flags.add(QualityFlag.IMPLAUSIBLE)
    return flags


def check(reading: R, *, limits: QualityLimits = DEFAULT_LIMITS) -> R:
    """One reading -> the same reading with plausibility flags added (never removed).

    Adds ``IMPLAUSIBLE`` for a value outside :data:`PLAUSIBLE_RANGES` and, for blood pressure,
    for systolic <= diastolic or a pulse pressure outside the limits, or for a missing (NaN)
    systolic or diastolic; ``CONTROL_SOLUTION`` for a glucose control-solution test;
    ``NO_SENSOR_CONTACT`` for a heart rate whose sensor reports no skin contact (0x2A37 b1-b2).
    The reading id is kept.
    """
    flags = _value_flags(reading, limits)
    if isinstance(reading, BloodPressureReading):
        s, d = float(reading.systolic_mmhg), float(reading.diastolic_mmhg)
        if not (math.isfinite(s) and math.isfinite(d)):
            flags.add(QualityFlag.IMPLAUSIBLE)
        else:
            pp = s - d
            if s <= d or pp < limits.min_pulse_pressure_mmhg or pp > limits.max_pulse_pressure_mmhg:
                flags.add(QualityFlag.IMPLAUSIBLE)
    elif isinstance(reading, GlucoseReading):
        if not math.isfinite(float(reading.glucose_mg_dl)):
            flags.add(QualityFlag.IMPLAUSIBLE)
        if reading.is_control_solution or is_control_solution(
            reading.sample_type, reading.sample_location
        ):
            flags.add(QualityFlag.CONTROL_SOLUTION)
    elif isinstance(reading, CgmReading) and not math.isfinite(float(reading.glucose_mg_dl)):
        flags.add(QualityFlag.IMPLAUSIBLE)
    elif isinstance(reading, HeartRateReading) and reading.sensor_contact is False:
        flags.add(QualityFlag.NO_SENSOR_CONTACT)
    new = frozenset(flags) - reading.flags
    return reading.with_flags(*new) if new else reading


#: The value fields Hampel / duplicate checks look at, per reading class.
_SERIES_FIELDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "blood_pressure": ("systolic_mmhg", "diastolic_mmhg"),
        "glucose": ("glucose_mg_dl",),
        "cgm": ("glucose_mg_dl",),
        "heart_rate": ("heart_rate_bpm",),
        "pulse_oximetry": ("spo2_pct",),
        "body_temperature": ("temperature_c",),
        "weight": ("weight_kg",),
    }
)


def check_batch(
    readings: Sequence[Reading], *, limits: QualityLimits = DEFAULT_LIMITS
) -> list[Reading]:
    """:func:`check` each reading, then flag duplicates and outliers per (patient, kind) series.

    Returns the readings in the input order, each with its flags added. Duplicates: the same
    patient, kind and values (plus user ID for BP) within ``limits.duplicate_window_s`` of an
    earlier reading (different ids, e.g. a device re-sending without a sequence number).
    Outliers: the Hampel identifier on each value field of :data:`_SERIES_FIELDS`, over the
    series' clinical readings in time order; CGM, HR and SpO2 series are dense enough for it,
    sparse spot readings get it too but rarely trip it.
    """
    checked = [check(r, limits=limits) for r in readings]
    groups: dict[tuple[str, str, object], list[int]] = {}
    for i, r in enumerate(checked):
        user = getattr(r, "user_id", None)
        groups.setdefault((r.patient_id, str(r.kind), user), []).append(i)
    extra: list[set[QualityFlag]] = [set() for _ in checked]
    for (_, kind, _), members in groups.items():
        fields = _SERIES_FIELDS[kind]
        rows = [checked[i] for i in members]
        t = np.fromiter(
            (int(r.measured_at.timestamp() * 1e6) * 1000 for r in rows), np.int64, len(rows)
        )
        vals = np.array(
            [[float(getattr(r, f)) for f in fields] for r in rows], dtype=np.float64
        ).reshape(len(rows), len(fields))
        dups = duplicate_mask(t, vals, window_s=limits.duplicate_window_s)
        clinical = np.array([r.is_clinical for r in rows], dtype=bool) & ~dups
        order = np.argsort(t, kind="stable")
        order = order[clinical[order]]
        outlier = np.zeros(len(rows), dtype=bool)
        for col in range(len(fields)):
            m = hampel_mask(
                vals[order, col],
                half_window=limits.hampel_half_window,
                n_sigmas=limits.hampel_n_sigmas,
                min_deviation=limits.hampel_min_deviation.get(fields[col], 0.0),
            )
            outlier[order[m]] = True
        for j, i in enumerate(members):
            if dups[j]:
                extra[i].add(QualityFlag.DUPLICATE)
            if outlier[j]:
                extra[i].add(QualityFlag.OUTLIER)
    return [
        r.with_flags(*(f - r.flags)) if f - r.flags else r
        for r, f in zip(checked, extra, strict=True)
    ]
