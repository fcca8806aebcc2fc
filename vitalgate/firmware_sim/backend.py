"""A bleak backend over bumble: ordinary bleak code talks to simulated peripherals.

:class:`BumbleScanner` and :class:`BumbleClient` fulfil bleak's ``BaseBleakScanner`` /
``BaseBleakClient`` contracts on a world's :class:`~.world.SimCentral`. :func:`use_simulation`
points bleak's platform backend resolution (and the gateway's pairing agent resolution) at a
world, so production code keeps calling plain ``BleakScanner()`` / ``BleakClient()``::

    async with SimWorld() as world:
        ...
        with use_simulation(world):
            async with BleakClient(ble_device) as client:   # no backend= anywhere
                await client.pair()

Behaviour a gateway relies on, as a real stack does it:

* scanning filters on full 128-bit service UUIDs (16-bit ones are normalised), reports name,
  service UUIDs, service data, manufacturer data and RSSI; ``BLEDevice.details`` is a
  :class:`SimDeviceDetails` keeping the bumble address (address type included);
* ``connect()`` negotiates ATT MTU 247, re-encrypts with a stored bond instead of re-pairing,
  pairs first with ``pair=True``, and resolves the services by UUID;
* ``pair()`` runs LE Secure Connections passkey entry with bonding; the passkey comes from the
  world's agent (``world.passkey_handler``); failures raise :class:`SimPairingError`;
* ATT errors raise ``BleakGATTProtocolError`` with the code; I/O on a dropped link raises
  :class:`SimNotConnectedError` ("not connected");
* the disconnected callback fires on unsolicited drops only, never on ``disconnect()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid as uuid_module
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

import bleak
import bleak.backends.client as bleak_client_module
import bleak.backends.scanner as bleak_scanner_module
from bleak.args import SizedBuffer
from bleak.assigned_numbers import CharacteristicPropertyName
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakBluetoothNotAvailableReason,
    BleakDeviceNotFoundError,
    BleakError,
    BleakGATTProtocolError,
)
from bleak.uuids import normalize_uuid_str
from bumble import att, core, hci, smp
from bumble.core import AdvertisingData
from bumble.device import Advertisement, Connection, Peer
from bumble.gatt_client import CharacteristicProxy, DescriptorProxy, ServiceProxy

from vitalgate.firmware_sim._connection import LinkLost, while_connected
from vitalgate.firmware_sim.world import PasskeyHandler, SimCentral, SimCentralHost

__all__ = [
    "BACKEND_ID",
    "REQUESTED_MTU",
    "BumbleClient",
    "BumbleScanner",
    "SimDeviceDetails",
    "SimNotConnectedError",
    "SimPairingAgent",
    "SimPairingError",
    "SimTimeoutError",
    "use_simulation",
]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

#: ``backend_id`` reported by BleakScanner/BleakClient in simulation.
BACKEND_ID = "vitalgate-sim"
#: ATT MTU the client asks for on connect (244-byte notifications fit).
REQUESTED_MTU = 247
_HCI_REMOTE_USER_TERMINATED = 0x13
#: Bound on the clean-up of a connect the caller abandoned (cancel + wait for its end).
_ABANDON_TIMEOUT_S = 1.0

_PROPERTY_NAMES: dict[int, CharacteristicPropertyName] = {
    0x01: "broadcast",
    0x02: "read",
    0x04: "write-without-response",
    0x08: "write",
    0x10: "notify",
    0x20: "indicate",
    0x40: "authenticated-signed-writes",
    0x80: "extended-properties",
}


class SimNotConnectedError(BleakError):
    """I/O on a client that is not (or no longer) connected."""


class SimTimeoutError(BleakError, TimeoutError):
    """The peer did not answer a GATT request in time (bumble's ATT transaction timeout)."""


class SimPairingError(BleakError):
    """Pairing failed; ``reason`` names the SMP/HCI reason (e.g. ``DHKEY_CHECK_FAILED``)."""

    def __init__(self, address: str, reason: str) -> None:
        self.address = address
        self.reason = reason
        super().__init__(f"pairing with {address} failed: {reason}")


@dataclass(frozen=True, slots=True)
class SimDeviceDetails:
    """``BLEDevice.details`` in simulation: the bumble address keeps its type (pitfall 3)."""

    address: hci.Address
    advertisement: Advertisement


def _uuid_str(value: core.UUID) -> str:
    """A bumble UUID as bleak's normalised lowercase 128-bit string."""
    return str(uuid_module.UUID(bytes=bytes(reversed(value.to_bytes(force_128=True)))))


def _host_of(cls: type[Any]) -> SimCentralHost:
    host = getattr(cls, "_sim_host", None)
    if host is None:
        raise BleakError(
            f"{cls.__name__} is not bound to a simulated world: use "
            "vitalgate.firmware_sim.backend.use_simulation(world) or pass sim_world=world"
        )
    return host  # type: ignore[no-any-return]


def _require_radio(central: SimCentral) -> None:
    if not central.available:
        raise BleakBluetoothNotAvailableError(
            "the simulated radio is gone (HCI transport lost)",
            BleakBluetoothNotAvailableReason.POWERED_OFF,
        )


def advertisement_to_bleak(advertisement: Advertisement) -> AdvertisementData:
    """Translate a bumble advertisement report into bleak's ``AdvertisementData``."""
    data: AdvertisingData = advertisement.data
    name = data.get(AdvertisingData.COMPLETE_LOCAL_NAME) or data.get(
        AdvertisingData.SHORTENED_LOCAL_NAME
    )
    service_uuids: list[str] = []
    for list_type in (
        AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
        AdvertisingData.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
        AdvertisingData.COMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
        AdvertisingData.INCOMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
        AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
        AdvertisingData.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
    ):
        for uuid_list in data.get_all(list_type):
            for value in uuid_list:
                text = _uuid_str(value)
                if text not in service_uuids:
                    service_uuids.append(text)
    service_data: dict[str, bytes] = {}
    for data_type in (
        AdvertisingData.SERVICE_DATA_16_BIT_UUID,
        AdvertisingData.SERVICE_DATA_32_BIT_UUID,
        AdvertisingData.SERVICE_DATA_128_BIT_UUID,
    ):
        for service_uuid, payload in data.get_all(data_type):
            service_data[_uuid_str(service_uuid)] = bytes(payload)
    manufacturer_data: dict[int, bytes] = {
        int(company): bytes(payload)
        for company, payload in data.get_all(AdvertisingData.MANUFACTURER_SPECIFIC_DATA)
    }
    tx_power = data.get(AdvertisingData.TX_POWER_LEVEL)
    return AdvertisementData(
        local_name=name if isinstance(name, str) and name else None,
        manufacturer_data=manufacturer_data,
        service_data=service_data,
        service_uuids=service_uuids,
        tx_power=int(tx_power) if isinstance(tx_power, int) else None,
        rssi=int(advertisement.rssi),
        platform_data=(advertisement,),
    )


class BumbleScanner(BaseBleakScanner):
    """bleak scanner backend on the simulated central.

    Obtain a bound class through :func:`use_simulation`, or pass ``sim_world=world`` with
    ``backend=BumbleScanner``.
    """

    _sim_host: SimCentralHost | None = None

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: Literal["active", "passive"],
        *,
        sim_world: SimCentralHost | None = None,
        **kwargs: Any,
    ) -> None:
        normalized = (
            None if service_uuids is None else [normalize_uuid_str(u) for u in service_uuids]
        )
        super().__init__(detection_callback, normalized)
        host = sim_world if sim_world is not None else _host_of(type(self))
        self._central: SimCentral = host.central
        self._scanning_mode = scanning_mode
        self._token = object()

    async def start(self) -> None:
        _require_radio(self._central)
        self.seen_devices = {}
        await self._central.add_advertisement_listener(self._token, self._on_advertisement)

    async def stop(self) -> None:
        if self._central.available:
            await self._central.remove_advertisement_listener(self._token)

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        adv = advertisement_to_bleak(advertisement)
        if not self.is_allowed_uuid(adv.service_uuids):
            return
        address = advertisement.address.to_string(False)
        device = self.create_or_update_device(
            address,
            address,
            adv.local_name,
            SimDeviceDetails(address=advertisement.address, advertisement=advertisement),
            adv,
        )
        self.call_detection_callbacks(device, adv)


