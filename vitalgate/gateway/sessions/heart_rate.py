"""Heart rate: a live stream kept open, delivered in small batches.

Notifications go into a bounded inbox (full policy: the newest sample is dropped and counted --
a stalled outbox must not stall the BLE stack); a consumer delivers whatever has arrived
every ``_FLUSH_S`` seconds or every ``limits.download_batch`` samples. The session lasts until
the device drops the link or the daemon stops. Live samples have no device time:
``measured_at`` is the receipt time (flag ``NO_DEVICE_TIME``).
"""

from __future__ import annotations

import asyncio

from vitalgate.drivers import heart_rate as codec
from vitalgate.drivers import uuids
from vitalgate.errors import ParseError
from vitalgate.gateway.pipeline import Rejected
from vitalgate.gateway.sessions.base import (
    Inbox,
    SessionEnv,
    SessionResult,
    deliver,
    parse_reason,
)
from vitalgate.readings import Reading

__all__ = ["run_heart_rate"]

_FLUSH_S = 1.0


async def run_heart_rate(env: SessionEnv) -> SessionResult:
    result = SessionResult()
    inbox = Inbox(env.clock, env.limits.stream_buffer)
    await env.link.subscribe(uuids.HEART_RATE_MEASUREMENT, inbox.push)

    def ended() -> bool:
        return env.stop.is_set() or not env.link.is_connected

    pending: list[Reading | Rejected] = []
    loop = asyncio.get_running_loop()
    last_flush = loop.time()
    while True:
        got = await inbox.get(_FLUSH_S, closed=ended)
        if got is not None:
            received_at, data = got
            try:
                pending.append(env.builder.heart_rate(codec.parse_measurement(data), received_at))
            except ParseError as exc:
                result.rejected.append(parse_reason("heart rate measurement", exc))
        due = loop.time() - last_flush >= _FLUSH_S
        if pending and (due or got is None or len(pending) >= env.limits.download_batch):
            await deliver(env, pending, result)
            pending = []
            last_flush = loop.time()
        if got is None and ended() and inbox.empty():
            break
    result.dropped = inbox.dropped
    return result
