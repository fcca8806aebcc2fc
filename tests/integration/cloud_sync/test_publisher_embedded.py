"""The publisher against the embedded amqtt broker (MQTT 3.1.1): the demo's zero-set-up stack."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import orjson
import pytest

from tests.integration.cloud_sync.mqtt_support import eventually
from tests.unit.cloud_sync.test_schema import sample_readings
from vitalgate.cloud_sync.embedded_broker import EmbeddedBroker
from vitalgate.cloud_sync.mqtt import MqttConfig, MqttConnection, MqttError
from vitalgate.cloud_sync.outbox import Outbox
from vitalgate.cloud_sync.publisher import Batching, Publisher
from vitalgate.cloud_sync.schema import decode_batch, topic_readings_filter, topic_status
from vitalgate.errors import ConfigError


async def test_publisher_delivers_through_the_embedded_broker(tmp_path: Path) -> None:
    readings = sample_readings(1500)
    received: set[str] = set()
    statuses: list[bytes] = []

    def on_message(msg: object) -> None:
        topic, payload = msg.topic, msg.payload  # type: ignore[attr-defined]
        if topic.endswith("/status"):
            statuses.append(payload)
        else:
            received.update(s.reading_id for s in decode_batch(topic, payload))

    async with EmbeddedBroker() as url:
        assert url.startswith("mqtt://127.0.0.1:") and not url.endswith(":0")
        sub_config = MqttConfig(url=url, client_id="demo-ingest", protocol=311)
        async with MqttConnection(sub_config, on_message=on_message) as sub:
            granted = await sub.subscribe(
                [(topic_readings_filter(), 1), (topic_status("gw-demo"), 1)]
            )
            assert granted == [1, 1]
            with Outbox(tmp_path / "o.db") as ob:
                ob.add(readings)
                config = MqttConfig(url=url, client_id="gw-demo", protocol=311)
                pub = Publisher(config, ob, batching=Batching(max_readings=200, linger_s=0.01))
                task = asyncio.create_task(pub.run())
                try:
                    await asyncio.wait_for(pub.wait_drained(), 30)
                    await eventually(lambda: len(received) == 1500, 10, "every reading")
                finally:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            await eventually(lambda: len(statuses) >= 2, 5, "online and offline")
    assert received == {r.reading_id for r in readings}
    assert [orjson.loads(s)["state"] for s in statuses][:1] == ["online"]
    assert orjson.loads(statuses[-1])["state"] == "offline"


async def test_embedded_broker_refuses_mqtt5_and_non_loopback() -> None:
    with pytest.raises(ConfigError):
        EmbeddedBroker(host="0.0.0.0")
    async with EmbeddedBroker() as url:
        with pytest.raises(MqttError):
            async with MqttConnection(MqttConfig(url=url, client_id="gw-5", connect_timeout_s=2)):
                pass
