"""Drops, vanishing devices and slow responses as a gateway sees them through plain bleak."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.exc import BleakDeviceNotFoundError, BleakError
from bumble import core as bumble_core
from bumble import hci

from tests.integration.sim._peripherals import STREAM_CHAR, VALUE_CHAR, EchoPeripheral
from vitalgate.firmware_sim.backend import use_simulation
from vitalgate.firmware_sim.peripheral import PeripheralNotConnected
from vitalgate.firmware_sim.world import SimWorld

SUPERVISION_TIMEOUT_S = 0.5


@pytest_asyncio.fixture
async def short_timeout_world() -> AsyncIterator[SimWorld]:
    async with SimWorld(supervision_timeout_s=SUPERVISION_TIMEOUT_S) as world:
        with use_simulation(world):
            yield world


async def _advertised(world: SimWorld, seed: int = 21) -> tuple[EchoPeripheral, BLEDevice]:
    echo = await world.add(EchoPeripheral(seed=seed))
    await echo.start_advertising()
    device = await BleakScanner.find_device_by_address(echo.address, timeout=2.0)
    assert device is not None
    return echo, device


async def test_callback_fires_on_peripheral_disconnect_only(sim_world: SimWorld) -> None:
    echo, device = await _advertised(sim_world)
    drops: list[BleakClient] = []
    dropped = asyncio.Event()

    def on_disconnect(client: BleakClient) -> None:
        drops.append(client)
        dropped.set()

    client = BleakClient(device, on_disconnect)
    await client.connect()
    await echo.disconnect(reason=0x08)
    await asyncio.wait_for(dropped.wait(), 1.0)
    assert drops == [client]
    assert not client.is_connected
    assert echo.disconnect_reasons == [0x08]

    # a solicited disconnect does not call it
    again = await BleakScanner.find_device_by_address(echo.address, timeout=2.0)
    assert again is not None
    client = BleakClient(again, on_disconnect)
    await client.connect()
    await client.disconnect()
    await asyncio.sleep(0.05)
    assert len(drops) == 1
    assert echo.disconnect_reasons == [0x08, 0x13]


async def test_io_after_a_drop_raises_not_connected(sim_world: SimWorld) -> None:
    echo, device = await _advertised(sim_world)
    client = BleakClient(device)
    await client.connect()
    await echo.disconnect()
    await asyncio.sleep(0.01)
    with pytest.raises(BleakError, match="not connected"):
        await client.read_gatt_char(VALUE_CHAR)
    with pytest.raises(BleakError, match="not connected"):
        await client.write_gatt_char(VALUE_CHAR, b"x", response=True)
    with pytest.raises(BleakError, match=r"[Nn]ot connected"):
        await client.start_notify(STREAM_CHAR, lambda c, d: None)
    await client.disconnect()  # harmless after a drop


async def test_peripheral_indicate_raises_when_central_is_gone(sim_world: SimWorld) -> None:
    echo, device = await _advertised(sim_world)
    async with BleakClient(device):
        pass
    with pytest.raises(PeripheralNotConnected):
        await echo.indicate(echo.events_char, b"\x01")


async def test_vanish_ends_in_supervision_timeout(short_timeout_world: SimWorld) -> None:
    echo, device = await _advertised(short_timeout_world)
    dropped = asyncio.Event()
    client = BleakClient(device, lambda c: dropped.set())
    await client.connect()
    echo.vanish()
    started = time.monotonic()
    # a request in flight hangs until the controller gives up, then fails clearly
    with pytest.raises(BleakError, match="not connected"):
        await client.read_gatt_char(VALUE_CHAR)
    await asyncio.wait_for(dropped.wait(), 1.0)
    elapsed = time.monotonic() - started
    assert SUPERVISION_TIMEOUT_S * 0.9 <= elapsed < SUPERVISION_TIMEOUT_S + 0.5
    assert not client.is_connected
    assert echo.disconnect_reasons == [0x08]
    # while vanished it is not discoverable; after reappearing it advertises again
    assert await BleakScanner.find_device_by_address(echo.address, timeout=0.2) is None
    echo.reappear()
    assert await BleakScanner.find_device_by_address(echo.address, timeout=2.0) is not None


async def test_short_vanish_keeps_the_connection(short_timeout_world: SimWorld) -> None:
    echo, device = await _advertised(short_timeout_world)
    async with BleakClient(device, lambda c: pytest.fail("unexpected drop")) as client:
        echo.vanish()
        read = asyncio.ensure_future(client.read_gatt_char(VALUE_CHAR))
        await asyncio.sleep(SUPERVISION_TIMEOUT_S / 2)
        assert not read.done()
        echo.reappear()
        # the lost request is not retransmitted by ATT; a new one works
        read.cancel()
        with pytest.raises(asyncio.CancelledError):
            await read
        assert client.is_connected
        assert await client.read_gatt_char(VALUE_CHAR) == b"initial"


async def test_latency_slows_responses(sim_world: SimWorld) -> None:
    echo, device = await _advertised(sim_world)
    async with BleakClient(device) as client:
        started = time.monotonic()
        await client.read_gatt_char(VALUE_CHAR)
        fast_s = time.monotonic() - started
        echo.latency_s = 0.1
        started = time.monotonic()
        assert await client.read_gatt_char(VALUE_CHAR) == b"initial"
        slow_s = time.monotonic() - started
        echo.latency_s = 0.0
    assert fast_s < 0.05
    assert 0.1 <= slow_s < 0.3


async def test_connect_to_absent_device_is_not_found(sim_world: SimWorld) -> None:
    echo = await sim_world.add(EchoPeripheral(seed=22))  # on the radio, not advertising
    started = time.monotonic()
    with pytest.raises(BleakDeviceNotFoundError):
        await BleakClient(echo.address, timeout=0.3).connect()
    assert time.monotonic() - started < 1.0
    # the central's connect slot is free again
    await echo.start_advertising()
    async with BleakClient(echo.address, timeout=2.0) as client:
        assert client.is_connected


async def test_connect_abandoned_by_the_caller_leaves_the_radio_usable(sim_world: SimWorld) -> None:
    """An outer timeout cancelling connect() must cancel the controller's pending connect too.

    Before the fix the controller kept the abandoned connect pending: the next connect failed
    with bumble's ``HCI_Error`` (Command Disallowed) instead of a bleak error, and a later
    advertisement completed a connection nobody waited for (an assertion inside bumble).
    """
    echo = await sim_world.add(EchoPeripheral(seed=23))  # on the radio, not advertising
    for _ in range(3):
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await BleakClient(echo.address, timeout=5.0).connect()
    with pytest.raises(BleakDeviceNotFoundError):
        await BleakClient(echo.address, timeout=0.2).connect()
    await echo.start_advertising()
    await asyncio.sleep(0.1)  # a stale pending connect would complete now
    assert echo.disconnect_reasons == []
    async with BleakClient(echo.address, timeout=2.0) as client:
        assert await client.read_gatt_char(VALUE_CHAR) == b"initial"


async def test_hci_errors_on_connect_are_bleak_errors(sim_world: SimWorld) -> None:
    """A controller refusing LE Create Connection surfaces as BleakError, not bumble's HCI_Error.

    A connect started straight through bumble and then cancelled leaves the controller busy
    (bumble does not cancel it): exactly the state in which the command is refused.
    """
    echo = await sim_world.add(EchoPeripheral(seed=24))
    device = sim_world.central.device
    raw = asyncio.create_task(device.connect(echo.address, timeout=None))
    await asyncio.sleep(0.05)
    raw.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await raw
    try:
        with pytest.raises(BleakError, match="COMMAND_DISALLOWED") as caught:
            await BleakClient(echo.address, timeout=0.5).connect()
        assert not isinstance(caught.value, bumble_core.BaseBumbleError)
        assert isinstance(caught.value.__cause__, hci.HCI_Error)
    finally:
        await device.send_sync_command(hci.HCI_LE_Create_Connection_Cancel_Command())
    await asyncio.sleep(0.05)
    await echo.start_advertising()
    async with BleakClient(echo.address, timeout=2.0) as client:
        assert client.is_connected


async def test_subscribing_to_a_plain_characteristic_is_a_bleak_error(sim_world: SimWorld) -> None:
    _echo, device = await _advertised(sim_world, seed=25)
    async with BleakClient(device) as client:
        with pytest.raises(BleakError) as caught:
            await client.start_notify(VALUE_CHAR, lambda c, d: None)
        assert not isinstance(caught.value, bumble_core.BaseBumbleError)
        # the link is still fine
        assert await client.read_gatt_char(VALUE_CHAR) == b"initial"
