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
from vitalgate.cloud_sync import schema
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
