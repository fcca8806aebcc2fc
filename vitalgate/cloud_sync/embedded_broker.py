"""An in-process MQTT broker for the zero-set-up demo (amqtt, the ``demo`` extra).

::

    async with EmbeddedBroker() as url:          # "mqtt://127.0.0.1:<free port>"
        config = MqttConfig(url=url, client_id="gw-demo", protocol=311)
        ...

amqtt's limits, which the demo stack respects:

* MQTT 3.1.1 only: an MQTT 5 CONNECT is refused, so clients use ``protocol=311``;
* no shared subscriptions (``$share/...`` is accepted but delivers nothing): one ingest worker;
* offline queueing only for named clients with ``clean_session=False`` (the gateway id is the
  client id, so the publisher qualifies);
* no persistence: the broker lives and dies with the process; the gateway's outbox, not the
  broker, is what makes delivery durable.

It binds 127.0.0.1 explicitly (amqtt's default is every interface), allows anonymous clients
(loopback only), and turns off the ``$SYS`` publisher and amqtt's packet/event loggers.

Warnings: amqtt 0.12 warns (DeprecationWarning) when its deprecated configuration keys
(``auth``, ``topic-check``, ``sys_interval``) are used; the configuration below uses only the
current ``plugins`` form, so it raises none (checked with ``python -W always``). The project's
pytest configuration additionally ignores DeprecationWarning from ``amqtt.*`` modules only.
"""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import Any

from vitalgate.errors import ConfigError, VitalgateError

__all__ = ["EmbeddedBroker"]

log = logging.getLogger(__name__)


class EmbeddedBroker:
    """An amqtt broker on 127.0.0.1; ``async with`` yields its ``mqtt://`` URL."""

    def __init__(self, port: int = 0, *, host: str = "127.0.0.1") -> None:
        if not 0 <= port <= 65535:
            raise ConfigError("broker.port", f"must be 0..65535, got {port}")
        if host not in ("127.0.0.1", "::1", "localhost"):
            # The embedded broker has no authentication: keep it on loopback.
            raise ConfigError("broker.host", f"must be a loopback address, got {host!r}")
        self.host = host
        self.port = port
        self._broker: Any = None

    @property
    def url(self) -> str:
        if self._broker is None:
            raise VitalgateError("embedded broker is not running")
        return f"mqtt://{self.host}:{self.port}"

    async def start(self) -> str:
        try:
            from amqtt.broker import Broker
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise ConfigError(
                "broker", "the embedded broker needs amqtt: pip install 'vitalgate[demo]'"
            ) from exc
        config: dict[str, Any] = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }
        broker = Broker(config, loop=asyncio.get_running_loop())
        try:
            await broker.start()
        except Exception as exc:
            raise VitalgateError(f"embedded broker failed to start: {exc}") from exc
        self._broker = broker
        if self.port == 0:
            server = broker._servers["default"].instance  # amqtt has no public accessor
            self.port = int(server.sockets[0].getsockname()[1])
        log.info("embedded MQTT broker on %s:%d", self.host, self.port)
        return self.url

    async def stop(self) -> None:
        broker, self._broker = self._broker, None
        if broker is not None:
            await broker.shutdown()

    async def __aenter__(self) -> str:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
