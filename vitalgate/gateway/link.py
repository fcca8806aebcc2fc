"""A connected device, through bleak's public API only: characteristics resolved by UUID.

:func:`connect` opens a :class:`Link` with retries (exponential backoff with full jitter, as
bleak-retry-connector does) under the gateway's cap on concurrent connections. The link wraps
bleak errors into :class:`~vitalgate.errors.DeviceError` (``raise ... from``) so sessions and the
supervisor deal with one family, and tells a transient failure (a drop, a timeout: worth a
retry) from a permanent one (a missing characteristic, a refused procedure).

Protocol timeouts (connect, quiet periods, RACP progress) are radio timing and run on the event
loop's real clock; timestamps come from the injected gateway clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError, BleakGATTProtocolError

from vitalgate.errors import DeviceError

__all__ = [
    "Backoff",
    "Link",
    "NotifyCallback",
    "TransientDeviceError",
    "connect",
    "first_error",
]

_log = logging.getLogger(__name__)

NotifyCallback = Callable[[bytes], None]


class TransientDeviceError(DeviceError):
    """A failure worth retrying: the link dropped, an operation timed out, the device was busy."""


class GattProtocolError(DeviceError):
    """The device answered a GATT request with an ATT error; ``code`` is the ATT error code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


#: ATT error "Procedure Already In Progress" (CSS Part B 1.2; RACP, SOCP).
ATT_PROCEDURE_ALREADY_IN_PROGRESS = 0xFE


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter: attempt n waits uniform(0, min(max, initial*2^n))."""

    initial_s: float
    max_s: float
    attempts: int

    def delay_s(self, attempt: int, rng: random.Random) -> float:
        cap = min(self.max_s, self.initial_s * (2**attempt))
        return rng.uniform(0.0, cap)


def _wrap(exc: BaseException, what: str, address: str) -> DeviceError:
    if isinstance(exc, BleakGATTProtocolError):
        return GattProtocolError(f"{address}: {what} failed: {exc}", int(exc.args[0]))
    if isinstance(exc, TimeoutError):
        return TransientDeviceError(f"{address}: {what} timed out")
    if isinstance(exc, EOFError | ConnectionError):
        return TransientDeviceError(f"{address}: {what}: link lost ({exc})")
    text = str(exc) or type(exc).__name__
    if isinstance(exc, BleakError) and "not connected" in text.lower():
        return TransientDeviceError(f"{address}: {what}: not connected")
    return DeviceError(f"{address}: {what} failed: {text}")


def first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The exception to surface from a task group: a device error first, else the first one.

    Sessions run a consumer next to a GATT procedure in a TaskGroup; callers want the error
    that ended the procedure, not a group.
    """
    leaves: list[BaseException] = []

    def walk(g: BaseExceptionGroup[BaseException]) -> None:
        for e in g.exceptions:
            if isinstance(e, BaseExceptionGroup):
                walk(e)
            else:
                leaves.append(e)

    walk(group)
    for e in leaves:
        if isinstance(e, DeviceError):
            return e
    for e in leaves:
        if not isinstance(e, asyncio.CancelledError):
            return e
    return leaves[0] if leaves else group


class Link:
    """A connected device. Create with :func:`connect`.

    Every GATT operation is bounded by the connect timeout: a device that vanishes without a
    disconnect (no supervision timeout yet) fails the operation as transient instead of hanging.
    """

    def __init__(self, device: BLEDevice | str, *, timeout_s: float) -> None:
        self._address = device if isinstance(device, str) else device.address
        self._op_timeout_s = timeout_s
        self._disconnected = asyncio.Event()
        self._client = BleakClient(
            device, disconnected_callback=self._on_disconnect, timeout=timeout_s
        )

    @property
    def address(self) -> str:
        return self._address

    @property
    def client(self) -> BleakClient:
        return self._client

    @property
    def is_connected(self) -> bool:
        return self._client.is_connected and not self._disconnected.is_set()

    def _on_disconnect(self, _client: BleakClient) -> None:
        self._disconnected.set()

    async def wait_disconnected(self) -> None:
        """Return when the device dropped the link (an unsolicited disconnect)."""
        await self._disconnected.wait()

    def has(self, uuid: str) -> bool:
        return self._client.services.get_characteristic(uuid) is not None

    def char(self, uuid: str) -> BleakGATTCharacteristic:
        found = self._client.services.get_characteristic(uuid)
        if found is None:
            raise DeviceError(f"{self._address}: characteristic {uuid} not found")
        return found

    async def read(self, uuid: str) -> bytes:
        char = self.char(uuid)
        try:
            async with asyncio.timeout(self._op_timeout_s):
                return bytes(await self._client.read_gatt_char(char))
        except (BleakError, TimeoutError, EOFError, ConnectionError) as exc:
            raise _wrap(exc, f"read {uuid}", self._address) from exc

    async def write(self, uuid: str, data: bytes, *, response: bool = True) -> None:
        char = self.char(uuid)
        try:
            async with asyncio.timeout(self._op_timeout_s):
                await self._client.write_gatt_char(char, data, response=response)
        except (BleakError, TimeoutError, EOFError, ConnectionError) as exc:
            raise _wrap(exc, f"write {uuid}", self._address) from exc

    async def subscribe(self, uuid: str, callback: NotifyCallback) -> None:
        """Enable notifications/indications; ``callback`` gets each value's bytes."""
        char = self.char(uuid)

        def on_value(_sender: BleakGATTCharacteristic, data: bytearray) -> None:
            callback(bytes(data))

        try:
            async with asyncio.timeout(self._op_timeout_s):
                await self._client.start_notify(char, on_value)
        except (BleakError, TimeoutError, EOFError, ConnectionError) as exc:
            raise _wrap(exc, f"subscribe {uuid}", self._address) from exc

    async def disconnect(self) -> None:
        try:
            async with asyncio.timeout(self._op_timeout_s):
                await self._client.disconnect()
        except (BleakError, TimeoutError, EOFError, ConnectionError) as exc:
            _log.debug("%s: disconnect failed: %s", self._address, exc)


@contextlib.asynccontextmanager
async def connect(
    device: BLEDevice | str,
    *,
    limiter: asyncio.Semaphore,
    timeout_s: float,
    backoff: Backoff,
    rng: random.Random,
) -> AsyncIterator[Link]:
    """Connect (retrying transient failures), yield the link, always disconnect.

    The semaphore caps the links held at once; it is held for the whole connection.
    """
    address = device if isinstance(device, str) else device.address
    async with limiter:
        last: DeviceError | None = None
        for attempt in range(backoff.attempts):
            link = Link(device, timeout_s=timeout_s)
            try:
                async with asyncio.timeout(timeout_s):
                    await link.client.connect()
            except (BleakError, TimeoutError, EOFError, ConnectionError, OSError) as exc:
                wrapped = _wrap(exc, "connect", address)
                last = TransientDeviceError(str(wrapped))
                await link.disconnect()
                if attempt + 1 < backoff.attempts:
                    _log.debug("%s: connect attempt %d failed: %s", address, attempt + 1, exc)
                    await asyncio.sleep(backoff.delay_s(attempt, rng))
                continue
            try:
                yield link
            finally:
                await link.disconnect()
            return
        assert last is not None
        raise last
