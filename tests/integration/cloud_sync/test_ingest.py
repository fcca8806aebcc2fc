"""The ingest against real Mosquitto, VictoriaMetrics, InfluxDB 1.x and SQLite.

200 simulated gateways x 500 readings go through Mosquitto into each store, each reading stored
exactly once; two workers share the load; invalid payloads are dead-lettered with the reason;
a batch the store refuses is split and only the refused message is dead-lettered.
"""

from __future__ import annotations

import asyncio
import base64
import sqlite3
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.integration.cloud_sync.ingest_helpers import Workload, make_workload, publish_all
from tests.support.servers import Mosquitto, VictoriaMetrics
from vitalgate.cloud_sync import schema
from vitalgate.cloud_sync.ingest import IngestWorker
from vitalgate.cloud_sync.store import ReadingStore, StoredReading
from vitalgate.cloud_sync.stores import open_store
from vitalgate.cloud_sync.stores.base import ReadsThrough
from vitalgate.readings import BloodPressureReading, DeviceIdentity, GlucoseReading

pytestmark = pytest.mark.servers


@pytest.fixture(scope="module")
def broker() -> Iterator[Mosquitto]:
    """A Mosquitto of our own: no other test's subscribers or publishers share its topics."""
    m = Mosquitto()
    m.start()
    try:
        yield m
    finally:
        m.cleanup()


@pytest.fixture(scope="module")
def workload() -> Workload:
    return make_workload(f"i{uuid.uuid4().hex[:6]}", gateways=200, per_gateway=500)


@asynccontextmanager
async def running(worker: IngestWorker) -> AsyncIterator[IngestWorker]:
    task = asyncio.create_task(worker.run())
    try:
        await worker.wait_connected()
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)


async def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


# -- counting what a store holds ----------------------------------------------------------------


def vm_keys(vm_url: str, patient_prefix: str) -> list[tuple[str, str, str, int]]:
    """(kind, patient, device, ms) of every stored point, duplicates included."""
    urllib.request.urlopen(f"{vm_url}/internal/force_flush", timeout=10).read()
    selector = f'{{__name__=~"(blood_pressure|glucose)_flags",patient=~"{patient_prefix}-.*"}}'
    q = urllib.parse.urlencode({"match[]": selector, "start": "0"})
    with urllib.request.urlopen(f"{vm_url}/api/v1/export?{q}", timeout=30) as resp:
        body = resp.read()
    keys: list[tuple[str, str, str, int]] = []
    for line in body.splitlines():
        if line.strip():
            doc = orjson.loads(line)
            m = doc["metric"]
            kind = m["__name__"].removesuffix("_flags")
            keys.extend((kind, m["patient"], m["device"], int(t)) for t in doc["timestamps"])
    return keys


def influx_ids(influx_url: str, patient_prefix: str) -> list[str]:
    q = f"SELECT reading_id FROM blood_pressure, glucose WHERE patient =~ /^{patient_prefix}-/"
    params = urllib.parse.urlencode({"db": "vitalgate", "q": q, "chunked": "true"})
    with urllib.request.urlopen(f"{influx_url}/query?{params}", timeout=60) as resp:
        body = resp.read()
    ids: list[str] = []
    for chunk in body.splitlines():
        for result in orjson.loads(chunk).get("results", ()):
            for s in result.get("series", ()):
                i = s["columns"].index("reading_id")
                ids.extend(row[i] for row in s["values"])
    return ids


def sqlite_ids(path: Path, patient_prefix: str) -> list[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT reading_id FROM readings WHERE patient LIKE ?", (f"{patient_prefix}-%",)
        ).fetchall()
    return [r[0] for r in rows]


# -- 200 gateways x 500 readings, each store ----------------------------------------------------


