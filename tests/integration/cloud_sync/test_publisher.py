"""The publisher against the real Mosquitto: delivery, MQTT 3.1.1, status and Last Will."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.cloud_sync.mqtt_support import Collector, eventually
from tests.unit.cloud_sync.test_schema import sample_readings
from vitalgate.cloud_sync.mqtt import MqttConfig, MqttConnection
from vitalgate.cloud_sync.outbox import Outbox
from vitalgate.cloud_sync.publisher import Batching, Publisher

pytestmark = pytest.mark.servers


@contextlib.asynccontextmanager
async def running(publisher: Publisher) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(publisher.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.parametrize("protocol", [5, 311])
async def test_publishes_every_reading_and_empties_the_outbox(
    mqtt_url: str, tmp_path: Path, protocol: int
) -> None:
    gw = f"gw-basic-{protocol}"
    readings = sample_readings(3000)
    with (
        Collector(mqtt_url, client_id=f"col-{gw}", gateway=gw) as col,
        Outbox(tmp_path / "o.db") as ob,
    ):
        ob.add(readings[:1000])
        config = MqttConfig(url=mqtt_url, client_id=gw, protocol=protocol)  # type: ignore[arg-type]
        pub = Publisher(config, ob, batching=Batching(max_readings=100, linger_s=0.05))
        async with running(pub):
            await asyncio.wait_for(pub.wait_connected(), 10)
            await asyncio.to_thread(ob.add, readings[1000:])
            pub.notify()
            await asyncio.wait_for(pub.wait_drained(), 30)
            await eventually(
                lambda: col.count_distinct() == 3000,
                10,
                lambda: f"all readings ({col.count_distinct()} {col.errors[:2]})",
            )
        assert set(col.ids) == {r.reading_id for r in readings}
        assert not col.errors
        assert ob.pending_count() == 0
        assert pub.stats.readings_acked == 3000
        # ~100 readings per message (7 kinds): batching happened.
        assert col.messages < 3000 / 20
        await eventually(lambda: (gw, "offline", False) in col.status, 5, "offline status")
        assert (gw, "online", False) in col.status


async def test_last_will_on_unclean_disconnect(mqtt_url: str) -> None:
    gw = "gw-will"
    with Collector(mqtt_url, client_id="col-will", gateway=gw) as col:
        from datetime import UTC, datetime

        from vitalgate.cloud_sync import schema
        from vitalgate.cloud_sync.mqtt import Will

        will = Will(schema.topic_status(gw), schema.encode_status(gw, "offline", datetime.now(UTC)))
        conn = MqttConnection(MqttConfig(url=mqtt_url, client_id=gw), will=will)
        await conn.open()
        await conn.publish(
            schema.topic_status(gw),
            schema.encode_status(gw, "online", datetime.now(UTC)),
            retain=True,
        )
        conn.abort()  # the socket just goes away, as in a crash or a cut uplink
        await eventually(lambda: (gw, "offline", False) in col.status, 10, "the Last Will")
    # The will is retained: a newcomer sees "offline".
    with Collector(mqtt_url, client_id="col-will-2", gateway=gw) as late:
        await eventually(lambda: (gw, "offline", True) in late.status, 5, "retained offline")


async def test_outbox_full_alert_and_queued_alerts_reach_the_alerts_topic(
    mqtt_url: str, tmp_path: Path
) -> None:
    from vitalgate.cloud_sync.outbox import OutboxFullError

    gw = "gw-alerts"
    readings = sample_readings(40)
    with Collector(mqtt_url, client_id="col-alerts", gateway=gw) as col:
        with Outbox(tmp_path / "o.db", max_bytes=20_000) as ob:
            with pytest.raises(OutboxFullError):
                for i in range(0, 40, 5):
                    ob.add(readings[i : i + 5])
            kept = ob.pending_count()
            pub = Publisher(MqttConfig(url=mqtt_url, client_id=gw), ob)
            async with running(pub):
                await pub.publish_alert({"type": "battery_low", "device_id": "Acme|BP-1|123"})
                await asyncio.wait_for(pub.wait_drained(), 20)
                await eventually(lambda: len(col.alerts) >= 2, 10, "two alerts")
            assert col.count_distinct() == kept
        types = [a["type"] for a in col.alerts]
        assert types[:2] == ["outbox_full", "battery_low"]
        full = col.alerts[0]
        assert full["schema"] == "vitalgate.alert/1" and full["gateway_id"] == gw
        assert full["policy"] == "refuse" and full["max_bytes"] == 20_000
