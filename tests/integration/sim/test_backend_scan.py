"""Scanning through plain bleak on the simulated radio."""

from __future__ import annotations

import asyncio

from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.uuids import normalize_uuid_str

from tests.integration.sim._peripherals import ECHO_SERVICE, EchoPeripheral, HeartRateLike
from vitalgate.firmware_sim.world import SimWorld


async def test_service_filter_finds_device_with_name_and_service_data(sim_world: SimWorld) -> None:
    echo = await sim_world.add(EchoPeripheral(seed=1, service_data=b"\x07\x08"))
    other = await sim_world.add(HeartRateLike(seed=2))
    await echo.start_advertising()
    await other.start_advertising()

    found = await BleakScanner.discover(timeout=0.3, return_adv=True, service_uuids=[ECHO_SERVICE])

    assert list(found) == [echo.address]
    device, adv = found[echo.address]
    assert device.name == "Echo-1"
    assert adv.local_name == "Echo-1"
    assert adv.service_uuids == [ECHO_SERVICE]
    assert adv.service_data == {ECHO_SERVICE: b"\x07\x08"}
    assert adv.manufacturer_data == {0xFFFF: b"\xca\xfe"}
    assert adv.rssi == -50
    # pitfall 3: the bumble address (with its type) survives in details
    assert device.details.address.is_random
    assert device.details.address.to_string(False) == echo.address


async def test_sixteen_bit_filter_is_normalised(sim_world: SimWorld) -> None:
    heart = await sim_world.add(HeartRateLike(seed=3))
    echo = await sim_world.add(EchoPeripheral(seed=4))
    await heart.start_advertising()
    await echo.start_advertising()

    device = await BleakScanner.find_device_by_filter(
        lambda d, a: True, timeout=2.0, service_uuids=["180D"]
    )

    assert device is not None
    assert device.address == heart.address
    scanner_found: list[tuple[BLEDevice, AdvertisementData]] = []
    async with BleakScanner(lambda d, a: scanner_found.append((d, a)), ["180d"]):
        await asyncio.sleep(0.1)
    assert {d.address for d, _ in scanner_found} == {heart.address}
    assert scanner_found[0][1].service_uuids == [normalize_uuid_str("180D")]


async def test_stopped_advertising_is_not_found(sim_world: SimWorld) -> None:
    echo = await sim_world.add(EchoPeripheral(seed=5))
    await echo.start_advertising()
    assert await BleakScanner.find_device_by_address(echo.address, timeout=1.0) is not None
    await echo.stop_advertising()

    assert await BleakScanner.find_device_by_address(echo.address, timeout=0.2) is None


async def test_scanner_restart_clears_seen_devices(sim_world: SimWorld) -> None:
    echo = await sim_world.add(EchoPeripheral(seed=6))
    await echo.start_advertising()
    scanner = BleakScanner()
    async with scanner:
        await asyncio.sleep(0.1)
    assert [d.address for d in scanner.discovered_devices] == [echo.address]
    await echo.stop_advertising()
    async with scanner:
        await asyncio.sleep(0.1)
    assert scanner.discovered_devices == []


async def test_advertising_data_update_is_seen(sim_world: SimWorld) -> None:
    echo = await sim_world.add(EchoPeripheral(seed=7, service_data=b"\x00"))
    await echo.start_advertising()
    await echo.set_advertising_data(service_data={ECHO_SERVICE: b"\x2a"})
    seen = asyncio.Event()

    def on_adv(device: BLEDevice, adv: AdvertisementData) -> None:
        if adv.service_data.get(ECHO_SERVICE) == b"\x2a":
            seen.set()

    async with BleakScanner(on_adv):
        await asyncio.wait_for(seen.wait(), 1.0)
