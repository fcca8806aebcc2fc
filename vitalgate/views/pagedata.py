"""What the dashboard shows, computed once per request from columnar store queries.

Every clinical number comes from :mod:`vitalgate.signal` (BP category, home-BP summary, trend;
CGM metrics and AGP; glucose statistics by meal context). This module only selects readings,
converts times to the patient's wall clock and shapes compact JSON for the charts: times are
"local epoch milliseconds" (UTC ms plus the zone's offset at that instant), which plotly's date
axes display as the patient's wall-clock time without any time-zone logic in the browser. Heart
rate is downsampled (mean, min and max per bin) to at most ~1,500 points.

Heart rate is not read row by row: the store aggregates it (``ReadingStore.downsample``) in
UTC-aligned base bins that nest in the page's local-time bins (the base width divides the page's
bin width, every UTC offset of the range and every offset change), and this module merges base
bins into local bins. The result equals binning the clinical readings by local wall-clock time
directly (means up to floating-point rounding): a local bin that a DST change makes longer (the
repeated hour) is one bin, as before. The other kinds are read without reading ids.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from vitalgate.cloud_sync.store import BinnedSeries, DeviceLatest, ReadingSeries, ReadingStore
from vitalgate.readings import Meal, QualityFlag, ReadingKind
from vitalgate.signal import bp as bp_signal
from vitalgate.signal import cgm as cgm_signal
from vitalgate.signal import glucose as glucose_signal
from vitalgate.signal.units import NS_PER_S, local_offsets_s
from vitalgate.views.patients import (
    PatientInfo,
    clinical_mask,
    flag_mask,
    local_day_range,
    meals_of,
)

__all__ = [
    "BP_CATEGORY_LABELS",
    "MEAL_LABELS",
    "PatientStatus",
    "local_ms",
    "page_data",
    "patient_status",
]

# Page reads run side by side on these threads (stores are thread-safe: see ReadingStore).
_READS: Final = ThreadPoolExecutor(max_workers=4, thread_name_prefix="vitalgate-page-read")

BP_CATEGORY_LABELS: Final[Mapping[int, str]] = {
    bp_signal.BpCategory.NORMAL: "Normal",
    bp_signal.BpCategory.ELEVATED: "Elevated",
    bp_signal.BpCategory.STAGE_1: "Stage 1 hypertension",
    bp_signal.BpCategory.STAGE_2: "Stage 2 hypertension",
    bp_signal.BpCategory.CRISIS: "Hypertensive crisis",
}
MEAL_LABELS: Final[Mapping[Meal | None, str]] = {
    Meal.PREPRANDIAL: "Before meal",
    Meal.POSTPRANDIAL: "After meal",
    Meal.FASTING: "Fasting",
    Meal.CASUAL: "Casual",
    Meal.BEDTIME: "Bedtime",
    None: "No context",
}
_KIND_LABELS: Final[Mapping[ReadingKind, str]] = {
    ReadingKind.BLOOD_PRESSURE: "Blood pressure monitor",
    ReadingKind.GLUCOSE: "Glucose meter",
    ReadingKind.CGM: "CGM sensor",
    ReadingKind.HEART_RATE: "Heart rate sensor",
    ReadingKind.PULSE_OXIMETRY: "Pulse oximeter",
    ReadingKind.BODY_TEMPERATURE: "Thermometer",
    ReadingKind.WEIGHT: "Scale",
    ReadingKind.DEVICE_STATUS: "Device status",
}
_HR_BINS_S: Final = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600)
_HR_MAX_POINTS: Final = 1500
_HR_RESTING_QUANTILE: Final = 0.10
#: A battery at or below this is shown as low (devices warn the user at about 10-20 %).
_BATTERY_LOW_PCT: Final = 20
#: A device's newest reading older than this is shown as stale: a CGM measures every few
#: minutes, so hours without data mean a sensor that ended or lost its link; spot devices
#: (BP monitor, meter, scale, thermometer) and wearables are used when the patient chooses.
_STALE_AFTER: Final[Mapping[ReadingKind, timedelta]] = {ReadingKind.CGM: timedelta(hours=3)}
_STALE_DEFAULT: Final = timedelta(days=2)
_NON_CLINICAL_FLAGS: Final = frozenset(str(f) for f in QualityFlag if f.non_clinical)
_OFFSET_PROBE_S: Final = 6 * 3600
_NS_PER_MS: Final = 1_000_000


def local_ms(times_ns: npt.NDArray[np.int64], tz: str) -> npt.NDArray[np.int64]:
    """UTC ns -> local wall-clock epoch ms (for plotly date axes)."""
    if times_ns.size == 0:
        return np.empty(0, np.int64)
    return (times_ns + local_offsets_s(times_ns, tz) * NS_PER_S) // _NS_PER_MS


def _r(x: float, nd: int = 1) -> float | None:
    return round(float(x), nd) if math.isfinite(float(x)) else None


def _col(s: ReadingSeries, name: str) -> npt.NDArray[np.float64]:
    col = s.values.get(name)
    return col if col is not None else np.full(len(s), np.nan)


def _round_list(a: npt.NDArray[np.float64], nd: int = 0) -> list[float | None]:
    r = np.round(a, nd)
    return [None if not math.isfinite(v) else v for v in r.tolist()]


# --------------------------------------------------------------------------------------------
# Blood pressure


def _bp(s: ReadingSeries, p: PatientInfo, first: date, last: date) -> dict[str, Any]:
    keep = clinical_mask(s)
    sys_ = _col(s, "systolic_mmhg")
    dia = _col(s, "diastolic_mmhg")
    keep &= np.isfinite(sys_) & np.isfinite(dia)
    t, sys_, dia = s.times_ns[keep], sys_[keep], dia[keep]
    irregular = flag_mask(s, QualityFlag.IRREGULAR_PULSE)[keep]
    out: dict[str, Any] = {
        "x": local_ms(t, p.timezone).tolist(),
        "sys": _round_list(sys_),
        "dia": _round_list(dia),
        "pulse": _round_list(_col(s, "pulse_rate_bpm")[keep]),
        "cat": bp_signal.classify_many(sys_, dia).tolist(),
        "irregular": irregular.astype(int).tolist(),
        "target_sys": bp_signal.HOME_THRESHOLD_SYSTOLIC_MMHG,
        "target_dia": bp_signal.HOME_THRESHOLD_DIASTOLIC_MMHG,
        "n": int(t.size),
    }
    if t.size == 0:
        out.update(weekly=None, summary=None, trend=None)
        return out
    # Weekly home-BP averages over local Monday-based weeks (every morning/evening reading).
    weeks: list[dict[str, Any]] = []
    monday = first - timedelta(days=first.weekday())
    while monday <= last:
        w = bp_signal.home_bp_summary(
            t,
            sys_,
            dia,
            tz=p.timezone,
            first_day=monday,
            days=7,
            discard_first_day=False,
            minimum_readings=1,
        )
        if w.readings_used:
            mid = datetime.combine(monday + timedelta(days=3), datetime.min.time(), UTC)
            weeks.append(
                {
                    "x": int(mid.timestamp() * 1000) + 12 * 3600 * 1000,
                    "week": monday.isoformat(),
                    "sys": _r(w.mean_systolic_mmhg),
                    "dia": _r(w.mean_diastolic_mmhg),
                    "n": w.readings_used,
                    "category": BP_CATEGORY_LABELS.get(int(w.category), "")
                    if w.category is not None
                    else "",
                }
            )
        monday += timedelta(days=7)
    out["weekly"] = weeks
    # The protocol summary of the last 7 days of the range (day 1 discarded, ESH 2021).
    summary = bp_signal.home_bp_summary(
        t, sys_, dia, tz=p.timezone, first_day=last - timedelta(days=6), days=7
    )
    out["summary"] = {
        "first_day": summary.first_day.isoformat(),
        "last_day": summary.last_day.isoformat(),
        "mean_sys": _r(summary.mean_systolic_mmhg, 0),
        "mean_dia": _r(summary.mean_diastolic_mmhg, 0),
        "morning_sys": _r(summary.morning_mean_systolic_mmhg, 0),
        "morning_dia": _r(summary.morning_mean_diastolic_mmhg, 0),
        "evening_sys": _r(summary.evening_mean_systolic_mmhg, 0),
        "evening_dia": _r(summary.evening_mean_diastolic_mmhg, 0),
        "readings": summary.readings_used,
        "adherence_pct": _r(summary.adherence_pct, 0),
        "sufficient": summary.sufficient,
        "above_target": summary.above_threshold,
        "category": BP_CATEGORY_LABELS.get(int(summary.category), "")
        if summary.category is not None
        else "",
        "category_code": int(summary.category) if summary.category is not None else -1,
    }
    tr_s = bp_signal.trend(t, sys_)
    tr_d = bp_signal.trend(t, dia)
    out["trend"] = {
        "sys_per_week": _r(tr_s.slope_mmhg_per_week),
        "sys_ci": [_r(tr_s.ci_low_mmhg_per_week), _r(tr_s.ci_high_mmhg_per_week)],
        "dia_per_week": _r(tr_d.slope_mmhg_per_week),
        "dia_ci": [_r(tr_d.ci_low_mmhg_per_week), _r(tr_d.ci_high_mmhg_per_week)],
    }
    return out


# --------------------------------------------------------------------------------------------
# Glucose


def _cgm(s: ReadingSeries, p: PatientInfo, days: int) -> dict[str, Any] | None:
    g = _col(s, "glucose_mg_dl")
    keep = clinical_mask(s) & np.isfinite(g) & (g > 0)
    g, t = g[keep], s.times_ns[keep]
    if g.size < 2:
        return None
    m = cgm_signal.metrics(g, t)
    agp = cgm_signal.agp(g, t, tz=p.timezone, days=days)
    lt = local_ms(t, p.timezone)
    # Daily overlays: the last 14 local days, minutes of the day on x.
    day_index = lt // 86_400_000
    overlay: list[dict[str, Any]] = []
    last_day = int(day_index[-1])
    for d in range(last_day - 13, last_day + 1):
        lo, hi = np.searchsorted(day_index, [d, d + 1])
        if hi <= lo:
            continue
        minutes = (lt[lo:hi] - d * 86_400_000) / 60_000.0
        overlay.append(
            {
                "day": (date(1970, 1, 1) + timedelta(days=d)).isoformat(),
                "x": np.round(minutes, 1).tolist(),
                "y": _round_list(g[lo:hi]),
            }
        )
    return {
        "metrics": {k: (_r(v, 2) if isinstance(v, float) else v) for k, v in asdict(m).items()},
        "tir": {
            "very_low": _r(m.tbr_level2_pct, 1),
            "low": _r(m.tbr_pct - m.tbr_level2_pct, 1),
            "target": _r(m.tir_pct, 1),
            "high": _r(m.tar_pct - m.tar_level2_pct, 1),
            "very_high": _r(m.tar_level2_pct, 1),
        },
        "agp": {
            "tod_min": agp.time_of_day_min.tolist(),
            "p5": _round_list(agp.p5_mg_dl, 1),
            "p25": _round_list(agp.p25_mg_dl, 1),
            "p50": _round_list(agp.p50_mg_dl, 1),
            "p75": _round_list(agp.p75_mg_dl, 1),
            "p95": _round_list(agp.p95_mg_dl, 1),
            "days": agp.days,
            "readings": agp.readings,
        },
        "overlay": overlay,
    }


def _meter(s: ReadingSeries, p: PatientInfo) -> dict[str, Any] | None:
    if len(s) == 0:
        return None
    g = _col(s, "glucose_mg_dl")
    clinical = clinical_mask(s) & np.isfinite(g) & (g > 0)
    meals = meals_of(s)
    stats = glucose_signal.stats_by_meal(g, meals, clinical=clinical)
    lt = local_ms(s.times_ns, p.timezone)
    idx = np.flatnonzero(clinical)
    return {
        "x": lt[idx].tolist(),
        "y": _round_list(g[idx]),
        "meal": [MEAL_LABELS[meals[i]] for i in idx.tolist()],
        "excluded": int(len(s) - idx.size),
        "stats": [
            {
                "meal": MEAL_LABELS[k],
                "n": v.n,
                "mean": _r(v.mean_mg_dl, 0),
                "median": _r(v.median_mg_dl, 0),
                "min": _r(v.min_mg_dl, 0),
                "max": _r(v.max_mg_dl, 0),
                "target": f"{v.target_low_mg_dl:.0f}-{v.target_high_mg_dl:.0f}",
                "in_target_pct": _r(v.in_target_pct, 0),
                "hypo": v.hypo_level1_count + v.hypo_level2_count,
                "hypo_l2": v.hypo_level2_count,
            }
            for k, v in stats.items()
        ],
    }


# --------------------------------------------------------------------------------------------
# Heart rate, SpO2, weight, temperature


def _offset_changes(start_s: int, end_s: int, tz: tzinfo) -> tuple[list[int], list[int]]:
    """The UTC offsets (s) a zone takes in ``[start_s, end_s]`` and the instants (epoch s) they
    change at, each located to the second (probing every 6 h, as ``local_offsets_s`` does)."""

    def offset(t_s: int) -> int:
        delta = datetime.fromtimestamp(t_s, tz).utcoffset()
        return 0 if delta is None else int(delta.total_seconds())

    probes = [*range(start_s, end_s, _OFFSET_PROBE_S), end_s]
    offsets = [offset(probes[0])]
    changes: list[int] = []
    for a, b in itertools.pairwise(probes):
        ob = offset(b)
        if ob == offsets[-1]:
            continue
        left, right = a, b  # offset(left) == offsets[-1], offset(right) == ob
        while right - left > 1:
            mid = (left + right) // 2
            if offset(mid) == offsets[-1]:
                left = mid
            else:
                right = mid
        changes.append(right)
        offsets.append(ob)
    return offsets, changes


def _hr_bin_s(span_s: float) -> int:
    """The page's heart-rate bin: the finest of ``_HR_BINS_S`` giving <= 1,500 bins."""
    return next((b for b in _HR_BINS_S if span_s / b <= _HR_MAX_POINTS), _HR_BINS_S[-1])


