"""The embedded SQLite store: round trip, idempotency by reading_id, file modes, columnar reads."""

from __future__ import annotations

import math
import os
import sqlite3
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from vitalgate.cloud_sync.store import DeviceLatest, ReadingStore, StoredReading
from vitalgate.cloud_sync.stores import open_store
from vitalgate.cloud_sync.stores.base import StoreRejectedError
from vitalgate.cloud_sync.stores.sqlite import SqliteStore
from vitalgate.readings import ReadingKind

T0 = datetime(2026, 10, 1, tzinfo=UTC)


def glucose(i: int, *, patient: str = "p-1", device: str = "dev-a", **kw: object) -> StoredReading:
    values = {"glucose_mg_dl": 90.0 + i}
    if i % 2:
        values["carbohydrate_g"] = 10.0 * i
    base: dict[str, object] = {
        "kind": ReadingKind.GLUCOSE,
        "reading_id": f"{patient}-{device}-{i:06d}".ljust(32, "0")[:32],
        "patient_id": patient,
        "gateway_id": "gw-1",
        "device_id": device,
        "measured_at": T0 + timedelta(minutes=i, microseconds=7),
        "values": values,
        "flags": frozenset({"control_solution"}) if i == 3 else frozenset(),
    }
    base.update(kw)
    return StoredReading(**base)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    s = SqliteStore(tmp_path / "sub" / "readings.db")
    yield s  # type: ignore[misc]
    s.close()


def test_is_a_reading_store(store: SqliteStore) -> None:
    assert isinstance(store, ReadingStore)