class BumbleClient(BaseBleakClient):
    """bleak client backend on the simulated central (see the module docstring)."""

    _sim_host: SimCentralHost | None = None

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        services: set[str] | None = None,
        *,
        sim_world: SimCentralHost | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("bluez", None)
        kwargs.pop("winrt", None)
        super().__init__(address_or_ble_device, **kwargs)
        host = sim_world if sim_world is not None else _host_of(type(self))
        self._central: SimCentral = host.central
        self.address = self.address.upper()
        if isinstance(address_or_ble_device, BLEDevice) and isinstance(
            address_or_ble_device.details, SimDeviceDetails
        ):
            self._peer_address: hci.Address = address_or_ble_device.details.address
        else:
            self._peer_address = hci.Address(self.address, hci.Address.RANDOM_DEVICE_ADDRESS)
        self._requested_services = (
            None if services is None else {normalize_uuid_str(u) for u in services}
        )
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._mtu = att.ATT_DEFAULT_MTU
        self._disconnect_requested = False
        self._subscribers: dict[int, Callable[[bytes], None]] = {}

    # ------------------------------------------------------------------ properties
    @property
    def name(self) -> str:
        return self._central.names.get(self.address) or self.address.replace(":", "-")

    @property
    def mtu_size(self) -> int:
        return self._mtu

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    # ------------------------------------------------------------------ connection
    async def connect(self, pair: bool, **kwargs: Any) -> None:
        if self._connection is not None:
            return
        _require_radio(self._central)
        timeout = float(kwargs.get("timeout", self._timeout))
        async with self._central.connect_lock:
            connection = await self._create_connection(timeout)
        self._connection = connection
        self._peer = Peer(connection)
        self._disconnect_requested = False
        connection.on(
            connection.EVENT_DISCONNECTION,
            lambda reason: self._on_disconnection(connection, reason),
        )
        try:
            self._mtu = await self._io(lambda peer: peer.request_mtu(REQUESTED_MTU))
            if await self._central.has_bond(self.address):
                await self._encrypt_with_bond()
            if pair and not connection.is_encrypted:
                await self.pair()
            self.services = await self._io(self._discover)
        except BaseException:
            if self._connection is not None:
                with contextlib.suppress(BleakError, core.BaseBumbleError, TimeoutError):
                    await self.disconnect()
            raise

    async def _create_connection(self, timeout_s: float) -> Connection:
        """LE Create Connection, with every bumble failure mapped to a bleak error.

        The procedure runs shielded: if the caller is cancelled (an outer ``asyncio.timeout``,
        a task group shutting down) the controller's pending connect is cancelled too, so the
        next connect does not fail with HCI "Command Disallowed" and a late advertisement does
        not complete a connection nobody waits for.
        """
        device = self._central.device
        # bumble gets no timeout: this method alone cancels the controller's pending connect
        # (two cancels race, and the loser's HCI "Command Disallowed" escapes bumble's connect)
        procedure = asyncio.ensure_future(
            device.connect(self._peer_address, transport=core.PhysicalTransport.LE, timeout=None)
        )
        try:
            done, _ = await asyncio.wait({procedure}, timeout=timeout_s)
        except asyncio.CancelledError:
            await self._abandon_connect(procedure)
            raise
        if not done:
            await self._abandon_connect(procedure)
            raise BleakDeviceNotFoundError(
                self.address, f"Device with address {self.address} was not found."
            )
        try:
            return procedure.result()
        except (core.TimeoutError, TimeoutError) as exc:
            raise BleakDeviceNotFoundError(
                self.address, f"Device with address {self.address} was not found."
            ) from exc
        except core.ConnectionError as exc:
            raise BleakError(f"connecting to {self.address} failed: {exc}") from exc
        except (hci.HCI_Error, hci.HCI_StatusError) as exc:
            raise BleakError(
                f"connecting to {self.address} failed: HCI {_hci_error_name(exc.error_code)}"
            ) from exc
        except core.BaseBumbleError as exc:
            raise BleakError(f"connecting to {self.address} failed: {exc!r}") from exc

    async def _abandon_connect(self, procedure: asyncio.Future[Connection]) -> None:
        """Cancel a connect the caller gave up on, in the controller and in the host."""
        device = self._central.device
        if not procedure.done():
            with contextlib.suppress(hci.HCI_Error, core.BaseBumbleError, TimeoutError):
                # Command Disallowed if the connection completed meanwhile: handled below
                await asyncio.wait_for(
                    device.send_sync_command(hci.HCI_LE_Create_Connection_Cancel_Command()),
                    timeout=_ABANDON_TIMEOUT_S,
                )
        try:
            connection = await asyncio.wait_for(procedure, timeout=_ABANDON_TIMEOUT_S)
        except (core.BaseBumbleError, TimeoutError) as exc:
            _log.debug("abandoned connect to %s ended: %r", self.address, exc)
            return
        # it connected just as the caller gave up: nobody will use the link
        with contextlib.suppress(hci.HCI_Error, core.BaseBumbleError, TimeoutError):
            await asyncio.wait_for(
                device.disconnect(connection, _HCI_REMOTE_USER_TERMINATED),
                timeout=_ABANDON_TIMEOUT_S,
            )

    async def disconnect(self) -> None:
        connection = self._connection
        if connection is None:
            return
        self._disconnect_requested = True
        try:
            await asyncio.wait_for(
                self._central.device.disconnect(connection, _HCI_REMOTE_USER_TERMINATED),
                timeout=5.0,
            )
        except (core.BaseBumbleError, hci.HCI_Error, TimeoutError) as exc:
            _log.debug("disconnect from %s: %r (link already gone?)", self.address, exc)
        finally:
            self._forget_connection(connection)

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        """LE Secure Connections with passkey entry and bonding; re-encrypts if bonded."""
        connection = self._require_connection()
        if connection.is_encrypted:
            return
        if await self._central.has_bond(self.address):
            await self._encrypt_with_bond()
            if connection.is_encrypted:
                return
        try:
            await self._guard(
                connection, lambda: self._central.device.pair(connection), wrap_bumble=False
            )
        except hci.HCI_Error as exc:
            raise SimPairingError(self.address, f"HCI error 0x{exc.error_code:02X}") from exc
        except core.ProtocolError as exc:
            raise SimPairingError(self.address, _smp_reason(exc)) from exc
        except (core.BaseBumbleError, TimeoutError) as exc:
            raise SimPairingError(self.address, repr(exc)) from exc
        if not connection.is_encrypted:
            raise SimPairingError(self.address, "link not encrypted after pairing")

    async def unpair(self) -> None:
        """Forget the bond on the gateway side and disconnect (the device keeps its bond)."""
        await self._central.delete_bond(self.address)
        await self.disconnect()

    # ------------------------------------------------------------------ I/O
    async def read_gatt_char(
        self,
        characteristic: BleakGATTCharacteristic,
        *,
        use_cached: bool = False,
        **kwargs: Any,
    ) -> bytearray:
        proxy: CharacteristicProxy[bytes] = characteristic.obj
        if use_cached:
            cached = self._cached_value(characteristic.handle)
            if cached is not None:
                return bytearray(cached)
        value = await self._io(lambda peer: peer.read_value(proxy))
        return bytearray(value)

    async def read_gatt_descriptor(
        self,
        descriptor: BleakGATTDescriptor,
        *,
        use_cached: bool = False,
        **kwargs: Any,
    ) -> bytearray:
        proxy: DescriptorProxy = descriptor.obj
        value = await self._io(lambda peer: peer.read_value(proxy))
        return bytearray(value)

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        payload = bytes(data)
        if not response and len(payload) > self._mtu - 3:
            raise BleakError(
                f"write without response of {len(payload)} bytes exceeds "
                f"max_write_without_response_size {self._mtu - 3}"
            )
        proxy: CharacteristicProxy[bytes] = characteristic.obj
        await self._io(lambda peer: peer.write_value(proxy, payload, with_response=response))

    async def write_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, data: SizedBuffer
    ) -> None:
        payload = bytes(data)
        proxy: DescriptorProxy = descriptor.obj
        await self._io(lambda peer: peer.write_value(proxy, payload, with_response=True))

    async def start_notify(
        self,
        characteristic: BleakGATTCharacteristic,
        callback: NotifyCallback,
        **kwargs: Any,
    ) -> None:
        """Subscribe, preferring notifications over indications (pitfall 9)."""
        self._require_connection()
        if not {"notify", "indicate"} & set(characteristic.properties):
            # bumble would register a subscriber that never fires; BlueZ answers NotSupported
            raise BleakError(
                f"{self.address}: characteristic {characteristic.uuid} does not support "
                "notifications or indications"
            )
        proxy: CharacteristicProxy[bytes] = characteristic.obj

        def on_value(value: bytes) -> None:
            callback(bytearray(value))

        handle = characteristic.handle
        try:
            await self._io(lambda peer: peer.subscribe(proxy, on_value, prefer_notify=True))
        except BaseException:
            # bumble registers the subscriber before writing the CCCD: roll back (pitfall 8)
            self._drop_local_subscription(handle, on_value, proxy)
            raise
        self._subscribers[handle] = on_value

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        proxy: CharacteristicProxy[bytes] = characteristic.obj
        subscriber = self._subscribers.pop(characteristic.handle, None)
        await self._io(lambda peer: peer.unsubscribe(proxy, subscriber))

    # ------------------------------------------------------------------ internals
    def _require_connection(self) -> Connection:
        if self._connection is None:
            raise SimNotConnectedError(f"{self.address}: not connected")
        return self._connection

    async def _io(self, operation: Callable[[Peer], Coroutine[Any, Any, _T]]) -> _T:
        """Run a GATT operation; map ATT errors and lost links to bleak errors."""
        connection = self._require_connection()
        peer = self._peer
        assert peer is not None
        return await self._guard(connection, lambda: operation(peer))

    async def _guard(
        self,
        connection: Connection,
        factory: Callable[[], Coroutine[Any, Any, _T]],
        *,
        wrap_bumble: bool = True,
    ) -> _T:
        """Run ``factory()`` while connected; bumble errors leave as bleak errors.

        A lost link is :class:`SimNotConnectedError`, an ATT error ``BleakGATTProtocolError``,
        a GATT response timeout :class:`SimTimeoutError`, any other bumble error a
        ``BleakError`` (``wrap_bumble=False`` leaves those to the caller, e.g. pairing).
        """
        try:
            return await while_connected(connection, factory())
        except LinkLost as exc:
            raise SimNotConnectedError(f"{self.address}: not connected ({exc})") from exc
        except att.ATT_Error as exc:
            raise BleakGATTProtocolError(int(exc.error_code)) from exc
        except core.TimeoutError as exc:
            if not wrap_bumble:
                raise
            raise SimTimeoutError(f"{self.address}: {exc or 'GATT response timeout'}") from exc
        except hci.HCI_Error as exc:
            if not wrap_bumble:
                raise
            raise BleakError(f"{self.address}: HCI {_hci_error_name(exc.error_code)}") from exc
        except core.BaseBumbleError as exc:
            if not wrap_bumble:
                raise
            raise BleakError(f"{self.address}: {exc!r}") from exc

    async def _encrypt_with_bond(self) -> None:
        """Start encryption with the stored LTK (pitfall 5); a stale bond is forgotten."""
        connection = self._require_connection()
        try:
            await self._guard(
                connection, lambda: self._central.device.encrypt(connection), wrap_bumble=False
            )
        except hci.HCI_Error as exc:
            _log.warning(
                "re-encryption with %s failed (HCI 0x%02X): the device lost the bond; "
                "forgetting it",
                self.address,
                exc.error_code,
            )
            await self._central.delete_bond(self.address)

    async def _discover(self, peer: Peer) -> BleakGATTServiceCollection:
        collection = BleakGATTServiceCollection()
        services: list[ServiceProxy] = await peer.discover_services()
        for service in services:
            service_uuid = _uuid_str(service.uuid)
            if (
                self._requested_services is not None
                and service_uuid not in self._requested_services
            ):
                continue
            bleak_service = BleakGATTService(service, service.handle, service_uuid)
            collection.add_service(bleak_service)
            characteristics: list[CharacteristicProxy[bytes]] = await peer.discover_characteristics(
                (), service
            )
            for characteristic in characteristics:
                properties = [
                    name
                    for bit, name in _PROPERTY_NAMES.items()
                    if int(characteristic.properties) & bit
                ]
                bleak_characteristic = BleakGATTCharacteristic(
                    characteristic,
                    characteristic.handle,
                    _uuid_str(characteristic.uuid),
                    properties,
                    self._max_write_without_response_size,
                    bleak_service,
                )
                collection.add_characteristic(bleak_characteristic)
                descriptors: list[DescriptorProxy] = await peer.discover_descriptors(characteristic)
                for descriptor in descriptors:
                    collection.add_descriptor(
                        BleakGATTDescriptor(
                            descriptor,
                            descriptor.handle,
                            _uuid_str(descriptor.type),
                            bleak_characteristic,
                        )
                    )
        return collection

    def _cached_value(self, handle: int) -> bytes | None:
        """The last value read, notified or indicated on ``handle`` in this connection."""
        connection = self._require_connection()
        if connection.gatt_client is None:
            return None
        entry = connection.gatt_client.cached_values.get(handle)
        return None if entry is None else bytes(entry[1])

    def _max_write_without_response_size(self) -> int:
        return self._mtu - 3

    def _drop_local_subscription(
        self, handle: int, subscriber: Callable[[bytes], None], proxy: CharacteristicProxy[bytes]
    ) -> None:
        connection = self._connection
        if connection is None or connection.gatt_client is None:
            return
        client = connection.gatt_client
        for table in (client.notification_subscribers, client.indication_subscribers):
            subscribers = table.get(handle)
            if subscribers is None:
                continue
            subscribers.discard(subscriber)
            if handle not in self._subscribers:
                subscribers.discard(proxy)
            if not subscribers:
                del table[handle]

    def _on_disconnection(self, connection: Connection, reason: int) -> None:
        if self._connection is not connection:
            return
        solicited = self._disconnect_requested
        self._forget_connection(connection)
        _log.debug("%s disconnected (HCI reason 0x%02X)", self.address, reason)
        if not solicited and self._disconnected_callback is not None:
            asyncio.get_running_loop().call_soon(self._disconnected_callback)

    def _forget_connection(self, connection: Connection) -> None:
        if self._connection is connection:
            self._connection = None
            self._peer = None
            self._subscribers.clear()
            self._mtu = att.ATT_DEFAULT_MTU


