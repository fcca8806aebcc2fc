"""The store's downsampled read on SQLite, against the client-side reference; the page's heart
rate built from it equals binning the raw clinical readings by local wall-clock time."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vitalgate.cloud_sync.store import BinnedSeries, ReadingSeries, StoredReading
from vitalgate.cloud_sync.stores.base import bin_reduce, check_downsample
from vitalgate.cloud_sync.stores.sqlite import SqliteStore
from vitalgate.readings import QualityFlag, ReadingKind
from vitalgate.views.pagedata import local_ms, page_data
from vitalgate.views.patients import PatientInfo, clinical_mask, local_day_range

T0 = datetime(2026, 10, 20, tzinfo=UTC)  # the EU leaves summer time on 2026-10-25
NON_CLINICAL = ("control_solution", "implausible")


def hr_readings(
    patient: str, *, t0: datetime = T0, days: int = 10, step_s: int = 600, seed: int = 3
) -> list[StoredReading]:
    """Heart rate of two devices with non-integer values, flags and a few readings lacking
    the field; one reading of each device at the same instant."""
    rng = np.random.default_rng(seed)
    out: list[StoredReading] = []
    n = days * 86_400 // step_s
    for device, shift_s in (("strap|A|1", 0), ("watch|B|2", 7)):
        values = 70 + 15 * np.sin(np.arange(n) / 40) + rng.normal(0, 6, n)
        for i in range(n):
            flags: set[str] = set()
            if i % 53 == 0:
                flags.add("implausible")
            if i % 71 == 0:
                flags.add("clock_corrected" if device.startswith("strap") else "motion_artifact")
            fields = {} if i % 97 == 5 else {"heart_rate_bpm": round(float(values[i]), 2)}
            if i % 2:
                fields["energy_expended_kj"] = float(i)
            if not fields:
                fields = {"energy_expended_kj": -1.0}
            at = t0 + timedelta(seconds=i * step_s + (shift_s if i != 17 else 0))
            out.append(
                StoredReading(
                    kind=ReadingKind.HEART_RATE,
                    reading_id=f"{patient}-{device}-{i}",
                    patient_id=patient,
                    gateway_id="gw-1",
                    device_id=device,
                    measured_at=at,
                    values=fields,
                    flags=frozenset(flags),
                )
            )
    return out


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "readings.db")
    s.write(hr_readings("p-1"))
    yield s
    s.close()


def reference(
    series: ReadingSeries,
    start: datetime,
    end: datetime,
    *,
    bin_s: int,
    offset_s: int = 0,
    quantiles: tuple[float, ...] = (),
    field: str = "heart_rate_bpm",
) -> BinnedSeries:
    """The downsampled read computed from the raw series (clinical readings only)."""
    args = check_downsample(field, start, end, bin_s=bin_s, offset_s=offset_s, quantiles=quantiles)
    values = np.where(clinical_mask(series), series.values[field], np.nan)
    return bin_reduce(series.kind, series.patient_id, args, series.times_ns, values)


def assert_same_bins(got: BinnedSeries, want: BinnedSeries) -> None:
    assert (got.kind, got.patient_id, got.field_name) == (
        want.kind,
        want.patient_id,
        want.field_name,
    )
    assert (got.bin_s, got.offset_s) == (want.bin_s, want.offset_s)
    np.testing.assert_array_equal(got.starts_ns, want.starts_ns)
    np.testing.assert_array_equal(got.count, want.count)
    np.testing.assert_array_equal(got.min, want.min)
    np.testing.assert_array_equal(got.max, want.max)
    np.testing.assert_allclose(got.mean, want.mean, rtol=1e-12)
    assert got.quantiles.keys() == want.quantiles.keys()
    for q, value in want.quantiles.items():
        assert got.quantiles[q] == pytest.approx(value, rel=1e-12, nan_ok=True)


@pytest.mark.parametrize(
    ("bin_s", "offset_s", "start_s", "hours"),
    [
        (3600, 0, 0, 240),
        (10_800, 3600, 1234, 200),  # the range starts inside a bin
        (10_800, -3600, 0, 240),  # offsets are taken modulo the bin
        (900, 1800, 600, 30),
        (86_400, 0, 0, 240),
        (7, 3, 0, 3),  # odd widths
    ],
    ids=["1h", "3h+1h-mid-bin", "3h-1h", "15min+30min", "1d", "7s+3s"],
)
def test_bins_equal_the_client_side_reference(
    store: SqliteStore, bin_s: int, offset_s: int, start_s: int, hours: int
) -> None:
    start = T0 + timedelta(seconds=start_s)
    end = start + timedelta(hours=hours)
    q = (0.0, 0.1, 0.37, 0.5, 0.9, 1.0)
    got = store.downsample(
        "p-1",
        ReadingKind.HEART_RATE,
        "heart_rate_bpm",
        start,
        end,
        bin_s=bin_s,
        offset_s=offset_s,
        exclude_flags=NON_CLINICAL,
        quantiles=q,
    )
    raw = store.query("p-1", ReadingKind.HEART_RATE, start, end)
    want = reference(raw, start, end, bin_s=bin_s, offset_s=offset_s, quantiles=q)
    assert_same_bins(got, want)
    assert got.offset_s == offset_s % bin_s
    assert np.all((got.starts_ns - got.offset_s * 10**9) % (bin_s * 10**9) == 0)
    if start_s:  # the first bin starts on its boundary, before the range
        assert got.starts_ns[0] < int(start.timestamp()) * 10**9
    # the reference itself: numpy over the clinical readings that have the field
    v = raw.values["heart_rate_bpm"][clinical_mask(raw)]
    v = v[np.isfinite(v)]
    assert got.total == v.size and got.total < len(raw)
    assert got.quantiles[0.1] == pytest.approx(float(np.quantile(v, 0.1)), rel=1e-12)
    assert got.min.min() == v.min() and got.max.max() == v.max()


def test_exclude_flags_select_what_is_left_out(store: SqliteStore) -> None:
    start, end = T0, T0 + timedelta(days=10)
    everything = store.downsample(
        "p-1", ReadingKind.HEART_RATE, "heart_rate_bpm", start, end, bin_s=86_400
    )
    clinical = store.downsample(
        "p-1",
        ReadingKind.HEART_RATE,
        "heart_rate_bpm",
        start,
        end,
        bin_s=86_400,
        exclude_flags=NON_CLINICAL,
    )
    no_motion = store.downsample(
        "p-1",
        ReadingKind.HEART_RATE,
        "heart_rate_bpm",
        start,
        end,
        bin_s=86_400,
        exclude_flags={QualityFlag.MOTION_ARTIFACT, "implausible"},
    )
    raw = store.query("p-1", ReadingKind.HEART_RATE, start, end)
    has_field = np.isfinite(raw.values["heart_rate_bpm"])
    assert everything.total == int(has_field.sum())
    implausible = np.array(["implausible" in f for f in raw.flags])
    motion = np.array(["motion_artifact" in f for f in raw.flags])
    assert clinical.total == int((has_field & ~implausible).sum())
    assert no_motion.total == int((has_field & ~implausible & ~motion).sum())
    assert no_motion.total < clinical.total < everything.total


def test_other_fields_and_kinds(store: SqliteStore) -> None:
    start, end = T0, T0 + timedelta(days=10)
    got = store.downsample(
        "p-1", ReadingKind.HEART_RATE, "energy_expended_kj", start, end, bin_s=3600
    )
    raw = store.query("p-1", ReadingKind.HEART_RATE, start, end)
    args = check_downsample("energy_expended_kj", start, end, bin_s=3600, offset_s=0, quantiles=())
    assert_same_bins(
        got, bin_reduce(raw.kind, "p-1", args, raw.times_ns, raw.values["energy_expended_kj"])
    )
    assert len(store.downsample("p-1", ReadingKind.CGM, "glucose_mg_dl", start, end, bin_s=60)) == 0


def test_empty_range() -> None:
    store = SqliteStore(":memory:")
    got = store.downsample(
        "nobody",
        ReadingKind.HEART_RATE,
        "heart_rate_bpm",
        T0,
        T0 + timedelta(days=1),
        bin_s=3600,
        offset_s=4000,
        quantiles=(0.1,),
    )
    assert len(got) == 0 and got.total == 0 and got.offset_s == 400
    assert got.starts_ns.dtype == np.int64 and got.count.dtype == np.int64
    assert math.isnan(got.quantiles[0.1])
    assert store.count_flagged("nobody", ReadingKind.HEART_RATE, "implausible", T0, T0) == {}
    store.close()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"field": "heart rate"},
        {"field": "flags"},
        {"field": "reading_id"},
        {"bin_s": 0},
        {"bin_s": 1.5},
        {"bin_s": True},
        {"offset_s": 0.5},
        {"quantiles": (1.5,)},
        {"quantiles": (-0.1,)},
        {"exclude_flags": ("no_such_flag",)},
        {"start": datetime(2026, 10, 20)},
    ],
    ids=lambda kw: next(iter(kw)),
)
def test_bad_arguments_raise_value_error(store: SqliteStore, kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {
        "field": "heart_rate_bpm",
        "start": T0,
        "end": T0 + timedelta(days=1),
        "bin_s": 3600,
    }
    args.update(kwargs)
    with pytest.raises(ValueError):
        store.downsample("p-1", ReadingKind.HEART_RATE, **args)  # type: ignore[arg-type]


def test_count_flagged(store: SqliteStore) -> None:
    start, end = T0, T0 + timedelta(days=10)
    raw = store.query("p-1", ReadingKind.HEART_RATE, start, end)
    for flag in ("clock_corrected", "implausible", "motion_artifact", "bit40"):
        want: dict[str, int] = {}
        for device, flags in zip(raw.device_ids, raw.flags, strict=True):
            if flag in flags:
                want[device] = want.get(device, 0) + 1
        assert store.count_flagged("p-1", ReadingKind.HEART_RATE, flag, start, end) == want
    assert store.count_flagged("p-1", ReadingKind.HEART_RATE, "implausible", start, end) == {
        "strap|A|1": 28,
        "watch|B|2": 28,
    }


# --------------------------------------------------------------------------------------------
# The page's heart rate


def old_page_hr(series: ReadingSeries, tz: str, bin_s: int) -> dict[str, object]:
    """What the page computed from the raw readings before the store did the binning."""
    v = series.values["heart_rate_bpm"]
    keep = clinical_mask(series) & np.isfinite(v)
    v, t = v[keep], series.times_ns[keep]
    bins = local_ms(t, tz) // (bin_s * 1000)
    starts = np.flatnonzero(np.concatenate(([True], bins[1:] != bins[:-1])))
    counts = np.diff(np.concatenate((starts, [bins.size])))

    def rounded(a: np.ndarray) -> list[float | None]:
        return [None if not math.isfinite(x) else x for x in np.round(a, 0).tolist()]

    return {
        "x": (bins[starts] * bin_s * 1000 + bin_s * 500).tolist(),
        "mean": rounded(np.add.reduceat(v, starts) / counts),
        "mean_exact": (np.add.reduceat(v, starts) / counts).tolist(),
        "min": rounded(np.minimum.reduceat(v, starts)),
        "max": rounded(np.maximum.reduceat(v, starts)),
        "bin_s": bin_s,
        "n": int(v.size),
        "resting": round(float(np.percentile(v, 10))),
    }


@pytest.mark.parametrize(
    ("tz", "first", "last", "bin_s"),
    [
        ("Europe/Berlin", date(2026, 10, 20), date(2026, 10, 29), 900),  # DST ends on the 25th
        ("Europe/Berlin", date(2026, 10, 25), date(2026, 10, 25), 60),  # the 25-hour day
        ("Asia/Kolkata", date(2026, 10, 20), date(2026, 10, 29), 900),  # UTC+5:30
        ("Australia/Adelaide", date(2026, 10, 2), date(2026, 10, 8), 900),  # +9:30 -> +10:30
        ("America/St_Johns", date(2026, 10, 31), date(2026, 11, 4), 300),  # -2:30 -> -3:30
        ("Europe/Berlin", date(2026, 9, 1), date(2026, 11, 9), 10_800),  # 70 days, 3-h bins
        ("Asia/Kathmandu", date(2026, 9, 1), date(2026, 11, 9), 10_800),  # UTC+5:45
    ],
    ids=[
        "berlin-dst",
        "berlin-25h",
        "kolkata",
        "adelaide-dst",
        "st-johns-dst",
        "berlin-70d",
        "kathmandu-70d",
    ],
)
def test_page_heart_rate_equals_binning_the_raw_readings(
    tmp_path: Path, tz: str, first: date, last: date, bin_s: int
) -> None:
    patient = PatientInfo("p-hr", "HR", tz)
    store = SqliteStore(tmp_path / "hr.db")
    start, end = local_day_range(first, last, patient.tz)
    days = (end - start).days + 2
    step_s = 60 if days < 4 else 137 if days < 20 else 1_800
    store.write(hr_readings("p-hr", t0=start - timedelta(hours=6), days=days, step_s=step_s))
    data = page_data(store, patient, first, last, kinds=(ReadingKind.HEART_RATE,))
    raw = store.query("p-hr", ReadingKind.HEART_RATE, start, end)
    want = old_page_hr(raw, tz, bin_s)
    got = data["hr"]
    assert got["bin_s"] == bin_s
    assert {k: v for k, v in got.items() if k != "mean"} == {
        k: v for k, v in want.items() if k not in ("mean", "mean_exact")
    }
    # Means are summed in another order: a mean within float noise of .5 may round either way.
    exact = np.asarray(want["mean_exact"])
    differs = np.asarray(got["mean"]) != np.asarray(want["mean"])
    assert np.all(np.abs(exact[differs] % 1 - 0.5) < 1e-9)
    assert differs.sum() <= 1
    store.close()


def test_page_counts_heart_rate_clock_corrections(tmp_path: Path) -> None:
    patient = PatientInfo("p-hr", "HR", "Europe/Berlin")
    store = SqliteStore(tmp_path / "hr.db")
    store.write(hr_readings("p-hr", days=3))
    data = page_data(
        store, patient, date(2026, 10, 20), date(2026, 10, 22), kinds=(ReadingKind.HEART_RATE,)
    )
    rows = {d["device_id"]: d["clock_corrections"] for d in data["devices"]}
    start, end = local_day_range(date(2026, 10, 20), date(2026, 10, 22), patient.tz)
    raw = store.query("p-hr", ReadingKind.HEART_RATE, start, end)
    strap = sum("clock_corrected" in f for f in raw.flags)
    assert strap > 0 and rows == {"strap|A|1": strap, "watch|B|2": 0}
    store.close()


def test_query_without_reading_ids(store: SqliteStore) -> None:
    start, end = T0, T0 + timedelta(days=2)
    full = store.query("p-1", ReadingKind.HEART_RATE, start, end)
    lean = store.query("p-1", ReadingKind.HEART_RATE, start, end, reading_ids=False)
    assert lean.reading_ids == () and len(full.reading_ids) == len(lean) == len(full)
    np.testing.assert_array_equal(lean.times_ns, full.times_ns)
    assert lean.device_ids == full.device_ids and lean.flags == full.flags
    assert list(lean.values) == list(full.values)
    for name, column in full.values.items():
        np.testing.assert_array_equal(lean.values[name], column)


@pytest.mark.parametrize("exclude", [(), NON_CLINICAL], ids=["all", "clinical"])
def test_several_fields_in_one_read_equal_one_read_each(
    store: SqliteStore, exclude: tuple[str, ...]
) -> None:
    start, end = T0 + timedelta(seconds=1234), T0 + timedelta(days=9)
    fields = ("heart_rate_bpm", "energy_expended_kj", "no_such_field")
    quantiles = {"heart_rate_bpm": (0.1, 0.5), "energy_expended_kj": (0.9,)}
    both = store.downsample_fields(
        "p-1",
        ReadingKind.HEART_RATE,
        fields,
        start,
        end,
        bin_s=10_800,
        offset_s=3600,
        exclude_flags=exclude,
        quantiles=quantiles,
    )
    assert list(both) == list(fields)
    for name in fields:
        one = store.downsample(
            "p-1",
            ReadingKind.HEART_RATE,
            name,
            start,
            end,
            bin_s=10_800,
            offset_s=3600,
            exclude_flags=exclude,
            quantiles=quantiles.get(name, ()),
        )
        assert_same_bins(both[name], one)
    assert len(both["no_such_field"]) == 0
    raw = store.query("p-1", ReadingKind.HEART_RATE, start, end)
    if exclude:
        want = reference(raw, start, end, bin_s=10_800, offset_s=3600, quantiles=(0.1, 0.5))
        assert_same_bins(both["heart_rate_bpm"], want)


@pytest.mark.parametrize(
    ("fields", "quantiles"),
    [
        ((), None),
        ("heart_rate_bpm", None),
        (("heart_rate_bpm", "heart_rate_bpm"), None),
        (("heart_rate_bpm",), {"rmssd_ms": (0.5,)}),
        (("heart_rate_bpm", "flags"), None),
    ],
    ids=["none", "a-string", "repeated", "quantiles-of-another", "flags"],
)
def test_several_fields_bad_arguments(store: SqliteStore, fields: Any, quantiles: Any) -> None:
    with pytest.raises(ValueError):
        store.downsample_fields(
            "p-1",
            ReadingKind.HEART_RATE,
            fields,
            T0,
            T0 + timedelta(days=1),
            bin_s=3600,
            quantiles=quantiles,
        )
