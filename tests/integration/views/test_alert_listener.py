"""Alerts published by a gateway reach the dashboard's alert store through real Mosquitto."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.servers import Mosquitto
from vitalgate.cloud_sync.mqtt import MqttConfig, MqttConnection
from vitalgate.cloud_sync.schema import encode_alert, topic_alerts
from vitalgate.gateway.alerts import AlertEngine, encode_alert_message
from vitalgate.readings import BloodPressureReading, ReadingKind
from vitalgate.views.alert_listener import AlertListener
from vitalgate.views.alerts_store import AlertStore
from vitalgate.views.sample import DEVICES

pytestmark = pytest.mark.servers


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[str]:
    """An own Mosquitto 2 (the object stays referenced until it is stopped)."""
    server = Mosquitto(data_dir=tmp_path / "mosquitto")
    server.data_dir.mkdir()
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


async def _until(cond: object, timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not cond():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.05)


async def test_alerts_flow_from_gateway_to_store(broker: str, tmp_path: Path) -> None:
    mqtt_url = broker
    store = AlertStore(tmp_path / "alerts.db")
    listener = AlertListener(
        MqttConfig(url=mqtt_url, client_id=f"dash-{tmp_path.name}", backoff_initial_s=0.1), store
    )
    at = datetime(2026, 11, 19, 6, 40, tzinfo=UTC)
    readings = [
        BloodPressureReading(
            patient_id="p-001", device=DEVICES[ReadingKind.BLOOD_PRESSURE],
            measured_at=at + timedelta(minutes=i), received_at=at, systolic_mmhg=s,
            diastolic_mmhg=90.0,
        )
        for i, s in enumerate([185.0, 192.0])
    ]  # fmt: skip
    first, update = AlertEngine().feed(readings)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(listener.run())
        await asyncio.wait_for(listener.subscribed.wait(), 10)
        gw = MqttConfig(url=mqtt_url, client_id="gw-alerts-test", clean_start=True)
        async with MqttConnection(gw) as conn:
            topic = topic_alerts("gw-alerts-test")
            await conn.publish(topic, encode_alert_message("gw-alerts-test", first, at), qos=1)
            operational = encode_alert("gw-alerts-test", {"type": "outbox_full"}, at)
            await conn.publish(topic, operational, qos=1)
            await conn.publish(topic, b'{"schema": "vitalgate.alert/1"}', qos=1)
            await conn.publish(topic, encode_alert_message("gw-alerts-test", update, at), qos=1)
        await _until(lambda: listener.stats.stored == 2 and listener.stats.skipped == 1)
        listener.stop()
        await task
    (record,) = store.list("p-001")
    assert record.alert.alert_id == first.alert_id
    assert record.alert.count == 2 and record.alert.summary == "192/90 mmHg"
    assert record.gateway_id == "gw-alerts-test" and record.open
    assert listener.stats.invalid == 1
    store.close()


async def test_dashboard_cli_runs_the_listener(broker: str, tmp_path: Path) -> None:
    """`vitalgate dashboard --mqtt` serves pages and stores alerts; SIGTERM stops both."""
    import os
    import signal
    import socket
    import sys

    import httpx

    from tests.integration.views.conftest import build_site

    site = build_site(tmp_path / "site")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vitalgate", "dashboard", "--store", f"sqlite://{site.store_path}",
        "--users", str(site.users), "--alerts", str(site.alerts), "--port", str(port),
        "--mqtt", broker, "--mqtt-client-id", f"dash-cli-{tmp_path.name}",
        env=os.environ.copy(),
    )  # fmt: skip
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(150):
                try:
                    if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
        at = datetime(2026, 11, 20, 7, 0, tzinfo=UTC)
        reading = BloodPressureReading(
            patient_id="p-002", device=DEVICES[ReadingKind.BLOOD_PRESSURE], measured_at=at,
            received_at=at, systolic_mmhg=150.0, diastolic_mmhg=125.0,
        )  # fmt: skip
        (alert,) = AlertEngine().feed([reading])
        store = AlertStore(site.alerts)
        gw = MqttConfig(url=broker, client_id="gw-cli-test", clean_start=True)
        # the listener subscribes shortly after start: publish until it has stored the alert
        async with MqttConnection(gw) as conn:
            for _ in range(100):
                payload = encode_alert_message("gw-cli-test", alert, at)
                await conn.publish(topic_alerts("gw-cli-test"), payload, qos=1)
                if store.list("p-002"):
                    break
                await asyncio.sleep(0.1)
        assert [r.alert.alert_id for r in store.list("p-002")] == [alert.alert_id]
        store.close()
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        rc = await asyncio.wait_for(proc.wait(), 20)
    assert rc == 0
