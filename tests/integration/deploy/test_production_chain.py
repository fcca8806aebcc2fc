"""The production steps of docs/production.md, end to end on real servers.

* InfluxDB 1.x from deploy/influxdb/influxdb.conf (HTTPS with a test CA, authentication on),
  set up by deploy/influxdb/setup-influxdb1.sh exactly as an operator runs it: an ``ingest``
  user that may only write and a ``dashboard`` user that may only read.
* A gateway (outbox + publisher, username = gateway id) -> Mosquitto from deploy/mosquitto
  (TLS, password file, ACL) -> two ingest workers on the shared subscription, as the
  ``ingest@vitalgate`` service account -> the store -> ``vitalgate query`` as the dashboard
  user. Run once into the deployed InfluxDB 1.x and once into VictoriaMetrics (the InfluxDB 2.x
  write path, ``/api/v2/write``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from tests.integration.deploy.support import DEPLOY, PASSWORDS, DeployedInfluxDB1, DeployedMosquitto
from vitalgate.cli import main
from vitalgate.cloud_sync.ingest import BrokerConfig, IngestWorker
from vitalgate.cloud_sync.mqtt import MqttConfig
from vitalgate.cloud_sync.outbox import Outbox
from vitalgate.cloud_sync.publisher import Batching, Publisher
from vitalgate.cloud_sync.store import StoredReading
from vitalgate.cloud_sync.stores import open_store
from vitalgate.errors import StoreError
from vitalgate.readings import BloodPressureReading, DeviceIdentity, ReadingKind

pytestmark = pytest.mark.servers

INFLUX_PASSWORDS = {"admin": "adm1n-pw", "ingest": "1ngest-pw", "dashboard": "dashb0ard-pw"}
T0 = datetime(2026, 9, 1, 6, 0, tzinfo=UTC)


def run_setup(server: DeployedInfluxDB1, secrets: Path) -> subprocess.CompletedProcess[str]:
    secrets.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ["PATH"],
        "INFLUX_URL": server.url,
        "INFLUX_CA": str(server.ca_file),
    }
    for user, password in INFLUX_PASSWORDS.items():
        f = secrets / f"{user}.pw"
        f.write_text(password + "\n")
        f.chmod(0o600)
        env[f"{user.upper()}_PASSWORD_FILE"] = str(f)
    return subprocess.run(
        ["sh", str(DEPLOY / "influxdb" / "setup-influxdb1.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def influx(
    deployed_influxdb: DeployedInfluxDB1, tmp_path_factory: pytest.TempPathFactory
) -> DeployedInfluxDB1:
    done = run_setup(deployed_influxdb, tmp_path_factory.mktemp("secrets"))
    assert done.returncode == 0, done.stderr
    assert "creating the admin user" in done.stdout
    return deployed_influxdb


def influx_store_url(server: DeployedInfluxDB1, user: str) -> str:
    host = urllib.parse.urlsplit(server.url).netloc
    return f"influxdb1s://{host}/vitalgate?user={user}&ca_file={server.ca_file}"


def test_influxdb_setup_is_idempotent_and_grants_least_privilege(
    influx: DeployedInfluxDB1, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    again = run_setup(influx, tmp_path / "secrets")
    assert again.returncode == 0, again.stderr
    assert "creating the admin user" not in again.stdout
    # Authentication is on: nobody reads anonymously.
    status, _ = influx.query("SHOW DATABASES", user="", password="")
    assert status == 401
    status, body = influx.query("SHOW GRANTS FOR dashboard", user="admin", password="adm1n-pw")
    assert status == 200 and b'"READ"' in body
    status, body = influx.query("SHOW GRANTS FOR ingest", user="admin", password="adm1n-pw")
    assert status == 200 and b'"WRITE"' in body

    monkeypatch.setenv("VITALGATE_STORE_PASSWORD", INFLUX_PASSWORDS["dashboard"])
    dashboard = open_store(influx_store_url(influx, "dashboard"))
    try:
        one = StoredReading(
            kind=ReadingKind.BLOOD_PRESSURE,
            reading_id=uuid.uuid4().hex,
            patient_id="p-x",
            gateway_id="gw-a",
            device_id="dev",
            measured_at=T0,
            values={"systolic_mmhg": 120.0, "diastolic_mmhg": 80.0},
        )
        with pytest.raises(StoreError, match="403"):
            dashboard.write([one])  # the dashboard account cannot write
    finally:
        dashboard.close()
    monkeypatch.setenv("VITALGATE_STORE_PASSWORD", INFLUX_PASSWORDS["ingest"])
    ingest = open_store(influx_store_url(influx, "ingest"))
    try:
        ingest.write([one])
        with pytest.raises(StoreError, match="403"):
            ingest.patients()  # the ingest account cannot read
    finally:
        ingest.close()


def _readings(patients: list[str], n: int) -> list[BloodPressureReading]:
    device = DeviceIdentity(
        address="D0:1B:49:00:AA:10", manufacturer="Omron", model="M7", serial="S1"
    )
    out = []
    for i in range(n):
        out.append(
            BloodPressureReading(
                patient_id=patients[i % len(patients)],
                device=device,
                measured_at=T0 + timedelta(minutes=7 * i),
                received_at=T0 + timedelta(minutes=7 * i, seconds=30),
                sequence_number=i,
                systolic_mmhg=110.0 + i % 40,
                diastolic_mmhg=70.0 + i % 20,
                pulse_rate_bpm=60.0 + i % 30,
                user_id=1 + i % len(patients),
            )
        )
    return out


async def _poll(check: object, timeout_s: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if await asyncio.to_thread(check):  # type: ignore[arg-type]
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(params=["influxdb1-deployed", "victoriametrics"])
def chain_store(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, str, str]]:
    """(ingest store URL, reader store URL, name); passwords come from the environment."""
    if request.param == "victoriametrics":
        host = urllib.parse.urlsplit(request.getfixturevalue("victoria_metrics_url")).netloc
        url = f"victoriametrics://{host}"
        yield url, url, "victoriametrics"
        return
    server: DeployedInfluxDB1 = request.getfixturevalue("influx")
    monkeypatch.setenv("VITALGATE_STORE_PASSWORD", INFLUX_PASSWORDS["ingest"])
    yield influx_store_url(server, "ingest"), influx_store_url(server, "dashboard"), "influxdb1"


async def test_gateway_to_dashboard_through_the_deployed_servers(
    deployed_broker: DeployedMosquitto,
    chain_store: tuple[str, str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ingest_url, reader_url, store_name = chain_store
    tag = uuid.uuid4().hex[:8]
    patients = [f"p-anna-{tag}", f"p-ben-{tag}"]
    readings = _readings(patients, 240)
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    outbox.add(readings)
    publisher = Publisher(
        MqttConfig(
            url=f"mqtts://localhost:{deployed_broker.port}",
            client_id="gw-a",
            username="gw-a",
            password=PASSWORDS["gw-a"],
            ca_file=deployed_broker.ca_file,
        ),
        outbox,
        batching=Batching(max_readings=10, linger_s=0.05),
    )
    broker = BrokerConfig(
        host="localhost",
        port=deployed_broker.port,
        tls=True,
        username="ingest@vitalgate",
        password=PASSWORDS["ingest@vitalgate"],
        ca_file=str(deployed_broker.ca_file),
    )
    stores = [open_store(ingest_url) for _ in range(2)]
    workers = [
        IngestWorker(
            f"mqtts://localhost:{deployed_broker.port}",
            store,
            f"chain-{tag}",
            client_id=f"ingest-{tag}-{n}",
            broker=broker,
            linger_s=0.05,
        )
        for n, store in enumerate(stores)
    ]
    monkeypatch.setenv("VITALGATE_STORE_PASSWORD", INFLUX_PASSWORDS["dashboard"])
    reader = open_store(reader_url)
    if store_name == "victoriametrics":
        vm = reader_url.replace("victoriametrics://", "http://")

        def flush() -> None:
            urllib.request.urlopen(f"{vm}/internal/force_flush", timeout=5).read()
    else:

        def flush() -> None:
            return None

    def stored() -> int:
        flush()
        start, end = T0, T0 + timedelta(days=30)
        return sum(len(reader.query(p, ReadingKind.BLOOD_PRESSURE, start, end)) for p in patients)

    try:
        async with asyncio.TaskGroup() as tg:
            for w in workers:
                tg.create_task(w.run())
            for w in workers:
                await w.wait_connected(15)
            pub = tg.create_task(publisher.run())
            await _poll(lambda: outbox.pending_count() == 0, 30, "the outbox to drain")
            await _poll(lambda: stored() == len(readings), 30, "every reading in the store")
            pub.cancel()
            for w in workers:
                w.stop()
    finally:
        reader.close()
        for s in stores:
            s.close()
        with contextlib.suppress(Exception):
            outbox.close()
    assert sum(w.stats.written_readings for w in workers) >= len(readings)
    assert sum(w.stats.dead_lettered for w in workers) == 0

    # `vitalgate query`, as the dashboard user, returns every reading once.
    rc = main(["query", "--store", reader_url, *(a for p in patients for a in ("--patient", p))])
    out = capsys.readouterr().out
    assert rc == 0
    rows = [orjson.loads(line) for line in out.splitlines()]
    assert len(rows) == len(readings)
    if store_name == "influxdb1":
        assert sorted(r["reading_id"] for r in rows) == sorted(r.reading_id for r in readings)
    else:  # VictoriaMetrics keeps no strings: identity is series + timestamp
        got = {(r["patient_id"], r["measured_at"]) for r in rows}
        assert len(got) == len(readings)
