"""Ingest throughput: readings/s per worker, MQTT -> validated -> stored -> acknowledged.

``python -m bench.ingest [--readings N] [--no-readme]``

Starts its own Mosquitto, VictoriaMetrics and InfluxDB 1.x (tests.support.servers) and measures,
in the same run:

* **ingest, one worker** -- N readings (100 per message) are queued at the broker for the
  worker's persistent session; the clock runs from the worker's start until every message is
  acknowledged, and a message is acknowledged only after the store accepted its readings
  (publish -> acknowledged in the store, without the publisher's CPU on the two shared cores).
  The worker validates and formats each message in one pass (``schema.decode_batch_lines``:
  msgspec decodes a typical message into typed structs);
* **ingest, orjson decode** -- the same worker with decode_batch_lines' msgspec path switched
  off (orjson dicts checked and formatted a reading at a time: the path of messages msgspec
  does not take), run interleaved with the first for a same-run A/B;
* **ingest via StoredReading** -- the same worker on the same store hidden behind a wrapper
  without the line-protocol fast path: ``decode_batch`` -> StoredReading objects ->
  ``store.write`` (the path every non-line-protocol store takes, and the ingest before the fast
  path existed);
* **raw line-protocol write** -- the same readings pre-formatted, POSTed 5,000 lines at a time
  on one keep-alive connection (the store's ceiling);
* **naive ingest** -- paho ``on_message`` -> ``json.loads`` -> ``influxdb_client.Point`` -> one
  synchronous write per message, one reading per message;

for VictoriaMetrics (``/api/v2/write``) and InfluxDB 1.x (``/write``), and writes the table into
the ``## cloud_sync ingest`` section of bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import urllib3
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write.point import Point
from influxdb_client.client.write_api import SYNCHRONOUS
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.support.servers import InfluxDB1, Mosquitto, VictoriaMetrics
from vitalgate.cloud_sync import schema
from vitalgate.cloud_sync.ingest import IngestWorker
from vitalgate.cloud_sync.store import (
    ReadingStore,
    StoredReading,
)
from vitalgate.cloud_sync.stores import open_store
from vitalgate.cloud_sync.stores.base import ReadsThrough, default_flag_codec
from vitalgate.cloud_sync.stores.lineprotocol import LineProtocolFormatter

README = Path(__file__).with_name("README.md")
SECTION = "## cloud_sync ingest"
T0 = datetime(2026, 6, 1, tzinfo=UTC)


def make_messages(tag: str, n_readings: int, per_message: int) -> list[tuple[str, bytes]]:
    """Blood-pressure batches from 100 gateways (one patient and device each), built fast."""
    messages: list[tuple[str, bytes]] = []
    per_gateway = max(per_message, n_readings // 100)
    n = 0
    g = 0
    while n < n_readings:
        gateway = f"{tag}-gw{g:03d}"
        device = {
            "id": f"Acme|BP-1|{tag}{g:03d}",
            "address": "AA:BB:CC:DD:EE:FF",
            "manufacturer": "Acme",
            "model": "BP-1",
            "serial": f"{tag}{g:03d}",
        }
        received = T0.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        for start in range(0, per_gateway, per_message):
            count = min(per_message, per_gateway - start, n_readings - n)
            if count <= 0:
                break
            parts = []
            for i in range(start, start + count):
                at = T0 + timedelta(seconds=30 * i)
                parts.append(
                    orjson.dumps(
                        {
                            "reading_id": f"{g:08x}{i:024x}",
                            "patient_id": f"{tag}-p{g:03d}",
                            "device": device,
                            "measured_at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                            "received_at": received,
                            "device_time": None,
                            "sequence_number": i,
                            "values": {
                                "systolic_mmhg": 110.0 + i % 40,
                                "diastolic_mmhg": 70.0 + i % 25,
                                "pulse_rate_bpm": 60.0 + i % 30,
                            },
                            "flags": ["irregular_pulse"] if i % 13 == 0 else [],
                            "attributes": {"user_id": None},
                        }
                    )
                )
            payload = schema.encode_batch(gateway, "blood_pressure", parts)
            messages.append((schema.topic_readings(gateway, "blood_pressure"), payload))
            n += count
        g += 1
    return messages


@contextlib.contextmanager
def orjson_decode_only() -> Iterator[None]:
    """decode_batch_lines without its msgspec path (the orjson per-reading path), for an A/B."""

    def refuse(*_args: object) -> tuple[bytes, int]:
        raise schema._FallbackError

    typed = schema._typed_lines
    schema._typed_lines = refuse  # type: ignore[assignment]
    try:
        yield
    finally:
        schema._typed_lines = typed


def _host_port(url: str) -> tuple[str, int]:
    p = urllib.parse.urlsplit(url)
    return p.hostname or "127.0.0.1", p.port or 1883


def publish_blocking(url: str, messages: list[tuple[str, bytes]], window: int = 500) -> None:
    """Publish at QoS 1 with a bounded window of unacknowledged messages (plain paho)."""
    host, port = _host_port(url)
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.max_inflight_messages_set(window)
    acked = 0
    cond = threading.Condition()

    def on_publish(*_args: object) -> None:
        nonlocal acked
        with cond:
            acked += 1
            cond.notify()

    c.on_publish = on_publish
    c.connect(host, port)
    c.loop_start()
    try:

        def room(sent: int) -> Callable[[], bool]:
            return lambda: sent - acked < window

        for i, (topic, payload) in enumerate(messages):
            with cond:
                cond.wait_for(room(i), timeout=30)
            c.publish(topic, payload, qos=1)
        with cond:
            if not cond.wait_for(lambda: acked >= len(messages), timeout=120):
                raise RuntimeError("publisher: not every message acknowledged")
    finally:
        c.disconnect()
        c.loop_stop()


@dataclass
class BenchMosquitto(Mosquitto):
    """The test suite's Mosquitto with Mosquitto's default autosave interval (1800 s).

    The test broker saves its whole database every second (the kill -9 tests need that); with
    the bench's 100+ MB queued for one session, those saves cost the two shared cores more than
    the ingest itself and stall publishers. Persistence stays on, as in production.
    """

    def prepare(self) -> None:
        super().prepare()
        conf = self.data_dir / "mosquitto.conf"
        text = conf.read_text()
        conf.write_text(text.replace("autosave_interval 1\n", "autosave_interval 1800\n"))


class ReadingsOnlyStore(ReadsThrough):
    """A store seen without its line-protocol fast path (``write(readings)`` only)."""

    def __init__(self, store: ReadingStore) -> None:
        self._store = store
        self._reader = store

    def write(self, readings: Sequence[StoredReading]) -> None:
        self._store.write(readings)

    def close(self) -> None:
        self._store.close()


@dataclass
class Row:
    path: str
    store: str
    readings: int
    seconds: float
    cpu_seconds: float | None = None  # the worker process's CPU time (all its threads)

    @property
    def rate(self) -> float:
        return self.readings / self.seconds


@dataclass
class Timing:
    """Wall-clock and CPU seconds of one run (CPU: this process, every thread)."""

    seconds: float
    cpu_seconds: float


async def ingest_rate(
    broker: Mosquitto, store: ReadingStore, messages: list[tuple[str, bytes]], group: str
) -> Timing:
    """Seconds for one worker to drain ``messages`` queued at the broker for its session.

    The CPU seconds are this process's while the worker runs (the publisher has finished):
    the worker's own cost, which the load of other processes on the cores does not inflate.
    """
    worker = IngestWorker(broker.url, store, group, client_id=f"{group}-w", session_expiry_s=600)
    task = asyncio.create_task(worker.run())
    await worker.wait_connected()
    worker.stop()  # the session (and its shared subscription) stays, queueing what comes
    await task
    await asyncio.to_thread(publish_blocking, broker.url, messages)
    worker = IngestWorker(broker.url, store, group, client_id=f"{group}-w", session_expiry_s=600)
    t0 = time.perf_counter()
    c0 = time.process_time()
    task = asyncio.create_task(worker.run())
    while worker.stats.acked < len(messages):
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - c0
    worker.stop()
    await task
    if worker.stats.dead_lettered:
        raise RuntimeError(f"unexpected dead letters: {worker.stats}")
    return Timing(elapsed, cpu)


def raw_write_rate(base_url: str, path: str, bodies: list[bytes]) -> float:
    """Seconds to POST pre-formatted bodies (one keep-alive connection, sequentially)."""
    pool = urllib3.PoolManager(maxsize=1, retries=False)
    t0 = time.perf_counter()
    for body in bodies:
        resp = pool.request("POST", f"{base_url}{path}", body=body)
        if resp.status >= 300:
            raise RuntimeError(f"raw write failed: {resp.status} {resp.data[:200]!r}")
    return time.perf_counter() - t0


def naive_ingest(broker: Mosquitto, write: Callable[[Point], None], n: int, tag: str) -> float:
    """paho on_message -> json -> Point -> one synchronous write per message, 1 reading each."""
    host, port = _host_port(broker.url)
    topic = f"bench/naive/{tag}"
    done = threading.Event()
    count = 0

    def on_message(_c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        nonlocal count
        r = json.loads(msg.payload)
        p = (
            Point("blood_pressure")  # type: ignore[no-untyped-call]
            .tag("patient", r["patient_id"])
            .tag("device", r["device"])
            .field("systolic_mmhg", r["systolic_mmhg"])
            .field("diastolic_mmhg", r["diastolic_mmhg"])
            .time(r["measured_at_ns"])
        )
        write(p)
        count += 1
        if count >= n:
            done.set()

    sub = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"naive-{tag}",
        protocol=mqtt.MQTTv5,
    )
    sub.on_message = on_message
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 600
    sub.connect(host, port, clean_start=False, properties=props)
    sub.subscribe(topic, qos=1)
    sub.loop_start()
    time.sleep(0.3)
    sub.loop_stop()
    sub.disconnect()
    msgs = [
        (
            topic,
            json.dumps(
                {
                    "patient_id": f"{tag}-p{i % 50}",
                    "device": f"dev{i % 50}",
                    "systolic_mmhg": 120.0 + i % 30,
                    "diastolic_mmhg": 80.0,
                    "measured_at_ns": int((T0 + timedelta(seconds=i)).timestamp()) * 10**9,
                }
            ).encode(),
        )
        for i in range(n)
    ]
    publish_blocking(broker.url, msgs)
    sub.connect(host, port, clean_start=False, properties=props)
    t0 = time.perf_counter()
    sub.loop_start()
    if not done.wait(300):
        raise RuntimeError("naive ingest did not finish")
    elapsed = time.perf_counter() - t0
    sub.loop_stop()
    sub.disconnect()
    return elapsed


def _client_writer(url: str) -> Callable[[Point], None]:
    """One synchronous influxdb-client write per Point (its v2 write API)."""
    client = InfluxDBClient(url=url, token="", org="bench")
    api = client.write_api(write_options=SYNCHRONOUS)

    def write(p: Point) -> None:
        api.write(bucket="bench", org="bench", record=p)

    return write


def _http_writer(url: str) -> Callable[[Point], None]:
    """InfluxDB 1.6 has no v2 write API: the Point's line protocol, one POST per Point."""
    pool = urllib3.PoolManager(maxsize=1)

    def write(p: Point) -> None:
        line = p.to_line_protocol()  # type: ignore[no-untyped-call]
        pool.request("POST", f"{url}/write?db=vitalgate&precision=ns", body=line.encode())

    return write


