"""Simulated gateways for the ingest tests and bench: readings, payloads, a retrying publisher.

The publisher is deliberately plain paho (its own network loop per connection, in a thread the
test hands to ``asyncio.to_thread``): QoS 1, and its own retry -- a message without a PUBACK
after ``retry_s`` is published again, so broker restarts lose nothing (duplicates are the
store's business: writes are idempotent).
"""

from __future__ import annotations

import threading
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from vitalgate.cloud_sync import schema
from vitalgate.readings import (
    BloodPressureReading,
    DeviceIdentity,
    GlucoseReading,
    QualityFlag,
    Reading,
)

T0 = datetime(2026, 9, 1, tzinfo=UTC)
#: PUBACK reason code 0x10: the broker accepted the message but no subscription matched.
NO_MATCHING_SUBSCRIBERS = 0x10
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Workload:
    """Messages to publish and what the store must hold afterwards."""

    messages: list[tuple[str, bytes]]
    #: (kind, patient, device, epoch ms) of every reading: the VictoriaMetrics identity.
    keys: frozenset[tuple[str, str, str, int]]
    reading_ids: frozenset[str]
    patient_prefix: str

    @property
    def n_readings(self) -> int:
        return len(self.reading_ids)


def make_workload(
    prefix: str, *, gateways: int, per_gateway: int, per_message: int = 50
) -> Workload:
    """``gateways`` gateways (even: blood pressure, odd: glucose), one patient and device each."""
    messages: list[tuple[str, bytes]] = []
    keys: set[tuple[str, str, str, int]] = set()
    ids: set[str] = set()
    received = T0 + timedelta(days=30)
    for g in range(gateways):
        gateway_id = f"{prefix}-gw{g:04d}"
        patient = f"{prefix}-p{g:04d}"
        device = DeviceIdentity(
            address=f"AA:BB:CC:{g // 256:02X}:{g % 256:02X}:01",
            manufacturer="Acme",
            model="BP-1" if g % 2 == 0 else "GL-1",
            serial=f"SN{g:05d}",
        )
        readings: list[Reading] = []
        for i in range(per_gateway):
            at = T0 + timedelta(seconds=60 * i, microseconds=1000 * (g % 7))
            if g % 2 == 0:
                r: Reading = BloodPressureReading(
                    patient_id=patient,
                    device=device,
                    measured_at=at,
                    received_at=received,
                    sequence_number=i,
                    systolic_mmhg=110.0 + i % 40,
                    diastolic_mmhg=70.0 + i % 20,
                    pulse_rate_bpm=None if i % 5 == 0 else 60.0 + i % 30,
                    flags=frozenset({QualityFlag.IRREGULAR_PULSE}) if i % 11 == 0 else frozenset(),
                )
            else:
                r = GlucoseReading(
                    patient_id=patient,
                    device=device,
                    measured_at=at,
                    received_at=received,
                    sequence_number=i,
                    glucose_mg_dl=80.0 + i % 100,
                )
            readings.append(r)
            keys.add((str(r.kind), patient, device.key, (at - EPOCH) // timedelta(milliseconds=1)))
            ids.add(r.reading_id)
        kind = readings[0].kind
        for start in range(0, per_gateway, per_message):
            chunk = readings[start : start + per_message]
            messages.append(
                (
                    schema.topic_readings(gateway_id, kind),
                    schema.encode_batch(gateway_id, kind, chunk),
                )
            )
    return Workload(messages, frozenset(keys), frozenset(ids), prefix)


@dataclass
class PublishReport:
    published: int = 0
    republished: int = 0
    acked: int = 0
    reconnects: int = 0
    no_subscribers: int = 0
    errors: list[str] = field(default_factory=list)


def _host_port(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname and parts.port
    return parts.hostname, parts.port


def _publish_chunk(
    url: str,
    client_id: str,
    messages: Sequence[tuple[str, bytes]],
    report: PublishReport,
    lock: threading.Lock,
    *,
    window: int,
    retry_s: float,
    rate_per_s: float | None,
    deadline: float,
) -> None:
    host, port = _host_port(url)
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        reconnect_on_failure=False,
    )
    client.max_inflight_messages_set(window)
    mid_to_index: dict[int, int] = {}
    done: set[int] = set()

    def on_publish(_c: object, _u: object, mid: int, rc: object, _p: object) -> None:
        idx = mid_to_index.pop(mid, None)
        if idx is None or getattr(rc, "is_failure", False):
            return
        if getattr(rc, "value", 0) == NO_MATCHING_SUBSCRIBERS:
            # Nobody took it (Mosquitto 2.0 right after a restart: a shared subscription
            # restored from disk has no members until one reconnects): publish it again later.
            with lock:
                report.no_subscribers += 1
            return
        done.add(idx)

    client.on_publish = on_publish
    connected = False

    def connect() -> None:
        nonlocal connected
        while time.monotonic() < deadline:
            try:
                if connected:
                    client.reconnect()
                else:
                    client.connect(host, port, keepalive=10)
                connected = True
                return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError("publisher could not connect")

    connect()
    outstanding: dict[int, float] = {}
    next_index = 0
    started = time.monotonic()
    try:
        while len(done) < len(messages):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{client_id}: {len(messages) - len(done)} messages unacked")
            now = time.monotonic()
            for idx in [i for i in outstanding if i in done]:
                del outstanding[idx]
            while next_index < len(messages) and len(outstanding) < window:
                if rate_per_s is not None and next_index > (now - started) * rate_per_s:
                    break
                topic, payload = messages[next_index]
                info = client.publish(topic, payload, qos=1)
                mid_to_index[info.mid] = next_index
                outstanding[next_index] = now
                next_index += 1
            for idx, sent in list(outstanding.items()):
                if now - sent > retry_s and idx not in done:
                    topic, payload = messages[idx]
                    info = client.publish(topic, payload, qos=1)
                    mid_to_index[info.mid] = idx
                    outstanding[idx] = now
                    with lock:
                        report.republished += 1
            rc = client.loop(timeout=0.01)
            if rc != mqtt.MQTT_ERR_SUCCESS:
                with lock:
                    report.reconnects += 1
                time.sleep(0.1)
                connect()
    finally:
        client.disconnect()
    with lock:
        report.published += len(messages)
        report.acked += len(done)


def publish_all(
    url: str,
    messages: Sequence[tuple[str, bytes]],
    *,
    client_prefix: str,
    connections: int = 4,
    window: int = 100,
    retry_s: float = 3.0,
    rate_per_s: float | None = None,
    timeout_s: float = 120.0,
) -> PublishReport:
    """Publish every message at QoS 1 until each got a PUBACK (blocking; run in a thread).

    ``rate_per_s`` paces each connection (messages per second) so faults land mid-run.
    """
    report = PublishReport()
    lock = threading.Lock()
    deadline = time.monotonic() + timeout_s
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            _publish_chunk(
                url,
                f"{client_prefix}-pub{n}",
                messages[n::connections],
                report,
                lock,
                window=window,
                retry_s=retry_s,
                rate_per_s=rate_per_s,
                deadline=deadline,
            )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return report