def _local_bins(base: BinnedSeries, tz: str, bin_s: int) -> dict[str, Any]:
    """Merge UTC base bins into local wall-clock bins of ``bin_s`` (consecutive base bins with
    the same local bin make one, as binning the readings by local time does)."""
    bins = local_ms(base.starts_ns, tz) // (bin_s * 1000)
    starts = np.flatnonzero(np.concatenate(([True], bins[1:] != bins[:-1])))
    counts = np.add.reduceat(base.count, starts)
    mean = np.add.reduceat(base.mean * base.count, starts) / counts
    return {
        "x": (bins[starts] * bin_s * 1000 + bin_s * 500).tolist(),
        "mean": _round_list(mean),
        "min": _round_list(np.minimum.reduceat(base.min, starts)),
        "max": _round_list(np.maximum.reduceat(base.max, starts)),
        "bin_s": bin_s,
    }


def _base_bin_s(p: PatientInfo, start: datetime, end: datetime, bin_s: int) -> int:
    """UTC bins that nest in the patient's local bins of ``bin_s`` across the range."""
    offsets, changes = _offset_changes(
        math.floor(start.timestamp()), math.ceil(end.timestamp()), p.tz
    )
    return math.gcd(bin_s, *offsets, *changes)


def _hr_and_hrv(
    store: ReadingStore, p: PatientInfo, start: datetime, end: datetime, span_s: float
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Heart rate in the page's bins and the daily mean RMSSD (the gateway's per-window HRV,
    ``rmssd_ms``) per local day, from one downsampled read of both fields in UTC base bins
    that nest in both the heart-rate bins and the local days."""
    bin_s, day_s = _hr_bin_s(span_s), 86_400
    base_s = math.gcd(_base_bin_s(p, start, end, bin_s), _base_bin_s(p, start, end, day_s))
    both = store.downsample_fields(
        p.patient_id,
        ReadingKind.HEART_RATE,
        ("heart_rate_bpm", "rmssd_ms"),
        start,
        end,
        bin_s=base_s,
        exclude_flags=_NON_CLINICAL_FLAGS,
        quantiles={"heart_rate_bpm": (_HR_RESTING_QUANTILE,)},
    )
    hr_base, hrv_base = both["heart_rate_bpm"], both["rmssd_ms"]
    hr: dict[str, Any] | None = None
    if hr_base.total:
        hr = _local_bins(hr_base, p.timezone, bin_s)
        hr["n"] = hr_base.total
        hr["resting"] = _r(hr_base.quantiles[_HR_RESTING_QUANTILE], 0)
    hrv: dict[str, Any] | None = None
    if hrv_base.total:
        days = _local_bins(hrv_base, p.timezone, day_s)
        hrv = {"x": days["x"], "y": days["mean"], "n": hrv_base.total}
    return hr, hrv


def _points(s: ReadingSeries, p: PatientInfo, name: str, nd: int = 1) -> dict[str, Any] | None:
    v = _col(s, name)
    keep = clinical_mask(s) & np.isfinite(v)
    if not keep.any():
        return None
    return {
        "x": local_ms(s.times_ns[keep], p.timezone).tolist(),
        "y": _round_list(v[keep], nd),
        "n": int(keep.sum()),
    }


# --------------------------------------------------------------------------------------------
# Devices


def measurements_only(latest: Sequence[DeviceLatest]) -> list[DeviceLatest]:
    """The newest readings per device without the gateway's device-health rows."""
    return [d for d in latest if d.kind is not ReadingKind.DEVICE_STATUS]


