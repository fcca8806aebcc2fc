"""``vitalgate run`` end to end, every piece its own process, as an installer would run it.

The devices run in ``vitalgate sim serve`` (a simulated radio served over TCP); the gateway is
paired with ``vitalgate pair --address ... --patient ... --passkey ... --sim-info FILE``
(non-interactive) and then runs as ``vitalgate run --sim-info FILE`` (the radio and the
simulation's accelerated clock from sim serve's info file) against the real Mosquitto until a
plain paho subscriber has received the devices' readings and their device-health rows; SIGTERM
then stops it cleanly (exit 0) with the outbox drained, and ``vitalgate status --json`` lists
the devices.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import pytest

from vitalgate.cloud_sync.schema import topic_readings_filter

GATEWAY_ID = "gw-e2e"
VITALGATE = [sys.executable, "-m", "vitalgate.cli"]


def _scenario(path: Path) -> None:
    today = datetime.now(UTC).date().isoformat()
    path.write_text(
        f"""
seed = 5
timezone = "UTC"
start = "{today}T06:58:00Z"
speed = 300.0
days = 1

[[patients]]
id = "p-anna"
profile = "hypertensive"

[[devices]]
kind = "weight_scale"
serial = "WS-E2E"
model = "Scale 1"
manufacturer = "Sim Health"
firmware = "1.0"
passkey = 424242
patient = "p-anna"

[[devices]]
kind = "thermometer"
serial = "TH-E2E"
model = "Thermo 1"
manufacturer = "Sim Health"
firmware = "1.0"
passkey = 515151
patient = "p-anna"
""",
        encoding="utf-8",
    )


def _config(path: Path, state_dir: Path, mqtt_url: str) -> None:
    url = urlsplit(mqtt_url)
    path.write_text(
        f"""
gateway_id = "{GATEWAY_ID}"
state_dir = "{state_dir}"

[[patients]]
id = "p-anna"
timezone = "UTC"

[broker]
host = "{url.hostname}"
port = {url.port}
tls = false
protocol = 311

[limits]
connect_timeout_s = 20.0
connect_attempts = 2
quiet_period_s = 0.5

[devices]
reconnect_interval_s = 0.0
""",
        encoding="utf-8",
    )


def _vitalgate(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*VITALGATE, *args], env=env, capture_output=True, text=True, timeout=90, check=False
    )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[dict[str, Any]]:
    scenario = tmp_path / "scenario.toml"
    _scenario(scenario)
    info_file = tmp_path / "sim.json"
    proc = subprocess.Popen(
        [*VITALGATE, "sim", "serve", "--scenario", str(scenario), "--info-file", str(info_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20.0
        while not (info_file.exists() and info_file.stat().st_size):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "sim serve did not start"
            time.sleep(0.05)
        info = json.loads(info_file.read_text(encoding="utf-8"))
        info["_file"] = str(info_file)
        yield info
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


class _Subscriber:
    """A plain paho subscriber on the readings topic of the gateway."""

    def __init__(self, mqtt_url: str) -> None:
        url = urlsplit(mqtt_url)
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="e2e-sub")
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *a: self._subscribed.set()
        self._client.on_message = self._on_message
        self._client.connect(url.hostname or "127.0.0.1", url.port or 1883)
        self._client.loop_start()
        assert self._subscribed.wait(10.0)

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe(topic_readings_filter(GATEWAY_ID), qos=1)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def topics(self) -> list[str]:
        with self._lock:
            return [t for t, _ in self.messages]

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


@pytest.mark.slow
def test_vitalgate_run_end_to_end(tmp_path: Path, served: dict[str, Any], mqtt_url: str) -> None:
    state = tmp_path / "state"
    config = tmp_path / "gateway.toml"
    _config(config, state, mqtt_url)
    env = {**os.environ, "VITALGATE_CONFIG": str(config)}
    env.pop("VITALGATE_TEST_SERVERS", None)
    for device in served["devices"]:
        done = _vitalgate(
            "pair",
            "--address",
            device["address"],
            "--kind",
            {"weight_scale": "weight_scale", "thermometer": "thermometer"}[device["kind"]],
            "--patient",
            "p-anna",
            "--passkey",
            str(device["passkey"]),
            "--sim-info",
            served["_file"],
            env=env,
        )
        assert done.returncode == 0, done.stderr
        assert f"PAIRED {device['address'].upper()}" in done.stdout.upper()

    subscriber = _Subscriber(mqtt_url)
    # `pair` and `run` take the radio and the simulation's accelerated clock from sim serve's
    # info file (pairing sets each device's clock: it must be the simulation's time).
    run = subprocess.Popen(
        [*VITALGATE, "run", "--sim-info", served["_file"]],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60.0
        wanted = {"weight", "body_temperature", "device_status"}
        while not wanted <= {t.rsplit("/", 1)[-1] for t in subscriber.topics()}:
            assert run.poll() is None, run.communicate()[1]
            assert time.monotonic() < deadline, subscriber.topics()
            time.sleep(0.1)
        time.sleep(1.0)  # let the publisher finish what it has in flight
        run.send_signal(signal.SIGTERM)
        _out, err = run.communicate(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
        subscriber.close()
    assert run.returncode == 0, err
    payloads = [json.loads(p) for _t, p in subscriber.messages]
    assert all(p.get("patient_id") == "p-anna" for p in payloads if "patient_id" in p)
    # The gateway ran on the simulation's clock: the devices' clocks (no error configured) read
    # right to it, though the simulation runs 300 times faster than the wall clock.
    health = [
        r["values"]
        for p in payloads
        if p.get("kind") == "device_status"
        for r in p["readings"]
        if "clock_offset_s" in r["values"]
    ]
    assert health and all(abs(v["clock_offset_s"]) < 30.0 for v in health), health
    # the outbox is drained: everything stored was acknowledged by the broker
    with sqlite3.connect(state / "outbox.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0

    status = _vitalgate("status", "--json", env=env)
    assert status.returncode == 0, status.stderr
    rows = json.loads(status.stdout)
    assert {r["address"].upper() for r in rows} == {d["address"].upper() for d in served["devices"]}
    assert all(r["last_sync"] for r in rows), rows
