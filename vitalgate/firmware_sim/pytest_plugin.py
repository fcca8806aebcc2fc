"""pytest fixtures for tests that talk to simulated devices through plain bleak.

Enable with ``pytest_plugins = ["vitalgate.firmware_sim.pytest_plugin"]`` in a conftest. The
``sim_world`` fixture yields a started :class:`~.world.SimWorld` (one per test, created in the
test's event loop: pitfall 1) with :func:`~.backend.use_simulation` active, so the test body uses
``BleakScanner()`` / ``BleakClient()`` and the gateway's pairing agent with no simulation import.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from vitalgate.firmware_sim.backend import use_simulation
from vitalgate.firmware_sim.world import SimWorld

__all__ = ["sim_world"]


@pytest_asyncio.fixture
async def sim_world() -> AsyncIterator[SimWorld]:
    """A started SimWorld (memory bond store, 2 s supervision timeout), bleak pointed at it."""
    async with SimWorld(seed=0) as world:
        with use_simulation(world):
            yield world
