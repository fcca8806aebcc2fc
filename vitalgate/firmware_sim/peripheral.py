"""Base class of every simulated BLE peripheral (BP monitor, glucose meter, CGM, ...).

A :class:`SimPeripheral` is a real bumble device on the world's :class:`~.link.SimLink`: its own
controller, GATT server, SMP (LE Secure Connections) and advertiser. A device model subclasses it,
builds its GATT services in :meth:`SimPeripheral.build_services` (using
:meth:`SimPeripheral.make_characteristic` to keep that short) and reacts to the hooks
(:meth:`~SimPeripheral.on_connected`, :meth:`~SimPeripheral.on_disconnected`,
:meth:`~SimPeripheral.on_subscription`). Example::

    class Thermometer(SimPeripheral):
        def __init__(self, *, seed: int) -> None:
            super().__init__(name="Thermo", seed=seed, service_uuids=["1809"], passkey=123456,
                             require_bonding=True)

        def build_services(self) -> list[Service]:
            self.temperature = self.make_characteristic("2A1C", indicate=True)
            return [Service("1809", [self.temperature])]

        def on_subscription(self, characteristic, notify, indicate) -> None:
            if characteristic is self.temperature and indicate:
                self.spawn(self.indicate(self.temperature, encode_temperature(...)))

    async with SimWorld() as world:
        thermo = await world.add(Thermometer(seed=1))
        await thermo.start_advertising()

Read callbacks return the value bytes, write callbacks receive them; both may be coroutines and
may raise :class:`SimAttError` to answer with an ATT error code (for example 0x80.. application
errors or 0x13 Value Not Allowed). Addresses are random static addresses derived from the seed,
so a scenario with the same seeds produces the same addresses.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from bleak.uuids import normalize_uuid_str
from bumble import att, hci, pairing
from bumble.controller import Controller
from bumble.device import (
    AdvertisingEventProperties,
    AdvertisingParameters,
    AdvertisingSet,
    Connection,
    Device,
    DeviceConfiguration,
)
from bumble.gatt import (
    GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR,
    Characteristic,
    CharacteristicValue,
    Descriptor,
    Service,
)
from bumble.host import Host
from bumble.keys import MemoryKeyStore
from bumble.transport.common import AsyncPipeSink

from vitalgate.errors import DeviceError
from vitalgate.firmware_sim._connection import LinkLost, while_connected
from vitalgate.firmware_sim.link import SimController

if TYPE_CHECKING:
    from vitalgate.firmware_sim.world import SimWorld

__all__ = [
    "BLUETOOTH_BASE_UUID_SUFFIX",
    "PeripheralNotConnected",
    "ReadCallback",
    "SimAttError",
    "SimPeripheral",
    "WriteCallback",
    "random_static_address",
    "uuid_to_bumble",
]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

#: A read callback: returns the characteristic value (may be a coroutine).
ReadCallback = Callable[[], bytes | Awaitable[bytes]]
#: A write callback: receives the written bytes (may be a coroutine).
WriteCallback = Callable[[bytes], Awaitable[None] | None]

BLUETOOTH_BASE_UUID_SUFFIX = "-0000-1000-8000-00805f9b34fb"

_AD_FLAGS = 0x01
_AD_COMPLETE_16_BIT_UUIDS = 0x03
_AD_COMPLETE_128_BIT_UUIDS = 0x07
_AD_COMPLETE_LOCAL_NAME = 0x09
_AD_SERVICE_DATA_16_BIT = 0x16
_AD_SERVICE_DATA_128_BIT = 0x21
_AD_MANUFACTURER_DATA = 0xFF
_FLAGS_LE_GENERAL_DISCOVERABLE_NO_BREDR = 0x06
_MAX_EXTENDED_ADVERTISING_DATA = 251

#: HCI reason 0x08 "Connection Timeout": what a central sees when a link is lost.
REASON_CONNECTION_TIMEOUT = 0x08


class SimAttError(Exception):
    """Raise from a read/write callback to answer the central with ATT error ``code``."""

    def __init__(self, code: int, message: str = "") -> None:
        if not 0x01 <= code <= 0xFF:
            raise ValueError(f"ATT error code must be 0x01..0xFF, got {code:#x}")
        self.code = code
        super().__init__(message or f"ATT error 0x{code:02X}")


class PeripheralNotConnected(DeviceError):
    """A notify/indicate/disconnect was attempted while no central is connected."""


def random_static_address(seed: int) -> str:
    """A random static address (two top bits set) derived from ``seed``, e.g. ``'C7:12:..'``."""
    octets = bytearray(random.Random(f"vitalgate-address-{seed}").randbytes(6))
    octets[0] |= 0xC0
    if octets[1:] == b"\x00" * 5 or octets[1:] == b"\xff" * 5:
        octets[5] ^= 0x01  # all-zero / all-one random parts are forbidden
    return ":".join(f"{b:02X}" for b in octets)


def uuid_to_bumble(uuid: str) -> Any:
    """A 16-bit or 128-bit UUID string ('1810', '0x1810', full form) as a bumble UUID."""
    from bumble.core import UUID

    full = normalize_uuid_str(uuid.removeprefix("0x"))
    if full.endswith(BLUETOOTH_BASE_UUID_SUFFIX) and full.startswith("0000"):
        return UUID.from_16_bits(int(full[4:8], 16))
    return UUID(full)


def _ad(ad_type: int, payload: bytes) -> bytes:
    return bytes([len(payload) + 1, ad_type]) + payload


def _uuid_bytes(uuid: str) -> bytes:
    """Little-endian PDU bytes of a UUID: 2 bytes for SIG UUIDs, 16 otherwise."""
    return bytes(uuid_to_bumble(uuid).to_pdu_bytes())


class _PeripheralPairingDelegate(pairing.PairingDelegate):
    """Displays the peripheral's fixed passkey; refuses while ``refuse_pairing`` is set."""

    def __init__(self, peripheral: SimPeripheral) -> None:
        io = (
            pairing.PairingDelegate.IoCapability.DISPLAY_OUTPUT_ONLY
            if peripheral.passkey is not None
            else pairing.PairingDelegate.IoCapability.NO_OUTPUT_NO_INPUT
        )
        super().__init__(io_capability=io)
        self._peripheral = peripheral

    async def accept(self) -> bool:
        return not self._peripheral.refuse_pairing

    async def generate_passkey(self) -> int:
        passkey = self._peripheral.passkey
        if passkey is None:  # pragma: no cover - only asked with DISPLAY io capability
            raise DeviceError(f"{self._peripheral.name}: no passkey configured")
        return passkey

    async def display_number(self, number: int, digits: int) -> None:
        _log.debug("%s displays its passkey", self._peripheral.name)


