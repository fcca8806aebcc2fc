"""Heart rate: a live stream kept open, delivered in small batches.

Notifications go into a bounded inbox (full policy: the newest sample is dropped and counted --
a stalled outbox must not stall the BLE stack; raw PPG/accelerometer packets have a bound of
their own, so they can never crowd out a heart-rate measurement); a consumer delivers
whatever has arrived every ``_FLUSH_S`` seconds or every ``limits.download_batch`` samples.
The session lasts until the device drops the link or the daemon stops. Live samples have no
device time: ``measured_at`` is the receipt time (flag ``NO_DEVICE_TIME``), kept a millisecond
apart from the previous sample.

When the wearable has the vendor PPG Stream service (``docs/vendor-ppg-service.md``), the
session also subscribes to its PPG and accelerometer data and derives heart rate from the raw
PPG itself (:class:`~vitalgate.gateway.ppg.PpgHeartRate`): one reading per ``_PPG_WINDOW_S`` of
samples, with the RR intervals of the detected beats and the window's quality flags. Raw
samples stay in the gateway. A lost packet (sequence gap, undecodable packet, full inbox)
resets the detector and discards the unfinished window.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from vitalgate.drivers import heart_rate as codec
from vitalgate.drivers import ppg_stream, uuids
from vitalgate.errors import ParseError
from vitalgate.gateway.pipeline import Rejected
from vitalgate.gateway.ppg import PpgHeartRate, PpgWindow
from vitalgate.gateway.sessions.base import (
    Inbox,
    SessionEnv,
    SessionResult,
    deliver,
    parse_reason,
)
from vitalgate.readings import Reading

__all__ = ["run_heart_rate"]

_log = logging.getLogger(__name__)

_FLUSH_S = 1.0
#: Seconds of PPG per derived heart-rate reading.
_PPG_WINDOW_S = 30.0

_HR, _PPG, _ACCEL = b"\x00", b"\x01", b"\x02"


def _tagged(inbox: Inbox, tag: bytes) -> Callable[[bytes], None]:
    if tag == _HR:

        def push(data: bytes) -> None:
            inbox.push(tag + data)

        return push

    def push_bulk(data: bytes) -> None:
        inbox.push_bulk(tag + data)

    return push_bulk


async def _ppg_deriver(env: SessionEnv, inbox: Inbox) -> PpgHeartRate | None:
    """Subscribe to the vendor PPG stream if the device has it."""
    link = env.link
    if not link.has(ppg_stream.PPG_DATA_UUID):
        return None
    rate_hz = ppg_stream.DEFAULT_SAMPLING_RATE_HZ
    if link.has(ppg_stream.CONFIG_UUID):
        try:
            rate_hz = ppg_stream.parse_config(
                await link.read(ppg_stream.CONFIG_UUID)
            ).sampling_rate_hz
        except ParseError as exc:
            _log.info("%s: bad PPG stream configuration (%s): PPG not used", link.address, exc)
            return None
    with_accel = link.has(ppg_stream.ACCEL_DATA_UUID)
    deriver = PpgHeartRate(sampling_rate_hz=rate_hz, with_accel=with_accel, window_s=_PPG_WINDOW_S)
    await link.subscribe(ppg_stream.PPG_DATA_UUID, _tagged(inbox, _PPG))
    if with_accel:
        await link.subscribe(ppg_stream.ACCEL_DATA_UUID, _tagged(inbox, _ACCEL))
    return deriver


async def run_heart_rate(env: SessionEnv) -> SessionResult:
    result = SessionResult()
    inbox = Inbox(env.clock, env.limits.stream_buffer, bulk_maxsize=env.limits.stream_buffer)
    await env.link.subscribe(uuids.HEART_RATE_MEASUREMENT, _tagged(inbox, _HR))
    deriver = await _ppg_deriver(env, inbox)

    def ended() -> bool:
        return env.stop.is_set() or not env.link.is_connected

    pending: list[Reading | Rejected] = []
    dropped_seen = 0
    loop = asyncio.get_running_loop()
    last_flush = loop.time()
    while True:
        got = await inbox.get(_FLUSH_S, closed=ended)
        if got is not None:
            received_at, tagged = got
            tag, data = tagged[:1], tagged[1:]
            if deriver is not None and inbox.bulk_dropped != dropped_seen:
                dropped_seen = inbox.bulk_dropped
                deriver.gap()  # PPG or accelerometer samples were dropped
            windows: list[PpgWindow] = []
            try:
                if tag == _HR:
                    pending.append(
                        env.builder.heart_rate(codec.parse_measurement(data), received_at)
                    )
                elif tag == _PPG and deriver is not None:
                    windows = deriver.ppg(ppg_stream.parse_ppg_packet(data))
                elif tag == _ACCEL and deriver is not None:
                    windows = deriver.accel(ppg_stream.parse_accel_packet(data))
            except ParseError as exc:
                what = {_HR: "heart rate measurement", _PPG: "PPG packet"}.get(
                    tag, "accelerometer packet"
                )
                result.rejected.append(parse_reason(what, exc))
                if deriver is not None and tag != _HR:
                    deriver.gap()
            pending.extend(env.builder.ppg_heart_rate(w, received_at) for w in windows)
        due = loop.time() - last_flush >= _FLUSH_S
        if pending and (due or got is None or len(pending) >= env.limits.download_batch):
            await deliver(env, pending, result)
            pending = []
            last_flush = loop.time()
        if got is None and ended() and inbox.empty():
            break
    result.dropped = inbox.dropped
    if deriver is not None:
        result.stream_resets = deriver.resets
    return result
