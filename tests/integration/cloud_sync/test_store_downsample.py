"""The downsampled read and the columnar range read against the real servers: every store gives
the same bins, quantiles and flag counts as the embedded SQLite store for the same readings."""

from __future__ import annotations

import itertools
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

from tests.unit.cloud_sync.test_store_downsample import (
    NON_CLINICAL,
    T0,
    assert_same_bins,
    hr_readings,
    reference,
)
from vitalgate.cloud_sync.store import ReadingStore, StoredReading
from vitalgate.cloud_sync.stores import influxql, open_store
from vitalgate.cloud_sync.stores.sqlite import SqliteStore
from vitalgate.readings import ReadingKind
from vitalgate.views.pagedata import page_data
from vitalgate.views.patients import PatientInfo, local_day_range

pytestmark = pytest.mark.servers

CASES = [
    # (bin_s, offset_s, start offset s, hours, quantiles)
    (3600, 0, 0, 240, (0.1,)),
    (10_800, 3600, 1234, 200, (0.0, 0.1, 0.37, 0.5, 1.0)),
    (900, -1800, 600, 30, ()),
    (86_400, 0, 0, 240, (0.9,)),
]


@pytest.fixture(params=["influxdb1", "influxdb2-influxql", "victoriametrics"])
def remote(request: pytest.FixtureRequest) -> Iterator[tuple[ReadingStore, ReadingStore, str]]:
    """(store to write with, store to read with, case)."""
    case = request.param
    if case == "victoriametrics":
        url = request.getfixturevalue("victoria_metrics_url")
        host = urllib.parse.urlsplit(url).netloc
        store = open_store(f"victoriametrics://{host}")
        yield store, store, case
        store.close()
        return
    host = urllib.parse.urlsplit(request.getfixturevalue("influxdb_url")).netloc
    writer = open_store(f"influxdb1://{host}/vitalgate")
    reader = (
        writer
        if case == "influxdb1"
        else open_store(f"influxdb2://{host}?org=o&bucket=b&db=vitalgate&token=t")
    )
    yield writer, reader, case
    writer.close()
    reader.close()


def _write_both(
    readings: list[StoredReading], writer: ReadingStore, sqlite: SqliteStore, case: str
) -> None:
    for i in range(0, len(readings), 5000):
        writer.write(readings[i : i + 5000])
    sqlite.write(readings)
    if case == "victoriametrics":
        url = writer._http.base_url  # type: ignore[attr-defined]
        urllib.request.urlopen(f"{url}/internal/force_flush", timeout=5).read()


def test_same_bins_quantiles_and_flag_counts_as_sqlite(
    remote: tuple[ReadingStore, ReadingStore, str], tmp_path: Path
) -> None:
    writer, store, case = remote
    patient = f"p-{uuid.uuid4().hex[:12]}"
    sqlite = SqliteStore(tmp_path / "readings.db")
    _write_both(hr_readings(patient), writer, sqlite, case)
    # control_solution: no heart-rate reading carries it (the unconditioned path on InfluxDB).
    for (bin_s, offset_s, start_s, hours, quantiles), exclude in itertools.product(
        CASES, (NON_CLINICAL, ("control_solution",))
    ):
        start = T0 + timedelta(seconds=start_s)
        end = start + timedelta(hours=hours)
        kwargs = {"bin_s": bin_s, "offset_s": offset_s, "quantiles": quantiles}
        got = store.downsample(
            patient,
            ReadingKind.HEART_RATE,
            "heart_rate_bpm",
            start,
            end,
            exclude_flags=exclude,
            **kwargs,  # type: ignore[arg-type]
        )
        want = sqlite.downsample(
            patient,
            ReadingKind.HEART_RATE,
            "heart_rate_bpm",
            start,
            end,
            exclude_flags=exclude,
            **kwargs,  # type: ignore[arg-type]
        )
        assert len(want) > 0 and got.total == want.total
        assert_same_bins(got, want)
        # Two fields in one read: each as its own downsample (some readings lack one of them).
        both = store.downsample_fields(
            patient,
            ReadingKind.HEART_RATE,
            ("energy_expended_kj", "heart_rate_bpm"),
            start,
            end,
            bin_s=bin_s,
            offset_s=offset_s,
            exclude_flags=exclude,
            quantiles={"heart_rate_bpm": quantiles},
        )
        assert_same_bins(both["heart_rate_bpm"], want)
        assert_same_bins(
            both["energy_expended_kj"],
            sqlite.downsample(
                patient,
                ReadingKind.HEART_RATE,
                "energy_expended_kj",
                start,
                end,
                bin_s=bin_s,
                offset_s=offset_s,
                exclude_flags=exclude,
            ),
        )
        raw = sqlite.query(patient, ReadingKind.HEART_RATE, start, end)
        if exclude == NON_CLINICAL:
            assert_same_bins(got, reference(raw, start, end, **kwargs))  # type: ignore[arg-type]
        # Without exclusions, and another field.
        assert_same_bins(
            store.downsample(patient, ReadingKind.HEART_RATE, "energy_expended_kj", start, end,
                             bin_s=bin_s),
            sqlite.downsample(patient, ReadingKind.HEART_RATE, "energy_expended_kj", start, end,
                              bin_s=bin_s),
        )  # fmt: skip
    start, end = T0, T0 + timedelta(days=10)
    for flag in ("clock_corrected", "implausible", "motion_artifact", "control_solution"):
        assert store.count_flagged(
            patient, ReadingKind.HEART_RATE, flag, start, end
        ) == sqlite.count_flagged(patient, ReadingKind.HEART_RATE, flag, start, end)
    empty = store.downsample(
        patient, ReadingKind.CGM, "glucose_mg_dl", start, end, bin_s=60, quantiles=(0.5,)
    )
    assert len(empty) == 0 and np.isnan(empty.quantiles[0.5])
    sqlite.close()