def _hci_error_name(code: int | None) -> str:
    if code is None:
        return "unknown error"
    try:
        return f"{hci.HCI_ErrorCode(code).name} (0x{code:02X})"
    except ValueError:
        return f"0x{code:02X}"


def _smp_reason(exc: core.ProtocolError) -> str:
    code = getattr(exc, "error_code", None)
    try:
        return smp.ErrorCode(code).name if code is not None else str(exc)
    except ValueError:
        return str(exc)


class SimPairingAgent:
    """The gateway's pairing agent in simulation (see ``vitalgate.gateway.agent``).

    While entered, ``handler`` answers the world's passkey requests; on exit the previous
    handler is back. Obtain the class bound to a world from ``get_platform_agent_type()``
    inside :func:`use_simulation`, or with :meth:`bound_to`.
    """

    _sim_host: SimCentralHost | None = None

    def __init__(self, handler: PasskeyHandler) -> None:
        self._handler = handler
        self._previous: PasskeyHandler | None = None

    @classmethod
    def bound_to(cls, world: SimCentralHost) -> type[SimPairingAgent]:
        return type("SimPairingAgent", (cls,), {"_sim_host": world})

    async def __aenter__(self) -> Self:
        host = _host_of(type(self))
        self._previous = host.passkey_handler
        host.passkey_handler = self._handler
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        host = _host_of(type(self))
        if self._previous is not None:
            host.passkey_handler = self._previous
            self._previous = None