def cpu_breakdown(messages: list[tuple[str, bytes]]) -> list[Row]:
    """Where one worker's CPU goes, per stage, on the same messages (best of 3)."""
    n = sum(len(schema.decode_batch(t, p)) for t, p in messages[:1]) * len(messages)
    best: dict[str, float] = {}
    for _ in range(3):
        fmt = LineProtocolFormatter(default_flag_codec().mask, include_reading_id=False)
        t0 = time.perf_counter()
        for _topic, payload in messages:
            orjson.loads(payload)
        t1 = time.perf_counter()
        readings = []
        for topic, payload in messages:
            readings.extend(schema.decode_batch(topic, payload))
        t2 = time.perf_counter()
        for i in range(0, len(readings), 5000):
            fmt.body(readings[i : i + 5000])
        t3 = time.perf_counter()
        fmt = LineProtocolFormatter(default_flag_codec().mask, include_reading_id=False)
        for topic, payload in messages:
            schema.decode_batch_lines(topic, payload, fmt)
        t4 = time.perf_counter()
        fmt = LineProtocolFormatter(default_flag_codec().mask, include_reading_id=False)
        with orjson_decode_only():
            for topic, payload in messages:
                schema.decode_batch_lines(topic, payload, fmt)
        t5 = time.perf_counter()
        for key, secs in (
            ("orjson.loads only (CPU)", t1 - t0),
            ("schema.decode_batch -> StoredReading (CPU)", t2 - t1),
            ("formatting StoredReadings (CPU)", t3 - t2),
            ("schema.decode_batch_lines: validate + format (CPU)", t4 - t3),
            ("the same, orjson decode, per reading (CPU)", t5 - t4),
        ):
            best[key] = min(best.get(key, secs), secs)
    return [Row(path, "-", n, secs) for path, secs in best.items()]


