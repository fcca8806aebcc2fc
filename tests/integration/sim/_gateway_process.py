"""A gateway process for the relay test: pairs, writes a value, holds the link until killed.

Run as ``python -m tests.integration.sim._gateway_process URL BOND_FILE PASSKEY VALUE_HEX``.
"""

from __future__ import annotations

import asyncio
import sys

from bleak import BleakClient, BleakScanner

from tests.integration.sim._peripherals import ECHO_SERVICE, SECRET_CHAR, VALUE_CHAR
from vitalgate.firmware_sim.backend import use_simulation
from vitalgate.firmware_sim.relay import connect_remote_world


async def main(url: str, bond_file: str, passkey: int, value: bytes) -> None:
    async with connect_remote_world(url, bond_store_path=bond_file) as world:
        with use_simulation(world):
            device = await BleakScanner.find_device_by_filter(
                lambda d, a: True, timeout=5.0, service_uuids=[ECHO_SERVICE]
            )
            assert device is not None
            world.known_passkeys[device.address] = passkey
            client = BleakClient(device, pair=True)
            await client.connect()
            await client.read_gatt_char(SECRET_CHAR)
            await client.write_gatt_char(VALUE_CHAR, value, response=True)
            print("ready", flush=True)
            await asyncio.Event().wait()  # hold the connection until killed


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), bytes.fromhex(sys.argv[4])))
