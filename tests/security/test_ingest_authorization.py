"""Ingest authorization through the deployed broker, and a poison-message regression.

``test_only_the_authenticated_gateways_own_readings_are_stored`` runs the production pieces:
Mosquitto with ``deploy/mosquitto`` (TLS, client certificates, per-gateway ACL) and the
``vitalgate ingest`` CLI in its own process, connected over TLS with the ``ingest@vitalgate``
client certificate, writing to a SQLite store. Gateway ``gw-a`` (certificate CN ``gw-a``)
publishes

* its own readings on its own topic -> stored;
* a payload claiming to come from ``gw-b`` on its own topic -> dead-lettered to
  ``vitalgate/v1/deadletter/gw-a`` with the reason, never stored;
* gw-b's readings on gw-b's topic -> dropped by the broker's ACL, never stored.

``test_a_reading_the_store_cannot_hold_is_dead_lettered_not_fatal`` is the regression test of a
bug found by the schema fuzzer's tricky values: see the test's docstring.
"""

from __future__ import annotations

import asyncio
import base64
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from tests.integration.deploy.conftest import server_dir
from tests.integration.deploy.support import DeployedMosquitto, MqttTestClient
from tests.support.servers import Mosquitto
from vitalgate.cloud_sync import schema
from vitalgate.cloud_sync.ingest import IngestWorker
from vitalgate.cloud_sync.stores import open_store
from vitalgate.readings import BloodPressureReading, DeviceIdentity

pytestmark = pytest.mark.servers
ROOT = Path(__file__).resolve().parents[2]


def bp(gateway: str, i: int, *, measured_at: datetime | None = None) -> BloodPressureReading:
    t = measured_at or datetime(2026, 11, 20, 7, 0, tzinfo=UTC) + timedelta(minutes=i)
    return BloodPressureReading(
        patient_id=f"p-{gateway}",
        device=DeviceIdentity(address="AA:00:00:00:00:01", manufacturer="Acme", serial=gateway),
        measured_at=t,
        received_at=datetime(2026, 11, 20, 8, 0, tzinfo=UTC),
        sequence_number=i,
        systolic_mmhg=120.0 + i,
        diastolic_mmhg=80.0,
    )


def stored_ids(db: Path) -> set[str]:
    if not db.exists():
        return set()
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2) as conn:
        try:
            return {row[0] for row in conn.execute("SELECT reading_id FROM readings")}
        except sqlite3.OperationalError:
            return set()


@pytest.fixture(scope="module")
def broker() -> Iterator[DeployedMosquitto]:
    b = DeployedMosquitto(data_dir=server_dir("security-ingest"))
    try:
        b.start()
        yield b
    finally:
        b.cleanup()


def connect_cert(broker: DeployedMosquitto, cn: str) -> MqttTestClient:
    c = MqttTestClient(
        broker.cert_port,
        ca_file=broker.ca_file,
        client_id=f"{cn}-{uuid.uuid4().hex[:6]}",
        cert=broker.client_cert(cn),
    )
    assert not c.connect().is_failure
    return c


def test_only_the_authenticated_gateways_own_readings_are_stored(
    broker: DeployedMosquitto, tmp_path: Path
) -> None:
    db = tmp_path / "store.db"
    ingest_cert = broker.client_cert("ingest@vitalgate")
    log_path = tmp_path / "ingest.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vitalgate",
                "ingest",
                "--broker",
                f"mqtts://localhost:{broker.cert_port}",
                "--ca-file",
                str(broker.ca_file),
                "--cert-file",
                str(ingest_cert.cert),
                "--key-file",
                str(ingest_cert.key),
                "--store",
                f"sqlite://{db}",
                "--group",
                "sec",
                "--client-id-prefix",
                "ingest-sec",
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    ops = connect_cert(broker, "ops@vitalgate")
    try:
        ops.subscribe("vitalgate/v1/deadletter/+")
        good = [bp("gw-a", i) for i in range(3)]
        forged = [bp("gw-b", 100)]  # gw-a claims to be gw-b on its own topic
        foreign = [bp("gw-b", 200)]  # gw-a writes into gw-b's topic
        sends = [
            (
                schema.topic_readings("gw-a", "blood_pressure"),
                schema.encode_batch("gw-a", "blood_pressure", good),
            ),
            (
                schema.topic_readings("gw-a", "blood_pressure"),
                schema.encode_batch("gw-b", "blood_pressure", forged),
            ),
            (
                schema.topic_readings("gw-b", "blood_pressure"),
                schema.encode_batch("gw-b", "blood_pressure", foreign),
            ),
        ]
        # the ingest must be subscribed before the gateway publishes (its session is new)
        deadline = time.monotonic() + 20
        marker_ok = False
        probe = bp("gw-a", 999)
        while time.monotonic() < deadline and not marker_ok:
            gw = connect_cert(broker, "gw-a")
            gw.publish(
                schema.topic_readings("gw-a", "blood_pressure"),
                schema.encode_batch("gw-a", "blood_pressure", [probe]),
            )
            gw.close()
            ops.pump(timeout_s=0.5)
            marker_ok = probe.reading_id in stored_ids(db)
        assert marker_ok, "the ingest never stored the probe: " + log_path.read_text()[-2000:]
        for topic, payload in sends:
            gw = connect_cert(broker, "gw-a")
            gw.publish(topic, payload)
            gw.pump(lambda g=gw: g.disconnected, 0.2)
            gw.close()
        want = {r.reading_id for r in good}
        assert ops.pump(lambda: len(ops.messages) >= 1 and want <= stored_ids(db), 15)
        ops.pump(timeout_s=0.5)
    finally:
        ops.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    ids = stored_ids(db)
    assert ids == want | {probe.reading_id}, "only gw-a's own readings may be stored"
    assert forged[0].reading_id not in ids and foreign[0].reading_id not in ids
    assert len(ops.messages) == 1, ops.messages
    topic, body = ops.messages[0]
    assert topic == "vitalgate/v1/deadletter/gw-a"
    record = orjson.loads(body)
    assert record["schema"] == "vitalgate.deadletter/1"
    assert "gateway_id" in record["reason"] and "gw-b" in record["reason"]
    assert base64.b64decode(record["payload_b64"]) == sends[1][1]
    assert proc.returncode == 0, log_path.read_text()[-2000:]