def test_round_trip_columnar(store: SqliteStore) -> None:
    readings = [glucose(i) for i in range(10)]
    store.write(list(reversed(readings)))
    series = store.query("p-1", ReadingKind.GLUCOSE, T0, T0 + timedelta(hours=1))
    assert len(series) == 10
    assert series.kind is ReadingKind.GLUCOSE and series.patient_id == "p-1"
    assert series.times_ns.dtype == np.int64
    assert np.all(np.diff(series.times_ns) > 0)
    assert (
        series.times_ns[0]
        == (T0 - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000 + 7000
    )
    np.testing.assert_array_equal(series.values["glucose_mg_dl"], 90.0 + np.arange(10))
    carbs = series.values["carbohydrate_g"]
    assert math.isnan(carbs[0]) and carbs[1] == 10.0 and math.isnan(carbs[2])
    assert series.reading_ids == tuple(r.reading_id for r in readings)
    assert series.device_ids == ("dev-a",) * 10
    assert series.flags[3] == frozenset({"control_solution"}) and series.flags[2] == frozenset()


def test_half_open_range_and_other_kinds(store: SqliteStore) -> None:
    store.write([glucose(i) for i in range(10)])
    s = store.query(
        "p-1", ReadingKind.GLUCOSE, T0 + timedelta(minutes=2), T0 + timedelta(minutes=5)
    )
    assert s.values["glucose_mg_dl"].tolist() == [92.0, 93.0, 94.0]
    assert len(store.query("p-1", ReadingKind.CGM, T0, T0 + timedelta(days=1))) == 0
    assert len(store.query("p-2", ReadingKind.GLUCOSE, T0, T0 + timedelta(days=1))) == 0
    empty = store.query("p-2", ReadingKind.GLUCOSE, T0, T0 + timedelta(days=1))
    assert empty.times_ns.shape == (0,) and empty.values == {}


def test_idempotent_by_reading_id(store: SqliteStore) -> None:
    readings = [glucose(i) for i in range(20)]
    store.write(readings)
    store.write(readings[5:15])
    store.write(readings)
    assert store.count() == 20
    # A re-delivery with more flags overwrites in place.
    store.write([glucose(4, flags=frozenset({"outlier"}))])
    s = store.query("p-1", ReadingKind.GLUCOSE, T0, T0 + timedelta(hours=1))
    assert store.count() == 20 and s.flags[4] == frozenset({"outlier"})


def test_patients_and_latest(store: SqliteStore) -> None:
    store.write([glucose(i) for i in range(5)])
    store.write([glucose(i, device="dev-b", gateway_id="gw-2") for i in range(3)])
    store.write([glucose(i, patient="p-2") for i in range(2)])
    assert sorted(store.patients()) == ["p-1", "p-2"]
    assert store.latest("p-1") == [
        DeviceLatest("p-1", ReadingKind.GLUCOSE, "dev-a", "gw-1", glucose(4).measured_at),
        DeviceLatest("p-1", ReadingKind.GLUCOSE, "dev-b", "gw-2", glucose(2).measured_at),
    ]
    assert store.latest("nobody") == []


def test_latest_keeps_the_newest_whatever_the_arrival_order(tmp_path: Path) -> None:
    path = tmp_path / "latest.db"
    store = SqliteStore(path)
    store.write([glucose(10, gateway_id="gw-new")])
    store.write([glucose(2, gateway_id="gw-old"), glucose(1)])  # older readings arrive later
    store.write([glucose(10, gateway_id="gw-new")])  # and a re-delivery
    want = [DeviceLatest("p-1", ReadingKind.GLUCOSE, "dev-a", "gw-new", glucose(10).measured_at)]
    assert store.latest("p-1") == want
    store.close()
    # A database from before the device_latest table: filled once at open.
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE device_latest")
    conn.close()
    store = SqliteStore(path)
    assert store.latest("p-1") == want
    store.close()


def test_files_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        store = open_store(f"sqlite://{tmp_path}/private.db")
        store.write([glucose(1)])
        for name in ("private.db", "private.db-wal", "private.db-shm"):
            path = tmp_path / name
            assert path.exists(), name
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
        store.close()
    finally:
        os.umask(old)


def test_wal_mode_and_index(store: SqliteStore) -> None:
    rows = store._fetch("PRAGMA journal_mode", ())
    assert rows == [("wal",)]
    plan = store._fetch(
        "EXPLAIN QUERY PLAN SELECT * FROM readings WHERE patient='p' AND kind='cgm'"
        " AND measured_at_ns >= 0 AND measured_at_ns < 10",
        (),
    )
    assert "readings_patient_kind_time" in str(plan)


def test_naive_bounds_and_bad_flags_refused(store: SqliteStore) -> None:
    with pytest.raises(ValueError):
        store.query("p-1", ReadingKind.GLUCOSE, datetime(2026, 1, 1), T0)
    with pytest.raises(StoreRejectedError):
        store.write([glucose(1, flags=frozenset({"bogus"}))])
    assert store.count() == 0  # nothing of a refused batch is kept


def test_concurrent_writers_and_readers(store: SqliteStore) -> None:
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for b in range(5):
                store.write([glucose(i, device=f"dev-{n}") for i in range(b * 50, b * 50 + 50)])
                store.query("p-1", ReadingKind.GLUCOSE, T0, T0 + timedelta(days=1))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert store.count() == 4 * 250


def test_reads_run_side_by_side_and_see_every_committed_write(store: SqliteStore) -> None:
    """Reads use pooled connections of their own (at most MAX_READERS): two reads in flight
    at once are possible, and each sees what was committed before it started."""
    from vitalgate.cloud_sync.stores import sqlite as sqlite_store

    inside = threading.Barrier(2, timeout=10)

    def meet(*_args: object) -> int:
        inside.wait()  # both reads must be inside SQLite at the same time to pass
        return 1

    store.write([glucose(i) for i in range(3)])
    conns = [store._take_reader() for _ in range(2)]
    for conn in conns:
        conn.create_function("meet", 0, meet)
        store._idle_readers.put(conn)
    results: list[object] = []
    threads = [
        threading.Thread(target=lambda: results.append(store._fetch("SELECT meet()", ())))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert results == [[(1,)], [(1,)]]
    assert len(store._readers) <= sqlite_store.MAX_READERS
    store.write([glucose(i) for i in range(3, 6)])
    assert len(store.query("p-1", ReadingKind.GLUCOSE, T0, T0 + timedelta(days=1))) == 6


def test_reads_after_close_raise_store_unavailable(tmp_path: Path) -> None:
    from vitalgate.cloud_sync.stores.base import StoreUnavailableError

    s = SqliteStore(tmp_path / "closed.db")
    s.write([glucose(0)])
    assert s.count() == 1
    s.close()
    with pytest.raises(StoreUnavailableError):
        s.count()
