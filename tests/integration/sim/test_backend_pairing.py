"""LE Secure Connections passkey pairing, bonding and encrypted reconnects through plain bleak."""

from __future__ import annotations

from pathlib import Path

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError, BleakGATTProtocolError

from tests.integration.sim._peripherals import SECRET_CHAR, SECRET_VALUE, EchoPeripheral
from vitalgate.firmware_sim.backend import use_simulation
from vitalgate.firmware_sim.world import SimWorld
from vitalgate.gateway import agent

INSUFFICIENT_ENCRYPTION = 0x0F


class CountingHandler:
    """A passkey handler that records its calls and answers with a fixed passkey."""

    def __init__(self, passkey: int | None) -> None:
        self.passkey = passkey
        self.calls: list[tuple[str, str]] = []

    async def __call__(self, address: str, name: str) -> int | None:
        self.calls.append((address, name))
        return self.passkey


async def _advertised(world: SimWorld, **kwargs: object) -> tuple[EchoPeripheral, BLEDevice]:
    echo = await world.add(EchoPeripheral(seed=11, **kwargs))  # type: ignore[arg-type]
    await echo.start_advertising()
    device = await BleakScanner.find_device_by_address(echo.address, timeout=2.0)
    assert device is not None
    return echo, device


async def test_encrypted_characteristic_refuses_before_pairing(sim_world: SimWorld) -> None:
    _, device = await _advertised(sim_world)
    async with BleakClient(device) as client:
        with pytest.raises(BleakGATTProtocolError) as caught:
            await client.read_gatt_char(SECRET_CHAR)
        assert caught.value.code == INSUFFICIENT_ENCRYPTION
        # the CCCD is protected too (pitfall 7) and the failed subscription is rolled back
        with pytest.raises(BleakGATTProtocolError) as caught:
            await client.start_notify(SECRET_CHAR, lambda c, d: None)
        assert caught.value.code == INSUFFICIENT_ENCRYPTION
        await client.pair()
        assert await client.read_gatt_char(SECRET_CHAR) == SECRET_VALUE
        await client.start_notify(SECRET_CHAR, lambda c, d: None)


async def test_right_passkey_pairs_through_gateway_agent(sim_world: SimWorld) -> None:
    echo, device = await _advertised(sim_world, passkey=314159)
    handler = CountingHandler(314159)
    async with BleakClient(device) as client, agent.get_platform_agent_type()(handler):
        await client.pair()
        assert await client.read_gatt_char(SECRET_CHAR) == SECRET_VALUE
    assert handler.calls == [(echo.address, echo.name)]
    # the agent restored the world's default handler on exit
    assert sim_world.passkey_handler != handler


async def test_wrong_passkey_fails_with_clear_error(sim_world: SimWorld) -> None:
    echo, device = await _advertised(sim_world, passkey=111111)
    sim_world.passkey_handler = CountingHandler(222222)
    async with BleakClient(device) as client:
        with pytest.raises(BleakError, match=r"pairing with .* failed: .*CONFIRM_VALUE_FAILED"):
            await client.pair()
        with pytest.raises(BleakGATTProtocolError):
            await client.read_gatt_char(SECRET_CHAR)
    assert not await sim_world.central.has_bond(echo.address)


async def test_agent_refusal_fails_pairing(sim_world: SimWorld) -> None:
    _, device = await _advertised(sim_world)
    sim_world.passkey_handler = CountingHandler(None)
    async with BleakClient(device) as client:
        with pytest.raises(BleakError, match="PASSKEY_ENTRY_FAILED"):
            await client.pair()


async def test_device_refusing_pairing_fails(sim_world: SimWorld) -> None:
    echo, device = await _advertised(sim_world)
    echo.refuse_pairing = True
    async with BleakClient(device) as client:
        with pytest.raises(BleakError, match="PAIRING_NOT_SUPPORTED"):
            await client.pair()


async def test_bonded_reconnect_encrypts_without_second_passkey(sim_world: SimWorld) -> None:
    echo, device = await _advertised(sim_world)
    handler = CountingHandler(echo.passkey)
    sim_world.passkey_handler = handler
    async with BleakClient(device, pair=True) as client:  # connect(pair=True)
        assert await client.read_gatt_char(SECRET_CHAR) == SECRET_VALUE
    assert len(handler.calls) == 1
    assert await sim_world.central.has_bond(echo.address)

    again = await BleakScanner.find_device_by_address(echo.address, timeout=2.0)
    assert again is not None
    async with BleakClient(again) as client:
        assert echo.is_encrypted  # encrypted with the bond on connect, before any request
        assert echo.encryption_changes == [True, True]
        assert await client.read_gatt_char(SECRET_CHAR) == SECRET_VALUE
        await client.pair()  # already bonded: no new pairing
    assert len(handler.calls) == 1


async def test_unpair_forgets_bond(sim_world: SimWorld) -> None:
    echo, device = await _advertised(sim_world)
    async with BleakClient(device, pair=True) as client:
        await client.unpair()
        assert not client.is_connected
    assert not await sim_world.central.has_bond(echo.address)


async def test_device_that_lost_its_bond_is_paired_again(sim_world: SimWorld) -> None:
    echo, device = await _advertised(sim_world)
    handler = CountingHandler(echo.passkey)
    sim_world.passkey_handler = handler
    async with BleakClient(device, pair=True):
        pass
    await echo.forget_bonds()  # factory reset of the device
    again = await BleakScanner.find_device_by_address(echo.address, timeout=2.0)
    assert again is not None
    async with BleakClient(again, pair=True) as client:
        assert await client.read_gatt_char(SECRET_CHAR) == SECRET_VALUE
    assert len(handler.calls) == 2


async def test_bonds_survive_a_gateway_restart_in_the_bond_file(tmp_path: Path) -> None:
    bonds = tmp_path / "bonds.json"
    async with SimWorld(bond_store_path=bonds) as world:
        echo = await world.add(EchoPeripheral(seed=12))
        await echo.start_advertising()
        with use_simulation(world):
            async with BleakClient(echo.address, pair=True):
                pass
    assert bonds.stat().st_mode & 0o777 == 0o600
    async with SimWorld(bond_store_path=bonds) as world:
        assert await world.central.has_bond(echo.address)


async def test_device_without_display_pairs_just_works(sim_world: SimWorld) -> None:
    echo, device = await _advertised(sim_world, passkey=None)
    handler = CountingHandler(None)
    sim_world.passkey_handler = handler
    async with BleakClient(device) as client:
        await client.pair()
        assert echo.is_encrypted
        assert await client.read_gatt_char(SECRET_CHAR) == SECRET_VALUE
    assert handler.calls == []  # no passkey asked for
