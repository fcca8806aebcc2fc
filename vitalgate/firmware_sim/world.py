"""The simulated world: one virtual radio, the gateway's adapter (a central) and the peripherals.

:class:`SimWorld` is an async context manager owning

* a :class:`~.link.SimLink` (bumble LocalLink with latency, vanishing devices and a supervision
  timeout),
* a :class:`SimCentral`: the bumble Device that plays the host's Bluetooth adapter for the bleak
  backend (LE Secure Connections, passkey entry, bonding with ``identity_address_type=RANDOM``,
  a bond store: a JSON file when ``bond_store_path`` is given, else memory), its pairing agent
  and the lock that serialises LE connects,
* the peripherals added with :meth:`SimWorld.add`, and the tasks they spawn.

Usage::

    async with SimWorld(seed=7) as world:
        bp = await world.add(BloodPressureMonitor(seed=1))   # a SimPeripheral subclass
        await bp.start_advertising()
        with use_simulation(world):                          # vitalgate.firmware_sim.backend
            device = await BleakScanner.find_device_by_name(bp.name)
            async with BleakClient(device) as client:
                await client.pair()                          # passkey via world.passkey_handler

The pairing agent asks ``world.passkey_handler(address, name)`` for the passkey the user would
type; the default handler answers from ``world.known_passkeys[address]`` (filled by
:meth:`SimWorld.add` from each peripheral's ``passkey``) and refuses (``None``) otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

from bumble import hci, pairing
from bumble.device import Advertisement, Connection, Device, DeviceConfiguration
from bumble.host import Host
from bumble.keys import JsonKeyStore, KeyStore, MemoryKeyStore
from bumble.transport.common import AsyncPipeSink

from vitalgate.errors import DeviceError
from vitalgate.files import write_private
from vitalgate.firmware_sim.link import SimController, SimLink
from vitalgate.firmware_sim.peripheral import SimPeripheral, random_static_address

__all__ = [
    "PasskeyHandler",
    "SimCentral",
    "SimCentralHost",
    "SimWorld",
    "central_address_for",
    "quiet_bumble_logging",
]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")
_P = TypeVar("_P", bound=SimPeripheral)

#: Called with the device address and name; returns the 6-digit passkey, or None to refuse.
PasskeyHandler = Callable[[str, str], Awaitable[int | None]]

#: The central's advertisement listeners get every advertisement report while registered.
AdvertisementListener = Callable[[Advertisement], None]

DEFAULT_CENTRAL_NAME = "vitalgate-gateway"
#: How long closing waits for short procedures spawned with ``cancel_on_close=False``.
_CLOSE_GRACE_S = 2.0


def central_address_for(seed: int) -> str:
    """The gateway central's random static address for ``seed`` (stable across restarts)."""
    return random_static_address(random.Random(f"vitalgate-central-{seed}").randrange(1 << 62))


def quiet_bumble_logging() -> None:
    """Set bumble's loggers to ERROR: it logs ANSI-coloured warnings for normal events."""
    logging.getLogger("bumble").setLevel(logging.ERROR)


class _PrivateJsonKeyStore(JsonKeyStore):
    """bumble's JSON bond store, written with mode 0600 and off the event loop."""

    async def save(self, db: dict[str, dict[str, dict[str, Any]]]) -> None:
        await asyncio.to_thread(self._save_sync, db)

    def _save_sync(self, db: dict[str, dict[str, dict[str, Any]]]) -> None:
        import json

        directory = Path(self.directory_name)
        directory.mkdir(parents=True, exist_ok=True)
        write_private(self.filename, json.dumps(db, sort_keys=True, indent=4), sync=False)


class _CentralPairingDelegate(pairing.PairingDelegate):
    """The gateway's side of pairing: types the passkey the agent's handler returns."""

    def __init__(self, central: SimCentral, connection: Connection) -> None:
        super().__init__(
            io_capability=pairing.PairingDelegate.IoCapability.KEYBOARD_INPUT_ONLY,
        )
        self._central = central
        self._connection = connection

    async def get_number(self) -> int | None:
        address = self._connection.peer_address.to_string(False)
        name = self._central.names.get(address, "")
        passkey = await self._central.passkey_handler(address, name)
        if passkey is not None and not 0 <= passkey <= 999_999:
            _log.warning("passkey handler returned an out-of-range passkey; refusing")
            return None
        return passkey


