"""Connect, read, write, notify and indicate through plain bleak."""

from __future__ import annotations

import asyncio

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError, BleakGATTProtocolError
from bleak.uuids import normalize_uuid_16

from tests.integration.sim._peripherals import (
    ECHO_SERVICE,
    EVENTS_CHAR,
    FAULTY_ATT_CODE,
    FAULTY_CHAR,
    STREAM_CHAR,
    VALUE_CHAR,
    EchoPeripheral,
)
from vitalgate.firmware_sim.world import SimWorld


async def _advertised(world: SimWorld, seed: int = 1) -> tuple[EchoPeripheral, BLEDevice]:
    echo = await world.add(EchoPeripheral(seed=seed))
    await echo.start_advertising()
    device = await BleakScanner.find_device_by_address(echo.address, timeout=2.0)
    assert device is not None
    return echo, device


async def test_connect_resolves_services_by_uuid(sim_world: SimWorld) -> None:
    echo, device = await _advertised(sim_world)
    async with BleakClient(device) as client:
        assert client.is_connected
        assert client.backend_id == "vitalgate-sim"
        assert echo.is_connected
        service = client.services.get_service(ECHO_SERVICE)
        assert service is not None
        value = client.services.get_characteristic(VALUE_CHAR)
        assert value is not None
        assert value.properties == ["read", "write-without-response", "write"]
        stream = client.services.get_characteristic(STREAM_CHAR)
        assert stream is not None
        assert [d.uuid for d in stream.descriptors] == [normalize_uuid_16(0x2902)]
        assert client.services.get_service("1800") is not None  # GAP
    assert not client.is_connected


async def test_services_filter_limits_discovery(sim_world: SimWorld) -> None:
    _, device = await _advertised(sim_world)
    async with BleakClient(device, services=[ECHO_SERVICE]) as client:
        assert [s.uuid for s in client.services] == [ECHO_SERVICE]


async def test_connect_by_address_string(sim_world: SimWorld) -> None:
    echo, _ = await _advertised(sim_world)
    async with BleakClient(echo.address.lower()) as client:
        assert await client.read_gatt_char(VALUE_CHAR) == b"initial"


async def test_read_and_write_with_and_without_response(sim_world: SimWorld) -> None:
    echo, device = await _advertised(sim_world)
    async with BleakClient(device) as client:
        assert await client.read_gatt_char(VALUE_CHAR) == bytearray(b"initial")
        await client.write_gatt_char(VALUE_CHAR, b"with-response", response=True)
        assert echo.writes == [b"with-response"]
        await client.write_gatt_char(VALUE_CHAR, bytearray(b"command"), response=False)
        assert await client.read_gatt_char(VALUE_CHAR) == b"command"  # ordered after the command
        assert echo.writes == [b"with-response", b"command"]
        long_value = bytes(range(256)) * 2  # 512 bytes: write long + read blob
        await client.write_gatt_char(VALUE_CHAR, long_value, response=True)
        assert await client.read_gatt_char(VALUE_CHAR) == long_value


async def test_write_without_response_larger_than_mtu_is_refused(sim_world: SimWorld) -> None:
    _, device = await _advertised(sim_world)
    async with BleakClient(device) as client:
        char = client.services.get_characteristic(VALUE_CHAR)
        assert char is not None
        assert char.max_write_without_response_size == 244
        with pytest.raises(BleakError, match="exceeds"):
            await client.write_gatt_char(char, bytes(245), response=False)


async def test_att_error_carries_code(sim_world: SimWorld) -> None:
    _, device = await _advertised(sim_world)
    async with BleakClient(device) as client:
        with pytest.raises(BleakGATTProtocolError) as caught:
            await client.read_gatt_char(FAULTY_CHAR)
        assert caught.value.code == FAULTY_ATT_CODE
        with pytest.raises(BleakGATTProtocolError) as caught:
            await client.write_gatt_char(FAULTY_CHAR, b"x", response=True)
        assert caught.value.code == 0x03  # Write Not Permitted


async def test_descriptor_read_and_cccd_guard(sim_world: SimWorld) -> None:
    _, device = await _advertised(sim_world)
    async with BleakClient(device) as client:
        stream = client.services.get_characteristic(STREAM_CHAR)
        assert stream is not None
        cccd = stream.descriptors[0]
        assert await client.read_gatt_descriptor(cccd) == b"\x00\x00"
        await client.start_notify(stream, lambda c, d: None)
        assert await client.read_gatt_descriptor(cccd.handle) == b"\x01\x00"
        with pytest.raises(ValueError, match="CCCD"):
            await client.write_gatt_descriptor(cccd, b"\x02\x00")


async def test_notify_preferred_and_mtu_247_carries_244_bytes(sim_world: SimWorld) -> None:
    echo, device = await _advertised(sim_world)
    received: asyncio.Queue[tuple[BleakGATTCharacteristic, bytearray]] = asyncio.Queue(10)
    async with BleakClient(device) as client:
        assert client.mtu_size == 247
        await client.start_notify(STREAM_CHAR, lambda c, d: received.put_nowait((c, d)))
        assert echo.subscriptions == [(STREAM_CHAR.upper(), True, False)]  # notify preferred
        assert echo.mtu == 247
        payload = bytes(range(244))
        assert await echo.notify(echo.stream_char, payload)
        sender, data = await asyncio.wait_for(received.get(), 1.0)
        assert sender.uuid == STREAM_CHAR
        assert data == payload
        assert await client.read_gatt_char(STREAM_CHAR, use_cached=True) == payload
        with pytest.raises(ValueError, match="ATT_MTU"):
            await echo.notify(echo.stream_char, bytes(245))
        await client.stop_notify(STREAM_CHAR)
        assert echo.subscriptions[-1] == (STREAM_CHAR.upper(), False, False)
        assert not await echo.notify(echo.stream_char, b"dropped")


async def test_indicate_is_confirmed_and_async_callback_runs(sim_world: SimWorld) -> None:
    echo, device = await _advertised(sim_world)
    received: asyncio.Queue[bytearray] = asyncio.Queue(10)

    async def on_event(sender: BleakGATTCharacteristic, data: bytearray) -> None:
        await received.put(data)

    async with BleakClient(device) as client:
        await client.start_notify(EVENTS_CHAR, on_event)
        assert echo.subscriptions == [(EVENTS_CHAR.upper(), False, True)]
        for i in range(5):
            assert await echo.indicate(echo.events_char, bytes([i]) * 20)  # awaits confirmation
        got = [await asyncio.wait_for(received.get(), 1.0) for _ in range(5)]
        assert got == [bytes([i]) * 20 for i in range(5)]
