"""Devices in their own process, a gateway killed -9 and restarted: bonds and device state stay."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakBluetoothNotAvailableError, BleakError

from tests.integration.sim._peripherals import SECRET_CHAR, SECRET_VALUE, VALUE_CHAR
from vitalgate.errors import ConfigError, DeviceError
from vitalgate.firmware_sim.backend import use_simulation
from vitalgate.firmware_sim.peripheral import random_static_address
from vitalgate.firmware_sim.relay import connect_remote_world, parse_relay_url

REPO_ROOT = Path(__file__).resolve().parents[3]
DEVICE_SEED = 31
DEVICE_PASSKEY = 246810  # EchoPeripheral's default
STARTUP_TIMEOUT_S = 30.0


async def _spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        *args,
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )


async def _line(process: asyncio.subprocess.Process, timeout_s: float) -> str:
    assert process.stdout is not None
    raw = await asyncio.wait_for(process.stdout.readline(), timeout_s)
    return raw.decode().strip()


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.kill()
    await process.wait()


@pytest_asyncio.fixture
async def devices_process() -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    process = await _spawn("tests.integration.sim._device_process", str(DEVICE_SEED))
    try:
        url = await _line(process, STARTUP_TIMEOUT_S)
        assert url.startswith("tcp://127.0.0.1:")
        yield process, url
    finally:
        await _stop(process)


class CountingHandler:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def __call__(self, address: str, name: str) -> int | None:
        self.calls.append((address, name))
        return None


async def test_gateway_killed_and_restarted_keeps_bonds_and_device_state(
    devices_process: tuple[asyncio.subprocess.Process, str], tmp_path: Path
) -> None:
    devices, url = devices_process
    bonds = tmp_path / "bonds.json"

    # 1. a gateway process pairs (passkey), writes a value and holds the link; then kill -9
    gateway = await _spawn(
        "tests.integration.sim._gateway_process", url, str(bonds), str(DEVICE_PASSKEY), "c0ffee"
    )
    try:
        assert await _line(gateway, STARTUP_TIMEOUT_S) == "ready"
    finally:
        await _stop(gateway)
    assert gateway.returncode == -9

    # 2. the device saw its central vanish and kept what was written
    assert await _line(devices, 5.0) == "disconnected 0x08 value=c0ffee"

    # 3. the restarted gateway (this process) reconnects encrypted with the stored bond
    handler = CountingHandler()
    address = random_static_address(DEVICE_SEED)
    async with connect_remote_world(url, bond_store_path=bonds) as world:
        world.passkey_handler = handler
        with use_simulation(world):
            device = await BleakScanner.find_device_by_address(address, timeout=5.0)
            assert device is not None
            async with BleakClient(device) as client:
                assert await client.read_gatt_char(SECRET_CHAR) == SECRET_VALUE
                assert await client.read_gatt_char(VALUE_CHAR) == bytes.fromhex("c0ffee")
    assert handler.calls == []
    assert await _line(devices, 5.0) == "disconnected 0x13 value=c0ffee"


async def test_devices_process_dying_is_seen_by_the_gateway(
    devices_process: tuple[asyncio.subprocess.Process, str],
) -> None:
    devices, url = devices_process
    dropped = asyncio.Event()
    async with connect_remote_world(url) as world:
        with use_simulation(world):
            address = random_static_address(DEVICE_SEED)
            client = BleakClient(address, lambda c: dropped.set(), timeout=5.0)
            await client.connect()
            devices.kill()
            await asyncio.wait_for(dropped.wait(), 5.0)
            assert not client.is_connected
            with pytest.raises(BleakError, match="not connected"):
                await client.read_gatt_char(VALUE_CHAR)
            with pytest.raises(BleakBluetoothNotAvailableError):
                await BleakScanner.discover(timeout=0.1)
            with pytest.raises(BleakBluetoothNotAvailableError):
                await client.connect()


async def test_unreachable_radio_is_a_clear_error() -> None:
    with pytest.raises(DeviceError, match="cannot reach"):
        async with connect_remote_world("tcp://127.0.0.1:9"):
            pass


def test_relay_url_is_validated() -> None:
    assert parse_relay_url("tcp://127.0.0.1:4000") == ("127.0.0.1", 4000)
    with pytest.raises(ConfigError):
        parse_relay_url("ws://127.0.0.1:4000")