@contextlib.contextmanager
def use_simulation(world: SimCentralHost) -> Iterator[None]:
    """Make plain ``BleakScanner()`` / ``BleakClient()`` and the gateway agent use ``world``.

    Patches the platform resolution functions where bleak looks them up
    (``bleak.get_platform_*_backend_type`` and their home modules) and
    ``vitalgate.gateway.agent.get_platform_agent_type``; restores all of them on exit.
    Code must call ``agent.get_platform_agent_type()`` through the module (not a copy
    imported before the patch) to see the simulated agent.
    """
    scanner_type: type[BumbleScanner] = type(
        "BumbleScanner", (BumbleScanner,), {"_sim_host": world}
    )
    client_type: type[BumbleClient] = type("BumbleClient", (BumbleClient,), {"_sim_host": world})
    agent_type = SimPairingAgent.bound_to(world)

    def scanner_backend() -> tuple[type[BaseBleakScanner], str]:
        return scanner_type, BACKEND_ID

    def client_backend() -> tuple[type[BaseBleakClient], str]:
        return client_type, BACKEND_ID

    def agent_backend() -> type[SimPairingAgent]:
        return agent_type

    from vitalgate.gateway import agent as agent_module

    patches: list[tuple[Any, str, Any]] = [
        (bleak, "get_platform_scanner_backend_type", scanner_backend),
        (bleak, "get_platform_client_backend_type", client_backend),
        (bleak_scanner_module, "get_platform_scanner_backend_type", scanner_backend),
        (bleak_client_module, "get_platform_client_backend_type", client_backend),
        (agent_module, "get_platform_agent_type", agent_backend),
    ]
    saved = [(module, name, getattr(module, name)) for module, name, _ in patches]
    try:
        for module, name, replacement in patches:
            setattr(module, name, replacement)
        yield
    finally:
        for module, name, original in reversed(saved):
            setattr(module, name, original)
