"""CGM: back-fill what was missed with RACP, then take live notifications.

On every connection the session reads the session start (0x2AAA) and asks RACP for the records
from the sync point's time offset + 1 (all records on a new sensor session), while live
measurements (0x2AA7) already flow into the same inbox; duplicates between the two share a
reading id. While connected, the sync point follows the live stream only as far as it has no
gap (a gap larger than the measurement interval is back-filled with RACP at once), so after a
disconnect the next connection asks for exactly what is missing.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from datetime import datetime

from vitalgate.drivers import cgm as codec
from vitalgate.drivers import racp, uuids
from vitalgate.errors import DeviceError, ParseError
from vitalgate.gateway.link import first_error
from vitalgate.gateway.pipeline import Rejected
from vitalgate.gateway.registry import SyncPoint
from vitalgate.gateway.sessions.base import (
    Inbox,
    SessionEnv,
    SessionResult,
    deliver,
    parse_reason,
)
from vitalgate.gateway.sessions.racp import Progress, RacpChannel
from vitalgate.gateway.timefix import local_to_utc
from vitalgate.readings import CgmReading, Reading

__all__ = ["run_cgm"]

_log = logging.getLogger(__name__)

_FLUSH_S = 0.5


class _Stream:
    def __init__(self, env: SessionEnv, result: SessionResult, *, e2e: bool) -> None:
        self.env = env
        self.result = result
        self.e2e = e2e
        self.pending: list[Reading | Rejected] = []
        self.offsets: set[int] = set()
        self.start_local: datetime | None = None
        self.start_utc: datetime | None = None
        self.undecodable = 0

    def take(self, received_at: datetime, data: bytes) -> None:
        assert self.start_local is not None and self.start_utc is not None
        try:
            records = codec.parse_measurements(data, e2e_crc=self.e2e)
        except ParseError as exc:
            self.result.rejected.append(parse_reason("CGM measurement", exc))
            self.undecodable += 1
            return
        for m in records:
            self.pending.append(
                self.env.builder.cgm(
                    m,
                    session_start_local=self.start_local,
                    session_start_utc=self.start_utc,
                    received_at=received_at,
                )
            )

    async def flush(self) -> list[int]:
        """Deliver what is pending; the time offsets now durably in the outbox."""
        items, self.pending = self.pending, []
        await deliver(self.env, items, self.result)
        return [r.time_offset_min for r in items if isinstance(r, CgmReading)]


_SETTLE_ROUNDS = 4


def _contiguous(last: int | None, offsets: set[int], interval_min: int) -> int | None:
    """The highest offset reachable from ``last`` (else from the first offset) without a gap
    wider than the interval."""
    if last is None:
        if not offsets:
            return None
        last = min(offsets)
    current = last
    for offset in sorted(o for o in offsets if o > last):
        if offset - current > interval_min:
            break
        current = offset
    return current


async def run_cgm(env: SessionEnv) -> SessionResult:
    result = SessionResult()
    link = env.link
    record = env.builder.record
    feature = codec.parse_feature(await link.read(uuids.CGM_FEATURE))
    e2e = bool(feature.features & codec.CgmFeatureFlag.E2E_CRC)
    start = codec.parse_session_start_time(
        await link.read(uuids.CGM_SESSION_START_TIME), e2e_crc=e2e
    )
    if start.start is None:
        raise DeviceError(f"{link.address}: CGM reports no session start (no sensor session)")
    stream = _Stream(env, result, e2e=e2e)
    stream.start_local = start.start
    # The session start as the device states it: part of every reading id, so it must not
    # depend on the gateway's clock corrections (those apply to each record's measured_at).
    stream.start_utc = start.start_utc or local_to_utc(start.start, env.builder.fixer.tz)

    inbox = Inbox(env.clock, env.limits.stream_buffer)
    progress = Progress()

    def on_measurement(data: bytes) -> None:
        progress.touch()
        inbox.push(data)

    await link.subscribe(uuids.CGM_MEASUREMENT, on_measurement)
    channel = RacpChannel(link)
    await channel.open()

    sync = record.sync
    last: int | None = None
    if sync.cgm_session_start == stream.start_utc:
        last = sync.cgm_last_offset_min
    interval_min = 5
    durable: set[int] = set()

    async def backfill(after: int | None) -> None:
        request = racp.report_all() if after is None else racp.report_from_sequence(after + 1)
        _log.debug("%s: CGM back-fill from offset %s", link.address, after)
        finished = asyncio.Event()

        async def consume() -> None:
            while not (finished.is_set() and inbox.empty()):
                got = await inbox.get(0.05)
                if got is not None:
                    stream.take(*got)
                    if len(stream.pending) >= env.limits.download_batch:
                        durable.update(await stream.flush())

        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(consume())
                try:
                    response = await channel.request(
                        request, progress=progress, idle_timeout_s=env.limits.procedure_timeout_s
                    )
                finally:
                    finished.set()
        except BaseExceptionGroup as group:
            raise first_error(group) from None
        durable.update(await stream.flush())
        if response.response_code not in (
            racp.ResponseCode.SUCCESS,
            racp.ResponseCode.NO_RECORDS_FOUND,
        ):
            raise DeviceError(f"{link.address}: RACP report refused: {response.response_code!r}")

    async def move_sync(new_last: int | None) -> None:
        nonlocal last
        if new_last is None or new_last == last or inbox.dropped or stream.undecodable:
            return
        last = new_last
        _log.debug("%s: CGM sync point -> offset %d", link.address, last)
        result.sync = SyncPoint(cgm_session_start=stream.start_utc, cgm_last_offset_min=last)
        await env.advance_sync(result.sync)

    def learn_interval() -> None:
        nonlocal interval_min
        ordered = sorted(durable)
        steps = [b - a for a, b in itertools.pairwise(ordered) if b > a]
        if steps:
            interval_min = max(1, min(steps))

    async def settle() -> None:
        """Back-fill gaps until the records form a gap-free run. A gap that a back-fill from
        just before it does not fill is a sensor drop-out (the device has no records there)
        and is stepped over; the sync point never passes a gap that may still hold records."""
        for _ in range(_SETTLE_ROUNDS):
            learn_interval()
            point = _contiguous(last, durable, interval_min)
            await move_sync(point)
            later = [o for o in durable if point is not None and o > point]
            if point is None or not later:
                return
            next_present = min(later)
            before = set(durable)
            await backfill(point)
            if not any(point < o < next_present for o in durable - before):
                await move_sync(next_present)  # a drop-out: nothing stored in the gap
        learn_interval()
        await move_sync(_contiguous(last, durable, interval_min))

    async def advance_live() -> bool:
        """Move the sync point along the live stream; False when the stream has a gap."""
        learn_interval()
        new_last = _contiguous(last, durable, interval_min)
        await move_sync(new_last)
        return not any(o > (last if last is not None else -1) for o in durable)

    await backfill(last)
    await settle()

    def ended() -> bool:
        return env.stop.is_set() or not link.is_connected

    loop = asyncio.get_running_loop()
    last_flush = loop.time()
    while True:
        got = await inbox.get(_FLUSH_S, closed=ended)
        if got is not None:
            stream.take(*got)
        due = loop.time() - last_flush >= _FLUSH_S or got is None
        if stream.pending and (due or len(stream.pending) >= env.limits.download_batch):
            last_flush = loop.time()
            durable.update(await stream.flush())
            if not await advance_live():
                await settle()  # a gap in the live stream: back-fill it while connected
        if got is None and ended() and inbox.empty():
            break
    result.dropped = inbox.dropped
    return result