class SimCentral:
    """The host's Bluetooth adapter in simulation: a bumble central with agent and bond store.

    Created by :class:`SimWorld` (controller on the local link) or by
    :func:`vitalgate.firmware_sim.relay.connect_remote_world` (controller in the device
    process, reached over HCI/TCP). The bleak backend uses only this object.
    """

    def __init__(self, device: Device, keystore: KeyStore) -> None:
        self.device = device
        self.keystore = keystore
        #: LE connects are serialised: a controller has one pending LE connect (pitfall 11).
        self.connect_lock = asyncio.Lock()
        #: Passkeys the default handler answers with, by device address ('C3:..').
        self.known_passkeys: dict[str, int] = {}
        #: Names seen in advertisements, by address (passed to the passkey handler).
        self.names: dict[str, str] = {}
        self.passkey_handler: PasskeyHandler = self.default_passkey_handler
        #: False once the HCI transport to the controller is lost (the devices' process of a
        #: relay went away); the backend then reports Bluetooth as not available.
        self.available = True
        self._listeners: dict[object, AdvertisementListener] = {}
        self._scan_lock = asyncio.Lock()
        device.on(device.EVENT_ADVERTISEMENT, self._on_advertisement)
        device.on(device.EVENT_FLUSH, self._on_transport_lost)

    @classmethod
    async def create(
        cls,
        host: Host,
        *,
        address: str,
        name: str = DEFAULT_CENTRAL_NAME,
        bond_store_path: str | os.PathLike[str] | None = None,
    ) -> SimCentral:
        """Build and power on a central on ``host`` (bonds in ``bond_store_path`` if given)."""
        config = DeviceConfiguration(
            name=name,
            address=hci.Address(address, hci.Address.RANDOM_DEVICE_ADDRESS),
            identity_address_type=hci.Address.RANDOM_DEVICE_ADDRESS,
            io_capability=int(pairing.PairingDelegate.IoCapability.KEYBOARD_INPUT_ONLY),
        )
        device = Device(config=config, host=host)
        keystore: KeyStore
        if bond_store_path is not None:
            keystore = _PrivateJsonKeyStore(namespace=address, filename=os.fspath(bond_store_path))
        else:
            keystore = MemoryKeyStore()
        device.keystore = keystore
        central = cls(device, keystore)
        device.pairing_config_factory = central._pairing_config
        await device.power_on()
        return central

    async def default_passkey_handler(self, address: str, name: str) -> int | None:
        """Answer from :attr:`known_passkeys`; refuse (None) for unknown devices."""
        return self.known_passkeys.get(address.upper())

    def _pairing_config(self, connection: Connection) -> pairing.PairingConfig:
        return pairing.PairingConfig(
            sc=True,
            mitm=True,
            bonding=True,
            delegate=_CentralPairingDelegate(self, connection),
            identity_address_type=pairing.PairingConfig.AddressType.RANDOM,
        )

    # ------------------------------------------------------------------ scanning
    async def add_advertisement_listener(
        self, token: object, listener: AdvertisementListener
    ) -> None:
        """Deliver advertisements to ``listener``; starts scanning for the first listener."""
        async with self._scan_lock:
            self._listeners[token] = listener
            if not self.device.is_scanning:
                await self.device.start_scanning(active=True, filter_duplicates=False)

    async def remove_advertisement_listener(self, token: object) -> None:
        """Stop delivering to ``token``'s listener; stops scanning after the last one."""
        async with self._scan_lock:
            self._listeners.pop(token, None)
            if not self._listeners and self.device.is_scanning:
                await self.device.stop_scanning()

    def _on_transport_lost(self) -> None:
        # bumble has already ended every connection (reason 0) on this event
        self.available = False
        self._listeners.clear()
        _log.warning("the simulated radio's HCI transport was lost")

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        name = advertisement.data.get(advertisement.data.COMPLETE_LOCAL_NAME)
        address = advertisement.address.to_string(False)
        if isinstance(name, str) and name:
            self.names[address] = name
        for listener in list(self._listeners.values()):
            listener(advertisement)

    # ------------------------------------------------------------------ bonds
    async def has_bond(self, address: str) -> bool:
        return await self.keystore.get(address.upper()) is not None

    async def delete_bond(self, address: str) -> None:
        with contextlib.suppress(KeyError):
            await self.keystore.delete(address.upper())

    async def close(self) -> None:
        """Stop scanning and drop every connection (best effort)."""
        self._listeners.clear()
        if not self.available:
            return
        if self.device.is_scanning:
            with contextlib.suppress(Exception):
                await self.device.stop_scanning()
        for connection in list(self.device.connections.values()):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.disconnect(), 1.0)


class SimCentralHost(Protocol):
    """What :func:`~vitalgate.firmware_sim.backend.use_simulation` needs from a world."""

    @property
    def central(self) -> SimCentral: ...

    passkey_handler: PasskeyHandler


