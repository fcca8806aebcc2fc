"""What every profile session shares: its environment, a bounded inbox, delivery, results."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from vitalgate.errors import DeviceError, ParseError
from vitalgate.gateway.config import DevicePolicy, Limits
from vitalgate.gateway.link import Link
from vitalgate.gateway.pipeline import Pipeline, ReadingBuilder, Rejected
from vitalgate.gateway.registry import DeviceRegistry, SyncPoint
from vitalgate.gateway.timefix import GatewayClock
from vitalgate.readings import Reading

__all__ = [
    "Handler",
    "Inbox",
    "SessionEnv",
    "SessionResult",
    "collect_until_quiet",
    "deliver",
    "parse_reason",
]

#: Turns one received value into a reading (or a rejection); raises ParseError on bad bytes.
Handler = Callable[[datetime, bytes], "Reading | Rejected"]

_log = logging.getLogger(__name__)


@dataclass(slots=True)
class SessionResult:
    """What one session did (counts only: no health values)."""

    offered: int = 0
    added: int = 0
    rejected: list[str] = field(default_factory=list)
    #: Records the device lost before the gateway could fetch them (a meter overwrote them).
    lost_on_device: list[str] = field(default_factory=list)
    dropped: int = 0  # values lost to a full inbox (the sync point was then not advanced)
    stream_resets: int = 0  # raw-stream detector restarts after lost packets (PPG)
    sync: SyncPoint | None = None

    @property
    def problem(self) -> str | None:
        """A one-line summary of what went wrong, for the registry's last_error."""
        parts = list(self.lost_on_device)
        if self.rejected:
            parts.append(f"{len(self.rejected)} record(s) rejected: {self.rejected[0]}")
        if self.dropped:
            parts.append(f"{self.dropped} value(s) dropped: buffer full")
        return "; ".join(parts) or None


@dataclass(slots=True)
class SessionEnv:
    """Everything a profile session needs, passed explicitly."""

    link: Link
    builder: ReadingBuilder
    pipeline: Pipeline
    registry: DeviceRegistry
    clock: GatewayClock
    limits: Limits
    policy: DevicePolicy
    stop: asyncio.Event  # set when the daemon shuts down: streaming sessions return

    async def advance_sync(self, sync: SyncPoint) -> None:
        """Record the sync point; the caller has delivered what it covers."""
        await asyncio.to_thread(
            self.registry.advance_sync, self.link.address, sync, at=self.clock.now()
        )


class Inbox:
    """A bounded buffer between a notification callback and its session.

    Full policy: the incoming value is dropped and counted (the callback must never block the
    BLE stack). A session that dropped anything does not advance its sync point, so stored
    records are fetched again; live samples that were dropped are reported in ``dropped``.

    Raw stream data (:meth:`push_bulk`: PPG and accelerometer samples, many packets a second)
    has a bound of its own, so a flood of it can never crowd out a measurement (:meth:`push`);
    ``bulk_dropped`` counts what of it was dropped. One queue keeps the arrival order.
    """

    def __init__(self, clock: GatewayClock, maxsize: int, *, bulk_maxsize: int = 0) -> None:
        self._clock = clock
        self._queue: asyncio.Queue[tuple[datetime, bytes, bool]] = asyncio.Queue()
        self._maxsize = maxsize
        self._bulk_maxsize = bulk_maxsize
        self._size = 0
        self._bulk_size = 0
        self.dropped = 0
        self.bulk_dropped = 0
        self.received = 0

    def push(self, data: bytes) -> None:
        """Queue a measurement (dropped and counted in ``dropped`` only when full)."""
        self.received += 1
        if self._size >= self._maxsize:
            self.dropped += 1
            return
        self._size += 1
        self._queue.put_nowait((self._clock.now(), data, False))

    def push_bulk(self, data: bytes) -> None:
        """Queue raw stream data under its own bound (dropped into ``bulk_dropped``)."""
        self.received += 1
        if self._bulk_size >= self._bulk_maxsize:
            self.bulk_dropped += 1
            return
        self._bulk_size += 1
        self._queue.put_nowait((self._clock.now(), data, True))

    def _taken(self, item: tuple[datetime, bytes, bool]) -> tuple[datetime, bytes]:
        received_at, data, bulk = item
        if bulk:
            self._bulk_size -= 1
        else:
            self._size -= 1
        return received_at, data

    async def get(
        self, timeout_s: float, *, closed: Callable[[], bool] | None = None
    ) -> tuple[datetime, bytes] | None:
        """The next value, or None after ``timeout_s`` (real seconds) of silence.

        With ``closed`` (e.g. "the link dropped"), returns None as soon as it is true and
        nothing is buffered, instead of waiting out the silence.
        """
        if closed is None:
            try:
                async with asyncio.timeout(timeout_s):
                    return self._taken(await self._queue.get())
            except TimeoutError:
                return None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        poll_s = max(0.005, min(0.05, timeout_s / 4))
        while True:
            if not self._queue.empty():
                return self._taken(self._queue.get_nowait())
            remaining = deadline - loop.time()
            if remaining <= 0 or closed():
                return None
            try:
                async with asyncio.timeout(min(poll_s, remaining)):
                    return self._taken(await self._queue.get())
            except TimeoutError:
                continue

    def get_nowait(self) -> tuple[datetime, bytes] | None:
        try:
            return self._taken(self._queue.get_nowait())
        except asyncio.QueueEmpty:
            return None

    def empty(self) -> bool:
        return self._queue.empty()


