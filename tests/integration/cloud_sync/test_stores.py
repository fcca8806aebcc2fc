"""Every store against its real server: round trip, idempotency, patients, latest, outages."""

from __future__ import annotations

import math
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pytest

from tests.support.servers import free_port
from vitalgate.cloud_sync.store import ReadingStore, StoredReading
from vitalgate.cloud_sync.stores import StoreUnavailableError, open_store
from vitalgate.cloud_sync.stores.base import StoreRejectedError
from vitalgate.cloud_sync.stores.influx2 import Influx2Store
from vitalgate.errors import ConfigError, StoreError
from vitalgate.readings import ReadingKind

pytestmark = pytest.mark.servers

T0 = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)


def bp(
    patient: str, i: int, *, device: str = "Omron|M7|SN1", gateway: str = "gw-1", **kw: object
) -> StoredReading:
    values = {"systolic_mmhg": 120.0 + i, "diastolic_mmhg": 80.0 + i / 2}
    if i % 2 == 0:
        values["pulse_rate_bpm"] = 60.0 + i
    return StoredReading(
        kind=ReadingKind.BLOOD_PRESSURE,
        reading_id=uuid.uuid5(uuid.NAMESPACE_OID, f"{patient}/{device}/{i}").hex,
        patient_id=patient,
        gateway_id=gateway,
        device_id=device,
        measured_at=T0 + timedelta(minutes=10 * i, milliseconds=i),
        values=values,
        flags=frozenset({"irregular_pulse"} if i % 3 == 0 else ()),
        **kw,  # type: ignore[arg-type]
    )


def _vm_flush(url: str) -> None:
    # Make freshly written rows visible to searches at once (VictoriaMetrics' test hook).
    urllib.request.urlopen(f"{url}/internal/force_flush", timeout=5).read()


@pytest.fixture(params=["sqlite", "influxdb1", "victoriametrics"])
def store_case(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[ReadingStore, Callable[[], None], str]]:
    kind = request.param
    if kind == "sqlite":
        store = open_store(f"sqlite://{tmp_path}/readings.db")
        sync: Callable[[], None] = lambda: None  # noqa: E731
    elif kind == "influxdb1":
        url = request.getfixturevalue("influxdb_url")
        host = urllib.parse.urlsplit(url).netloc
        store = open_store(f"influxdb1://{host}/vitalgate")
        sync = lambda: None  # noqa: E731
    else:
        url = request.getfixturevalue("victoria_metrics_url")
        host = urllib.parse.urlsplit(url).netloc
        store = open_store(f"victoriametrics://{host}")
        sync = lambda: _vm_flush(url)  # noqa: E731
    try:
        yield store, sync, kind
    finally:
        store.close()


