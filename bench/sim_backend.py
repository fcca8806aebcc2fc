"""Notifications per second through the bleak backend over bumble, next to raw bumble.

Run from the repository root: ``python -m bench.sim_backend``. Three measurements in one run,
each for one link and for 20 links held by one central at once (20-byte notifications, every
notification counted at the receiver):

* ``raw bumble, LocalLink``: two plain bumble Devices on bumble's own LocalLink, the central
  subscribed through ``Peer.subscribe`` (the baseline: no vitalgate, no bleak);
* ``raw bumble, SimLink``: the same on vitalgate's SimLink (cost of the fault-capable link);
* ``bleak over BumbleClient``: ``BleakClient.start_notify`` through the simulation backend,
  peripherals sending with ``SimPeripheral.notify`` (what the gateway sees).

Figures are CPU-bound simulation throughput on this machine, not radio timing. The section
"## firmware_sim backend" of bench/README.md is replaced with the figures of this run.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import platform
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bleak import BleakClient, BleakScanner
from bumble.controller import Controller
from bumble.device import Device, DeviceConfiguration, Peer
from bumble.gatt import Characteristic, Service
from bumble.hci import Address
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

from vitalgate.firmware_sim.backend import use_simulation
from vitalgate.firmware_sim.link import SimLink
from vitalgate.firmware_sim.peripheral import SimPeripheral, random_static_address
from vitalgate.firmware_sim.world import SimWorld, quiet_bumble_logging

SERVICE_UUID = "5e1f0001-0000-4000-8000-00000000be0c"
STREAM_UUID = "5e1f0002-0000-4000-8000-00000000be0c"
PAYLOAD = bytes(range(20))
README = Path(__file__).with_name("README.md")
SECTION = "## firmware_sim backend"


@dataclass(frozen=True, slots=True)
class Figure:
    label: str
    links: int
    notifications: int
    elapsed_s: float

    @property
    def per_second(self) -> float:
        return self.notifications / self.elapsed_s


class Counter:
    """Counts received notifications and wakes the waiter at the target."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.count = 0
        self.done = asyncio.Event()

    def __call__(self, *_: object) -> None:
        self.count += 1
        if self.count >= self.target:
            self.done.set()


async def _pump(senders: list[Callable[[], Awaitable[object]]], each: int) -> None:
    """Each sender sends ``each`` notifications; yield to the loop between rounds."""
    for _ in range(each):
        for send in senders:
            await send()
        await asyncio.sleep(0)


async def raw_bumble(links: int, each: int, *, sim_link: bool) -> Figure:
    link = SimLink() if sim_link else LocalLink()  # type: ignore[no-untyped-call]
    central_controller = Controller("central", link=link)
    central = Device(
        config=DeviceConfiguration(name="central", address=Address("F0:00:00:00:00:01")),
        host=Host(central_controller, AsyncPipeSink(central_controller)),
    )
    await central.power_on()
    counter = Counter(links * each)
    senders: list[Callable[[], Awaitable[object]]] = []
    for i in range(links):
        address = random_static_address(1000 + i)
        controller = Controller(f"p{i}", link=link)
        peripheral = Device(
            config=DeviceConfiguration(name=f"p{i}", address=Address(address)),
            host=Host(controller, AsyncPipeSink(controller)),
        )
        stream: Characteristic[bytes] = Characteristic(
            STREAM_UUID, Characteristic.Properties.NOTIFY, Characteristic.READABLE, b""
        )
        peripheral.add_service(Service(SERVICE_UUID, [stream]))
        await peripheral.power_on()
        await peripheral.start_advertising(advertising_interval_min=20.0)
        connection = await central.connect(address)
        peer = Peer(connection)
        await peer.request_mtu(247)
        await peer.discover_all()  # type: ignore[no-untyped-call]
        proxy = peer.get_characteristics_by_uuid(stream.uuid)[0]
        await peer.subscribe(proxy, counter)
        peripheral_connection = next(iter(peripheral.connections.values()))

        def send(
            device: Device = peripheral,
            conn: object = peripheral_connection,
            char: Characteristic[bytes] = stream,
        ) -> Awaitable[None]:
            return device.notify_subscriber(conn, char, PAYLOAD)  # type: ignore[arg-type]

        senders.append(send)
    started = time.perf_counter()
    await _pump(senders, each)
    await counter.done.wait()
    elapsed = time.perf_counter() - started
    label = "raw bumble, SimLink" if sim_link else "raw bumble, LocalLink"
    if isinstance(link, SimLink):
        link.close()
    return Figure(label, links, counter.count, elapsed)


