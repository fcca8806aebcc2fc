"""The devices' process of the relay test: an EchoPeripheral served over TCP until killed.

Run as ``python -m tests.integration.sim._device_process SEED``; prints the relay URL, then
one line per event (``connected``/``disconnected REASON``) so the test can follow along.
"""

from __future__ import annotations

import asyncio
import sys

from tests.integration.sim._peripherals import EchoPeripheral
from vitalgate.firmware_sim.relay import serve_world
from vitalgate.firmware_sim.world import SimWorld


class ReportingEcho(EchoPeripheral):
    def on_disconnected(self, reason: int) -> None:
        super().on_disconnected(reason)
        print(f"disconnected 0x{reason:02X} value={self.value.hex()}", flush=True)


async def main(seed: int) -> None:
    async with SimWorld(with_central=False) as world:
        echo = await world.add(ReportingEcho(seed=seed))
        await echo.start_advertising()
        async with serve_world(world) as server:
            print(server.url, flush=True)
            await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