def _health(status: ReadingSeries, p: PatientInfo) -> dict[str, dict[str, Any]]:
    """Per device id: the newest battery level and clock offset the gateway reported."""
    out: dict[str, dict[str, Any]] = {}
    if len(status) == 0:
        return out
    battery, offset = _col(status, "battery_pct"), _col(status, "clock_offset_s")
    for i in np.argsort(status.times_ns, kind="stable").tolist():
        dev = status.device_ids[i] if i < len(status.device_ids) else ""
        row = out.setdefault(dev, {"battery_pct": None, "clock_offset_s": None})
        row["last_sync"] = (
            datetime.fromtimestamp(int(status.times_ns[i]) / 1e9, UTC)
            .astimezone(p.tz)
            .strftime("%Y-%m-%d %H:%M")
        )
        if np.isfinite(battery[i]):
            row["battery_pct"] = round(float(battery[i]))
        if np.isfinite(offset[i]):
            row["clock_offset_s"] = round(float(offset[i]), 1)
    return out


def _devices(
    latest: Sequence[DeviceLatest],
    series: Mapping[ReadingKind, ReadingSeries],
    p: PatientInfo,
    clock_corrected: Mapping[str, int],
) -> list[dict[str, Any]]:
    """``clock_corrected`` counts clock-corrected readings of kinds not in ``series``; the
    device-health series (``device_status``) gives battery, last sync and clock offset."""
    clock_corrected = dict(clock_corrected)
    health: dict[str, dict[str, Any]] = {}
    for kind, s in series.items():
        if kind is ReadingKind.DEVICE_STATUS:
            health = _health(s, p)
            continue
        flagged = flag_mask(s, QualityFlag.CLOCK_CORRECTED)
        for i in np.flatnonzero(flagged).tolist():
            dev = s.device_ids[i]
            clock_corrected[dev] = clock_corrected.get(dev, 0) + 1
    out = []
    now = datetime.now(UTC)
    for d in measurements_only(latest):
        ident = d.device_id
        h = health.get(ident, {})
        battery = h.get("battery_pct")
        name = ident[5:] if ident.startswith("addr|") else " ".join(ident.split("|")[:2])
        age = now - d.measured_at
        out.append(
            {
                "kind": _KIND_LABELS.get(d.kind, str(d.kind)),
                "device": name,
                "device_id": ident,
                "gateway": d.gateway_id,
                "last": d.measured_at.astimezone(p.tz).strftime("%Y-%m-%d %H:%M"),
                "age_h": round(age.total_seconds() / 3600, 1),
                "stale": age > _STALE_AFTER.get(d.kind, _STALE_DEFAULT),
                "clock_corrections": clock_corrected.get(ident, 0),
                "battery_pct": battery,
                "battery_low": battery is not None and battery <= _BATTERY_LOW_PCT,
                "last_sync": h.get("last_sync"),
                "clock_offset_s": h.get("clock_offset_s"),
            }
        )
    return out