class Streamer(SimPeripheral):
    def build_services(self) -> list[Service]:
        self.stream = self.make_characteristic(STREAM_UUID, notify=True)
        return [Service(SERVICE_UUID, [self.stream])]


def _notifier(peripheral: Streamer) -> Callable[[], Awaitable[object]]:
    def send() -> Awaitable[bool]:
        return peripheral.notify(peripheral.stream, PAYLOAD)

    return send


async def through_backend(links: int, each: int) -> Figure:
    async with SimWorld(seed=1) as world:
        peripherals = [
            await world.add(
                Streamer(
                    name=f"S{i}",
                    seed=2000 + i,
                    service_uuids=[SERVICE_UUID],
                    advertising_interval_ms=20.0,
                )
            )
            for i in range(links)
        ]
        for peripheral in peripherals:
            await peripheral.start_advertising()
        counter = Counter(links * each)
        with use_simulation(world):
            clients = []
            for peripheral in peripherals:
                device = await BleakScanner.find_device_by_address(peripheral.address, timeout=5)
                assert device is not None
                client = BleakClient(device)
                await client.connect()
                await client.start_notify(STREAM_UUID, counter)
                clients.append(client)
            senders = [_notifier(p) for p in peripherals]
            started = time.perf_counter()
            await _pump(senders, each)
            await counter.done.wait()
            elapsed = time.perf_counter() - started
            for client in clients:
                await client.disconnect()
    return Figure("bleak over BumbleClient", links, counter.count, elapsed)


def _write_readme(figures: list[Figure], notes: str) -> None:
    lines = [
        SECTION,
        "",
        "`python -m bench.sim_backend`: 20-byte notifications/s received by one central",
        "(CPU-bound simulation on this machine, not radio timing; baseline measured in the",
        "same run; best of several runs). Raw bumble = plain bumble Devices, `Peer.subscribe`,",
        "no bleak; SimLink = vitalgate's fault-capable link.",
        "",
        "| path | links | notifications | seconds | notifications/s | vs raw LocalLink |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    baselines = {f.links: f.per_second for f in figures if f.label == "raw bumble, LocalLink"}
    for f in figures:
        ratio = f.per_second / baselines[f.links]
        lines.append(
            f"| {f.label} | {f.links} | {f.notifications} | {f.elapsed_s:.3f} "
            f"| {f.per_second:,.0f} | {ratio:.2f} |"
        )
    lines += ["", notes, ""]
    section = "\n".join(lines)
    text = README.read_text(encoding="utf-8") if README.exists() else "# Benchmarks\n\n"
    if SECTION in text:
        head, _, rest = text.partition(SECTION)
        next_heading = rest.find("\n## ")
        tail = rest[next_heading + 1 :] if next_heading >= 0 else ""
        text = head + section + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    README.write_text(text, encoding="utf-8")


async def _best_of(repeats: int, run: Callable[[], Awaitable[Figure]]) -> Figure:
    """The fastest of ``repeats`` runs (the machine is shared: the best run is the least
    disturbed one)."""
    figures = [await run() for _ in range(repeats)]
    return min(figures, key=lambda f: f.elapsed_s)


async def main(each_single: int, each_multi: int, repeats: int, write: bool) -> None:
    quiet_bumble_logging()
    figures: list[Figure] = []
    for links, each in ((1, each_single), (20, each_multi)):
        figures.append(
            await _best_of(repeats, functools.partial(raw_bumble, links, each, sim_link=False))
        )
        figures.append(
            await _best_of(repeats, functools.partial(raw_bumble, links, each, sim_link=True))
        )
        figures.append(await _best_of(repeats, functools.partial(through_backend, links, each)))
    width = max(len(f.label) for f in figures)
    for f in figures:
        print(
            f"{f.label:<{width}}  links={f.links:>2}  n={f.notifications:>6}  "
            f"{f.elapsed_s:7.3f} s  {f.per_second:>10,.0f} notifications/s"
        )
    if write:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        notes = f"Measured {stamp}, Python {platform.python_version()}, {platform.machine()}."
        _write_readme(figures, notes)
        print(f"updated {README}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--each-single", type=int, default=5_000, help="notifications, 1 link")
    parser.add_argument("--each-multi", type=int, default=250, help="notifications per link, 20")
    parser.add_argument("--repeats", type=int, default=3, help="best of N runs per figure")
    parser.add_argument("--no-readme", action="store_true", help="do not update bench/README.md")
    args = parser.parse_args()
    asyncio.run(main(args.each_single, args.each_multi, args.repeats, not args.no_readme))
