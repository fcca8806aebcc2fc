"""paho-mqtt 2.x driven by the asyncio event loop, without paho's network thread.

paho's socket callbacks (``on_socket_open``, ``on_socket_register_write``,
``on_socket_unregister_write``, ``on_socket_close``) register the socket with the event loop
(``loop.add_reader`` / ``add_writer``), which then calls ``loop_read`` / ``loop_write``; a small
task calls ``loop_misc`` every second for keepalive pings -- the approach aiomqtt takes. Only the
blocking ``connect`` (DNS, TCP connect, TLS handshake) runs in a worker thread
(``asyncio.to_thread``); socket callbacks fired there are handed to the loop thread with
``call_soon_threadsafe``. Everything else, every paho call and callback, happens in the loop
thread.

One :class:`MqttConnection` is one network connection (a fresh paho client each time, so no
state of a dead connection leaks into the next); reconnecting with backoff is the caller's loop
(see :class:`Backoff` and ``vitalgate.cloud_sync.publisher``). The ingest uses the same class for
subscribing, with ``manual_ack=True`` and :meth:`MqttConnection.ack`.

Usage::

    config = MqttConfig(url="mqtts://broker:8883", client_id="gw-0001", ca_file=Path("ca.pem"))
    async with MqttConnection(config, will=Will(topic, payload, retain=True)) as conn:
        await conn.publish("a/b", b"payload", qos=1)   # returns at PUBACK
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import ssl
import threading
import traceback
import urllib.parse
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, Self

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from vitalgate.errors import ConfigError, VitalgateError

__all__ = [
    "Backoff",
    "ConnectionLostError",
    "MqttConfig",
    "MqttConnection",
    "MqttError",
    "PublishRefusedError",
    "Will",
]

log = logging.getLogger(__name__)

#: How often ``loop_misc`` runs (keepalive pings, keepalive timeout detection).
_MISC_INTERVAL_S: Final = 1.0


class MqttError(VitalgateError):
    """An MQTT connection failed or was refused."""

    def __init__(self, message: str, *, reason_code: int | None = None) -> None:
        self.reason_code = reason_code
        super().__init__(message)


class ConnectionLostError(MqttError):
    """The connection dropped; publishes still waiting for their PUBACK will not get one."""


class PublishRefusedError(MqttError):
    """The broker answered a publish with a failure reason code (MQTT 5, >= 0x80)."""


@dataclass(frozen=True, slots=True)
class MqttConfig:
    """How to reach the broker. ``url``: ``mqtt://host:port`` or ``mqtts://host:port`` (TLS).

    ``client_id`` is the gateway id for a gateway. ``protocol`` 5 (default) or 311. A
    persistent session (``clean_start=False`` with ``session_expiry_s``; MQTT 3.1.1:
    ``clean_session=False``) keeps QoS 1 state across reconnects. TLS: ``ca_file`` (default:
    the system's CAs), ``cert_file``/``key_file`` for a client certificate.
    """

    url: str
    client_id: str
    protocol: Literal[5, 311] = 5
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    keepalive_s: int = 30
    clean_start: bool = False
    session_expiry_s: int = 7 * 24 * 3600
    connect_timeout_s: float = 10.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 60.0

    def __post_init__(self) -> None:
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ConfigError("mqtt.url", f"scheme must be mqtt:// or mqtts://, got {self.url!r}")
        if not parts.hostname:
            raise ConfigError("mqtt.url", f"no host in {self.url!r}")
        try:
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError as exc:
            raise ConfigError("mqtt.url", f"bad port in {self.url!r}") from exc
        if parts.path not in ("", "/") or parts.query:
            raise ConfigError("mqtt.url", f"unexpected path or query in {self.url!r}")
        if not self.client_id:
            raise ConfigError("mqtt.client_id", "must not be empty")
        if self.protocol not in (5, 311):
            raise ConfigError("mqtt.protocol", f"must be 5 or 311, got {self.protocol!r}")
        if self.keepalive_s < 1:
            raise ConfigError("mqtt.keepalive_s", "must be at least 1")
        if self.key_file is not None and self.cert_file is None:
            raise ConfigError("mqtt.key_file", "needs mqtt.cert_file")
        if not 0 < self.backoff_initial_s <= self.backoff_max_s:
            raise ConfigError("mqtt.backoff_initial_s", "must be > 0 and <= backoff_max_s")
        if self.password is not None and self.username is None:
            raise ConfigError("mqtt.password", "needs mqtt.username")
        for key in ("ca_file", "cert_file", "key_file"):
            path = getattr(self, key)
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"mqtt.{key}", f"no such file: {path}")

    @property
    def tls(self) -> bool:
        return urllib.parse.urlsplit(self.url).scheme == "mqtts"

    @property
    def host(self) -> str:
        host = urllib.parse.urlsplit(self.url).hostname
        assert host is not None
        return host

    @property
    def port(self) -> int:
        port = urllib.parse.urlsplit(self.url).port
        return port if port is not None else (8883 if self.tls else 1883)


@dataclass(frozen=True, slots=True)
class Will:
    """The Last Will the broker publishes if the connection ends without a clean DISCONNECT."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


class Backoff:
    """Exponential backoff with "equal jitter": delay d doubles per failure up to ``max_s``,
    and the sleep is uniform in [d/2, d], so a fleet of gateways does not reconnect in step.
    """

    def __init__(self, initial_s: float, max_s: float, *, rng: random.Random | None = None) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self._rng = rng or random.Random()
        self._attempt = 0

    def next_delay(self) -> float:
        d = min(self.max_s, self.initial_s * (2**self._attempt))
        self._attempt = min(self._attempt + 1, 32)
        return float(d / 2 + self._rng.uniform(0, d / 2))

    def reset(self) -> None:
        self._attempt = 0


def _drop_leaked_socket(exc: BaseException) -> None:
    """Close the socket paho 2.2 leaks when a TLS handshake fails.

    ``Client._ssl_wrap_socket`` does not close its SSLSocket when ``do_handshake`` raises; the
    socket lives on in the traceback's frames and would be reported as an unclosed-socket
    ResourceWarning wherever it is finally collected. Clearing those frames here releases it
    now, and only its ResourceWarning is ignored.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        tb = exc.__traceback__
        while tb is not None:
            for value in list(tb.tb_frame.f_locals.values()):
                if isinstance(value, ssl.SSLSocket):
                    with contextlib.suppress(OSError):
                        value.close()
            tb = tb.tb_next
        traceback.clear_frames(exc.__traceback__)


#: MQTT 5 PUBACK reason code "No matching subscribers" (MQTT 5.0, 3.4.2.1).
_NO_MATCHING_SUBSCRIBERS = 0x10


def _reason_value(rc: ReasonCode | int) -> int:
    return rc.value if isinstance(rc, ReasonCode) else int(rc)


class MqttConnection:
    """One MQTT connection on the running event loop (an async context manager).

    ``on_message(message)`` is called in the loop thread for every message received (with
    ``manual_ack=True`` the message is only acknowledged when :meth:`ack` is called: that is how
    the ingest acknowledges only after the store accepted the write). :meth:`pause_reading` and
    :meth:`resume_reading` give backpressure: while paused, nothing is read from the socket.
    """

    def __init__(
        self,
        config: MqttConfig,
        *,
        will: Will | None = None,
        on_message: Callable[[paho.MQTTMessage], None] | None = None,
        manual_ack: bool = False,
        max_inflight: int = 1000,
    ) -> None:
        self.config = config
        self._will = will
        self._on_message_cb = on_message
        self._manual_ack = manual_ack
        self._max_inflight = max_inflight
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._client: paho.Client | None = None
        self._sock: Any = None
        self._reading = True
        self._writer_registered = False
        self._misc_task: asyncio.Task[None] | None = None
        self._connack: asyncio.Future[bool] | None = None
        self._closed: asyncio.Future[None] | None = None
        self._pending: dict[int, asyncio.Future[None]] = {}
        self._needs_subscribers: set[int] = set()
        self._sub_pending: dict[int, asyncio.Future[list[int]]] = {}
        self._unsub_pending: dict[int, asyncio.Future[None]] = {}
        self.session_present = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _make_client(self) -> paho.Client:
        c = self.config
        if c.protocol == 5:
            client = paho.Client(
                CallbackAPIVersion.VERSION2,
                client_id=c.client_id,
                protocol=MQTTProtocolVersion.MQTTv5,
                manual_ack=self._manual_ack,
                reconnect_on_failure=False,
            )
        else:
            client = paho.Client(
                CallbackAPIVersion.VERSION2,
                client_id=c.client_id,
                protocol=MQTTProtocolVersion.MQTTv311,
                clean_session=c.clean_start,
                manual_ack=self._manual_ack,
                reconnect_on_failure=False,
            )
        client.connect_timeout = c.connect_timeout_s
        client.max_inflight_messages_set(self._max_inflight)
        client.max_queued_messages_set(0)
        if c.username is not None:
            client.username_pw_set(c.username, c.password)
        if c.tls:
            try:
                client.tls_set(
                    ca_certs=str(c.ca_file) if c.ca_file else None,
                    certfile=str(c.cert_file) if c.cert_file else None,
                    keyfile=str(c.key_file) if c.key_file else None,
                    cert_reqs=ssl.CERT_REQUIRED,
                    tls_version=ssl.PROTOCOL_TLS_CLIENT,
                )
            except (ssl.SSLError, OSError) as exc:
                raise ConfigError("mqtt.tls", f"cannot load TLS files: {exc}") from exc
        if self._will is not None:
            w = self._will
            client.will_set(w.topic, w.payload, qos=w.qos, retain=w.retain)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        client.on_unsubscribe = self._on_unsubscribe
        client.on_message = self._on_message
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_socket_register_write
        client.on_socket_unregister_write = self._on_socket_unregister_write
        return client

    async def open(self) -> None:
        """Connect and wait for a successful CONNACK; raises MqttError otherwise."""
        if self._client is not None:
            raise MqttError("connection already opened")
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._connack = loop.create_future()
        self._closed = loop.create_future()
        client = self._client = self._make_client()
        c = self.config
        props: Properties | None = None
        clean_start: bool | Literal[3] = paho.MQTT_CLEAN_START_FIRST_ONLY
        if c.protocol == 5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = c.session_expiry_s
            clean_start = c.clean_start
        try:
            await asyncio.wait_for(
                asyncio.to_thread(
                    client.connect,
                    c.host,
                    c.port,
                    keepalive=c.keepalive_s,
                    clean_start=clean_start,
                    properties=props,
                ),
                c.connect_timeout_s + 1,
            )
        except (OSError, ssl.SSLError, TimeoutError, ValueError) as exc:
            self._teardown()
            _drop_leaked_socket(exc)
            raise MqttError(f"cannot connect to {c.host}:{c.port}: {exc}") from exc
        except BaseException:
            self._teardown()
            raise
        self._misc_task = loop.create_task(self._misc_loop(), name="mqtt-loop-misc")
        try:
            self.session_present = await asyncio.wait_for(
                asyncio.shield(self._connack), c.connect_timeout_s
            )
        except TimeoutError as exc:
            await self._abort()
            raise MqttError(
                f"no CONNACK from {c.host}:{c.port} in {c.connect_timeout_s} s"
            ) from exc
        except BaseException:
            await self._abort()
            raise

    async def close(self, *, timeout_s: float = 5.0) -> None:
        """Clean DISCONNECT (no Last Will) and wait for the socket to close."""
        client = self._client
        if client is None:
            return
        if client.is_connected():
            client.disconnect()
            assert self._closed is not None
            with contextlib.suppress(TimeoutError, MqttError):
                await asyncio.wait_for(asyncio.shield(self._closed), timeout_s)
        await self._abort()

    async def _abort(self) -> None:
        """Drop the socket without DISCONNECT (the broker will publish the Last Will)."""
        self._fail_all(ConnectionLostError("connection closed"))
        task = self._misc_task
        self._misc_task = None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._teardown()

    def abort(self) -> None:
        """Close the socket at once, as a crash would (for tests of the Last Will)."""
        self._fail_all(ConnectionLostError("connection aborted"))
        if self._misc_task is not None:
            self._misc_task.cancel()
        self._teardown()

    def _teardown(self) -> None:
        if self._sock is not None:
            self._unregister(self._sock)
        client = self._client
        if client is not None:
            # A dead connection's client is never used again (each connection makes its own),
            # so closing its socket here is all the cleanup paho needs. Its socket callbacks go
            # first: paho's __del__ would otherwise call back into a loop that may be closed.
            client.on_socket_open = None
            client.on_socket_close = None
            client.on_socket_register_write = None
            client.on_socket_unregister_write = None
            sock = client.socket()
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)
        if self._connack is not None and not self._connack.done():
            self._connack.set_exception(ConnectionLostError("connection closed before CONNACK"))
            self._connack.exception()  # retrieved: nobody may be waiting

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.is_connected()

    async def wait_closed(self) -> None:
        """Return when the connection is gone (raises nothing: check why via your publishes)."""
        if self._closed is None:
            return
        await asyncio.shield(self._closed)

    # -- operations --------------------------------------------------------------------------

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        require_subscribers: bool = False,
    ) -> asyncio.Future[None]:
        """Send a message; the future completes at PUBACK (QoS 1), at once for QoS 0.

        It fails with PublishRefusedError for an MQTT 5 reason code >= 0x80 and with
        ConnectionLostError when the connection drops first. With ``require_subscribers`` an
        MQTT 5 PUBACK "No matching subscribers" (0x10) fails it too: the broker accepted the
        message but delivered it to nobody, so it was not delivered. Mosquitto 2.0 answers 0x10
        after a restart until the members of a shared subscription restored from its
        persistence file reconnect; treating that as success loses the message.
        """
        client = self._require_connected()
        assert self._loop is not None
        fut: asyncio.Future[None] = self._loop.create_future()
        info = client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise ConnectionLostError(f"publish failed: {paho.error_string(info.rc)}")
        if qos == 0:
            fut.set_result(None)
        else:
            self._pending[info.mid] = fut
            if require_subscribers:
                self._needs_subscribers.add(info.mid)
        return fut

    @property
    def in_flight(self) -> int:
        """QoS > 0 publishes waiting for their acknowledgement."""
        return len(self._pending)

    async def subscribe(self, filters: Sequence[tuple[str, int]]) -> list[int]:
        """Subscribe; the granted QoS / reason code per filter (>= 0x80: refused)."""
        client = self._require_connected()
        assert self._loop is not None
        rc, mid = client.subscribe(list(filters))
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            raise ConnectionLostError(f"subscribe failed: {paho.error_string(rc)}")
        fut: asyncio.Future[list[int]] = self._loop.create_future()
        self._sub_pending[mid] = fut
        return await fut

    async def unsubscribe(self, topics: Sequence[str]) -> None:
        client = self._require_connected()
        assert self._loop is not None
        rc, mid = client.unsubscribe(list(topics))
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            raise ConnectionLostError(f"unsubscribe failed: {paho.error_string(rc)}")
        fut: asyncio.Future[None] = self._loop.create_future()
        self._unsub_pending[mid] = fut
        await fut

    def ack(self, mid: int, qos: int) -> None:
        """Acknowledge a received message (with ``manual_ack=True``)."""
        client = self._require_connected()
        client.ack(mid, qos)

    def pause_reading(self) -> None:
        """Stop reading from the socket (backpressure); keepalive pings still go out."""
        if self._reading and self._sock is not None:
            assert self._loop is not None
            self._loop.remove_reader(self._sock)
        self._reading = False

    def resume_reading(self) -> None:
        if not self._reading and self._sock is not None:
            assert self._loop is not None
            self._loop.add_reader(self._sock, self._on_readable)
            self._loop.call_soon(self._on_readable)  # TLS may hold buffered records
        self._reading = True

    def _require_connected(self) -> paho.Client:
        if self._client is None or not self._client.is_connected():
            raise ConnectionLostError("not connected")
        return self._client

    def _fail_all(self, exc: MqttError) -> None:
        for futs in (self._pending, self._sub_pending, self._unsub_pending):
            for f in futs.values():
                if not f.done():
                    f.set_exception(exc)
                    f.exception()  # mark retrieved: a caller may have stopped waiting
            futs.clear()
        self._needs_subscribers.clear()

    # -- paho callbacks (loop thread) ----------------------------------------------------------

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        fut = self._connack
        if fut is None or fut.done():
            return
        if reason_code.is_failure:
            fut.set_exception(
                MqttError(
                    f"broker refused the connection: {reason_code}",
                    reason_code=_reason_value(reason_code),
                )
            )
        else:
            fut.set_result(bool(flags.session_present))

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        log.info("MQTT %s disconnected: %s", self.config.client_id, reason_code)
        self._fail_all(ConnectionLostError(f"disconnected: {reason_code}"))
        if self._connack is not None and not self._connack.done():
            self._connack.set_exception(
                MqttError(f"disconnected before CONNACK: {reason_code}", reason_code=None)
            )
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    def _on_publish(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        fut = self._pending.pop(mid, None)
        needs_subscribers = mid in self._needs_subscribers
        self._needs_subscribers.discard(mid)
        if fut is None or fut.done():
            return
        if reason_code.is_failure or (
            needs_subscribers and _reason_value(reason_code) == _NO_MATCHING_SUBSCRIBERS
        ):
            fut.set_exception(
                PublishRefusedError(
                    f"broker refused the publish: {reason_code}",
                    reason_code=_reason_value(reason_code),
                )
            )
        else:
            fut.set_result(None)

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        fut = self._sub_pending.pop(mid, None)
        if fut is not None and not fut.done():
            fut.set_result([_reason_value(rc) for rc in reason_codes])

    def _on_unsubscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        fut = self._unsub_pending.pop(mid, None)
        if fut is not None and not fut.done():
            fut.set_result(None)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        if self._on_message_cb is not None:
            self._on_message_cb(message)

    # -- socket plumbing -----------------------------------------------------------------------

    def _in_loop(self, fn: Callable[..., None], *args: Any) -> None:
        assert self._loop is not None
        if threading.get_ident() == self._loop_thread:
            fn(*args)
        elif not self._loop.is_closed():  # fired from connect() in the worker thread
            self._loop.call_soon_threadsafe(fn, *args)

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._in_loop(self._register, sock)

    def _on_socket_close(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._in_loop(self._unregister, sock)

    def _on_socket_register_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._in_loop(self._register_write, sock)

    def _on_socket_unregister_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._in_loop(self._unregister_write, sock)

    def _register(self, sock: socket.socket) -> None:
        assert self._loop is not None
        if self._client is None or self._client.socket() is not sock or sock.fileno() < 0:
            return
        self._sock = sock
        if self._reading:
            self._loop.add_reader(sock, self._on_readable)

    def _unregister(self, sock: socket.socket) -> None:
        assert self._loop is not None
        if self._sock is not sock:
            return
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_reader(sock)
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_writer(sock)
        self._writer_registered = False
        self._sock = None

    def _register_write(self, sock: socket.socket) -> None:
        assert self._loop is not None
        if self._sock is not sock or self._writer_registered:
            return
        self._loop.add_writer(sock, self._on_writable)
        self._writer_registered = True

    def _unregister_write(self, sock: socket.socket) -> None:
        assert self._loop is not None
        if self._sock is not sock or not self._writer_registered:
            return
        self._loop.remove_writer(sock)
        self._writer_registered = False

    def _on_readable(self) -> None:
        client = self._client
        if client is None or self._sock is None:
            return
        rc = client.loop_read()
        # TLS: records already decrypted into the SSL buffer do not make the fd readable again.
        sock = self._sock
        while (
            rc == MQTTErrorCode.MQTT_ERR_SUCCESS
            and isinstance(sock, ssl.SSLSocket)
            and self._reading
            and sock is self._sock
            and sock.pending()
        ):
            rc = client.loop_read()

    def _on_writable(self) -> None:
        client = self._client
        if client is not None:
            client.loop_write()

    async def _misc_loop(self) -> None:
        client = self._client
        assert client is not None
        while True:
            await asyncio.sleep(_MISC_INTERVAL_S)
            if client.loop_misc() != MQTTErrorCode.MQTT_ERR_SUCCESS and self._sock is None:
                if self._closed is not None and not self._closed.done():
                    self._fail_all(ConnectionLostError("keepalive timeout"))
                    self._closed.set_result(None)
                return