# --------------------------------------------------------------------------------------------
# The page


def page_data(
    store: ReadingStore,
    patient: PatientInfo,
    first_day: date,
    last_day: date,
    *,
    kinds: Sequence[ReadingKind] = tuple(ReadingKind),
    latest: Sequence[DeviceLatest] | None = None,
) -> dict[str, Any]:
    """Everything the patient page shows for local days ``first_day`` .. ``last_day``.

    ``latest`` is ``store.latest(patient)`` when the caller already has it. Heart rate is
    aggregated by the store; every other kind is read whole. The store reads run concurrently
    (a store error of any of them is raised here).
    """
    start, end = local_day_range(first_day, last_day, patient.tz)
    days = (last_day - first_day).days + 1
    span_s = (end - start).total_seconds()
    pid = patient.patient_id
    # The store reads are independent: run them side by side (a remote store answers several
    # requests at once; SQLite reads have pooled connections of their own). The largest
    # reads go first.
    order = sorted(
        (k for k in kinds if k is not ReadingKind.HEART_RATE),
        key=lambda k: (k is not ReadingKind.CGM, k.value),
    )
    reads: dict[str, Future[Any]] = {}
    if ReadingKind.HEART_RATE in kinds:
        reads["hr"] = _READS.submit(_hr_and_hrv, store, patient, start, end, span_s)
    for k in order:
        reads[k.value] = _READS.submit(store.query, pid, k, start, end, reading_ids=False)
    if ReadingKind.HEART_RATE in kinds:
        reads["clock"] = _READS.submit(
            store.count_flagged,
            pid,
            ReadingKind.HEART_RATE,
            QualityFlag.CLOCK_CORRECTED,
            start,
            end,
        )
    if latest is None:
        reads["latest"] = _READS.submit(store.latest, pid)
    try:
        done = {name: f.result() for name, f in reads.items()}
    finally:
        for f in reads.values():
            f.cancel()
    series: dict[ReadingKind, ReadingSeries] = {k: done[k.value] for k in order}
    hr, hrv = done.get("hr", (None, None))
    clock_corrected: dict[str, int] = done.get("clock", {})
    if latest is None:
        latest = done["latest"]
    empty = ReadingSeries(
        kind=ReadingKind.HEART_RATE,
        patient_id=patient.patient_id,
        times_ns=np.empty(0, np.int64),
        values={},
    )
    range_ms = [
        int(datetime.combine(first_day, datetime.min.time(), UTC).timestamp() * 1000),
        int(datetime.combine(last_day + timedelta(days=1), datetime.min.time(), UTC).timestamp())
        * 1000,
    ]
    return {
        "patient": {
            "id": patient.patient_id,
            "name": patient.display_name,
            "timezone": patient.timezone,
        },
        "range": {
            "from": first_day.isoformat(),
            "to": last_day.isoformat(),
            "days": days,
            "x": range_ms,
        },
        "bp": _bp(series.get(ReadingKind.BLOOD_PRESSURE, empty), patient, first_day, last_day),
        "cgm": _cgm(series.get(ReadingKind.CGM, empty), patient, days),
        "meter": _meter(series.get(ReadingKind.GLUCOSE, empty), patient),
        "hr": hr,
        "hrv": hrv,
        "spo2": _points(series.get(ReadingKind.PULSE_OXIMETRY, empty), patient, "spo2_pct", 0),
        "weight": _points(series.get(ReadingKind.WEIGHT, empty), patient, "weight_kg", 1),
        "temp": _points(series.get(ReadingKind.BODY_TEMPERATURE, empty), patient, "temperature_c"),
        "devices": _devices(
            latest,
            series,
            patient,
            clock_corrected,
        ),
    }