def _poll(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


def test_round_trip_idempotent_and_ordered(
    store_case: tuple[ReadingStore, Callable[[], None], str],
) -> None:
    store, sync, kind = store_case
    patient = f"p-{uuid.uuid4().hex[:12]}"
    readings = [bp(patient, i) for i in range(50)]
    other_device = [bp(patient, i, device="A&D UA-651|x y,z=1") for i in range(5)]
    store.write(list(reversed(readings)))
    store.write(readings[:20])  # a re-delivery overwrites
    store.write(other_device)
    sync()
    start, end = T0, T0 + timedelta(minutes=10 * 50)

    def complete() -> bool:
        return len(store.query(patient, ReadingKind.BLOOD_PRESSURE, start, end)) == 55

    _poll(complete)
    series = store.query(patient, ReadingKind.BLOOD_PRESSURE, start, end)
    assert len(series) == 55  # nothing duplicated
    assert series.kind is ReadingKind.BLOOD_PRESSURE and series.patient_id == patient
    assert np.all(np.diff(series.times_ns) >= 0)
    ours = [i for i, d in enumerate(series.device_ids) if d == "Omron|M7|SN1"]
    assert len(ours) == 50
    sys = series.values["systolic_mmhg"][ours]
    np.testing.assert_array_equal(sys, [120.0 + i for i in range(50)])
    pulse = series.values["pulse_rate_bpm"][ours]
    assert math.isnan(pulse[1]) and pulse[2] == 62.0
    assert [series.flags[j] for j in ours[:4]] == [
        frozenset({"irregular_pulse"}),
        frozenset(),
        frozenset(),
        frozenset({"irregular_pulse"}),
    ]
    expected_ns = (
        (readings[7].measured_at - datetime(1970, 1, 1, tzinfo=UTC))
        // timedelta(microseconds=1)
        * 1000
    )
    assert series.times_ns[ours[7]] == expected_ns
    if kind != "victoriametrics":  # VictoriaMetrics keeps no strings
        assert [series.reading_ids[j] for j in ours] == [r.reading_id for r in readings]
    # The range is half-open: [start, end).
    window = store.query(
        patient, ReadingKind.BLOOD_PRESSURE, readings[10].measured_at, readings[20].measured_at
    )
    assert window.values["systolic_mmhg"].tolist() == [120.0 + i for i in range(10, 20)]
    assert len(store.query(patient, ReadingKind.GLUCOSE, start, end)) == 0
    assert patient in store.patients()
    latest = {(d.kind, d.device_id): d for d in store.latest(patient)}
    newest = latest[(ReadingKind.BLOOD_PRESSURE, "Omron|M7|SN1")]
    assert newest.gateway_id == "gw-1"
    assert newest.measured_at == readings[-1].measured_at
    assert latest[(ReadingKind.BLOOD_PRESSURE, "A&D UA-651|x y,z=1")].measured_at == (
        other_device[-1].measured_at
    )


def test_unreachable_store_raises_store_error() -> None:
    port = free_port()  # nothing listens there
    for url in (
        f"influxdb1://127.0.0.1:{port}/vitalgate?timeout_s=2",
        f"victoriametrics://127.0.0.1:{port}?timeout_s=2",
    ):
        store = open_store(url)
        with pytest.raises(StoreUnavailableError) as info:
            store.write([bp("p-1", 1)])
        assert isinstance(info.value, StoreError) and info.value.__cause__ is not None
        store.close()


def test_influx1_rejects_bad_data_permanently(influxdb_url: str) -> None:
    host = urllib.parse.urlsplit(influxdb_url).netloc
    store = open_store(f"influxdb1://{host}/vitalgate")
    patient = f"p-{uuid.uuid4().hex[:12]}"
    store.write([bp(patient, 1)])
    # A field type conflict (an int field written as a string) is the data's fault.
    line = f'blood_pressure,patient={patient} systolic_mmhg="x" {int(T0.timestamp())}000000000'
    with pytest.raises(StoreRejectedError):
        store.write_lines(line.encode())  # type: ignore[attr-defined]
    store.close()


def test_victoriametrics_points_counted_by_series_and_time(victoria_metrics_url: str) -> None:
    host = urllib.parse.urlsplit(victoria_metrics_url).netloc
    store = open_store(f"victoriametrics://{host}")
    patient = f"p-{uuid.uuid4().hex[:12]}"
    readings = [bp(patient, i) for i in range(30)]
    for _ in range(3):
        store.write(readings)
    _vm_flush(victoria_metrics_url)
    q = urllib.parse.urlencode(
        {
            "match[]": f'{{__name__="blood_pressure_systolic_mmhg",patient="{patient}"}}',
            "start": "0",
        }
    )

    def count() -> int:
        with urllib.request.urlopen(f"{victoria_metrics_url}/api/v1/export?{q}") as resp:
            lines = [orjson.loads(x) for x in resp.read().splitlines() if x.strip()]
        return sum(len(x["timestamps"]) for x in lines)

    _poll(lambda: count() >= 30)
    assert count() == 30
    store.close()


def test_victoriametrics_cluster_style_paths(victoria_metrics_url: str) -> None:
    """A cluster writes through vminsert's /insert/<tenant>/influx and reads through vmselect's
    /select/<tenant>/prometheus; the single node serves the same paths as /influx and
    /prometheus, so the URL handling is exercised end to end here."""
    host = urllib.parse.urlsplit(victoria_metrics_url).netloc
    store = open_store(
        f"victoriametrics://{host}/influx?read_url=http://{host}/prometheus&timeout_s=10"
    )
    assert isinstance(store, Influx2Store)
    assert store.url.endswith("/influx") and store.read_url.endswith("/prometheus")
    patient = f"p-{uuid.uuid4().hex[:12]}"
    readings = [bp(patient, i) for i in range(5)]
    store.write(readings)
    _vm_flush(victoria_metrics_url)
    start, end = T0 - timedelta(days=1), T0 + timedelta(days=30)
    _poll(lambda: len(store.query(patient, ReadingKind.BLOOD_PRESSURE, start, end)) == 5)
    store.close()
    with pytest.raises(ConfigError, match="read_url"):
        open_store(f"victoriametrics://{host}?read_url=ftp://elsewhere")


def test_open_store_urls(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        open_store("ftp://x")
    with pytest.raises(ConfigError):
        open_store("http://127.0.0.1:8086/")
    with pytest.raises(ConfigError):
        open_store("influxdb2://127.0.0.1:8086?org=o")
    with pytest.raises(ConfigError):
        open_store("influxdb1://127.0.0.1:8086/db?bogus=1")
    s = open_store("http://127.0.0.1:8086/?api=v2&org=o&bucket=b&token=t")
    assert "Influx2Store" in repr(s) and "influxql" in repr(s)
    s.close()
    s = open_store("https://127.0.0.1:8086/?api=v1&db=x")
    assert "Influx1Store" in repr(s)
    s.close()
    s = open_store(f"sqlite://{tmp_path}/a/b.db")
    assert "SqliteStore" in repr(s)
    s.close()


def test_redact_url_hides_secrets() -> None:
    from vitalgate.cloud_sync.stores import redact_url

    red = redact_url("influxdb2://u:pw@h:8086?org=o&bucket=b&token=sekret")
    assert "sekret" not in red and "pw" not in red and "org=o" in red


def test_influx2_influxql_read_path_against_influxdb(influxdb_url: str) -> None:
    """The InfluxDB 2.x/3.x read path (InfluxQL on /query, db = bucket or db=) on a real server.

    No InfluxDB 2.x can be installed here; InfluxDB 1.6 serves the same /query API, so the data
    is written with the 1.x store and read back through the 2.x store's InfluxQL reader.
    """
    host = urllib.parse.urlsplit(influxdb_url).netloc
    writer = open_store(f"influxdb1://{host}/vitalgate")
    reader = open_store(f"influxdb2://{host}?org=o&bucket=b&db=vitalgate&token=t")
    patient = f"p-{uuid.uuid4().hex[:12]}"
    readings = [bp(patient, i) for i in range(12)]
    writer.write(readings)
    series = reader.query(patient, ReadingKind.BLOOD_PRESSURE, T0, T0 + timedelta(days=1))
    assert series.reading_ids == tuple(r.reading_id for r in readings)
    assert series.values["systolic_mmhg"].tolist() == [120.0 + i for i in range(12)]
    assert patient in reader.patients()
    assert [d.measured_at for d in reader.latest(patient)] == [readings[-1].measured_at]
    writer.close()
    reader.close()
