"""Outbox replay: readings/s from a 100k-reading backlog through Mosquitto.

Run ``python -m bench.outbox_replay`` (``--no-readme`` to skip updating bench/README.md,
``--readings N`` for another backlog size). It starts its own Mosquitto, fills an outbox with a
backlog (an offline week of a busy home), then measures the vitalgate Publisher draining it:
claim a batch, publish at QoS 1, wait for the PUBACK, record the ack in the outbox -- until
nothing is pending (the acknowledged rows are deleted in bulk afterwards, timed separately).
Same-run baselines: a raw paho client (its own network thread) publishing exactly the same
messages at QoS 1 with the same window of unacknowledged messages and no outbox, and a naive
publisher sending one reading per message. Best of 3 rounds (shared machine). Target: replay
>= 100k readings/s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from bench.signal_common import footer, write_section
from tests.support.servers import Mosquitto
from vitalgate.cloud_sync.mqtt import MqttConfig
from vitalgate.cloud_sync.outbox import Outbox
from vitalgate.cloud_sync.publisher import Batching, Publisher
from vitalgate.readings import (
    BloodPressureReading,
    CgmReading,
    DeviceIdentity,
    HeartRateReading,
    PulseOximetryReading,
    QualityFlag,
    Reading,
)

GATEWAY = "gw-bench"
ROUNDS = 3
BATCHING = Batching(max_readings=500, max_bytes=64 * 1024, linger_s=0.2, max_in_flight=32)


def backlog(n: int) -> list[Reading]:
    """A deterministic week-like backlog: mostly CGM, plus heart rate, SpO2 and BP."""
    cgm = DeviceIdentity("11:22:33:44:55:66", "Acme", "CGM-7", "C123")
    hr = DeviceIdentity("22:33:44:55:66:77", "Acme", "HR-2", "H77")
    ox = DeviceIdentity("33:44:55:66:77:88", "Acme", "OX-1", "O55")
    bp = DeviceIdentity("44:55:66:77:88:99", "Acme", "BP-1", "B12")
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    out: list[Reading] = []
    for i in range(n):
        at = t0 + timedelta(seconds=6 * i)
        common = {
            "patient_id": "p-bench",
            "measured_at": at,
            "received_at": at + timedelta(days=7),
            "device_time": at.replace(tzinfo=None),
        }
        m = i % 10
        if m < 6:
            out.append(
                CgmReading(
                    device=cgm,
                    glucose_mg_dl=90.0 + i % 80,
                    time_offset_min=i,
                    session_start=t0,
                    trend_mg_dl_per_min=0.5,
                    sequence_number=i,
                    **common,  # type: ignore[arg-type]
                )
            )
        elif m < 8:
            out.append(
                HeartRateReading(
                    device=hr,
                    heart_rate_bpm=60.0 + i % 40,
                    rr_intervals_s=(0.81, 0.8),
                    sequence_number=i,
                    **common,  # type: ignore[arg-type]
                )
            )
        elif m < 9:
            out.append(
                PulseOximetryReading(
                    device=ox,
                    spo2_pct=95.0 + i % 5,
                    pulse_rate_bpm=70.0,
                    sequence_number=i,
                    **common,  # type: ignore[arg-type]
                )
            )
        else:
            out.append(
                BloodPressureReading(
                    device=bp,
                    systolic_mmhg=110.0 + i % 30,
                    diastolic_mmhg=75.0,
                    pulse_rate_bpm=66.0,
                    user_id=1,
                    flags=frozenset({QualityFlag.CLOCK_CORRECTED}),
                    **common,  # type: ignore[arg-type]
                )
            )
    return out


async def replay(url: str, outbox: Outbox) -> float:
    """Seconds for the Publisher to empty the outbox (connect excluded)."""
    pub = Publisher(MqttConfig(url=url, client_id=GATEWAY), outbox, batching=BATCHING)
    task = asyncio.create_task(pub.run())
    try:
        await asyncio.wait_for(pub.wait_connected(), 10)
        t0 = time.perf_counter()
        pub.notify()
        while outbox.pending_count():
            await asyncio.sleep(0.002)
        return time.perf_counter() - t0
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def raw_paho(url_port: int, messages: list[tuple[str, bytes]], window: int) -> float:
    """Seconds for a raw paho client to publish ``messages`` at QoS 1 and get every PUBACK,
    keeping at most ``window`` unacknowledged (fed as PUBACKs arrive)."""
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id="bench-raw", protocol=MQTTProtocolVersion.MQTTv5
    )
    client.max_inflight_messages_set(window)
    slots = threading.Semaphore(window)
    done = threading.Event()
    acked = 0

    def on_publish(*_: object) -> None:
        nonlocal acked
        acked += 1
        slots.release()
        if acked == len(messages):
            done.set()

    client.on_publish = on_publish
    client.connect("127.0.0.1", url_port)
    client.loop_start()
    try:
        t0 = time.perf_counter()
        for topic, payload in messages:
            slots.acquire()
            client.publish(topic, payload, qos=1)
        if not done.wait(300):
            raise RuntimeError(f"raw paho: only {acked} of {len(messages)} PUBACKs")
        return time.perf_counter() - t0
    finally:
        client.disconnect()
        client.loop_stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=100_000)
    parser.add_argument("--naive-readings", type=int, default=10_000)
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args(argv)
    n = args.readings

    broker = Mosquitto()
    broker.start()
    work = Path(tempfile.mkdtemp(prefix="vg-bench-outbox-"))
    try:
        readings = backlog(n)
        ob = Outbox(work / "outbox.db")
        t0 = time.perf_counter()
        for i in range(0, n, 1000):  # the gateway adds per device download
            ob.add(readings[i : i + 1000])
        add_s = time.perf_counter() - t0

        # The exact messages the publisher will send, for the raw baseline (claimed and released:
        # the outbox is unchanged).
        messages: list[tuple[str, bytes]] = []
        while (
            b := ob.next_batch(max_readings=BATCHING.max_readings, max_bytes=BATCHING.max_bytes)
        ) is not None:
            messages.append((f"vitalgate/v1/{GATEWAY}/readings/{b.kind}", b.payload(GATEWAY)))
        ob.release_all()
        ob.close()
        pristine = work / "pristine.db"
        shutil.copyfile(work / "outbox.db", pristine)  # the backlog, for every round

        raw_s = min(raw_paho(broker.port, messages, BATCHING.max_in_flight) for _ in range(ROUNDS))
        replay_s = flush_s = float("inf")
        for _ in range(ROUNDS):  # best of: the machine is shared
            for suffix in ("", "-wal", "-shm"):
                (work / f"outbox.db{suffix}").unlink(missing_ok=True)
            shutil.copyfile(pristine, work / "outbox.db")
            ob = Outbox(work / "outbox.db")  # a fresh open, as after a gateway restart
            assert ob.pending_count() == n
            this_s = asyncio.run(replay(broker.url, ob))
            print(f"round: replay {n / this_s:,.0f} readings/s", flush=True)
            replay_s = min(replay_s, this_s)
            assert ob.pending_count() == 0
            t0 = time.perf_counter()
            ob.flush_acks()  # what the idle publisher does next: delete the acknowledged rows
            flush_s = min(flush_s, time.perf_counter() - t0)
            ob.close()

        naive = [
            (f"vitalgate/v1/{GATEWAY}/readings/x", b"x" * (sum(len(p) for _, p in messages) // n))
            for _ in range(args.naive_readings)
        ]
        naive_s = raw_paho(broker.port, naive, BATCHING.max_in_flight)
    finally:
        broker.cleanup()
        for p in work.glob("*"):
            p.unlink()
        os.rmdir(work)

    avg_msg = sum(len(p) for _, p in messages) / len(messages)
    load_avg = " / ".join(f"{x:.1f}" for x in os.getloadavg()) + " (1/5/15 min, 2 cores)"
    rows = [
        (
            "vitalgate outbox replay (Publisher: claim, QoS 1, PUBACK, ack in outbox)",
            n,
            len(messages),
            replay_s,
        ),
        (
            "baseline: raw paho, same messages, QoS 1, same window, no outbox",
            n,
            len(messages),
            raw_s,
        ),
        (
            "naive: raw paho, one reading per message, QoS 1",
            args.naive_readings,
            args.naive_readings,
            naive_s,
        ),
    ]
    lines = [
        "| path | readings | messages | seconds | readings/s | vs raw paho |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    raw_rate = n / raw_s
    for name, readings_n, msgs, secs in rows:
        rate = readings_n / secs
        lines.append(
            f"| {name} | {readings_n:,} | {msgs:,} | {secs:.2f} | {rate:,.0f} | "
            f"{rate / raw_rate:.2f} |"
        )
    table = "\n".join(lines)
    print(table)
    print(f"outbox add (1,000 readings per fsynced add): {n / add_s:,.0f} readings/s")
    print(f"deleting the acknowledged rows afterwards: {flush_s:.2f} s")
    target = "met" if n / replay_s >= 100_000 else "NOT met"
    body = (
        "`python -m bench.outbox_replay`: a backlog of "
        f"{n:,} readings (an offline week; mostly CGM) replayed from the SQLite outbox through "
        "Mosquitto with the vitalgate Publisher: claim a batch (up to "
        f"{BATCHING.max_readings} readings or {BATCHING.max_bytes // 1024} KiB), publish at QoS 1, "
        "wait for the PUBACK, record the ack in the outbox (the rows themselves are deleted in "
        f"bulk once the publisher is idle); at most {BATCHING.max_in_flight} messages "
        "unacknowledged. No subscriber (Mosquitto PUBACKs regardless). Baselines in the same run: "
        "raw paho publishing the very same messages with the same window and no outbox, and "
        f"one reading per message. Best of {ROUNDS} rounds.\n\n"
        f"{table}\n\n"
        f"Average message {avg_msg / 1024:.1f} KiB ({n / len(messages):.0f} readings). "
        f"Filling the outbox (1,000 readings per fsynced add): {n / add_s:,.0f} readings/s. "
        f"Deleting the acknowledged rows afterwards (idle): {flush_s:.2f} s. "
        f"Target replay >= 100,000 readings/s: {target}.\n\n"
        f"Load average during the run: {load_avg}.\n\n"
        f"{footer()}"
    )
    if not args.no_readme:
        write_section("cloud_sync outbox replay", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