# -- poison message ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plain_broker() -> Iterator[Mosquitto]:
    m = Mosquitto()
    m.start()
    try:
        yield m
    finally:
        m.cleanup()


@asynccontextmanager
async def running(worker: IngestWorker) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(worker.run())
    try:
        await worker.wait_connected()
        yield task
    finally:
        worker.stop()
        try:
            await asyncio.wait_for(task, 30)
        except Exception:  # the test reports the crash itself
            pass


async def _publish(url: str, sends: list[tuple[str, bytes]]) -> None:
    from tests.integration.cloud_sync.test_ingest import _publish as publish_sync

    await asyncio.to_thread(publish_sync, url, [(t, p, None) for t, p in sends])


@pytest.mark.parametrize(
    "measured_at",
    ["9999-12-31T23:59:59.000000Z", "0001-01-01T00:00:00.000000Z"],
    ids=["year-9999", "year-0001"],
)
async def test_a_reading_the_store_cannot_hold_is_dead_lettered_not_fatal(
    plain_broker: Mosquitto, tmp_path: Path, measured_at: str
) -> None:
    """Regression (found by fuzzing with boundary timestamps): ``schema.decode_batch`` accepts
    any RFC 3339 year 0001..9999 for ``measured_at``, but no store can hold it (InfluxDB's
    nanosecond timestamps cover 1677-09-21..2262-04-11; ``SqliteStore.write`` raises a bare
    ``OverflowError: Python int too large to convert to SQLite INTEGER``). The OverflowError is
    neither StoreError nor StoreRejectedError, so it escapes ``IngestWorker._writer_loop`` and
    ends the worker; the message was never acknowledged, so the broker re-delivers it to the
    restarted ingest: one bad gateway payload stops the ingest of every gateway.

    Expected: the payload is dead-lettered (or refused by the validator) and the worker keeps
    storing the next messages.
    """
    db = tmp_path / "poison.db"
    store = open_store(f"sqlite://{db}")
    worker = IngestWorker(
        plain_broker.url,
        store,
        "poison",
        client_id=f"poison-{uuid.uuid4().hex[:6]}",
        session_expiry_s=0,
    )
    topic = schema.topic_readings("gw-p", "blood_pressure")
    bad = schema.encode_batch("gw-p", "blood_pressure", [bp("gw-p", 1)])
    bad = bad.replace(
        b'"measured_at":"2026-11-20T07:01:00.000000Z"', f'"measured_at":"{measured_at}"'.encode()
    )
    assert measured_at.encode() in bad
    after = [bp("gw-p", 2)]
    try:
        async with running(worker) as task:
            await _publish(
                plain_broker.url,
                [(topic, bad), (topic, schema.encode_batch("gw-p", "blood_pressure", after))],
            )
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and not task.done():
                if after[0].reading_id in stored_ids(db) and worker.stats.acked == 2:
                    break
                await asyncio.sleep(0.1)
            crashed = task.done() and task.exception() is not None
            assert not crashed, f"the ingest worker died: {task.exception()!r}"
            assert after[0].reading_id in stored_ids(db), worker.stats
            assert worker.stats.dead_lettered == 1, worker.stats
    finally:
        store.close()