class SimPeripheral:
    """A simulated BLE peripheral; subclass it and override :meth:`build_services`.

    Args:
        name: Advertised complete local name and GAP device name.
        seed: Seeds the random static address (and nothing else here); device models use their
            own seeded generators for data.
        service_uuids: Service UUIDs to advertise ('1810' or full 128-bit form).
        service_data: Service data to advertise, by service UUID.
        manufacturer_data: Manufacturer specific data to advertise, by company id.
        passkey: The 6-digit passkey the device "displays" (io capability DisplayOnly). ``None``
            means a device without display (Just Works pairing, no MITM protection).
        require_bonding: Characteristics made with :meth:`make_characteristic` default to
            needing an encrypted link, including their CCCDs (pitfall 7).
        advertising_interval_ms: Advertising interval (real timers; 100 ms default).
        auto_readvertise: Start advertising again after a disconnection (many devices instead
            advertise only after a new measurement: set False and call
            :meth:`start_advertising` yourself).

    Mutable at any time: ``refuse_pairing`` (pairing requests fail with "pairing not
    supported"), ``passkey``, :attr:`latency_s`, and the advertising content through
    :meth:`set_advertising_data`.
    """

    def __init__(
        self,
        *,
        name: str,
        seed: int,
        service_uuids: Sequence[str] = (),
        service_data: Mapping[str, bytes] | None = None,
        manufacturer_data: Mapping[int, bytes] | None = None,
        passkey: int | None = None,
        require_bonding: bool = False,
        advertising_interval_ms: float = 100.0,
        auto_readvertise: bool = True,
    ) -> None:
        if passkey is not None and not 0 <= passkey <= 999_999:
            raise ValueError(f"passkey must be 0..999999, got {passkey}")
        if advertising_interval_ms < 20.0:
            raise ValueError(
                f"advertising_interval_ms must be >= 20, got {advertising_interval_ms}"
            )
        self.name = name
        self.seed = seed
        self.address: str = random_static_address(seed)
        self.service_uuids: list[str] = [normalize_uuid_str(u) for u in service_uuids]
        self.service_data: dict[str, bytes] = {
            normalize_uuid_str(k): bytes(v) for k, v in (service_data or {}).items()
        }
        self.manufacturer_data: dict[int, bytes] = {
            int(k): bytes(v) for k, v in (manufacturer_data or {}).items()
        }
        self.passkey = passkey
        self.require_bonding = require_bonding
        self.refuse_pairing = False
        self.advertising_interval_ms = advertising_interval_ms
        self.auto_readvertise = auto_readvertise
        self._latency_s = 0.0
        self._world: SimWorld | None = None
        self._controller: Controller | None = None
        self._device: Device | None = None
        self._connection: Connection | None = None
        self._advertising_set: AdvertisingSet | None = None
        #: Sets the controller ended on a connection: bumble keeps each (and its handle, one of
        #: 240) until it is removed, so they are removed before the next advertising starts.
        self._ended_advertising_sets: list[AdvertisingSet] = []
        self._want_advertising = False
        self._connected_event = asyncio.Event()
        self.keystore = MemoryKeyStore()

    # ------------------------------------------------------------------ for subclasses
    def build_services(self) -> Sequence[Service]:
        """Return this device's GATT services (called once, when added to a world)."""
        return []

    def on_connected(self, connection: Connection) -> None:
        """Hook: a central connected (advertising has stopped)."""

    def on_disconnected(self, reason: int) -> None:
        """Hook: the central disconnected or the link was lost (HCI ``reason``)."""

    def on_subscription(
        self, characteristic: Characteristic[bytes], notify: bool, indicate: bool
    ) -> None:
        """Hook: the central wrote a CCCD (``notify``/``indicate`` are the new states)."""

    def on_encryption_changed(self, encrypted: bool) -> None:
        """Hook: the link became encrypted (after pairing, or re-encryption with a bond)."""

    def make_characteristic(
        self,
        uuid: str,
        *,
        read: ReadCallback | None = None,
        write: WriteCallback | None = None,
        write_without_response: bool = False,
        notify: bool = False,
        indicate: bool = False,
        value: bytes | None = None,
        encrypted: bool | None = None,
        descriptors: Sequence[Descriptor] = (),
    ) -> Characteristic[bytes]:
        """Build a characteristic from callbacks (or a static ``value``).

        ``read`` makes it readable, ``write`` writable with response, and
        ``write_without_response=True`` (with ``write``) also accepts write commands.
        ``encrypted`` (default: ``require_bonding``) demands an encrypted link for reads,
        writes and, for notify/indicate, for writing the CCCD: the central gets ATT error 0x0F
        (Insufficient Encryption) until it has paired or re-encrypted with its bond.
        """
        if read is not None and value is not None:
            raise ValueError("give either read= or value=, not both")
        if write_without_response and write is None:
            raise ValueError("write_without_response needs a write callback")
        secure = self.require_bonding if encrypted is None else encrypted
        properties = Characteristic.Properties(0)
        permissions = att.Attribute.Permissions(0)
        if read is not None or value is not None:
            properties |= Characteristic.Properties.READ
            permissions |= att.Attribute.READABLE
            if secure:
                permissions |= att.Attribute.READ_REQUIRES_ENCRYPTION
        if write is not None:
            properties |= Characteristic.Properties.WRITE
            permissions |= att.Attribute.WRITEABLE
            if secure:
                permissions |= att.Attribute.WRITE_REQUIRES_ENCRYPTION
        if write_without_response:
            properties |= Characteristic.Properties.WRITE_WITHOUT_RESPONSE
        if notify:
            properties |= Characteristic.Properties.NOTIFY
        if indicate:
            properties |= Characteristic.Properties.INDICATE

        # bumble's GATT server does not check permissions itself: the value answers
        # Read/Write Not Permitted like a real server does.
        reader: Callable[[Connection], Awaitable[bytes]] | Callable[[Connection], bytes]
        if read is not None:
            reader = _wrap_read(read)
        elif value is not None:
            static = bytes(value)
            reader = _wrap_read(lambda: static)
        else:
            reader = _refuse_read
        attribute_value = CharacteristicValue(
            read=reader,
            write=_wrap_write(write) if write is not None else _refuse_write,
        )
        characteristic: Characteristic[bytes] = Characteristic(
            uuid_to_bumble(uuid), properties, permissions, attribute_value, list(descriptors)
        )
        if notify or indicate:
            cccd_permissions = att.Attribute.READABLE | att.Attribute.WRITEABLE
            if secure:
                cccd_permissions |= att.Attribute.WRITE_REQUIRES_ENCRYPTION
            characteristic.descriptors = [
                *characteristic.descriptors,
                Descriptor(
                    GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR,
                    cccd_permissions,
                    self._cccd_value(characteristic),
                ),
            ]
        return characteristic

    # ------------------------------------------------------------------ state
    @property
    def world(self) -> SimWorld:
        if self._world is None:
            raise DeviceError(f"{self.name} has not been added to a SimWorld")
        return self._world

    @property
    def device(self) -> Device:
        """The bumble Device (available once added to a world)."""
        if self._device is None:
            raise DeviceError(f"{self.name} has not been added to a SimWorld")
        return self._device

    @property
    def controller(self) -> Controller:
        if self._controller is None:
            raise DeviceError(f"{self.name} has not been added to a SimWorld")
        return self._controller

    @property
    def connection(self) -> Connection | None:
        """The current connection to a central, or ``None``."""
        return self._connection

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    @property
    def is_encrypted(self) -> bool:
        return self._connection is not None and bool(self._connection.is_encrypted)

    @property
    def mtu(self) -> int:
        """ATT MTU of the current connection (23 until the central negotiates)."""
        if self._connection is None:
            raise PeripheralNotConnected(f"{self.name}: not connected")
        return int(self._connection.att_mtu)

    @property
    def is_advertising(self) -> bool:
        return self._advertising_set is not None and self._connection is None

    @property
    def latency_s(self) -> float:
        """Extra delay of every packet this device sends (slow responses); 0 = none."""
        return self._latency_s

    @latency_s.setter
    def latency_s(self, value: float) -> None:
        if value < 0:
            raise ValueError(f"latency_s must be >= 0, got {value}")
        self._latency_s = value
        if self._world is not None and self._controller is not None:
            self._world.link.set_latency(self._controller, value)

    def is_subscribed(self, characteristic: Characteristic[bytes]) -> bool:
        """Whether the connected central enabled notifications or indications."""
        return self._cccd_bits(characteristic) != 0

    async def wait_connected(self, timeout_s: float) -> Connection:
        """Wait until a central is connected; raises TimeoutError after ``timeout_s``."""
        async with asyncio.timeout(timeout_s):
            while self._connection is None:
                self._connected_event.clear()
                await self._connected_event.wait()
        return self._connection

    def spawn(self, coro: Coroutine[Any, Any, _T], *, name: str | None = None) -> asyncio.Task[_T]:
        """Run ``coro`` as a task owned by the world (cancelled when the world closes)."""
        return self.world.spawn(coro, name=name or f"{self.name}-task")

    # ------------------------------------------------------------------ advertising
    def advertising_data(self) -> bytes:
        """The advertising payload: flags, name, service UUIDs, service and manufacturer data."""
        parts = [_ad(_AD_FLAGS, bytes([_FLAGS_LE_GENERAL_DISCOVERABLE_NO_BREDR]))]
        parts.append(_ad(_AD_COMPLETE_LOCAL_NAME, self.name.encode("utf-8")))
        short = [u for u in self.service_uuids if len(_uuid_bytes(u)) == 2]
        long_ = [u for u in self.service_uuids if len(_uuid_bytes(u)) == 16]
        if short:
            parts.append(_ad(_AD_COMPLETE_16_BIT_UUIDS, b"".join(_uuid_bytes(u) for u in short)))
        if long_:
            parts.append(_ad(_AD_COMPLETE_128_BIT_UUIDS, b"".join(_uuid_bytes(u) for u in long_)))
        for uuid, data in self.service_data.items():
            raw = _uuid_bytes(uuid)
            kind = _AD_SERVICE_DATA_16_BIT if len(raw) == 2 else _AD_SERVICE_DATA_128_BIT
            parts.append(_ad(kind, raw + data))
        for company_id, data in self.manufacturer_data.items():
            parts.append(_ad(_AD_MANUFACTURER_DATA, company_id.to_bytes(2, "little") + data))
        payload = b"".join(parts)
        if len(payload) > _MAX_EXTENDED_ADVERTISING_DATA:
            raise DeviceError(
                f"{self.name}: advertising data is {len(payload)} bytes, "
                f"more than {_MAX_EXTENDED_ADVERTISING_DATA}"
            )
        return payload

    async def start_advertising(self) -> None:
        """Advertise (connectable) until a central connects or :meth:`stop_advertising`."""
        self._want_advertising = True
        if self._connection is not None:
            return  # resumes after the disconnection if auto_readvertise
        await self._stop_advertising_set()
        properties = AdvertisingEventProperties(
            is_connectable=True, is_scannable=False, is_legacy=False
        )
        parameters = AdvertisingParameters(
            advertising_event_properties=properties,
            primary_advertising_interval_min=self.advertising_interval_ms,
            primary_advertising_interval_max=self.advertising_interval_ms,
            own_address_type=hci.OwnAddressType.RANDOM,
        )
        self._advertising_set = await self.device.create_advertising_set(
            advertising_parameters=parameters,
            random_address=hci.Address(self.address, hci.Address.RANDOM_DEVICE_ADDRESS),
            advertising_data=self.advertising_data(),
            auto_start=True,
            auto_restart=False,
        )

    async def stop_advertising(self) -> None:
        self._want_advertising = False
        await self._stop_advertising_set()

    async def set_advertising_data(
        self,
        *,
        service_data: Mapping[str, bytes] | None = None,
        manufacturer_data: Mapping[int, bytes] | None = None,
    ) -> None:
        """Replace service and/or manufacturer data; takes effect at once if advertising."""
        if service_data is not None:
            self.service_data = {normalize_uuid_str(k): bytes(v) for k, v in service_data.items()}
        if manufacturer_data is not None:
            self.manufacturer_data = {int(k): bytes(v) for k, v in manufacturer_data.items()}
        if self._advertising_set is not None:
            await self._advertising_set.set_advertising_data(self.advertising_data())

    # ------------------------------------------------------------------ traffic
    async def notify(
        self, characteristic: Characteristic[bytes], data: bytes, *, truncate: bool = False
    ) -> bool:
        """Send a notification; returns False if the central has not enabled notifications.

        Raises :class:`PeripheralNotConnected` without a central, and ``ValueError`` if ``data``
        does not fit in ATT_MTU-3 (unless ``truncate=True``, which cuts it like a buggy
        firmware would).
        """
        connection = self._require_connection()
        if not self._cccd_bits(characteristic) & 0x01:
            return False
        payload = self._fit(connection, data, truncate)
        await self.device.notify_subscriber(connection, characteristic, payload)
        return True

    async def indicate(
        self, characteristic: Characteristic[bytes], data: bytes, *, truncate: bool = False
    ) -> bool:
        """Send an indication and wait for the central's confirmation.

        Returns False if indications are not enabled; raises :class:`PeripheralNotConnected`
        if there is no central or it disconnects before confirming.
        """
        connection = self._require_connection()
        if not self._cccd_bits(characteristic) & 0x02:
            return False
        payload = self._fit(connection, data, truncate)
        try:
            await while_connected(
                connection, self.device.indicate_subscriber(connection, characteristic, payload)
            )
        except LinkLost as exc:
            raise PeripheralNotConnected(f"{self.name}: central gone before confirming") from exc
        return True

    async def disconnect(self, reason: int = REASON_CONNECTION_TIMEOUT) -> None:
        """Drop the connection with HCI ``reason`` (0x08 looks like a supervision timeout)."""
        connection = self._require_connection()
        await self.device.disconnect(connection, reason)

    def vanish(self) -> None:
        """Go silent without a disconnect; the central sees reason 0x08 after the timeout."""
        self.world.link.vanish(self.controller)

    def reappear(self) -> None:
        """Be heard again (advertising resumes if it was on)."""
        self.world.link.reappear(self.controller)

    @property
    def vanished(self) -> bool:
        return self._world is not None and self.world.link.is_vanished(self.controller)

    async def forget_bonds(self) -> None:
        """Delete every bond the device holds (like a factory reset)."""
        await self.keystore.delete_all()

    # ------------------------------------------------------------------ world plumbing
    async def _attach(self, world: SimWorld) -> None:
        """Create the controller and device on ``world``'s link and power it on."""
        if self._world is not None:
            raise DeviceError(f"{self.name} is already in a SimWorld")
        address = hci.Address(self.address, hci.Address.RANDOM_DEVICE_ADDRESS)
        controller = SimController(f"sim-{self.name}-{self.address}", link=world.link)
        config = DeviceConfiguration(
            name=self.name,
            address=address,
            identity_address_type=hci.Address.RANDOM_DEVICE_ADDRESS,
            io_capability=int(
                pairing.PairingDelegate.IoCapability.DISPLAY_OUTPUT_ONLY
                if self.passkey is not None
                else pairing.PairingDelegate.IoCapability.NO_OUTPUT_NO_INPUT
            ),
        )
        device = Device(config=config, host=Host(controller, AsyncPipeSink(controller)))
        device.keystore = self.keystore
        device.pairing_config_factory = lambda _connection: pairing.PairingConfig(
            sc=True,
            mitm=self.passkey is not None,
            bonding=True,
            delegate=_PeripheralPairingDelegate(self),
            identity_address_type=pairing.PairingConfig.AddressType.RANDOM,
        )
        device.on(device.EVENT_CONNECTION, self._on_connection)
        device.on("characteristic_subscription", self._on_subscription)
        self._world = world
        self._controller = controller
        self._device = device
        await device.power_on()
        device.add_services(list(self.build_services()))
        if self._latency_s:
            world.link.set_latency(controller, self._latency_s)

    async def _detach(self) -> None:
        if self._device is not None and self._world is not None:
            await self._stop_advertising_set()
            self._world.link.remove_controller(self.controller)

    def _on_connection(self, connection: Connection) -> None:
        if connection.role != hci.Role.PERIPHERAL:
            return
        self._connection = connection
        self._connected_event.set()
        if self._advertising_set is not None:
            # The controller stopped it on connect; its handle stays taken until removed.
            self._ended_advertising_sets.append(self._advertising_set)
            self._advertising_set = None
        connection.on(
            connection.EVENT_DISCONNECTION,
            lambda reason: self._on_disconnection(connection, reason),
        )
        connection.on(
            connection.EVENT_CONNECTION_ENCRYPTION_CHANGE,
            lambda: self.on_encryption_changed(bool(connection.is_encrypted)),
        )
        self.on_connected(connection)

    def _on_disconnection(self, connection: Connection, reason: int) -> None:
        if self._connection is connection:
            self._connection = None
        self.on_disconnected(int(reason))
        if (
            self.auto_readvertise
            and self._want_advertising
            and self._world is not None
            and not self._world.closing
        ):
            self.world.spawn(
                self.start_advertising(), name=f"{self.name}-readvertise", cancel_on_close=False
            )

    def _on_subscription(
        self, _bearer: Any, characteristic: Characteristic[bytes], notify: bool, indicate: bool
    ) -> None:
        self.on_subscription(characteristic, bool(notify), bool(indicate))

    async def _stop_advertising_set(self) -> None:
        advertising_set, self._advertising_set = self._advertising_set, None
        if advertising_set is not None:
            await advertising_set.stop()
            await advertising_set.remove()
        while self._ended_advertising_sets:
            await self._ended_advertising_sets.pop().remove()

    def _require_connection(self) -> Connection:
        if self._connection is None:
            raise PeripheralNotConnected(f"{self.name}: no central connected")
        return self._connection

    def _fit(self, connection: Connection, data: bytes, truncate: bool) -> bytes:
        limit = int(connection.att_mtu) - 3
        if len(data) <= limit:
            return bytes(data)
        if truncate:
            return bytes(data[:limit])
        raise ValueError(
            f"{self.name}: {len(data)} bytes do not fit ATT_MTU-3 = {limit}; "
            "the central must negotiate a larger MTU"
        )

    def _cccd_bits(self, characteristic: Characteristic[bytes]) -> int:
        if self._connection is None or self._device is None:
            return 0
        cccds = self._device.gatt_server.subscribers.get(self._connection, {})
        value = cccds.get(characteristic.handle)
        return int.from_bytes(value, "little") if value else 0

    def _cccd_value(self, characteristic: Characteristic[bytes]) -> att.AttributeValueV2[bytes]:
        """A CCCD value bound to this device's GATT server (resolved at access time)."""

        def read(bearer: att.Bearer) -> bytes:
            return bytes(self.device.gatt_server.read_cccd(bearer, characteristic))

        def write(bearer: att.Bearer, value: bytes) -> None:
            self.device.gatt_server.write_cccd(bearer, characteristic, value)

        return att.AttributeValueV2(read=read, write=write)


def _refuse_read(_connection: Connection) -> bytes:
    raise att.ATT_Error(error_code=att.ErrorCode.READ_NOT_PERMITTED, message="not readable")


def _refuse_write(_connection: Connection, _value: bytes) -> None:
    raise att.ATT_Error(error_code=att.ErrorCode.WRITE_NOT_PERMITTED, message="not writable")


def _wrap_read(callback: ReadCallback) -> Callable[[Connection], Awaitable[bytes]]:
    async def read(_connection: Connection) -> bytes:
        try:
            result = callback()
            if inspect.isawaitable(result):
                result = await result
        except SimAttError as exc:
            raise att.ATT_Error(error_code=exc.code, message=str(exc)) from exc
        return bytes(result)

    return read


def _wrap_write(callback: WriteCallback) -> Callable[[Connection, bytes], Awaitable[None]]:
    async def write(_connection: Connection, value: bytes) -> None:
        try:
            result = callback(bytes(value))
            if inspect.isawaitable(result):
                await result
        except SimAttError as exc:
            raise att.ATT_Error(error_code=exc.code, message=str(exc)) from exc

    return write
