"""Devices in one process, the gateway in another: the central's HCI over TCP.

The split follows real hardware: the *controller* of the gateway's adapter lives on the radio
(in the devices' process, on the world's :class:`~.link.SimLink`), and the gateway process runs
only the *host* (bumble's Host, SMP, GATT client, bond store), attached through bumble's
``tcp-client`` HCI transport (H4 packets over a TCP stream). So a gateway can be killed -9 and
restarted while the devices keep their stored records and their bonds; the gateway keeps its
own bonds in its JSON bond store.

Devices' process (``vitalgate sim serve`` builds on this)::

    async with SimWorld(with_central=False) as world:
        await world.add(...)
        async with serve_world(world, port=0) as server:
            print(server.url)                   # tcp://127.0.0.1:PORT
            await server.serve_forever()

Gateway process::

    async with connect_remote_world(url, bond_store_path=state_dir / "bonds.json") as world:
        with use_simulation(world):
            ...plain bleak...

Each accepted TCP client gets a fresh controller on the link; when the client goes away (even
killed -9) its controller leaves the radio and the peripherals see their connections end with
reason 0x08, as after a supervision timeout. bumble's link relay (websockets) is not part of
bumble 0.0.236, so this needs no extra dependency.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

from bumble.host import Host
from bumble.transport import open_transport
from bumble.transport.common import StreamPacketSink, StreamPacketSource, Transport

from vitalgate.errors import ConfigError, DeviceError
from vitalgate.firmware_sim.link import SimController
from vitalgate.firmware_sim.world import (
    PasskeyHandler,
    SimCentral,
    SimWorld,
    central_address_for,
    quiet_bumble_logging,
)

__all__ = [
    "RemoteWorld",
    "SimRelayServer",
    "connect_remote_world",
    "parse_relay_url",
    "serve_world",
]

_log = logging.getLogger(__name__)


def parse_relay_url(url: str) -> tuple[str, int]:
    """``tcp://host:port`` -> (host, port); raises ConfigError for anything else."""
    parts = urlsplit(url)
    if parts.scheme != "tcp" or not parts.hostname or parts.port is None:
        raise ConfigError("sim.relay_url", f"expected tcp://HOST:PORT, got {url!r}")
    return parts.hostname, parts.port


class _ControllerSession(StreamPacketSource):
    """One gateway attached over TCP: its own controller on the world's link."""

    def __init__(self, server: SimRelayServer) -> None:
        super().__init__()
        self._server = server
        self.controller: SimController | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        number = next(self._server._session_numbers)
        self.controller = SimController(
            f"relay-central-{number}",
            host_source=self,
            host_sink=StreamPacketSink(transport),
            link=self._server.world.link,
        )
        self._server._sessions.add(self)
        _log.info("gateway %d attached to the simulated radio", number)

    def connection_lost(self, exc: Exception | None) -> None:
        self._server._sessions.discard(self)
        if self.controller is not None:
            self._server.world.link.remove_controller(self.controller)
            self.controller.host = None
            _log.info("gateway %s detached from the simulated radio", self.controller.name)
            self.controller = None
        self.on_transport_lost()


class SimRelayServer:
    """Lets gateway processes attach a central to ``world``'s radio over TCP (HCI H4)."""

    def __init__(self, world: SimWorld, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.world = world
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._sessions: set[_ControllerSession] = set()
        self._session_numbers = itertools.count(1)

    @property
    def url(self) -> str:
        """``tcp://host:port`` for :func:`connect_remote_world` (valid once started)."""
        if self._server is None:
            raise DeviceError("relay server not started")
        port = self._server.sockets[0].getsockname()[1]
        return f"tcp://{self.host}:{port}"

    @property
    def attached_gateways(self) -> int:
        return len(self._sessions)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _ControllerSession(self), host=self.host, port=self.port
        )

    async def serve_forever(self) -> None:
        if self._server is None:
            raise DeviceError("relay server not started")
        await self._server.serve_forever()

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for session in list(self._sessions):
            if session.controller is not None:
                host = session.controller.host
                if isinstance(host, StreamPacketSink):
                    host.transport.close()
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


@contextlib.asynccontextmanager
async def serve_world(
    world: SimWorld, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[SimRelayServer]:
    """Serve ``world``'s radio to gateway processes while the context is open."""
    async with SimRelayServer(world, host=host, port=port) as server:
        yield server


class RemoteWorld:
    """The gateway's handle on a radio in another process: only the central lives here.

    Usable with :func:`~vitalgate.firmware_sim.backend.use_simulation`. Peripherals and their
    faults are controlled in the devices' process.
    """

    def __init__(self, url: str, central: SimCentral, transport: Transport) -> None:
        self.url = url
        self._central = central
        self._transport = transport

    @property
    def central(self) -> SimCentral:
        return self._central

    @property
    def passkey_handler(self) -> PasskeyHandler:
        return self._central.passkey_handler

    @passkey_handler.setter
    def passkey_handler(self, handler: PasskeyHandler) -> None:
        self._central.passkey_handler = handler

    @property
    def known_passkeys(self) -> dict[str, int]:
        return self._central.known_passkeys


@contextlib.asynccontextmanager
async def connect_remote_world(
    url: str,
    *,
    seed: int = 0,
    bond_store_path: str | os.PathLike[str] | None = None,
) -> AsyncIterator[RemoteWorld]:
    """Attach this process's central (host stack) to the radio served at ``url``.

    ``seed`` fixes the central's random static address; keep it (and ``bond_store_path``)
    across gateway restarts so the devices recognise their bonded gateway.
    """
    quiet_bumble_logging()
    host_name, port = parse_relay_url(url)
    try:
        transport = await open_transport(f"tcp-client:{host_name}:{port}")
    except OSError as exc:
        raise DeviceError(f"cannot reach the simulated radio at {url}: {exc}") from exc
    try:
        address = central_address_for(seed)
        central = await SimCentral.create(
            Host(transport.source, transport.sink),
            address=address,
            bond_store_path=bond_store_path,
        )
        try:
            yield RemoteWorld(url, central, transport)
        finally:
            await central.close()
    finally:
        await transport.close()