# --------------------------------------------------------------------------------------------
# The patient list


@dataclass(frozen=True, slots=True)
class PatientStatus:
    """One row of the patient list."""

    patient: PatientInfo
    last_reading: str  # local time of the newest reading, "" if none
    last_reading_age_h: float | None
    devices: int
    cgm_days: float | None
    cgm_active_pct: float | None
    cgm_sufficient: bool | None
    tir_pct: float | None
    tbr_pct: float | None
    bp_mean: str  # "142/88" over the last 7 days, "" if none
    bp_category: str
    bp_readings: int
    flags: tuple[str, ...]  # out-of-target flags, short texts


def patient_status(store: ReadingStore, patient: PatientInfo, today: date) -> PatientStatus:
    """The list row of a patient: last 14 days of CGM, last 7 days of home BP."""
    latest = measurements_only(store.latest(patient.patient_id))
    newest = max((d.measured_at for d in latest), default=None)
    flags: list[str] = []
    start14, end = local_day_range(today - timedelta(days=13), today, patient.tz)
    cgm_s = store.query(patient.patient_id, ReadingKind.CGM, start14, end)
    g = _col(cgm_s, "glucose_mg_dl")
    keep = clinical_mask(cgm_s) & np.isfinite(g) & (g > 0)
    cgm_days = cgm_active = tir = tbr = None
    sufficient: bool | None = None
    if keep.sum() >= 2:
        m = cgm_signal.metrics(g[keep], cgm_s.times_ns[keep])
        cgm_days, cgm_active, sufficient = round(m.days, 1), round(m.active_pct), m.sufficient
        tir, tbr = round(m.tir_pct), round(m.tbr_pct, 1)
        if m.tir_pct < 70:
            flags.append(f"TIR {m.tir_pct:.0f} %")
        if m.tbr_pct >= 4 or m.tbr_level2_pct >= 1:
            flags.append(f"Below range {m.tbr_pct:.1f} %")
        if m.cv_pct > 36:
            flags.append(f"CV {m.cv_pct:.0f} %")
    start7, _ = local_day_range(today - timedelta(days=6), today, patient.tz)
    bp_s = store.query(patient.patient_id, ReadingKind.BLOOD_PRESSURE, start7, end)
    sys_, dia = _col(bp_s, "systolic_mmhg"), _col(bp_s, "diastolic_mmhg")
    keep_bp = clinical_mask(bp_s) & np.isfinite(sys_) & np.isfinite(dia)
    bp_mean, bp_cat, bp_n = "", "", 0
    if keep_bp.any():
        summary = bp_signal.home_bp_summary(
            bp_s.times_ns[keep_bp],
            sys_[keep_bp],
            dia[keep_bp],
            tz=patient.timezone,
            first_day=today - timedelta(days=6),
            days=7,
        )
        bp_n = summary.readings_used
        if bp_n:
            bp_mean = f"{summary.mean_systolic_mmhg:.0f}/{summary.mean_diastolic_mmhg:.0f}"
            if summary.category is not None:
                bp_cat = BP_CATEGORY_LABELS[int(summary.category)]
            if summary.above_threshold:
                flags.append(f"Home BP {bp_mean}")
    age_h = None
    last = ""
    if newest is not None:
        age_h = round((datetime.now(UTC) - newest).total_seconds() / 3600, 1)
        last = newest.astimezone(patient.tz).strftime("%Y-%m-%d %H:%M")
    return PatientStatus(
        patient=patient,
        last_reading=last,
        last_reading_age_h=age_h,
        devices=len(latest),
        cgm_days=cgm_days,
        cgm_active_pct=cgm_active,
        cgm_sufficient=sufficient,
        tir_pct=tir,
        tbr_pct=tbr,
        bp_mean=bp_mean,
        bp_category=bp_cat,
        bp_readings=bp_n,
        flags=tuple(flags),
    )
