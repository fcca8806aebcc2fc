"""The gateway's MQTT publisher: drains the outbox to the broker, QoS 1, at least once.

``await Publisher(config, outbox).run()`` runs until cancelled:

* connects (MQTT 5 by default, 3.1.1 supported) with client id = gateway id, a persistent
  session, TLS and username/password as configured, and a Last Will that publishes a retained
  ``offline`` status; on connect it publishes a retained ``online`` status;
* claims batches from the outbox -- one reading kind per message, up to
  ``Batching.max_readings`` readings or ``max_bytes`` bytes, or whatever is pending once the
  oldest pending reading has waited ``linger_s`` -- and publishes them at QoS 1;
* keeps at most ``Batching.max_in_flight`` messages unacknowledged (our own window: paho is fed
  only as PUBACKs arrive, so it never holds a long queue);
* on a PUBACK (MQTT 5: reason code < 0x80) deletes the batch from the outbox; a refused publish
  or a lost connection releases every unacknowledged batch, and they are sent again after the
  reconnect (duplicates are harmless downstream: the store is idempotent);
* reconnects with exponential backoff and jitter;
* sends the outbox's queued alert events (for example ``outbox_full``) on the alerts topic;
* on cancellation publishes a retained ``offline`` status and disconnects cleanly.

Nothing is logged about reading contents: only counts, topics and reasons.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

from vitalgate.cloud_sync import schema
from vitalgate.cloud_sync.mqtt import (
    Backoff,
    ConnectionLostError,
    MqttConfig,
    MqttConnection,
    MqttError,
    PublishRefusedError,
    Will,
)
from vitalgate.cloud_sync.outbox import ACK_FLUSH_READINGS, Batch, Outbox
from vitalgate.errors import ConfigError, SchemaError, StoreError

__all__ = [
    "Batching",
    "Publisher",
    "PublisherStats",
    "publish_alert",
    "publish_status",
]

log = logging.getLogger(__name__)

_SHUTDOWN_TIMEOUT_S = 3.0
_ALERT_POLL_S = 1.0
#: Acknowledged rows deleted per flush slice (~0.1 s of SQLite work here).
_IDLE_FLUSH = 5000
#: Batches claimed per trip to the outbox's thread (they wait for window slots in order).
_CLAIM_AHEAD = 8


@dataclass(frozen=True, slots=True)
class Batching:
    """How readings are grouped into messages and how many messages may be unacknowledged."""

    max_readings: int = 500
    max_bytes: int = 64 * 1024
    linger_s: float = 0.2
    max_in_flight: int = 32

    def __post_init__(self) -> None:
        if self.max_readings < 1 or self.max_readings > schema.MAX_READINGS_PER_MESSAGE:
            raise ConfigError(
                "batching.max_readings", f"must be 1..{schema.MAX_READINGS_PER_MESSAGE}"
            )
        if self.max_bytes < 1024:
            raise ConfigError("batching.max_bytes", "must be at least 1024")
        if self.linger_s < 0:
            raise ConfigError("batching.linger_s", "must not be negative")
        if self.max_in_flight < 1:
            raise ConfigError("batching.max_in_flight", "must be at least 1")


@dataclass(slots=True)
class PublisherStats:
    """Counters since the publisher was created."""

    connects: int = 0
    connect_failures: int = 0
    connection_losses: int = 0
    messages_published: int = 0
    readings_acked: int = 0
    publishes_refused: int = 0
    batches_released: int = 0
    alerts_published: int = 0


async def publish_status(conn: MqttConnection, gateway_id: str, state: schema.StatusState) -> None:
    """Publish the retained status of a gateway and wait for the PUBACK."""
    payload = schema.encode_status(gateway_id, state, datetime.now(UTC))
    await conn.publish(schema.topic_status(gateway_id), payload, qos=1, retain=True)


async def publish_alert(
    conn: MqttConnection,
    gateway_id: str,
    event: Mapping[str, Any],
    *,
    at: datetime | None = None,
) -> None:
    """Publish one alert event (``vitalgate.alert/1``) and wait for the PUBACK.

    For alerts that must not be lost while offline use :meth:`Publisher.publish_alert`, which
    queues them durably in the outbox first.
    """
    payload = schema.encode_alert(gateway_id, event, at or datetime.now(UTC))
    await conn.publish(schema.topic_alerts(gateway_id), payload, qos=1)


def _completed(
    done: asyncio.Queue[tuple[Batch, asyncio.Future[None]]],
    batch: Batch,
    fut: asyncio.Future[None],
) -> None:
    if not fut.cancelled():
        # Mark a failure as retrieved now: the ack loop may already have stopped on an earlier
        # failure, and the batch is released back to pending either way.
        fut.exception()
    done.put_nowait((batch, fut))  # bounded by the window: each entry holds a slot


class Publisher:
    """Drains an :class:`Outbox` to an MQTT broker (see the module docstring)."""

    def __init__(
        self,
        config: MqttConfig,
        outbox: Outbox,
        *,
        batching: Batching | None = None,
        rng: random.Random | None = None,
    ) -> None:
        try:
            self.gateway_id = schema.check_gateway_id(config.client_id)
        except SchemaError as exc:
            raise ConfigError("mqtt.client_id", f"must be a valid gateway id: {exc}") from exc
        self.config = config
        self.outbox = outbox
        self.batching = batching or Batching()
        self.stats = PublisherStats()
        self._backoff = Backoff(config.backoff_initial_s, config.backoff_max_s, rng=rng)
        self._conn: MqttConnection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._wake = asyncio.Event()
        self._connected = asyncio.Event()
        self._linger_start: float | None = None

    # -- public helpers ------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._conn is not None and self._conn.connected

    def notify(self) -> None:
        """New readings are in the outbox: publish without waiting for the next poll.

        Thread-safe (the gateway may call it from the thread that ran ``outbox.add``).
        """
        loop = self._loop
        if loop is None:
            return
        if threading.get_ident() == self._loop_thread:
            self._wake.set()
        else:
            loop.call_soon_threadsafe(self._wake.set)

    async def publish_alert(self, event: Mapping[str, Any]) -> None:
        """Queue an alert event durably; it is published when connected."""
        await asyncio.to_thread(self.outbox.add_alert, event)
        self.notify()

    async def publish_status(self, state: schema.StatusState) -> None:
        """Publish the retained status now; raises ConnectionLostError when not connected."""
        conn = self._conn
        if conn is None or not conn.connected:
            raise ConnectionLostError("publisher is not connected")
        await publish_status(conn, self.gateway_id, state)

    async def wait_connected(self) -> None:
        await self._connected.wait()

    async def wait_drained(self, *, poll_s: float = 0.05) -> None:
        """Return once the outbox is empty (for tests, tools and a graceful shutdown)."""
        while True:
            if not self.outbox.pending_count():
                stats = await asyncio.to_thread(self.outbox.stats)
                if not stats.alerts_pending:
                    return
            self.notify()
            await asyncio.sleep(poll_s)

    # -- the loop ------------------------------------------------------------------------------

    async def run(self) -> NoReturn:
        """Connect, publish, reconnect: forever (until cancelled)."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        c = self.config
        while True:
            will = Will(
                schema.topic_status(self.gateway_id),
                schema.encode_status(self.gateway_id, "offline", datetime.now(UTC)),
                qos=1,
                retain=True,
            )
            conn = MqttConnection(c, will=will, max_inflight=self.batching.max_in_flight + 16)
            try:
                await conn.open()
            except MqttError as exc:
                self.stats.connect_failures += 1
                delay = self._backoff.next_delay()
                log.warning(
                    "MQTT connect to %s:%s as %s failed (%s); retry in %.1f s",
                    c.host,
                    c.port,
                    self.gateway_id,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            self.stats.connects += 1
            self._conn = conn
            try:
                try:
                    await self._serve(conn)
                except* (MqttError, StoreError) as group:
                    self.stats.connection_losses += 1
                    log.warning(
                        "MQTT connection of %s ended: %s",
                        self.gateway_id,
                        "; ".join(str(e) for e in group.exceptions),
                    )
            except asyncio.CancelledError:
                await self._shutdown(conn)
                raise
            finally:
                self._conn = None
                self._connected.clear()
                if conn.connected:
                    await conn.close(timeout_s=0.5)
                else:
                    conn.abort()
                released = await asyncio.to_thread(self.outbox.release_all)
                self.stats.batches_released += released
            delay = self._backoff.next_delay()
            log.info("MQTT %s reconnects in %.1f s", self.gateway_id, delay)
            await asyncio.sleep(delay)

    async def _shutdown(self, conn: MqttConnection) -> None:
        """Cancelled: say "offline" (retained) and disconnect cleanly, within a time bound."""
        if not conn.connected:
            return
        with contextlib.suppress(MqttError, TimeoutError):
            async with asyncio.timeout(_SHUTDOWN_TIMEOUT_S):
                await publish_status(conn, self.gateway_id, "offline")
        with contextlib.suppress(MqttError, TimeoutError):
            await conn.close(timeout_s=_SHUTDOWN_TIMEOUT_S)

    async def _serve(self, conn: MqttConnection) -> None:
        await publish_status(conn, self.gateway_id, "online")
        self._backoff.reset()
        self._connected.set()
        log.info("MQTT %s connected (session present: %s)", self.gateway_id, conn.session_present)
        window = asyncio.Semaphore(self.batching.max_in_flight)
        done: asyncio.Queue[tuple[Batch, asyncio.Future[None]]] = asyncio.Queue(
            maxsize=self.batching.max_in_flight  # never more: each holds a window slot
        )
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._send_loop(conn, window, done), name="publisher-send")
            tg.create_task(self._ack_loop(window, done), name="publisher-ack")
            tg.create_task(self._alert_loop(conn), name="publisher-alerts")
            tg.create_task(self._watch(conn), name="publisher-watch")

    @staticmethod
    async def _watch(conn: MqttConnection) -> NoReturn:
        await conn.wait_closed()
        raise ConnectionLostError("connection lost")

    async def _send_loop(
        self,
        conn: MqttConnection,
        window: asyncio.Semaphore,
        done: asyncio.Queue[tuple[Batch, asyncio.Future[None]]],
    ) -> NoReturn:
        claimed: deque[Batch] = deque()
        try:
            while True:
                await window.acquire()
                try:
                    if not claimed:
                        claimed.extend(await self._claim())
                    batch = claimed.popleft()
                    payload = batch.payload(self.gateway_id)
                    try:
                        fut = conn.publish(
                            schema.topic_readings(self.gateway_id, batch.kind),
                            payload,
                            require_subscribers=True,
                        )
                    except MqttError:
                        claimed.appendleft(batch)
                        raise
                except BaseException:
                    window.release()
                    raise
                self.stats.messages_published += 1
                fut.add_done_callback(functools.partial(_completed, done, batch))
                del payload
        finally:
            # Claimed, never published: back to pending (release_all after the connection
            # ends would catch them too; this keeps them first in line).
            for batch in claimed:
                self.outbox.release(batch.batch_id)

    async def _claim(self) -> list[Batch]:
        """The next batches: full ones at once, partial ones once the oldest pending reading
        has waited ``linger_s`` (after that, everything pending goes without further waits)."""
        b = self.batching
        loop = asyncio.get_running_loop()
        while True:
            pending = self.outbox.unclaimed_count()
            if pending == 0:
                self._linger_start = None
                if self.outbox.unflushed_acks:  # idle: delete acknowledged rows, a slice a time
                    await asyncio.to_thread(self.outbox.flush_acks, max_readings=_IDLE_FLUSH)
                    continue
                await self._sleep_or_wake(max(b.linger_s, 0.05))
                continue
            now = loop.time()
            if self._linger_start is None:  # data appeared in an empty outbox: start the clock
                self._linger_start = now
            full = (
                pending >= b.max_readings or self.outbox.unclaimed_bytes_estimate() >= b.max_bytes
            )
            if not full and b.linger_s > 0:
                remaining = b.linger_s - (now - self._linger_start)
                if remaining > 0:
                    await self._sleep_or_wake(remaining)
                    continue
            batches = await asyncio.to_thread(
                self.outbox.next_batches,
                _CLAIM_AHEAD,
                max_readings=b.max_readings,
                max_bytes=b.max_bytes,
            )
            if batches:
                return batches

    async def _sleep_or_wake(self, timeout_s: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._wake.wait()

    async def _ack_loop(
        self,
        window: asyncio.Semaphore,
        done: asyncio.Queue[tuple[Batch, asyncio.Future[None]]],
    ) -> NoReturn:
        while True:
            items = [await done.get()]
            while not done.empty():
                items.append(done.get_nowait())
            acked: list[Batch] = []
            failure: BaseException | None = None
            for batch, fut in items:
                exc = fut.exception()
                if exc is None:
                    acked.append(batch)
                elif failure is None:
                    failure = exc
            if acked:
                # Finish the ack even if cancelled meanwhile: a half-known state would only
                # cause duplicates, but there is no reason to make any.
                task = asyncio.ensure_future(
                    asyncio.to_thread(self.outbox.ack_many, [x.batch_id for x in acked])
                )
                try:
                    await asyncio.shield(task)
                except asyncio.CancelledError:
                    with contextlib.suppress(Exception):
                        await task
                    raise
                self.stats.readings_acked += sum(len(x) for x in acked)
                if self.outbox.unflushed_acks >= ACK_FLUSH_READINGS:  # bound the disk use
                    await asyncio.to_thread(self.outbox.flush_acks, max_readings=_IDLE_FLUSH)
            for _ in items:
                window.release()
            if failure is not None:
                if isinstance(failure, PublishRefusedError):
                    self.stats.publishes_refused += 1
                    log.warning("broker refused a readings message: %s", failure)
                raise failure

    async def _alert_loop(self, conn: MqttConnection) -> NoReturn:
        while True:
            alerts = await asyncio.to_thread(self.outbox.next_alerts, 50)
            if not alerts:
                await asyncio.sleep(_ALERT_POLL_S)
                continue
            sent: list[int] = []
            for alert in alerts:
                try:
                    await publish_alert(conn, self.gateway_id, alert.event, at=alert.at)
                except SchemaError as exc:  # a malformed event of our own: drop it, loudly
                    log.error("dropping malformed alert event %s: %s", alert.alert_id, exc)
                sent.append(alert.alert_id)
                self.stats.alerts_published += 1
            await asyncio.to_thread(self.outbox.ack_alerts, sent)
