"""The ingest: MQTT readings -> validated batches -> the store, acknowledged only once stored.

One :class:`IngestWorker` is one MQTT 5 client on the shared subscription
``$share/<group>/vitalgate/v1/+/readings/+``: the broker splits the messages among the N workers
of a group. Per message the worker

1. validates the payload against its topic (the gateway in the topic must equal the payload's;
   with ``identity_property`` set, also the authenticated client the broker names in that MQTT 5
   user property). For a store that takes line protocol (:class:`LineProtocolStore`: InfluxDB
   1.x, 2.x/3.x, VictoriaMetrics) :func:`schema.decode_batch_lines` validates and formats the
   message in one pass, on the event loop, and the write thread only joins the bodies and POSTs
   them; any other store (SQLite) gets :func:`schema.decode_batch`'s StoredReading objects;
2. appends its readings to the current batch (a message is never split between batches);
   a batch is written when it holds ``batch_max_readings`` readings (5,000 by default: one
   HTTP write) or its first message is ``linger_s`` old;
3. writes up to ``writes_in_flight`` batches at once (3 by default: the store parses one body
   while the next is on its way, and one slow write does not stall the rest);
4. acknowledges the message (paho manual ack, PUBACK) only after the store accepted its batch
   and every batch before it (PUBACKs go out in the order the messages came).

An invalid payload is published to ``vitalgate/v1/deadletter/<gateway>`` with the reason and is
acknowledged once the broker acknowledged the dead-letter record. When the store refuses a batch
as bad data (:class:`StoreRejectedError`), the batch is written message by message and only the
refused messages are dead-lettered.

Back-pressure and bounds: the CONNECT asks for ``receive_maximum`` (the broker sends at most that
many unacknowledged messages); in addition, when the readings held in memory reach
``max_pending_readings`` the worker stops reading the socket until a write drains them (for
brokers that ignore Receive Maximum). A store outage therefore stops acknowledgements, then the
flow; writes are retried with exponential backoff and jitter, forever, without dropping a batch.

Sessions: ``clean_start=False`` with a session expiry (a week by default) and a stable client id
(``vitalgate-ingest-<group>-<host>-<n>`` from the CLI), so messages queue at the broker while a
worker is down, and messages it received but had not acknowledged are re-delivered when it comes
back. Mosquitto keeps routing a share of the group's messages to a member whose session is
offline: restart a worker under the same id, and retire an id only after draining it. Messages of a
connection that dropped are still written (writes are idempotent) but never acknowledged on the
new connection (their packet ids belong to the old one); the broker re-delivers them.

Broker restarts (measured with Mosquitto 2.0.11): a shared subscription restored from disk has
no members until one of its clients reconnects; a message published in that window is answered
with PUBACK reason 0x10 "No matching subscribers" and dropped. Publishers must treat 0x10 on a
readings topic as "not delivered" and send the message again (the test publisher does).

Identity: Mosquitto does not tell subscribers who published a message. Deploy it with a
per-gateway ACL (``pattern write vitalgate/v1/%u/#``, username = gateway id) so the topic names
the authenticated client, and the ingest checks the payload against the topic. A broker plugin
that stamps messages with the publisher's identity in a user property (and strips any such
property a client sent) can be named with ``identity_property``: the ingest then also requires
that identity to equal the topic's gateway.

paho runs on the asyncio loop without its thread: its socket is registered with
``loop.add_reader`` / ``add_writer`` and ``loop_misc`` runs every second (the aiomqtt approach).
paho reads a packet with several small ``recv`` calls (type byte, each length byte, the rest),
its ``loop_read`` handles one packet per call, and each PUBLISH costs it a Properties object, an
MQTTMessage (with a threading.Condition) and a topic match. The worker reads the socket into a
buffer instead (one ``recv`` of up to :data:`READ_CHUNK_BYTES` serves many packets), takes each
whole QoS 1 PUBLISH from it itself (topic, packet id, payload: all a delivery needs, as acks go
by packet id through paho), and leaves every other packet to paho, which reads it from the same
buffer through its ``_sock_recv`` (CONNACK, SUBACK, PUBACKs of dead letters, PINGRESP,
DISCONNECT; QoS 0/2 deliveries; and every PUBLISH when ``identity_property`` needs its MQTT 5
properties). Per readable event it goes on until the socket is drained, for at most
:data:`MAX_PACKETS_PER_EVENT` packets or :data:`READ_BUDGET_S`, then continues on the next loop
iteration (after the writer has had its turn). The buffer
belongs to one socket: it is emptied whenever paho opens or closes one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import ssl
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from vitalgate.cloud_sync import schema
from vitalgate.cloud_sync.store import ReadingStore, StoredReading
from vitalgate.cloud_sync.stores.base import StoreRejectedError
from vitalgate.cloud_sync.stores.lineprotocol import LineProtocolFormatter, LineProtocolStore
from vitalgate.errors import ConfigError, SchemaError, StoreError

__all__ = ["BrokerConfig", "IngestStats", "IngestWorker", "parse_broker_url"]

log = logging.getLogger(__name__)

PASSWORD_ENV = "VITALGATE_MQTT_PASSWORD"
#: Bytes asked of the socket per ``recv`` (paho's packet reads are served from them).
READ_CHUNK_BYTES = 256 * 1024
#: Packets handled per readable event before the event loop gets a turn (writer, timers, acks).
MAX_PACKETS_PER_EVENT = 256
#: ... and seconds: a write that finished must not wait long for the loop to start the next one
#: (a store kept waiting is ingest throughput lost).
READ_BUDGET_S = 0.002


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    """Where and how to connect: from ``mqtt://`` / ``mqtts://user:pass@host:port`` URLs."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None


