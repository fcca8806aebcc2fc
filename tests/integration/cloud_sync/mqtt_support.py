"""Test helpers for the publisher tests: a plain paho subscriber that collects reading ids.

The collector is deliberately independent of vitalgate's asyncio plumbing: a stock paho client
with its own network thread (fine for an observer in a test), a persistent session so that it
misses nothing while a broker restarts, and decode_batch to check every message it receives.
"""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from vitalgate.cloud_sync.schema import decode_batch, parse_topic


class Collector:
    """Subscribes to one gateway's topics (``+``: all) and records what arrives (thread-safe)."""

    def __init__(
        self,
        url: str,
        client_id: str = "test-collector",
        *,
        gateway: str = "+",
        persistent: bool = False,
        **tls: Any,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 1883
        self.lock = threading.Lock()
        self.ids: Counter[str] = Counter()
        self.messages = 0
        self.status: list[tuple[str, str, bool]] = []  # (gateway, state, retained)
        self.alerts: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.connected = threading.Event()
        self.topic_filter = f"vitalgate/v1/{gateway}/#"
        # persistent: MQTT 3.1.1 with clean_session=False, so the broker keeps the session
        # (subscription and queued QoS 1 messages) indefinitely, across its own restarts. Else a
        # clean session under a unique id, so nothing left over from an earlier run arrives.
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id if persistent else f"{client_id}-{uuid.uuid4().hex[:8]}",
            protocol=MQTTProtocolVersion.MQTTv311,
            clean_session=not persistent,
        )
        if tls:
            self.client.tls_set(**tls)
        self.client.reconnect_delay_set(1, 2)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message

    def _on_connect(self, client: paho.Client, *args: Any) -> None:
        client.subscribe([(self.topic_filter, 1)])
        self.connected.set()

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        try:
            gateway, channel, _ = parse_topic(msg.topic)
            if channel == "readings":
                stored = decode_batch(msg.topic, msg.payload)
                with self.lock:
                    self.messages += 1
                    self.ids.update(s.reading_id for s in stored)
            elif channel == "status":
                body = orjson.loads(msg.payload)
                with self.lock:
                    self.status.append((gateway, body["state"], bool(msg.retain)))
            elif channel == "alerts":
                with self.lock:
                    self.alerts.append(orjson.loads(msg.payload))
        except Exception as exc:  # recorded and asserted on by the tests
            with self.lock:
                self.errors.append(f"{msg.topic}: {exc!r}")

    def start(self) -> Collector:
        self.client.connect(self.host, self.port, keepalive=5)
        self.client.loop_start()
        if not self.connected.wait(10):
            raise TimeoutError("collector did not connect")
        time.sleep(0.1)  # let the SUBACK arrive
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> Collector:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def count_distinct(self) -> int:
        with self.lock:
            return len(self.ids)


async def eventually(
    predicate: Callable[[], bool], timeout_s: float, what: str | Callable[[], str]
) -> None:
    """Poll ``predicate`` without blocking the event loop (the publisher runs on it)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(
        f"timed out after {timeout_s} s waiting for {what() if callable(what) else what}"
    )
