"""Gateway cost with 10 streaming devices, and BP measurement -> outbox latency.

Run from the repository root: ``python -m bench.gateway``. The simulated devices live in this
process (a SimWorld served over the relay, on a simulated clock running at real speed); each
measured program runs in its own process attached to that radio, so its CPU and RSS are its
own (sampled with psutil):

* **baseline** -- plain bleak: connect to the 10 heart-rate wearables and count their Heart
  Rate Measurement notifications (no pipeline, no registry, no outbox);
* **gateway** -- ``vitalgate run``'s daemon (sessions, time handling, signal checks, the
  SQLite outbox with fsync per batch) serving the same 10 wearables (1 notification/s each)
  plus a BP monitor;
* **BP latency** -- with the gateway running, the BP monitor takes a measurement and
  advertises; the time until the reading is a row in the outbox (advertisement, connect,
  encryption, clock check and set, indication, delivery), repeated.

The section "## gateway" of bench/README.md is replaced with the figures of this run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import psutil

README = Path(__file__).with_name("README.md")
SECTION = "## gateway"
ROOT = Path(__file__).resolve().parent.parent
N_WEARABLES = 10


@dataclass(frozen=True, slots=True)
class Usage:
    label: str
    cpu_pct: float
    rss_mib: float
    notifications_per_s: float


# --- child processes ----------------------------------------------------------------------


async def _child_baseline(url: str, addresses: list[str], seconds: float) -> None:
    from bleak import BleakClient

    from vitalgate.drivers import uuids
    from vitalgate.firmware_sim.backend import use_simulation
    from vitalgate.firmware_sim.relay import connect_remote_world

    count = 0

    def on_value(_sender: object, _data: bytearray) -> None:
        nonlocal count
        count += 1

    async with connect_remote_world(url, seed=11) as world:
        with use_simulation(world):
            clients = []
            for address in addresses:
                client = BleakClient(address, timeout=10)
                await client.connect()
                await client.start_notify(uuids.HEART_RATE_MEASUREMENT, on_value)
                clients.append(client)
            print("ready", flush=True)
            await asyncio.sleep(seconds)
            for client in clients:
                await client.disconnect()
    print(json.dumps({"notifications": count}), flush=True)


async def _child_gateway(url: str, config_path: str, pair_json: str | None) -> None:
    from vitalgate.firmware_sim.backend import use_simulation
    from vitalgate.firmware_sim.relay import connect_remote_world
    from vitalgate.gateway.config import load_config
    from vitalgate.gateway.daemon import Daemon
    from vitalgate.gateway.kinds import DeviceKind
    from vitalgate.gateway.pairing import pair_device
    from vitalgate.gateway.pipeline import Pipeline
    from vitalgate.gateway.registry import DeviceRegistry
    from vitalgate.gateway.service import close_outbox, open_outbox
    from vitalgate.gateway.timefix import SystemClock

    config = load_config(config_path)
    clock = SystemClock()
    async with connect_remote_world(
        url, seed=12, bond_store_path=config.state_dir / "bonds.json"
    ) as world:
        with use_simulation(world), DeviceRegistry(config.registry_path) as registry:
            if pair_json is not None:
                for item in json.loads(pair_json):
                    passkey = int(item["passkey"])

                    async def handler(_a: str, _n: str, passkey: int = passkey) -> int:
                        return passkey

                    await pair_device(
                        config=config,
                        registry=registry,
                        clock=clock,
                        device=item["address"],
                        kind=DeviceKind(item["kind"]),
                        patient_id="p-bench",
                        passkey=handler,
                    )
                return
            stop = asyncio.Event()
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
            outbox = open_outbox(config)
            try:
                print("ready", flush=True)
                await Daemon(config, registry, Pipeline(outbox), clock=clock).run(stop)
            finally:
                close_outbox(outbox)


# --- the devices' side ----------------------------------------------------------------------


def _outbox_count(path: Path, kind: str) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0) as db:
            row = db.execute("SELECT COUNT(*) FROM outbox WHERE kind = ?", (kind,)).fetchone()
            return int(row[0])
    except sqlite3.OperationalError:
        return 0


async def _spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.gateway",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _wait_ready(proc: asyncio.subprocess.Process, timeout_s: float = 60.0) -> None:
    assert proc.stdout is not None
    async with asyncio.timeout(timeout_s):
        while True:
            line = await proc.stdout.readline()
            if not line:
                err = b"" if proc.stderr is None else await proc.stderr.read()
                raise RuntimeError(f"child exited before ready: {err.decode()[-2000:]}")
            if line.strip() == b"ready":
                return


async def _sample(pid: int, seconds: float) -> tuple[float, float]:
    """Mean CPU % (of one core) and peak RSS (MiB) of ``pid`` over ``seconds``."""
    proc = psutil.Process(pid)
    proc.cpu_percent(None)
    peak_rss = 0
    samples: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        samples.append(proc.cpu_percent(None))
        peak_rss = max(peak_rss, proc.memory_info().rss)
    return statistics.fmean(samples), peak_rss / 2**20


async def _run(seconds: float) -> tuple[list[Usage], list[float], float]:
    from vitalgate.firmware_sim.clock import SimClock
    from vitalgate.firmware_sim.devices.bp_monitor import BloodPressureMonitor
    from vitalgate.firmware_sim.devices.common import DeviceSetup, Patient, PatientProfile
    from vitalgate.firmware_sim.devices.hr_wearable import HeartRateWearable
    from vitalgate.firmware_sim.relay import serve_world
    from vitalgate.firmware_sim.truth import TruthLog
    from vitalgate.firmware_sim.world import SimWorld, quiet_bumble_logging

    quiet_bumble_logging()
    now = datetime.now(UTC)
    clock = SimClock(now, speed=1.0)
    truth = TruthLog()
    tz = ZoneInfo("Europe/Berlin")
    patient = Patient(
        patient_id="p-bench",
        profile=PatientProfile.HYPERTENSIVE,
        start=now,
        timezone=tz,
        seed=1,
    )

    def setup(serial: str, seed: int) -> DeviceSetup:
        return DeviceSetup(
            serial=serial,
            model="BENCH",
            manufacturer="SimCorp",
            firmware="1.0",
            name=f"SIM {serial}",
            seed=seed,
            passkey=100000 + seed,
            patients={1: patient},
        )

    usages: list[Usage] = []
    latencies: list[float] = []
    with tempfile.TemporaryDirectory(prefix="vitalgate-bench-gw-") as tmp:
        state = Path(tmp) / "state"
        config_path = Path(tmp) / "gateway.toml"
        config_path.write_text(
            f'gateway_id = "gw-bench"\nstate_dir = "{state}"\n'
            '[[patients]]\nid = "p-bench"\ntimezone = "Europe/Berlin"\n'
            "[limits]\nmax_concurrent_connections = 12\nquiet_period_s = 1.0\n"
            "[devices]\nreconnect_interval_s = 0.0\n",
            encoding="utf-8",
        )
        async with SimWorld(seed=21, with_central=False) as world:
            wearables = [
                await world.add(
                    HeartRateWearable(setup(f"HR-{i}", 30 + i), clock=clock, truth=truth)
                )
                for i in range(N_WEARABLES)
            ]
            bp = await world.add(
                BloodPressureMonitor(
                    setup("BP-B", 50), clock=clock, truth=truth, session_local_hours=(3.0,)
                )
            )
            async with serve_world(world) as server:
                for w in wearables:
                    w.start()
                    await w.start_advertising()
                addresses = [w.address for w in wearables]

                # Baseline: plain bleak, the same 10 streams.
                base = await _spawn(
                    "--child",
                    "baseline",
                    "--url",
                    server.url,
                    "--addresses",
                    ",".join(addresses),
                    "--seconds",
                    str(seconds + 2),
                )
                await _wait_ready(base)
                cpu, rss = await _sample(base.pid, seconds)
                out, _ = await base.communicate()
                count = json.loads(out.decode().strip().splitlines()[-1])["notifications"]
                usages.append(
                    Usage("plain bleak subscriber (baseline)", cpu, rss, count / (seconds + 2))
                )
                for w in wearables:
                    if not w.is_advertising:
                        await w.start_advertising()

                # Pair everything through a gateway process, then run the daemon.
                await bp.start_advertising()
                pairing = [
                    {"address": w.address, "kind": "heart_rate", "passkey": w.setup.passkey}
                    for w in wearables
                ]
                pairing.append(
                    {"address": bp.address, "kind": "blood_pressure", "passkey": bp.setup.passkey}
                )
                pair = await _spawn(
                    "--child",
                    "gateway",
                    "--url",
                    server.url,
                    "--config",
                    str(config_path),
                    "--pair",
                    json.dumps(pairing),
                )
                _, err = await pair.communicate()
                if pair.returncode != 0:
                    raise RuntimeError(f"pairing failed: {err.decode()[-2000:]}")
                await bp.stop_advertising()
                for w in wearables:
                    if not w.is_advertising:
                        await w.start_advertising()
                gateway_start = clock.now()
                gw = await _spawn(
                    "--child", "gateway", "--url", server.url, "--config", str(config_path)
                )
                await _wait_ready(gw)
                outbox = state / "outbox.sqlite3"
                # Let it connect to all wearables (each advertises; connects are serialised).
                for _ in range(60):
                    await asyncio.sleep(0.5)
                    if sum(w.is_connected for w in wearables) == N_WEARABLES:
                        break
                for w in wearables:
                    if not w.is_connected and not w.is_advertising:
                        await w.start_advertising()
                await asyncio.sleep(2.0)
                connected = sum(w.is_connected for w in wearables)
                print(f"gateway holds {connected}/{N_WEARABLES} wearable links", flush=True)
                before = _outbox_count(outbox, "heart_rate")
                sim_t0, t0 = clock.now(), time.monotonic()
                cpu, rss = await _sample(gw.pid, seconds)
                await asyncio.sleep(1.5)  # the last second's batch
                window_s = time.monotonic() - t0
                stored = _outbox_count(outbox, "heart_rate") - before
                sent = sum(
                    1
                    for t in truth
                    if t.kind == "heart_rate" and sim_t0 <= t.measured_at <= clock.now()
                )
                print(f"heart rate in the window: {sent} sent, {stored} stored", flush=True)
                usages.append(
                    Usage("vitalgate gateway (daemon + outbox)", cpu, rss, stored / window_s)
                )

                # BP measurement -> reading in the outbox.
                for _ in range(5):
                    n = _outbox_count(outbox, "blood_pressure")
                    await bp.measure(1)
                    start = time.perf_counter()
                    await bp.start_advertising()
                    while _outbox_count(outbox, "blood_pressure") <= n:
                        await asyncio.sleep(0.005)
                        if time.perf_counter() - start > 30:
                            raise RuntimeError("BP reading never reached the outbox")
                    latencies.append(time.perf_counter() - start)
                    await asyncio.sleep(0.5)
                gw.send_signal(signal.SIGTERM)
                await gw.wait()
                sent = sum(
                    1 for t in truth if t.kind == "heart_rate" and t.measured_at > gateway_start
                )
                stored = _outbox_count(outbox, "heart_rate")
                print(f"heart rate: {sent} sent while the gateway ran, {stored} stored", flush=True)
    fsync = _fsync_baseline()
    return usages, latencies, fsync


def _fsync_baseline() -> float:
    """One fsynced SQLite commit on this disk (ms): the floor of any durable hand-off."""
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(Path(tmp) / "x.db", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE t (v BLOB)")
        times = []
        for _ in range(20):
            t = time.perf_counter()
            db.execute("INSERT INTO t VALUES (randomblob(400))")
            times.append(time.perf_counter() - t)
        db.close()
    return statistics.median(times) * 1000


def _write_readme(
    usages: list[Usage], latencies: list[float], fsync_ms: float, seconds: float
) -> None:
    base = usages[0]
    lines = [
        SECTION,
        "",
        f"`python -m bench.gateway`: {N_WEARABLES} simulated heart-rate wearables streaming "
        "(1 Heart Rate Measurement/s each) to one process attached to the simulated radio "
        f"over the relay; CPU (% of one core, mean) and peak RSS sampled with psutil over "
        f"{seconds:.0f} s. Baseline: plain bleak subscribed to the same streams, same run.",
        "",
        "| process | CPU % | RSS MiB | readings or notifications / s | CPU vs baseline |",
        "|---|---:|---:|---:|---:|",
    ]
    for u in usages:
        ratio = u.cpu_pct / base.cpu_pct if base.cpu_pct else float("nan")
        lines.append(
            f"| {u.label} | {u.cpu_pct:.1f} | {u.rss_mib:.0f} | {u.notifications_per_s:.1f} "
            f"| {ratio:.2f} |"
        )
    lines += [
        "",
        "BP measurement -> reading in the outbox (advertise, connect, re-encrypt, device "
        "clock check/set, indication, signal checks, fsynced outbox commit), with the gateway "
        f"serving the {N_WEARABLES} streams meanwhile:",
        "",
        "| runs | median ms | max ms | baseline: one fsynced SQLite commit, ms |",
        "|---:|---:|---:|---:|",
        f"| {len(latencies)} | {statistics.median(latencies) * 1000:.0f} "
        f"| {max(latencies) * 1000:.0f} | {fsync_ms:.1f} |",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} cores (shared). Simulation CPU of the radio "
        "and devices is in the parent process and not counted.",
        "",
    ]
    section = "\n".join(lines)
    text = README.read_text(encoding="utf-8") if README.exists() else "# Benchmarks\n\n"
    if SECTION + "\n" in text:
        head, _, rest = text.partition(SECTION + "\n")
        next_heading = rest.find("\n## ")
        tail = rest[next_heading + 1 :] if next_heading >= 0 else ""
        text = head + section + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    README.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="sampling window")
    parser.add_argument("--no-readme", action="store_true")
    parser.add_argument("--child", choices=["baseline", "gateway"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--addresses", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--pair", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "baseline":
        asyncio.run(_child_baseline(args.url, args.addresses.split(","), args.seconds))
        return
    if args.child == "gateway":
        asyncio.run(_child_gateway(args.url, args.config, args.pair))
        return
    usages, latencies, fsync_ms = asyncio.run(_run(args.seconds))
    for u in usages:
        print(
            f"{u.label:40} CPU {u.cpu_pct:5.1f} %  RSS {u.rss_mib:6.1f} MiB  "
            f"{u.notifications_per_s:6.1f}/s"
        )
    print(
        f"BP -> outbox latency: median {statistics.median(latencies) * 1000:.0f} ms, "
        f"max {max(latencies) * 1000:.0f} ms (fsync baseline {fsync_ms:.1f} ms)"
    )
    if not args.no_readme:
        _write_readme(usages, latencies, fsync_ms, args.seconds)
        print(f"updated {README}")


if __name__ == "__main__":
    main()
