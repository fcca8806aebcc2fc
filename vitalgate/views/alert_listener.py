"""Receives the gateways' clinical alerts from MQTT into the dashboard's alert store.

Subscribes to ``vitalgate/v1/+/alerts`` (QoS 1, persistent session, manual acknowledgement):
each message is written to the :class:`~vitalgate.views.alerts_store.AlertStore` in a worker
thread and acknowledged only afterwards, so an alert is never lost between broker and store.
Alert events of other types on the same topic (the gateway's operational ``outbox_full``, ...)
and invalid payloads are acknowledged and skipped (counted; logged without their content).

Bounded: at most ``queue_size`` received messages wait for the store; when the queue is full
the listener stops reading the socket (the broker holds the rest) until it drains. The
connection is re-opened with exponential backoff when it drops.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import paho.mqtt.client as paho

from vitalgate.cloud_sync.mqtt import Backoff, MqttConfig, MqttConnection, MqttError
from vitalgate.cloud_sync.schema import TOPIC_ROOT
from vitalgate.errors import SchemaError, StoreError
from vitalgate.views.alerts_store import AlertStore

__all__ = ["ALERTS_FILTER", "AlertListener", "ListenerStats"]

log = logging.getLogger(__name__)

ALERTS_FILTER = f"{TOPIC_ROOT}/+/alerts"


@dataclass(slots=True)
class ListenerStats:
    stored: int = 0
    skipped: int = 0
    invalid: int = 0
    connections: int = 0


class AlertListener:
    """One subscriber; :meth:`run` until :meth:`stop` (or cancellation)."""

    def __init__(self, config: MqttConfig, store: AlertStore, *, queue_size: int = 1000) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be >= 1")
        self.config = config
        self.store = store
        self.stats = ListenerStats()
        self._queue: asyncio.Queue[paho.MQTTMessage] = asyncio.Queue(queue_size)
        self._stop = asyncio.Event()
        self._conn: MqttConnection | None = None
        self.subscribed = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        backoff = Backoff(self.config.backoff_initial_s, self.config.backoff_max_s)
        while not self._stop.is_set():
            try:
                async with MqttConnection(
                    self.config, on_message=self._on_message, manual_ack=True
                ) as conn:
                    self._conn = conn
                    self.stats.connections += 1
                    granted = await conn.subscribe([(ALERTS_FILTER, 1)])
                    if granted and granted[0] >= 0x80:
                        raise MqttError(f"subscription to {ALERTS_FILTER} refused: {granted[0]}")
                    self.subscribed.set()
                    backoff.reset()
                    await self._serve(conn)
            except MqttError as exc:
                log.warning("alert listener: MQTT connection failed: %s", exc)
            finally:
                self._conn = None
                self.subscribed.clear()
                # Messages of a dead connection cannot be acknowledged on the next one: drop
                # them, the broker re-delivers them (they were never acknowledged).
                while not self._queue.empty():
                    self._queue.get_nowait()
            if not self._stop.is_set():
                try:
                    await asyncio.wait_for(self._stop.wait(), backoff.next_delay())
                except TimeoutError:
                    pass

    async def _serve(self, conn: MqttConnection) -> None:
        async with asyncio.TaskGroup() as tg:
            closed = tg.create_task(conn.wait_closed())
            stop = tg.create_task(self._stop.wait())
            worker = tg.create_task(self._worker(conn))
            await asyncio.wait({closed, stop}, return_when=asyncio.FIRST_COMPLETED)
            worker.cancel()
            if not closed.done():
                closed.cancel()
            if not stop.done():
                stop.cancel()
        if self._stop.is_set():
            await conn.close()

    def _on_message(self, message: paho.MQTTMessage) -> None:
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:  # pragma: no cover - reading pauses before this happens
            return
        if self._queue.full() and self._conn is not None:
            self._conn.pause_reading()

    async def _worker(self, conn: MqttConnection) -> None:
        while True:
            message = await self._queue.get()
            while True:
                try:
                    await asyncio.to_thread(self._record, bytes(message.payload))
                    break
                except StoreError:
                    # Not acknowledged: retried here, and re-delivered by the broker if the
                    # connection drops meanwhile.
                    log.exception("alert listener: the alert store failed; retrying in 5 s")
                    await asyncio.sleep(5.0)
            if conn.connected:
                conn.ack(message.mid, message.qos)
            if self._queue.qsize() < self._queue.maxsize // 2:
                conn.resume_reading()

    def _record(self, payload: bytes) -> None:
        try:
            self.store.record_payload(payload)
        except SchemaError as exc:
            if "alert.type" in str(exc):
                self.stats.skipped += 1  # an operational alert, not a clinical one
            else:
                self.stats.invalid += 1
                log.warning("alert listener: invalid clinical alert payload skipped")
            return
        self.stats.stored += 1
