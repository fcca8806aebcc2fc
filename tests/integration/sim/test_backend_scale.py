"""Twenty simulated peripherals on one radio, one central connected to all of them at once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AsyncExitStack

from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from tests.integration.sim._peripherals import ECHO_SERVICE, STREAM_CHAR, EchoPeripheral
from vitalgate.firmware_sim.world import SimWorld

DEVICES = 20


def _collector(into: list[bytes]) -> Callable[[BleakGATTCharacteristic, bytearray], None]:
    def collect(sender: BleakGATTCharacteristic, data: bytearray) -> None:
        into.append(bytes(data))

    return collect


NOTIFICATIONS_EACH = 50


async def test_twenty_devices_connected_at_once_exchange_notifications(
    sim_world: SimWorld,
) -> None:
    peripherals = [
        await sim_world.add(EchoPeripheral(seed=100 + i, advertising_interval_ms=50.0))
        for i in range(DEVICES)
    ]
    for peripheral in peripherals:
        await peripheral.start_advertising()

    found: dict[str, BLEDevice] = {}
    all_found = asyncio.Event()

    def on_adv(device: BLEDevice, adv: AdvertisementData) -> None:
        found[device.address] = device
        if len(found) == DEVICES:
            all_found.set()

    async with BleakScanner(on_adv, [ECHO_SERVICE]):
        await asyncio.wait_for(all_found.wait(), 3.0)

    received: dict[str, list[bytes]] = {p.address: [] for p in peripherals}
    async with AsyncExitStack() as stack:
        clients = [BleakClient(found[p.address]) for p in peripherals]
        # concurrent connects are serialised by the central (one pending LE connect)
        async with asyncio.TaskGroup() as group:
            for client in clients:
                group.create_task(client.connect())
        for client in clients:
            stack.push_async_callback(client.disconnect)
            await client.start_notify(STREAM_CHAR, _collector(received[client.address]))
        assert all(p.is_connected for p in peripherals)

        async def stream(peripheral: EchoPeripheral) -> None:
            for n in range(NOTIFICATIONS_EACH):
                assert await peripheral.notify(peripheral.stream_char, n.to_bytes(2, "little"))
                await asyncio.sleep(0)

        async with asyncio.TaskGroup() as group:
            for peripheral in peripherals:
                group.create_task(stream(peripheral))
        await asyncio.sleep(0.05)

    expected = [n.to_bytes(2, "little") for n in range(NOTIFICATIONS_EACH)]
    assert received == {p.address: expected for p in peripherals}
    assert not any(p.is_connected for p in peripherals)
