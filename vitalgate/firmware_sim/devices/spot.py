"""Base class of spot-measurement devices with an indicated memory (thermometer, weight scale,
pulse-oximeter spot checks): the pattern of common home devices.

The owner measures at ``session_local_hours`` (device owner's time zone, a few minutes of
jitter); each result goes into a bounded memory (the oldest is overwritten when full; the
``full_memory`` fault shrinks it) and the device advertises. When a central enables indications
on the measurement characteristic, the device indicates every stored record, oldest first,
deletes each once its indication is confirmed, then disconnects and stops advertising.
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass
from datetime import datetime

from bumble.gatt import Characteristic

from vitalgate.firmware_sim.clock import Clock
from vitalgate.firmware_sim.devices.common import (
    DeviceSetup,
    SimHealthDevice,
    TransferInterrupted,
)
from vitalgate.firmware_sim.faults import FaultInjector, FaultKind
from vitalgate.firmware_sim.peripheral import PeripheralNotConnected
from vitalgate.firmware_sim.truth import TruthLog, TruthRecord

__all__ = ["IndicatedMemoryDevice", "SpotMeasurementDevice", "StoredSpot"]

#: HCI reason 0x13, Remote User Terminated Connection (the device ends the link after a sync).
_REMOTE_USER_TERMINATED = 0x13


@dataclass(frozen=True, slots=True)
class StoredSpot:
    """A stored record: the bytes the device will indicate, and its truth."""

    payload: bytes
    truth: TruthRecord


class IndicatedMemoryDevice(SimHealthDevice):
    """A device with a bounded memory of records it indicates when a central subscribes (the
    BP monitor and the spot-measurement devices). Subclasses build ``self.stored_char``
    (indicate) and put records in with :meth:`store`."""

    def __init__(
        self,
        setup: DeviceSetup,
        *,
        clock: Clock,
        truth: TruthLog,
        faults: FaultInjector | None = None,
        memory_capacity: int,
        disconnect_after_transfer: bool = True,
    ) -> None:
        super().__init__(setup, clock=clock, truth=truth, faults=faults, auto_readvertise=False)
        full = self.faults.first(FaultKind.FULL_MEMORY)
        if full is not None and full.capacity is not None:
            memory_capacity = full.capacity
        if memory_capacity < 1:
            raise ValueError("memory_capacity must be >= 1")
        self.memory_capacity = memory_capacity
        self.disconnect_after_transfer = disconnect_after_transfer
        self.memory: collections.deque[StoredSpot] = collections.deque()
        #: Records overwritten because the memory was full (never reached a central).
        self.overwritten: list[TruthRecord] = []
        self.stored_char: Characteristic[bytes] | None = None
        self._transfer_lock = asyncio.Lock()

    def store(self, stored: StoredSpot) -> StoredSpot:
        """Keep a record (the oldest goes when the memory is full); indicate it at once if a
        central is connected and subscribed."""
        if len(self.memory) >= self.memory_capacity:
            self.overwritten.append(self.memory.popleft().truth)
        self.memory.append(stored)
        if (
            self.is_connected
            and self.stored_char is not None
            and self.is_subscribed(self.stored_char)
        ):
            self.spawn(self.transfer(), name=f"{self.serial}-transfer")
        return stored

    def on_subscription(
        self, characteristic: Characteristic[bytes], notify: bool, indicate: bool
    ) -> None:
        if characteristic is self.stored_char and indicate and self.memory:
            self.spawn(self.transfer(), name=f"{self.serial}-transfer")

    def on_disconnected(self, reason: int) -> None:
        super().on_disconnected(reason)
        if self.memory and not self.vanished:
            self.advertise()

    async def transfer(self) -> int:
        """Indicate the stored records; each is deleted once confirmed. Returns the count."""
        assert self.stored_char is not None
        sent = 0
        async with self._transfer_lock:
            try:
                while self.memory and self.is_connected:
                    stored = self.memory[0]
                    if not await self.send_record(self.stored_char, stored.payload, indicate=True):
                        return sent
                    if self.memory and self.memory[0] is stored:
                        self.memory.popleft()  # confirmed: cleared from memory
                    sent += 1
            except (TransferInterrupted, PeripheralNotConnected):
                return sent
            if self.disconnect_after_transfer and self.is_connected and not self.memory:
                await self.stop_advertising()
                try:
                    await self.disconnect(_REMOTE_USER_TERMINATED)
                except PeripheralNotConnected:
                    pass
        return sent


class SpotMeasurementDevice(IndicatedMemoryDevice):
    """Subclasses build ``self.stored_char`` (indicate) and implement :meth:`make_record`."""

    def __init__(
        self,
        setup: DeviceSetup,
        *,
        clock: Clock,
        truth: TruthLog,
        faults: FaultInjector | None = None,
        memory_capacity: int,
        session_local_hours: tuple[float, ...],
        disconnect_after_transfer: bool = True,
    ) -> None:
        super().__init__(
            setup,
            clock=clock,
            truth=truth,
            faults=faults,
            memory_capacity=memory_capacity,
            disconnect_after_transfer=disconnect_after_transfer,
        )
        if not session_local_hours:
            raise ValueError("session_local_hours must not be empty")
        self.session_local_hours = session_local_hours

    def make_record(self, now: datetime) -> StoredSpot:
        """Measure now: return the encoded record (its truth already logged)."""
        raise NotImplementedError

    async def run(self) -> None:
        after = self.started_at
        while True:
            nominal = min(self.next_local_time(after, h) for h in self.session_local_hours)
            await self.clock.sleep_until(self.jitter(nominal, 3.0, 10.0))
            self.measure()
            if not self.is_connected and not self.is_advertising:
                self.advertise()
            after = nominal

    def measure(self) -> StoredSpot:
        return self.store(self.make_record(self.clock.now()))