def bodies_for(messages: list[tuple[str, bytes]], batch: int, include_id: bool) -> list[bytes]:
    readings = []
    for topic, payload in messages:
        readings.extend(schema.decode_batch(topic, payload))
    fmt = LineProtocolFormatter(default_flag_codec().mask, include_reading_id=include_id)
    return [fmt.body(readings[i : i + batch]) for i in range(0, len(readings), batch)]


async def run(n_readings: int, repeats: int) -> list[Row]:
    # Own data directories (not the shared "vg-srv-*" prefix that test clean-ups sweep).
    def data_dir(name: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"vitalgate-bench-ingest-{name}-"))

    broker = BenchMosquitto(data_dir=data_dir("mosquitto"))
    vm = VictoriaMetrics(data_dir=data_dir("vm"))
    influx = InfluxDB1(data_dir=data_dir("influxdb"))
    rows: list[Row] = []
    try:
        for s in (broker, vm, influx):
            s.start()
        vm_host = urllib.parse.urlsplit(vm.url).netloc
        influx_host = urllib.parse.urlsplit(influx.url).netloc
        for store_name, store_url, raw_path, include_id in (
            (
                "VictoriaMetrics",
                f"victoriametrics://{vm_host}",
                "/api/v2/write?precision=ns",
                False,
            ),
            (
                "InfluxDB 1.6",
                f"influxdb1://{influx_host}/vitalgate",
                "/write?db=vitalgate&precision=ns",
                True,
            ),
        ):
            base = vm.url if store_name == "VictoriaMetrics" else influx.url
            e2e: list[Timing] = []
            e2e_orjson: list[Timing] = []
            e2e_readings: list[Timing] = []
            raw: list[float] = []
            for rep in range(repeats):
                tag = f"{'vm' if include_id is False else 'ix'}{rep}"
                messages = make_messages(tag, n_readings, 100)
                store = open_store(store_url)
                e2e.append(await ingest_rate(broker, store, messages, f"bench-{tag}"))
                store.close()
                messages = make_messages(f"oj{tag}", n_readings, 100)
                store = open_store(store_url)
                with orjson_decode_only():
                    e2e_orjson.append(await ingest_rate(broker, store, messages, f"bench-oj{tag}"))
                store.close()
                messages = make_messages(f"sr{tag}", n_readings, 100)
                wrapped = ReadingsOnlyStore(open_store(store_url))
                e2e_readings.append(await ingest_rate(broker, wrapped, messages, f"bench-sr{tag}"))
                wrapped.close()
                raw_msgs = make_messages(f"raw{tag}", n_readings, 100)
                raw.append(raw_write_rate(base, raw_path, bodies_for(raw_msgs, 5000, include_id)))
            for path, timings in (
                ("ingest, 1 worker (e2e, acked)", e2e),
                ("ingest, orjson decode (msgspec off)", e2e_orjson),
                ("ingest via StoredReading (before the fast path)", e2e_readings),
            ):
                rows.append(
                    Row(
                        path,
                        store_name,
                        n_readings,
                        statistics.median(t.seconds for t in timings),
                        statistics.median(t.cpu_seconds for t in timings),
                    )
                )
            rows.append(
                Row(
                    "raw line protocol, 5,000-line POSTs",
                    store_name,
                    n_readings,
                    statistics.median(raw),
                )
            )
            naive_n = 2000
            if store_name == "VictoriaMetrics":
                naive_s = naive_ingest(broker, _client_writer(vm.url), naive_n, "nvm")
            else:
                naive_s = naive_ingest(broker, _http_writer(influx.url), naive_n, "nix")
            rows.append(Row("naive ingest (Point, 1 write/msg)", store_name, naive_n, naive_s))
        rows.extend(cpu_breakdown(make_messages("cpu", n_readings, 100)))
    finally:
        for s in (broker, vm, influx):
            s.cleanup()
    return rows