@pytest.mark.parametrize("limit", [0, 5, 10**6], ids=["percentile", "mixed", "bottom-top"])
def test_influxql_quantile_strategies_agree(
    influxdb_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    """Quantiles from bottom()/top() or from two percentile() calls: the same exact values."""
    monkeypatch.setattr(influxql, "_SELECTOR_LIMIT", limit)
    host = urllib.parse.urlsplit(influxdb_url).netloc
    store = open_store(f"influxdb1://{host}/vitalgate")
    sqlite = SqliteStore(tmp_path / "readings.db")
    patient = f"p-{uuid.uuid4().hex[:12]}"
    _write_both(hr_readings(patient, days=2), store, sqlite, "influxdb1")
    q = (0.0, 0.001, 0.1, 0.25, 0.5, 0.75, 0.9, 0.999, 1.0)
    args = ("heart_rate_bpm", T0, T0 + timedelta(days=2))
    for exclude in ((), NON_CLINICAL):
        got = store.downsample(
            patient, ReadingKind.HEART_RATE, *args, bin_s=3600, exclude_flags=exclude, quantiles=q
        )
        want = sqlite.downsample(
            patient, ReadingKind.HEART_RATE, *args, bin_s=3600, exclude_flags=exclude, quantiles=q
        )
        assert_same_bins(got, want)
    store.close()
    sqlite.close()


def test_columnar_range_read_equals_sqlite(
    remote: tuple[ReadingStore, ReadingStore, str], tmp_path: Path
) -> None:
    """The columnar InfluxQL parse keeps the public result: order (time, then device, also for
    readings of two devices at one instant), NaN for missing fields, flags, ids, devices."""
    writer, store, case = remote
    patient = f"p-{uuid.uuid4().hex[:12]}"
    sqlite = SqliteStore(tmp_path / "readings.db")
    readings = hr_readings(patient, days=3)
    readings += [
        replace(r, device_id="zz|same|instant", reading_id=r.reading_id + "-z")
        for r in readings[:5]
    ]
    _write_both(readings, writer, sqlite, case)
    start, end = T0 + timedelta(minutes=1), T0 + timedelta(days=3)
    got = store.query(patient, ReadingKind.HEART_RATE, start, end)
    want = sqlite.query(patient, ReadingKind.HEART_RATE, start, end)
    np.testing.assert_array_equal(got.times_ns, want.times_ns)
    assert got.device_ids == want.device_ids
    assert got.flags == want.flags
    assert sorted(got.values) == sorted(want.values) == ["energy_expended_kj", "heart_rate_bpm"]
    for name, column in want.values.items():
        np.testing.assert_array_equal(got.values[name], column)
    if case != "victoriametrics":  # VictoriaMetrics keeps no strings
        assert got.reading_ids == want.reading_ids
    assert len(store.query(patient, ReadingKind.CGM, start, end)) == 0
    # Without reading ids (what the page asks for): the same readings, no ids.
    lean = store.query(patient, ReadingKind.HEART_RATE, start, end, reading_ids=False)
    assert lean.reading_ids == ()
    np.testing.assert_array_equal(lean.times_ns, want.times_ns)
    assert lean.device_ids == want.device_ids and lean.flags == want.flags
    assert sorted(lean.values) == sorted(want.values)
    for name, column in want.values.items():
        np.testing.assert_array_equal(lean.values[name], column)
    for kind in (ReadingKind.CGM, ReadingKind.DEVICE_STATUS):
        assert len(store.query(patient, kind, start, end, reading_ids=False)) == 0
    sqlite.close()


def test_page_heart_rate_same_on_influxdb1_and_sqlite(influxdb_url: str, tmp_path: Path) -> None:
    host = urllib.parse.urlsplit(influxdb_url).netloc
    influx = open_store(f"influxdb1://{host}/vitalgate")
    sqlite = SqliteStore(tmp_path / "readings.db")
    patient = PatientInfo(f"p-{uuid.uuid4().hex[:12]}", "HR", "Europe/Berlin")
    first, last = date(2026, 10, 21), date(2026, 10, 28)  # DST ends on the 25th
    start, _ = local_day_range(first, last, patient.tz)
    readings = hr_readings(patient.patient_id, t0=start - timedelta(hours=3), days=9, step_s=97)
    _write_both(readings, influx, sqlite, "influxdb1")
    kinds = (ReadingKind.HEART_RATE,)
    got = page_data(influx, patient, first, last, kinds=kinds)
    want = page_data(sqlite, patient, first, last, kinds=kinds)
    assert got["hr"] is not None and got["hr"]["n"] > 1000
    assert got["hr"] == want["hr"]
    strip = [{k: v for k, v in d.items() if k != "age_h"} for d in want["devices"]]
    assert [{k: v for k, v in d.items() if k != "age_h"} for d in got["devices"]] == strip
    assert any(d["clock_corrections"] for d in got["devices"])
    influx.close()
    sqlite.close()