@pytest.mark.parametrize("store_kind", ["victoriametrics", "influxdb1", "sqlite"])
async def test_200_gateways_x_500_readings_each_stored_once(
    store_kind: str,
    broker: Mosquitto,
    workload: Workload,
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    group = f"all-{store_kind}"
    if store_kind == "victoriametrics":
        url = request.getfixturevalue("victoria_metrics_url")
        store: ReadingStore = open_store(f"victoriametrics://{urllib.parse.urlsplit(url).netloc}")
    elif store_kind == "influxdb1":
        url = request.getfixturevalue("influxdb_url")
        store = open_store(f"influxdb1://{urllib.parse.urlsplit(url).netloc}/vitalgate")
    else:
        store = open_store(f"sqlite://{tmp_path}/ingest.db")
    # Fresh readings ids per store run would need a fresh workload; the stores are separate
    # (and writes idempotent), so one workload serves all three.
    worker = IngestWorker(broker.url, store, group, client_id=f"{group}-w", session_expiry_s=60)
    async with running(worker):
        report = await asyncio.to_thread(
            publish_all, broker.url, workload.messages, client_prefix=group
        )
        assert report.acked == len(workload.messages)
        await wait_until(
            lambda: worker.stats.acked == len(workload.messages), 60, "every message acked"
        )
    store.close()
    stats = worker.stats
    assert stats.received_readings >= workload.n_readings
    assert stats.written_readings == stats.received_readings
    assert stats.dead_lettered == 0

    prefix = workload.patient_prefix
    if store_kind == "victoriametrics":
        keys: list[Any] = []

        def complete() -> bool:
            keys[:] = vm_keys(url, prefix)
            return len(set(keys)) >= workload.n_readings

        await wait_until(complete, 20, "VictoriaMetrics to show every point")
        assert len(keys) == len(set(keys)) == workload.n_readings  # none lost, none twice
        assert set(keys) == workload.keys
    elif store_kind == "influxdb1":
        ids = influx_ids(url, prefix)
        assert len(ids) == len(set(ids)) == workload.n_readings
        assert set(ids) == workload.reading_ids
    else:
        ids = sqlite_ids(tmp_path / "ingest.db", prefix)
        assert len(ids) == len(set(ids)) == workload.n_readings
        assert set(ids) == workload.reading_ids


# -- two workers on one shared subscription -------------------------------------------------------


async def test_two_workers_share_the_load(broker: Mosquitto, tmp_path: Path) -> None:
    wl = make_workload(f"s{uuid.uuid4().hex[:6]}", gateways=40, per_gateway=250, per_message=10)
    store = open_store(f"sqlite://{tmp_path}/shared.db")
    a = IngestWorker(broker.url, store, "share", client_id="share-a", session_expiry_s=60)
    b = IngestWorker(broker.url, store, "share", client_id="share-b", session_expiry_s=60)
    async with running(a), running(b):
        await asyncio.to_thread(publish_all, broker.url, wl.messages, client_prefix="share")
        await wait_until(lambda: a.stats.acked + b.stats.acked == len(wl.messages), 60, "all acked")
    store.close()
    total = len(wl.messages)
    assert a.stats.received > 0.3 * total, (a.stats, b.stats)
    assert b.stats.received > 0.3 * total, (a.stats, b.stats)
    ids = sqlite_ids(tmp_path / "shared.db", wl.patient_prefix)
    assert len(ids) == len(set(ids)) == wl.n_readings


# -- dead letters ---------------------------------------------------------------------------------


class DeadLetters:
    """A plain subscriber to the dead-letter topics."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self.records: list[dict[str, Any]] = []
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5
        )
        self.client.on_message = lambda _c, _u, msg: self.records.append(orjson.loads(msg.payload))
        self.client.connect(parts.hostname or "", parts.port or 1883)
        self.client.subscribe("vitalgate/v1/deadletter/#", qos=1)
        self.client.loop_start()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _bp(gateway: str, i: int, *, patient: str = "dl-p1") -> BloodPressureReading:
    t = datetime(2026, 9, 2, tzinfo=UTC) + timedelta(minutes=i)
    return BloodPressureReading(
        patient_id=patient,
        device=DeviceIdentity(address="AA:00:00:00:00:01", serial=f"{gateway}-dev"),
        measured_at=t,
        received_at=t,
        sequence_number=i,
        systolic_mmhg=120.0,
        diastolic_mmhg=80.0,
    )


def _publish(url: str, sends: list[tuple[str, bytes, Properties | None]]) -> None:
    parts = urllib.parse.urlsplit(url)
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.connect(parts.hostname or "", parts.port or 1883)
    c.loop_start()
    for topic, payload, props in sends:
        c.publish(topic, payload, qos=1, properties=props).wait_for_publish(10)
    c.disconnect()
    c.loop_stop()


async def test_invalid_payloads_are_dead_lettered_with_the_reason(
    broker: Mosquitto, tmp_path: Path
) -> None:
    dead = DeadLetters(broker.url)
    await asyncio.sleep(0.2)
    store = open_store(f"sqlite://{tmp_path}/dl.db")
    worker = IngestWorker(
        broker.url,
        store,
        "dl",
        client_id="dl-w",
        session_expiry_s=60,
        identity_property="vitalgate-client",
    )
    good = schema.encode_batch("gw-a", "blood_pressure", [_bp("gw-a", 1)])
    # gateway "gw-b" publishes a payload claiming to be "gw-a", on gw-b's topic
    forged = schema.encode_batch("gw-a", "blood_pressure", [_bp("gw-a", 2)])

    def ident(who: str) -> Properties:
        p = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        p.UserProperty = [("vitalgate-client", who)]
        return p

    try:
        async with running(worker):
            topic_a = schema.topic_readings("gw-a", "blood_pressure")
            topic_b = schema.topic_readings("gw-b", "blood_pressure")
            sends = [
                (topic_a, good, ident("gw-a")),  # stored
                (topic_b, forged, ident("gw-b")),  # payload gateway != topic gateway
                (topic_a, good, ident("gw-b")),  # authenticated client != topic gateway
                (topic_a, good, None),  # no identity where one is required
                (topic_a, b"{not json", ident("gw-a")),
            ]
            await asyncio.to_thread(_publish, broker.url, sends)
            await wait_until(lambda: worker.stats.acked == 5, 20, "all five acked")
            await wait_until(lambda: len(dead.records) == 4, 10, "four dead letters")
    finally:
        dead.close()
    assert worker.stats.dead_lettered == 4
    assert worker.stats.written_readings == 1
    reasons = [r["reason"] for r in dead.records]
    assert any("gateway_id" in r and "gw-b" in r for r in reasons), reasons
    assert any("may not publish" in r for r in reasons), reasons
    assert any("identity" in r for r in reasons), reasons
    assert any("JSON" in r for r in reasons), reasons
    forged_record = next(r for r in dead.records if r["topic"] == topic_b)
    assert base64.b64decode(forged_record["payload_b64"]) == forged
    assert forged_record["schema"] == "vitalgate.deadletter/1"
    assert len(sqlite_ids(tmp_path / "dl.db", "dl")) == 1
    store.close()


async def test_store_refusal_dead_letters_only_the_refused_message(
    broker: Mosquitto, influxdb_url: str
) -> None:
    """InfluxDB refuses a batch with a field type conflict; the ingest isolates the culprit."""
    host = urllib.parse.urlsplit(influxdb_url).netloc
    store = open_store(f"influxdb1://{host}/vitalgate")
    patient = f"rf{uuid.uuid4().hex[:6]}"
    at = datetime(2031, 3, 3, tzinfo=UTC)  # a shard of its own
    # Make glucose_mg_dl a string field in that shard: a float into it is refused (HTTP 400).
    store.write_lines(  # type: ignore[attr-defined]
        f'glucose,patient={patient}-x glucose_mg_dl="text" {int(at.timestamp())}000000000'.encode()
    )
    dead = DeadLetters(broker.url)
    await asyncio.sleep(0.2)
    dev = DeviceIdentity(address="AA:00:00:00:00:02", serial="g1")

    def glucose(i: int, when: datetime) -> GlucoseReading:
        return GlucoseReading(
            patient_id=f"{patient}-p",
            device=dev,
            measured_at=when + timedelta(minutes=i),
            received_at=when,
            sequence_number=i,
            glucose_mg_dl=100.0,
        )

    ok_time = datetime(2026, 9, 3, tzinfo=UTC)
    worker = IngestWorker(
        broker.url, store, "refuse", client_id="refuse-w", session_expiry_s=60, linger_s=0.5
    )
    try:
        async with running(worker):
            topic = schema.topic_readings("gw-r", "glucose")
            await asyncio.to_thread(
                publish_all,
                broker.url,
                [
                    (topic, schema.encode_batch("gw-r", "glucose", [glucose(0, ok_time)])),
                    (topic, schema.encode_batch("gw-r", "glucose", [glucose(1, at)])),
                    (topic, schema.encode_batch("gw-r", "glucose", [glucose(2, ok_time)])),
                ],
                client_prefix="refuse",
                connections=1,
            )
            await wait_until(lambda: worker.stats.acked == 3, 20, "all three acked")
            await wait_until(lambda: len(dead.records) == 1, 10, "one dead letter")
    finally:
        dead.close()
        store.close()
    assert "store refused" in dead.records[0]["reason"]
    assert len(influx_ids(influxdb_url, patient)) == 2


# -- sessions and back-pressure -------------------------------------------------------------------


async def test_messages_queued_while_the_worker_was_away_are_taken_and_acked(
    broker: Mosquitto, tmp_path: Path
) -> None:
    wl = make_workload(f"q{uuid.uuid4().hex[:6]}", gateways=10, per_gateway=100, per_message=10)
    store = open_store(f"sqlite://{tmp_path}/queued.db")
    first = IngestWorker(broker.url, store, "queued", client_id="queued-w", session_expiry_s=60)
    async with running(first):
        pass  # subscribed once: the session now queues for it
    await asyncio.to_thread(publish_all, broker.url, wl.messages, client_prefix="queued")
    again = IngestWorker(broker.url, store, "queued", client_id="queued-w", session_expiry_s=60)
    async with running(again):
        # The resumed session delivers the backlog right after CONNACK, before SUBACK.
        await wait_until(lambda: again.stats.acked == len(wl.messages), 20, "backlog acked")
    assert again.stats.stale_acks_skipped == 0
    ids = sqlite_ids(tmp_path / "queued.db", wl.patient_prefix)
    assert len(ids) == len(set(ids)) == wl.n_readings
    store.close()


async def test_store_outage_stops_acks_and_bounds_what_is_held(broker: Mosquitto) -> None:
    """With the store down nothing is acked and at most receive_maximum messages are held."""
    vm = VictoriaMetrics()
    wl = make_workload(f"o{uuid.uuid4().hex[:6]}", gateways=20, per_gateway=100, per_message=10)
    store = open_store(f"victoriametrics://127.0.0.1:{vm.port}?timeout_s=2")
    worker = IngestWorker(
        broker.url,
        store,
        "outage",
        client_id="outage-w",
        session_expiry_s=60,
        receive_maximum=50,
        retry_max_s=0.5,
    )
    try:
        async with running(worker):
            await asyncio.to_thread(publish_all, broker.url, wl.messages, client_prefix="outage")
            await wait_until(lambda: worker.stats.store_retries >= 3, 20, "write retries")
            await asyncio.sleep(0.5)
            assert worker.stats.acked == 0
            assert worker.stats.received <= 50  # the broker holds the rest
            await asyncio.to_thread(vm.start)
            await wait_until(lambda: worker.stats.acked == len(wl.messages), 30, "all acked")
        keys: list[Any] = []

        def complete() -> bool:
            keys[:] = vm_keys(vm.url, wl.patient_prefix)
            return len(set(keys)) >= wl.n_readings

        await wait_until(complete, 20, "every point visible")
        assert set(keys) == wl.keys and len(keys) == wl.n_readings
    finally:
        store.close()
        vm.cleanup()


class HeldFirstWrite(ReadsThrough):
    """A store whose first write waits until it is released (a slow write, in flight)."""

    def __init__(self, store: ReadingStore) -> None:
        self._store = store
        self._reader = store
        self.release = threading.Event()
        self.later_writes_done = 0
        self._lock = threading.Lock()
        self._writes = 0

    def write(self, readings: Sequence[StoredReading]) -> None:
        with self._lock:
            self._writes += 1
            first = self._writes == 1
        if first:
            assert self.release.wait(30)
        self._store.write(readings)
        if not first:
            with self._lock:
                self.later_writes_done += 1

    def close(self) -> None:
        self._store.close()


async def test_writes_overlap_and_acks_keep_the_order(broker: Mosquitto, tmp_path: Path) -> None:
    """Later batches are written while an older one is still in flight, but nothing after the
    older batch is acknowledged before it is stored (PUBACKs in the order of the PUBLISHes)."""
    wl = make_workload(f"w{uuid.uuid4().hex[:6]}", gateways=1, per_gateway=40, per_message=10)
    store = HeldFirstWrite(open_store(f"sqlite://{tmp_path / 'held.db'}"))
    worker = IngestWorker(
        broker.url,
        store,
        "overlap",
        client_id="overlap-w",
        session_expiry_s=60,
        batch_max_readings=10,  # one message per batch
        writes_in_flight=3,
    )
    try:
        async with running(worker):
            await asyncio.to_thread(publish_all, broker.url, wl.messages, client_prefix="overlap")
            await wait_until(lambda: store.later_writes_done >= 2, 20, "two later writes")
            await asyncio.sleep(0.3)
            assert worker.stats.acked == 0  # the first batch is not stored yet
            store.release.set()
            await wait_until(lambda: worker.stats.acked == len(wl.messages), 20, "all acked")
        assert sorted(sqlite_ids(tmp_path / "held.db", wl.patient_prefix)) == sorted(wl.reading_ids)
    finally:
        store.close()