def parse_broker_url(
    url: str,
    *,
    ca_file: str | None = None,
    cert_file: str | None = None,
    key_file: str | None = None,
) -> BrokerConfig:
    """``mqtt://[user[:password]@]host[:1883]`` or ``mqtts://...[:8883]``; raises ConfigError.

    A password may come from ``VITALGATE_MQTT_PASSWORD`` instead of the URL.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ConfigError("broker", f"expected mqtt://host:port or mqtts://host:port, got {url!r}")
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as exc:
        raise ConfigError("broker", f"bad port in {url!r}") from exc
    password = parts.password or os.environ.get(PASSWORD_ENV) or None
    return BrokerConfig(
        host=parts.hostname,
        port=port,
        tls=tls or bool(ca_file),
        username=urllib.parse.unquote(parts.username) if parts.username else None,
        password=urllib.parse.unquote(password) if password else None,
        ca_file=ca_file,
        cert_file=cert_file,
        key_file=key_file,
    )


@dataclass(slots=True)
class IngestStats:
    """Counters of one worker (messages unless named ``readings``)."""

    received: int = 0
    received_readings: int = 0
    written_readings: int = 0
    written_batches: int = 0
    dead_lettered: int = 0
    acked: int = 0
    store_retries: int = 0
    connects: int = 0
    stale_acks_skipped: int = 0
    read_pauses: int = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(slots=True)
class _Message:
    """A validated message waiting for its batch: its lines (line-protocol stores) or readings."""

    mid: int
    epoch: int
    topic: str
    payload: bytes
    count: int
    lines: bytes = b""
    readings: list[StoredReading] = field(default_factory=list)


@dataclass(slots=True)
class _Batch:
    messages: list[_Message] = field(default_factory=list)
    n_readings: int = 0
    started: float = 0.0

    def add(self, msg: _Message) -> None:
        if not self.messages:
            self.started = time.monotonic()
        self.messages.append(msg)
        self.n_readings += msg.count


_SAFE_GATEWAY = "_invalid_"


class _GiveUpError(Exception):
    """Stopping while the store is down: leave the rest unacknowledged for re-delivery."""


def _no_recv(_bufsize: int) -> bytes:
    raise ConnectionError("no MQTT client yet")


def _deadletter_gateway(topic: str) -> str:
    parts = topic.split("/")
    if len(parts) >= 3:
        try:
            return schema.check_gateway_id(parts[2])
        except SchemaError:
            pass
    return _SAFE_GATEWAY


class IngestWorker:
    """One ingest worker. ``await run()`` until ``stop()``; see the module docstring."""

    def __init__(
        self,
        broker_url: str,
        store: ReadingStore,
        group: str,
        *,
        client_id: str | None = None,
        topic_filter: str = "vitalgate/v1/+/readings/+",
        batch_max_readings: int = 5000,
        linger_s: float = 0.05,
        receive_maximum: int = 1000,
        max_pending_readings: int = 200_000,
        session_expiry_s: int = 7 * 86_400,
        keepalive_s: int = 30,
        retry_initial_s: float = 0.1,
        retry_max_s: float = 5.0,
        identity_property: str | None = None,
        broker: BrokerConfig | None = None,
        drain_timeout_s: float = 10.0,
        protocol: Literal[5, 311] = 5,
        shared: bool = True,
        writes_in_flight: int = 3,
    ) -> None:
        if protocol not in (5, 311):
            raise ConfigError("protocol", f"must be 5 or 311, got {protocol!r}")
        if shared and protocol != 5:
            raise ConfigError("shared", "shared subscriptions need MQTT 5 (use shared=False)")
        self.protocol = protocol
        if not group or any(c in group for c in "/+#"):
            raise ConfigError("group", f"must be non-empty without '/', '+', '#': {group!r}")
        if batch_max_readings < 1 or receive_maximum < 1 or receive_maximum > 65_535:
            raise ConfigError("batch", "batch_max_readings >= 1, receive_maximum in 1..65535")
        if max_pending_readings < batch_max_readings:
            raise ConfigError("max_pending_readings", "must be at least batch_max_readings")
        if not 1 <= writes_in_flight <= 16:
            raise ConfigError("writes_in_flight", f"must be 1..16, got {writes_in_flight!r}")
        self.broker = broker if broker is not None else parse_broker_url(broker_url)
        self.store = store
        self.group = group
        # Stable across restarts, so a restarted worker resumes its session (and the messages
        # the broker queued for it); concurrent workers need distinct ids (the CLI numbers them).
        self.client_id = client_id or f"vitalgate-ingest-{group}-{socket.gethostname()}"
        # MQTT 5 shared subscription: N workers split the load. A single worker on a broker
        # without shared subscriptions (the embedded demo broker, MQTT 3.1.1) subscribes plainly.
        self.subscription = f"$share/{group}/{topic_filter}" if shared else topic_filter
        self.batch_max_readings = batch_max_readings
        self.linger_s = linger_s
        self.receive_maximum = receive_maximum
        self.max_pending_readings = max_pending_readings
        self.session_expiry_s = session_expiry_s
        self.keepalive_s = keepalive_s
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.identity_property = identity_property
        self.drain_timeout_s = drain_timeout_s
        self.writes_in_flight = writes_in_flight
        self.stats = IngestStats()
        # A store that takes line protocol gets each message validated and formatted in one
        # pass (schema.decode_batch_lines); any other store gets StoredReading objects.
        self._formatter: LineProtocolFormatter | None = (
            store.line_formatter if isinstance(store, LineProtocolStore) else None
        )

        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: mqtt.Client | None = None
        self._epoch = 0
        self._connected = asyncio.Event()
        self._disconnected = asyncio.Event()
        self._stopping = asyncio.Event()
        self._wakeup = asyncio.Event()  # a batch sealed, a message arrived, or stopping
        self._current = _Batch()
        self._sealed: deque[_Batch] = deque()
        self._pending_readings = 0
        self._sock: Any = None
        self._paho_recv: Callable[[int], bytes] = _no_recv
        self._rbuf = b""  # bytes received from the socket that paho has not read yet
        self._rpos = 0
        self._drained = False  # the last recv found the socket empty
        self._reading_paused = False
        self._read_scheduled = False  # a _readable_if_open is in the loop's ready queue
        self._writer_registered = False
        self._dl_pending: dict[int, tuple[int, int]] = {}  # dead-letter mid -> (epoch, mid)
        self._connect_error: str | None = None
        self._connecting = False  # paho's connect runs in a thread: keep the loop off the socket
        # Batches being written, oldest first: acknowledged strictly in this order.
        self._in_flight: deque[tuple[_Batch, asyncio.Task[None]]] = deque()
        self._give_up = asyncio.Event()  # on stop: the drain timed out, leave the rest unacked

    # ----------------------------------------------------------------------------------------
    # public

    def stop(self) -> None:
        """Ask run() to finish: stop taking messages, write and acknowledge what it holds."""
        self._stopping.set()
        self._wakeup.set()
        self._pause_reading()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self, timeout_s: float = 10.0) -> None:
        """Wait until subscribed on a connection (tests, health checks)."""
        await asyncio.wait_for(self._connected.wait(), timeout_s)

    async def run(self) -> None:
        """Connect, consume, write and acknowledge until stop(); reconnects on its own."""
        self._loop = asyncio.get_running_loop()
        self._client = self._make_client()
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._connection_loop(), name="ingest-connection")
                tg.create_task(self._misc_loop(), name="ingest-misc")
                tg.create_task(self._writer_loop(), name="ingest-writer")
        finally:
            client = self._client
            self._unregister_socket()
            with contextlib.suppress(Exception):
                client.disconnect()
            with contextlib.suppress(Exception):
                client.loop_write()
            client.on_socket_close = None
            client._sock_close()
            log.info("ingest worker %s stopped: %s", self.client_id, self.stats.as_dict())

    # ----------------------------------------------------------------------------------------
    # paho on asyncio

    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5 if self.protocol == 5 else mqtt.MQTTv311,
            clean_session=None if self.protocol == 5 else False,
            manual_ack=True,
            reconnect_on_failure=False,
        )
        b = self.broker
        if b.username is not None:
            client.username_pw_set(b.username, b.password)
        if b.tls:
            ctx = ssl.create_default_context(cafile=b.ca_file)
            if b.cert_file:
                ctx.load_cert_chain(b.cert_file, b.key_file)
            client.tls_set_context(ctx)
        client.max_inflight_messages_set(100)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_socket_register_write
        client.on_socket_unregister_write = self._on_socket_unregister_write
        # paho's reads go through Client._sock_recv (socket errors -> BlockingIOError,
        # ConnectionError): the instance attribute puts the buffer in front of it.
        self._paho_recv = client._sock_recv
        client._sock_recv = self._buffered_recv  # type: ignore[method-assign]
        return client

    def _topped_up(self, need: int) -> bool:
        """Make the buffer hold ``need`` unread bytes; False when the socket has no more yet.

        A socket error or the end of the stream also gives False: paho's next read meets it
        and handles the lost connection.
        """
        buf, pos = self._rbuf, self._rpos
        while len(buf) - pos < need:
            try:
                more = self._paho_recv(max(READ_CHUNK_BYTES, need - (len(buf) - pos)))
            except BlockingIOError:
                self._drained = True
                return False
            except OSError:
                return False
            if not more:
                return False
            buf = buf[pos:] + more if pos < len(buf) else more
            pos = 0
            self._rbuf, self._rpos = buf, 0
        return True

    def _take_publish(self) -> bool:
        """Handle the next packet here if it is a QoS 1 PUBLISH (else paho reads it).

        Called between packets only (paho holds no partial packet). Fixed header: type and
        flags (``0x32``, DUP and RETAIN ignored), remaining length; variable header: topic
        (length-prefixed UTF-8), packet id, and in MQTT 5 the properties (length-prefixed,
        skipped); the rest is the payload.
        """
        if not self._topped_up(2):
            return False
        if self._rbuf[self._rpos] & 0xF6 != 0x32:
            return False
        offset, length, shift = 1, 0, 0
        while True:  # remaining length: 1-4 bytes of 7 bits, least significant first
            if not self._topped_up(offset + 1):
                return False
            byte = self._rbuf[self._rpos + offset]
            offset += 1
            length |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
            if shift > 21:
                return False  # malformed: paho reports it
        if length < 4 or not self._topped_up(offset + length):
            return False  # shorter than a topic length and a packet id: paho reports it
        buf, pos = self._rbuf, self._rpos
        start, end = pos + offset, pos + offset + length
        topic_end = start + 2 + ((buf[start] << 8) | buf[start + 1])
        body = topic_end + 2
        if topic_end == start + 2 or body > end:
            return False
        mid = (buf[topic_end] << 8) | buf[topic_end + 1]
        if self.protocol == 5:
            props_length, shift = 0, 0
            while True:
                if body >= end or shift > 21:
                    return False
                byte = buf[body]
                body += 1
                props_length |= (byte & 0x7F) << shift
                if byte < 0x80:
                    break
                shift += 7
            body += props_length
            if body > end:
                return False
        if mid == 0:
            return False
        try:
            topic = buf[start + 2 : topic_end].decode()
        except UnicodeDecodeError:
            return False
        payload = buf[body:end]
        if end == len(buf):
            self._rbuf, self._rpos = b"", 0
        else:
            self._rpos = end
        self._handle_message(topic, payload, mid, 1, None)
        return True

    def _buffered_recv(self, bufsize: int) -> bytes:
        """paho's ``_sock_recv``: ``bufsize`` bytes at most, from the buffer, refilled on empty."""
        buf, pos = self._rbuf, self._rpos
        if pos >= len(buf):
            try:
                buf = self._paho_recv(READ_CHUNK_BYTES)
            except BlockingIOError:
                self._drained = True
                raise
            if not buf:
                return buf  # end of stream: paho sees the connection lost
            self._rbuf, pos = buf, 0
        end = pos + bufsize
        if pos == 0 and end >= len(buf):
            self._rbuf, self._rpos = b"", 0
            return buf
        self._rpos = end
        return buf[pos:end]

    def _reset_read_buffer(self) -> None:
        self._rbuf, self._rpos = b"", 0

    def _call_in_loop(self, fn: Callable[[], None]) -> None:
        loop = self._loop
        assert loop is not None
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            fn()
        else:
            loop.call_soon_threadsafe(fn)

    def _on_socket_open(self, client: mqtt.Client, _userdata: Any, sock: Any) -> None:
        # Runs in paho's connect (a worker thread) before anything is read from the new socket:
        # the loop does not read while connecting.
        self._reset_read_buffer()

        def register() -> None:
            self._sock = sock
            self._writer_registered = False
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
            if not self._connecting:
                self._activate_socket()

        self._call_in_loop(register)

    def _activate_socket(self) -> None:
        """Hand the socket to the event loop (after paho's connect returned)."""
        sock, client, loop = self._sock, self._client, self._loop
        if sock is None or client is None or loop is None:
            return
        if not self._reading_paused:
            loop.add_reader(sock, self._readable)
        if client.want_write() and not self._writer_registered:
            loop.add_writer(sock, self._writable)
            self._writer_registered = True

    def _on_socket_close(self, _client: mqtt.Client, _userdata: Any, sock: Any) -> None:
        self._reset_read_buffer()

        def unregister() -> None:
            if self._sock is sock:
                self._unregister_socket()

        self._call_in_loop(unregister)

    def _unregister_socket(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None and self._loop is not None:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(sock)
                self._loop.remove_writer(sock)
        self._writer_registered = False

    def _on_socket_register_write(self, client: mqtt.Client, _userdata: Any, sock: Any) -> None:
        def register() -> None:
            if self._sock is sock and not self._writer_registered and not self._connecting:
                assert self._loop is not None
                self._loop.add_writer(sock, self._writable)
                self._writer_registered = True

        self._call_in_loop(register)

    def _on_socket_unregister_write(self, _client: mqtt.Client, _userdata: Any, sock: Any) -> None:
        def unregister() -> None:
            if self._sock is sock and self._writer_registered:
                assert self._loop is not None
                with contextlib.suppress(ValueError, OSError):
                    self._loop.remove_writer(sock)
                self._writer_registered = False

        self._call_in_loop(unregister)

    def _readable(self) -> None:
        """Handle packets until the socket is drained (paho's loop_read takes one per call)."""
        client = self._client
        assert client is not None
        self._drained = False
        fast = self.identity_property is None
        taken = 0
        clock = time.monotonic
        deadline = clock() + READ_BUDGET_S
        try:
            for _ in range(MAX_PACKETS_PER_EVENT):
                if self._reading_paused or self._sock is None:
                    return
                if taken and clock() >= deadline:
                    break
                if fast and client._in_packet["command"] == 0:
                    if self._take_publish():
                        taken += 1
                        continue
                    if self._drained:
                        return
                if client.loop_read() != mqtt.MQTT_ERR_SUCCESS or self._drained:
                    return
        finally:
            if taken:  # what paho's own reads record for its keepalive
                client._last_bytes_received = time.monotonic()
        # More may sit in the buffer, where the selector cannot see it: continue soon (one
        # continuation at a time: the selector's own calls must not each start another chain,
        # or the chains multiply during a long backlog and starve the writer and the timers).
        self._schedule_read()

    def _schedule_read(self) -> None:
        if not self._read_scheduled:
            assert self._loop is not None
            self._read_scheduled = True
            self._loop.call_soon(self._readable_if_open)

    def _writable(self) -> None:
        assert self._client is not None
        self._client.loop_write()

    def _pause_reading(self) -> None:
        if not self._reading_paused:
            self._reading_paused = True
            self.stats.read_pauses += 1
            if self._sock is not None and self._loop is not None:
                self._loop.remove_reader(self._sock)

    def _resume_reading(self) -> None:
        if self._reading_paused and not self._stopping.is_set():
            self._reading_paused = False
            if self._sock is not None and self._loop is not None:
                self._loop.add_reader(self._sock, self._readable)
                # Data may already sit in paho's or the kernel's buffer.
                self._schedule_read()

    def _readable_if_open(self) -> None:
        self._read_scheduled = False
        if self._sock is not None and not self._reading_paused:
            self._readable()

    async def _misc_loop(self) -> None:
        assert self._client is not None
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), 1.0)
            if self._sock is not None and not self._connecting:
                self._client.loop_misc()

    async def _connection_loop(self) -> None:
        assert self._client is not None
        client = self._client
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.session_expiry_s
        props.ReceiveMaximum = self.receive_maximum
        delay = self.retry_initial_s
        first = True
        while not self._stopping.is_set():
            self._disconnected.clear()
            self._connect_error = None
            self._connecting = True
            try:
                if first and self.protocol == 311:
                    await asyncio.to_thread(
                        client.connect,
                        self.broker.host,
                        self.broker.port,
                        keepalive=self.keepalive_s,
                    )
                elif first:
                    await asyncio.to_thread(
                        client.connect,
                        self.broker.host,
                        self.broker.port,
                        keepalive=self.keepalive_s,
                        clean_start=False,
                        properties=props,
                    )
                else:
                    await asyncio.to_thread(client.reconnect)
                first = False
            except (OSError, ssl.SSLError, mqtt.WebsocketConnectionError) as exc:
                self._connecting = False
                log.warning("ingest %s: cannot connect to broker: %s", self.client_id, exc)
                await self._sleep_or_stop(delay)
                delay = min(delay * 2, self.retry_max_s) * random.uniform(0.8, 1.2)
                continue
            self._connecting = False
            self._activate_socket()
            stop_task = asyncio.ensure_future(self._stopping.wait())
            down_task = asyncio.ensure_future(self._disconnected.wait())
            try:
                await asyncio.wait({stop_task, down_task}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop_task.cancel()
                down_task.cancel()
            if self._stopping.is_set():
                await self._drain_for_stop()
                return
            self._connected.clear()
            if self._connect_error:
                log.warning("ingest %s: %s", self.client_id, self._connect_error)
            else:
                delay = self.retry_initial_s
            await self._sleep_or_stop(delay)
            delay = min(delay * 2, self.retry_max_s) * random.uniform(0.8, 1.2)

    async def _sleep_or_stop(self, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)

    async def _drain_for_stop(self) -> None:
        """On stop: keep the connection until the writer has written and acknowledged all.

        After ``drain_timeout_s`` (a store that stays down) the rest stays unacknowledged: the
        broker keeps it in this worker's session and re-delivers it to its next run.
        """
        deadline = time.monotonic() + self.drain_timeout_s
        while self._sealed or self._current.messages or self._in_flight:
            if self._disconnected.is_set() or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.02)
        self._give_up.set()
        self._wakeup.set()

    # paho callbacks (run inside loop_read / loop_write on the event loop)

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: Any,
        _flags: Any,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        if reason.is_failure:
            self._connect_error = f"broker refused the connection: {reason}"
            self._disconnected.set()
            return
        self._epoch += 1
        self.stats.connects += 1
        self._dl_pending.clear()
        if self.protocol == 5:
            client.subscribe(self.subscription, options=SubscribeOptions(qos=1))
        else:
            client.subscribe(self.subscription, qos=1)

    def _on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _mid: int,
        reasons: list[ReasonCode],
        _props: Properties | None,
    ) -> None:
        if any(r.is_failure for r in reasons):
            self._connect_error = f"subscription {self.subscription!r} refused: {reasons}"
            assert self._client is not None
            self._client.disconnect()
            return
        log.info("ingest %s subscribed to %s", self.client_id, self.subscription)
        self._connected.set()

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _flags: Any,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        if not self._stopping.is_set():
            log.warning("ingest %s disconnected: %s", self.client_id, reason)
        self._epoch += 1
        self._connected.clear()
        self._disconnected.set()
        self._wakeup.set()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self._handle_message(msg.topic, bytes(msg.payload), msg.mid, msg.qos, msg)

    def _handle_message(
        self, topic: str, payload: bytes, mid: int, qos: int, msg: mqtt.MQTTMessage | None
    ) -> None:
        """One delivery: validate, format, add to the batch (or dead-letter it)."""
        self.stats.received += 1
        client_gateway: str | None = None
        formatter = self._formatter
        try:
            if self.identity_property is not None:
                client_gateway = self._identity(msg)
            if formatter is not None:
                lines, count = schema.decode_batch_lines(
                    topic, payload, formatter, client_gateway_id=client_gateway
                )
                message = _Message(mid, self._epoch, topic, payload, count, lines)
            else:
                readings = schema.decode_batch(topic, payload, client_gateway_id=client_gateway)
                count = len(readings)
                message = _Message(mid, self._epoch, topic, payload, count, readings=readings)
        except SchemaError as exc:
            self._dead_letter(topic, payload, str(exc), mid, qos)
            return
        except StoreRejectedError as exc:  # a value line protocol cannot represent
            self._dead_letter(topic, payload, f"store refused: {exc}", mid, qos)
            return
        except Exception as exc:  # the supervisor of one message: count it, keep the payload
            log.exception("ingest %s: unexpected error decoding a message", self.client_id)
            self._dead_letter(topic, payload, f"internal error: {exc!r}", mid, qos)
            return
        self.stats.received_readings += count
        self._current.add(message)
        self._pending_readings += count
        if self._current.n_readings >= self.batch_max_readings:
            self._seal()
        elif len(self._current.messages) == 1:
            self._wakeup.set()  # start the linger clock
        if self._pending_readings >= self.max_pending_readings:
            self._pause_reading()

    def _identity(self, msg: mqtt.MQTTMessage | None) -> str:
        props = getattr(msg, "properties", None)
        for key, value in getattr(props, "UserProperty", None) or ():
            if key == self.identity_property:
                return str(value)
        raise SchemaError(f"message carries no {self.identity_property!r} identity property")

    def _seal(self) -> None:
        if self._current.messages:
            self._sealed.append(self._current)
            self._current = _Batch()
            self._wakeup.set()

    def _dead_letter(
        self, topic: str, payload: bytes, reason: str, mid: int, qos: int, *, epoch: int = -1
    ) -> None:
        assert self._client is not None
        log.warning("ingest %s: dead-lettering a message on %s: %s", self.client_id, topic, reason)
        record = schema.encode_deadletter(reason, topic, payload, datetime.now(UTC))
        info = self._client.publish(schema.topic_deadletter(_deadletter_gateway(topic)), record, 1)
        self.stats.dead_lettered += 1
        if qos == 0:
            return
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            # Not acknowledged: the broker re-delivers it and it is dead-lettered again.
            return
        self._dl_pending[info.mid] = (self._epoch if epoch < 0 else epoch, mid)

    def _on_publish(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        mid: int,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        pending = self._dl_pending.pop(mid, None)
        if pending is None:
            return
        epoch, original_mid = pending
        if reason.is_failure:
            log.warning("ingest %s: dead-letter publish refused: %s", self.client_id, reason)
            return
        self._ack(epoch, original_mid)

    def _ack(self, epoch: int, mid: int) -> None:
        assert self._client is not None
        # A packet id names a message only on the connection that delivered it: the epoch
        # moves on at every CONNACK and every disconnect. (Not "subscribed": a resumed session
        # delivers queued messages between CONNACK and SUBACK, and they must be acked too.)
        if epoch != self._epoch:
            self.stats.stale_acks_skipped += 1
            return
        self._client.ack(mid, 1)
        self.stats.acked += 1

    # ----------------------------------------------------------------------------------------
    # writing

    async def _writer_loop(self) -> None:
        try:
            await self._write_and_ack()
        finally:
            for _, task in self._in_flight:
                task.cancel()
            self._in_flight.clear()

    async def _write_and_ack(self) -> None:
        """Write sealed batches, up to ``writes_in_flight`` at once; acknowledge in order.

        Several writes in flight let the store parse one body while the next is on its way,
        and a slow write (a store merging its parts) does not stop the others. A batch is
        acknowledged only when it and every batch sealed before it are stored: MQTT wants
        PUBACKs in the order the PUBLISHes came (MQTT 5 section 4.6), and a write that keeps
        failing holds back the acknowledgements of the later ones, so the broker keeps them
        all (the readings held stay bounded by ``max_pending_readings``).
        """
        in_flight = self._in_flight
        while True:
            if self._give_up.is_set():
                return
            while in_flight and in_flight[0][1].done():
                batch, task = in_flight.popleft()
                error = task.exception()
                if isinstance(error, _GiveUpError):
                    return  # the drain on stop timed out: the rest stays unacknowledged
                if error is not None:
                    raise error
                self._pending_readings -= batch.n_readings
                for m in batch.messages:
                    self._ack(m.epoch, m.mid)
                if self._pending_readings < self.max_pending_readings // 2:
                    self._resume_reading()
            if self._sealed and self._writes_running() < self.writes_in_flight:
                batch = self._sealed.popleft()
                task = asyncio.create_task(self._write_batch(batch), name="ingest-write")
                task.add_done_callback(self._wake_writer)
                in_flight.append((batch, task))
                continue
            wait_s = 1.0
            if not self._sealed and self._current.messages:
                wait_s = self._current.started + self.linger_s - time.monotonic()
                if wait_s <= 0 or self._stopping.is_set():
                    self._seal()
                    continue
            elif not self._sealed and not in_flight and self._stopping.is_set():
                return
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), wait_s)

    def _wake_writer(self, _task: asyncio.Task[None]) -> None:
        self._wakeup.set()

    def _writes_running(self) -> int:
        """Writes not finished yet (finished ones may wait behind an older one for their acks)."""
        return sum(not task.done() for _, task in self._in_flight)

    async def _write_batch(self, batch: _Batch) -> None:
        try:
            await self._write_with_retry(batch.messages)
        except StoreRejectedError as exc:
            log.warning(
                "ingest %s: store refused a batch (%s); writing it message by message",
                self.client_id,
                exc,
            )
            kept: list[_Message] = []
            for m in batch.messages:
                try:
                    await self._write_with_retry([m])
                    kept.append(m)
                except StoreRejectedError as one:
                    self._dead_letter(
                        m.topic, m.payload, f"store refused: {one}", m.mid, 1, epoch=m.epoch
                    )
            batch.messages = kept
            return
        self.stats.written_batches += 1

    def _write_messages(self, messages: list[_Message]) -> None:
        """One store write of the messages' readings (runs in a worker thread)."""
        if self._formatter is not None:
            store: LineProtocolStore = self.store  # type: ignore[assignment]
            store.write_lines(b"\n".join([m.lines for m in messages]))
        else:
            readings: list[StoredReading] = []
            for m in messages:
                readings.extend(m.readings)
            self.store.write(readings)

    async def _write_with_retry(self, messages: list[_Message]) -> None:
        delay = self.retry_initial_s
        while True:
            try:
                await asyncio.to_thread(self._write_messages, messages)
            except StoreRejectedError:
                raise
            except StoreError as exc:
                self.stats.store_retries += 1
                if self.stats.store_retries == 1 or delay >= self.retry_max_s:
                    log.warning(
                        "ingest %s: store write failed, retrying in %.1f s: %s",
                        self.client_id,
                        delay,
                        exc,
                    )
                if self._give_up.is_set():
                    raise _GiveUpError from exc
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._give_up.wait(), delay)
                delay = min(delay * 2, self.retry_max_s) * random.uniform(0.8, 1.2)
                continue
            self.stats.written_readings += sum(m.count for m in messages)
            return
