"""The ingest's one-pass path (decode_batch_lines) against real Mosquitto and VictoriaMetrics.

A line-protocol store gets pre-formatted lines: valid messages are stored with the same series
and timestamps as the StoredReading path would write, a schema violation is dead-lettered with
decode_batch's reason, and a device id line protocol cannot carry is dead-lettered as refused by
the store, without holding up the rest of its batch.
"""

from __future__ import annotations

import asyncio
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Literal

import orjson
import pytest
from paho.mqtt.properties import Properties

from tests.integration.cloud_sync.test_ingest import (
    DeadLetters,
    _bp,
    _publish,
    running,
    vm_keys,
    wait_until,
)
from tests.support.servers import Mosquitto
from vitalgate.cloud_sync import ingest, schema
from vitalgate.cloud_sync.ingest import IngestWorker
from vitalgate.cloud_sync.stores import open_store
from vitalgate.cloud_sync.stores.lineprotocol import LineProtocolStore
from vitalgate.readings import DeviceIdentity

pytestmark = pytest.mark.servers


@pytest.fixture(scope="module")
def own_broker() -> Iterator[Mosquitto]:
    m = Mosquitto()
    m.start()
    try:
        yield m
    finally:
        m.cleanup()


async def test_fast_path_stores_good_and_dead_letters_bad(
    own_broker: Mosquitto, victoria_metrics_url: str
) -> None:
    tag = f"fp{uuid.uuid4().hex[:6]}"
    patient = f"{tag}-p1"
    host = urllib.parse.urlsplit(victoria_metrics_url).netloc
    store = open_store(f"victoriametrics://{host}")
    assert isinstance(store, LineProtocolStore)
    dead = DeadLetters(own_broker.url)
    await asyncio.sleep(0.2)
    worker = IngestWorker(own_broker.url, store, tag, client_id=f"{tag}-w", session_expiry_s=60)
    assert worker._formatter is store.line_formatter  # the one-pass path is in use

    gw = f"{tag}-gw"
    topic = schema.topic_readings(gw, "blood_pressure")
    good = schema.encode_batch(
        gw, "blood_pressure", [_bp(gw, i, patient=patient) for i in range(50)]
    )
    more = schema.encode_batch(
        gw, "blood_pressure", [_bp(gw, i, patient=patient) for i in range(50, 80)]
    )
    bad_value = orjson.loads(good)
    bad_value["readings"][7]["values"]["systolic_mmhg"] = "high"
    trailing = _bp(gw, 99, patient=patient)
    odd_device = DeviceIdentity(address="AA:00:00:00:00:02", serial="ends-with\\")
    unrepresentable = schema.encode_batch(
        gw,
        "blood_pressure",
        [
            type(trailing)(
                patient_id=patient,
                device=odd_device,
                measured_at=trailing.measured_at,
                received_at=trailing.received_at,
                systolic_mmhg=1.0,
                diastolic_mmhg=1.0,
            )
        ],
    )
    try:
        async with running(worker):
            sends: list[tuple[str, bytes, Properties | None]] = [
                (topic, good, None),
                (topic, orjson.dumps(bad_value), None),
                (topic, unrepresentable, None),
                (topic, more, None),
                (topic, good, None),  # a re-delivery: the same points again
            ]
            await asyncio.to_thread(_publish, own_broker.url, sends)
            await wait_until(lambda: worker.stats.acked == 5, 20, "all five acked")
            await wait_until(lambda: len(dead.records) == 2, 10, "two dead letters")
    finally:
        dead.close()
        store.close()
    assert worker.stats.written_readings == 130
    reasons = sorted(r["reason"] for r in dead.records)
    assert reasons[0].startswith("readings[7].values.systolic_mmhg: must be a finite number")
    assert reasons[1].startswith("store refused:") and "backslash" in reasons[1]

    async def stored() -> list[tuple[str, str, str, int]]:
        return await asyncio.to_thread(vm_keys, victoria_metrics_url, tag)

    keys: list[tuple[str, str, str, int]] = []
    for _ in range(60):
        keys = await stored()
        if len(keys) >= 80:
            break
        await asyncio.sleep(0.25)
    assert len(keys) == 80 == len(set(keys))  # 80 readings, the re-delivery overwrote
    expected = {
        (
            "blood_pressure",
            patient,
            _bp(gw, i).device.key,
            int(_bp(gw, i).measured_at.timestamp()) * 1000,
        )
        for i in range(80)
    }
    assert set(keys) == expected


@pytest.mark.parametrize(("protocol", "shared"), [(5, True), (311, False)], ids=["v5", "v311"])
async def test_publish_packets_read_in_bulk(
    own_broker: Mosquitto, victoria_metrics_url: str, protocol: Literal[5, 311], shared: bool
) -> None:
    """Many small messages per socket read, messages larger than one read (READ_CHUNK_BYTES),
    and a bad one in between: every message is stored once and acknowledged, in both the MQTT 5
    (shared subscription) and the MQTT 3.1.1 (plain subscription) mode."""
    tag = f"bk{protocol}{uuid.uuid4().hex[:6]}"
    patient = f"{tag}-p1"
    host = urllib.parse.urlsplit(victoria_metrics_url).netloc
    store = open_store(f"victoriametrics://{host}")
    dead = DeadLetters(own_broker.url)
    await asyncio.sleep(0.2)
    worker = IngestWorker(
        own_broker.url,
        store,
        tag,
        client_id=f"{tag}-w",
        session_expiry_s=60,
        protocol=protocol,
        shared=shared,
    )
    gw = f"{tag}-gw"
    topic = schema.topic_readings(gw, "blood_pressure")
    sends: list[tuple[str, bytes, Properties | None]] = []
    n = 0
    for size in [1] * 40 + [2500] + [3] * 20 + [2500, 1]:  # 2,500 readings: about 1 MB
        readings = [_bp(gw, i, patient=patient) for i in range(n, n + size)]
        sends.append((topic, schema.encode_batch(gw, "blood_pressure", readings), None))
        n += size
    assert max(len(p) for _, p, _ in sends) > ingest.READ_CHUNK_BYTES
    bad = orjson.loads(sends[10][1])
    bad["readings"][0]["reading_id"] = "not-hex"
    sends.insert(30, (topic, orjson.dumps(bad), None))
    try:
        async with running(worker):
            await asyncio.to_thread(_publish, own_broker.url, sends)
            await wait_until(lambda: worker.stats.acked == len(sends), 30, "all acked")
            await wait_until(lambda: len(dead.records) == 1, 10, "one dead letter")
    finally:
        dead.close()
        store.close()
    assert worker.stats.received == len(sends)
    assert worker.stats.written_readings == n
    assert dead.records[0]["reason"].startswith("readings[0].reading_id:")
    keys: list[tuple[str, str, str, int]] = []
    for _ in range(60):
        keys = await asyncio.to_thread(vm_keys, victoria_metrics_url, tag)
        if len(keys) >= n:
            break
        await asyncio.sleep(0.25)
    assert len(keys) == n == len(set(keys))