def render(rows: list[Row], n_readings: int, repeats: int) -> str:
    lines = [
        SECTION,
        "",
        "`python -m bench.ingest`: one ingest worker, readings/s from the broker to",
        f"acknowledged in the store ({n_readings:,} readings, 100 per message, queued at",
        f"the broker for the worker's persistent session; median of {repeats} runs), next to",
        "two same-run baselines on the same store: raw pre-formatted line protocol POSTed",
        "5,000 lines at a time on one connection (the store's ceiling here), and a naive",
        "ingest (paho on_message -> json -> influxdb-client Point -> one synchronous write",
        "per message, one reading per message). Targets: >= 250k readings/s per worker and",
        ">= 35 % of the raw write rate. The worker validates and formats each message in",
        "one pass (`schema.decode_batch_lines`: msgspec decodes a typical message into typed",
        "structs, no StoredReading objects) and writes pre-formatted bodies, up to three",
        'writes in flight, acknowledged in order; "orjson decode"',
        "is the same worker with the msgspec path switched off (orjson dicts checked and",
        'formatted a reading at a time), run interleaved; "ingest via StoredReading" is',
        "the same worker with the store behind a wrapper that only offers `write(readings)`",
        "(decode_batch -> StoredReading -> formatter in the write thread: the path before the",
        "fast path, measured in this run).",
        "The broker is the test suite's Mosquitto with persistence but Mosquitto's default",
        "autosave interval (the suite's 1 s autosave of 100+ MB of queued messages stalled",
        'the broker and cost more CPU than the ingest). "worker CPU" is the CPU time of the',
        "worker's process (all its threads) per reading while it drains the queue: its own",
        "cost, which other load on the shared cores does not inflate as it does wall time.",
        "",
        "| path | store | readings | seconds | readings/s | vs raw | worker CPU us/reading |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    raw_rate = {r.store: r.rate for r in rows if r.path.startswith("raw")}
    for r in rows:
        vs_raw = f"{r.rate / raw_rate[r.store]:.0%}" if r.store in raw_rate else "-"
        cpu = "-" if r.cpu_seconds is None else f"{r.cpu_seconds / r.readings * 1e6:.2f}"
        lines.append(
            f"| {r.path} | {r.store} | {r.readings:,} | {r.seconds:.3f} | {r.rate:,.0f} | "
            f"{vs_raw} | {cpu} |"
        )
    lines += [
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at"
        " the end; the store, the broker and the worker share those cores.",
        "",
    ]
    return "\n".join(lines)


def update_readme(section: str) -> None:
    text = README.read_text() if README.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _m: section + "\n", text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    README.write_text(text.rstrip("\n") + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=300_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args(argv)
    rows = asyncio.run(run(args.readings, args.repeats))
    section = render(rows, args.readings, args.repeats)
    print(section)
    if not args.no_readme:
        update_readme(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
