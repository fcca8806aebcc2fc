"""Wiring the daemon to ``vitalgate.cloud_sync``: the outbox it writes, the publisher it runs.

Kept apart so the gateway's BLE side depends on the outbox only through the small
:class:`~vitalgate.gateway.pipeline.ReadingSink` contract (``add(readings) -> int``, durable on
return, idempotent by reading id).
"""

from __future__ import annotations

from collections.abc import Callable

from vitalgate.cloud_sync.outbox import Outbox
from vitalgate.cloud_sync.publisher import Publisher
from vitalgate.gateway.alerts import AlertEngine, AlertingSink
from vitalgate.gateway.config import GatewayConfig

__all__ = ["alerting_sink", "close_outbox", "open_outbox", "publisher_for"]


def open_outbox(config: GatewayConfig) -> Outbox:
    """The durable outbox under the state directory, with the configured disk budget.

    Full policy "refuse": a full outbox refuses a whole batch (``OutboxFullError``), the
    session's sync point stays, and the device keeps its records until there is room.
    """
    config.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return Outbox(config.outbox_path, max_bytes=config.limits.outbox_max_bytes)


def close_outbox(outbox: Outbox) -> None:
    outbox.close()


def publisher_for(config: GatewayConfig, outbox: Outbox) -> Publisher:
    """The outbox's publisher (MQTT settings from the gateway config)."""
    return Publisher(config.broker, outbox)


def alerting_sink(
    config: GatewayConfig, outbox: Outbox, *, on_alert: Callable[[], None] | None = None
) -> AlertingSink:
    """The outbox with each patient's alert rules (``[[patients]] alerts``) evaluated on it."""
    engine = AlertEngine({pid: p.alerts for pid, p in config.patients.items()})
    return AlertingSink(outbox, engine, on_alert=on_alert)