def parse_reason(what: str, exc: ParseError) -> str:
    """A rejection reason without the payload (which may hold health values)."""
    return f"undecodable {what} ({exc.profile}: {exc.reason}, offset {exc.offset})"


async def deliver(
    env: SessionEnv, items: Sequence[Reading | Rejected], result: SessionResult
) -> None:
    """Hand a batch to the pipeline (durable on return) and count it."""
    readings = [r for r in items if isinstance(r, Reading)]
    for item in items:
        if isinstance(item, Rejected):
            result.rejected.append(item.reason)
    if readings:
        outcome = await env.pipeline.deliver(readings)
        result.offered += outcome.offered
        result.added += outcome.added


def _tagged(inbox: Inbox, tag: bytes) -> Callable[[bytes], None]:
    def push(data: bytes) -> None:
        inbox.push(tag + data)

    return push


async def collect_until_quiet(
    env: SessionEnv, handlers: Mapping[str, tuple[str, Handler]], result: SessionResult
) -> list[Reading]:
    """Subscribe to each characteristic (UUID -> (what, handler)) the device has, collect the
    values until ``quiet_period_s`` passes without one or the device drops the link, and
    deliver the readings in batches. Returns the delivered readings (for the sync point)."""
    inbox = Inbox(env.clock, env.limits.stream_buffer)
    routes: dict[bytes, tuple[str, Handler]] = {}
    for index, (uuid, route) in enumerate(handlers.items()):
        if not env.link.has(uuid):
            continue
        tag = bytes([index])
        routes[tag] = route
        await env.link.subscribe(uuid, _tagged(inbox, tag))
    if not routes:
        raise DeviceError(f"{env.link.address}: none of the measurement characteristics found")
    pending: list[Reading | Rejected] = []
    delivered: list[Reading] = []

    def closed() -> bool:
        return not env.link.is_connected

    while (got := await inbox.get(env.limits.quiet_period_s, closed=closed)) is not None:
        received_at, data = got
        what, handler = routes[data[:1]]
        try:
            pending.append(handler(received_at, data[1:]))
        except ParseError as exc:
            result.rejected.append(parse_reason(what, exc))
            continue
        if len(pending) >= env.limits.download_batch:
            await deliver(env, pending, result)
            delivered.extend(r for r in pending if isinstance(r, Reading))
            pending = []
    await deliver(env, pending, result)
    delivered.extend(r for r in pending if isinstance(r, Reading))
    result.dropped += inbox.dropped
    return delivered