class SimWorld:
    """One virtual radio with a central (the gateway's adapter) and simulated peripherals.

    Args:
        seed: Seeds the central's address (peripherals derive theirs from their own seeds).
        supervision_timeout_s: Link supervision timeout applied when a device vanishes.
        bond_store_path: JSON file keeping the central's bonds across gateway restarts
            (created with mode 0600); ``None`` keeps bonds in memory.
        with_central: False for a device-only world (the devices' process of
            ``vitalgate sim serve``: gateways attach their own central through the relay).
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        supervision_timeout_s: float = 2.0,
        bond_store_path: str | os.PathLike[str] | None = None,
        with_central: bool = True,
    ) -> None:
        self.seed = seed
        self.supervision_timeout_s = supervision_timeout_s
        self.bond_store_path = bond_store_path
        self.with_central = with_central
        self.central_address = central_address_for(seed)
        self._link: SimLink | None = None
        self._central: SimCentral | None = None
        self._peripherals: dict[str, SimPeripheral] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._uncancellable: set[asyncio.Task[Any]] = set()
        self._task_errors: list[BaseException] = []
        self._closing = False

    # ------------------------------------------------------------------ lifetime
    async def __aenter__(self) -> Self:
        quiet_bumble_logging()
        self._link = SimLink(supervision_timeout_s=self.supervision_timeout_s)
        if self.with_central:
            controller = SimController("sim-central", link=self._link)
            self._central = await SimCentral.create(
                Host(controller, AsyncPipeSink(controller)),
                address=self.central_address,
                bond_store_path=self.bond_store_path,
            )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closing = True
        if self._uncancellable:
            await asyncio.wait(set(self._uncancellable), timeout=_CLOSE_GRACE_S)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._central is not None:
            await self._central.close()
        for peripheral in list(self._peripherals.values()):
            with contextlib.suppress(Exception):
                await peripheral._detach()
        if self._link is not None:
            self._link.close()
        errors, self._task_errors = self._task_errors, []
        if errors and exc_type is None:
            raise BaseExceptionGroup("simulated device tasks failed", errors)

    # ------------------------------------------------------------------ parts
    @property
    def closing(self) -> bool:
        """True once the world has begun shutting down."""
        return self._closing

    @property
    def link(self) -> SimLink:
        if self._link is None:
            raise DeviceError("SimWorld is not started (use 'async with SimWorld()')")
        return self._link

    @property
    def central(self) -> SimCentral:
        if self._central is None:
            raise DeviceError("this SimWorld has no central (with_central=False or not started)")
        return self._central

    @property
    def passkey_handler(self) -> PasskeyHandler:
        """The pairing agent's handler: ``(address, name) -> passkey | None``."""
        return self.central.passkey_handler

    @passkey_handler.setter
    def passkey_handler(self, handler: PasskeyHandler) -> None:
        self.central.passkey_handler = handler

    @property
    def known_passkeys(self) -> dict[str, int]:
        """Passkeys the default handler answers with, by address."""
        return self.central.known_passkeys

    @property
    def peripherals(self) -> list[SimPeripheral]:
        return list(self._peripherals.values())

    def peripheral(self, address: str) -> SimPeripheral:
        """The peripheral with ``address`` ('C3:..', case-insensitive)."""
        try:
            return self._peripherals[address.upper()]
        except KeyError:
            raise DeviceError(f"no simulated peripheral with address {address}") from None

    async def add(self, peripheral: _P, *, register_passkey: bool = True) -> _P:
        """Put ``peripheral`` on the radio (powered on, services built, not yet advertising).

        With ``register_passkey`` its passkey goes into :attr:`known_passkeys`, so the default
        agent answers correctly; tests of wrong passkeys set :attr:`passkey_handler` instead.
        """
        if peripheral.address in self._peripherals:
            raise DeviceError(
                f"address {peripheral.address} already in use (seed {peripheral.seed} reused?)"
            )
        await peripheral._attach(self)
        self._peripherals[peripheral.address] = peripheral
        if register_passkey and peripheral.passkey is not None and self._central is not None:
            self._central.known_passkeys[peripheral.address] = peripheral.passkey
        return peripheral

    async def remove(self, peripheral: SimPeripheral) -> None:
        """Take ``peripheral`` off the radio (its connection ends with reason 0x08)."""
        self._peripherals.pop(peripheral.address, None)
        await peripheral._detach()

    def spawn(
        self,
        coro: Coroutine[Any, Any, _T],
        *,
        name: str | None = None,
        cancel_on_close: bool = True,
    ) -> asyncio.Task[_T]:
        """Run ``coro`` as a task owned by the world.

        Tasks are cancelled and awaited when the world closes; an exception in one is logged
        at once and re-raised (in an ExceptionGroup) when the world closes, never lost.
        Short procedures that must not be cut in the middle of an HCI command (bumble cannot
        take a cancelled command's late response) pass ``cancel_on_close=False``: the world
        waits for them instead.
        """
        if self._closing:
            coro.close()
            raise DeviceError("SimWorld is closing; cannot start new tasks")
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        if not cancel_on_close:
            self._uncancellable.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        self._uncancellable.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            _log.error("simulated device task %s failed: %r", task.get_name(), error)
            self._task_errors.append(error)
