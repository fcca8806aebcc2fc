"""CGM: back-fill what was missed with RACP, then take live notifications.

On every connection the session reads the session start (0x2AAA) and back-fills the records
after the sync point's time offset, while live measurements (0x2AA7) already flow into the same
inbox; duplicates between the two share a reading id. The back-fill asks for what already
exists -- offsets up to the sensor timer's present minute - 1, read from CGM Status (0x2AA9) --
in closed "within range" requests of at most half the stream buffer each, then for the rest
open-ended. A range answered completely (nothing dropped from the bounded inbox, nothing
undecodable or rejected meanwhile) holds every record the device has in it: an offset there
without a record is a sensor drop-out, and the sync point moves to the end of the range. While
connected, the sync point follows the live stream only as far as it has no gap (a gap larger
than the measurement interval is back-filled at once) and only while nothing was dropped or
undecodable since the last complete back-fill, so after a disconnect the next connection asks
for exactly what is missing. A back-fill can therefore never outgrow the inbox and lose its
newest records on every try (the soak lost readings that way over a link that stayed up), and
no drop-out or dropped value freezes the sync point for the rest of a days-long link.

Clock: a CGM has no Current Time; its records are stamped session start + time offset, and the
offset counter runs on the sensor's own crystal, so it drifts like any device clock. A live
measurement is sent the moment it is taken, so the live stream measures the timer's rate: the
device seconds elapsed (offset) against the gateway seconds elapsed (arrival). Only a measurement
that arrived as long after its live predecessor as it was taken after it counts (a backlog
delivered in a burst does not); a constant delivery delay cancels out of the rate. Once the
measurements span :data:`_RATE_MIN_SPAN_S`, each record is placed at session start + offset /
rate (flag ``CLOCK_CORRECTED`` when that moves it). The session start is taken as the device
states it. The rate is measured per connection: records back-filled after a reconnect, before
the live stream has spanned the minimum again, are placed at session start + offset.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import itertools
import logging
from datetime import datetime, timedelta

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
from vitalgate.readings import CgmReading, QualityFlag, Reading

__all__ = ["run_cgm"]

_log = logging.getLogger(__name__)

_FLUSH_S = 0.5
#: Live measurements at each end of the span; the least delayed of each group is used.
_LIVE_CHECK_WINDOW = 4
#: The live measurements must span this long (gateway time) before the rate is trusted.
_RATE_MIN_SPAN_S = 600.0
# A correction smaller than this leaves a reading as it is.
_MIN_MOVE_S = 0.001


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
        #: time offsets of records the pipeline refused (a back-fill that met one proves nothing)
        self.rejected_offsets: set[int] = set()
        #: True while no RACP back-fill runs: a new highest offset is then a live measurement
        self.live = False
        self.highest_offset: int | None = None
        self._previous_live: tuple[int, datetime] | None = None
        # (raw, received_at): device seconds elapsed minus gateway seconds elapsed since start
        self._first: list[tuple[float, datetime]] = []
        self._last: collections.deque[tuple[float, datetime]] = collections.deque(
            maxlen=_LIVE_CHECK_WINDOW
        )
        #: device seconds per true second, None until measured
        self.rate: float | None = None
        self._stored_rate: float | None = None

    def _observe(self, offset_min: int, received_at: datetime) -> None:
        """Measure the sensor timer's rate with a live measurement (see the module docstring)."""
        assert self.start_utc is not None
        newest = self.highest_offset is None or offset_min > self.highest_offset
        if newest:
            self.highest_offset = offset_min
        if not (self.live and newest):
            self._previous_live = None
            return
        previous, self._previous_live = self._previous_live, (offset_min, received_at)
        if previous is None:
            return
        taken_apart_s = (offset_min - previous[0]) * 60.0
        arrived_apart_s = (received_at - previous[1]).total_seconds()
        if abs(arrived_apart_s - taken_apart_s) > self.env.policy.clock_tolerance_s:
            return
        raw_s = offset_min * 60.0 - (received_at - self.start_utc).total_seconds()
        if len(self._first) < _LIVE_CHECK_WINDOW:
            self._first.append((raw_s, received_at))
            return
        self._last.append((raw_s, received_at))
        first = max(self._first)
        last = max(self._last)
        span_s = (last[1] - first[1]).total_seconds()
        if span_s >= _RATE_MIN_SPAN_S:
            self.rate = 1.0 + (last[0] - first[0]) / span_s

    def _placed(self, reading: Reading | Rejected, received_at: datetime) -> Reading | Rejected:
        """The reading at session start + offset / rate, when the rate moves it."""
        rate = self.rate
        if rate is None or not isinstance(reading, CgmReading) or self.start_utc is None:
            return reading
        at = self.start_utc + timedelta(seconds=reading.time_offset_min * 60.0 / rate)
        at = min(at, received_at)  # a reading cannot postdate its receipt
        if abs((at - reading.measured_at).total_seconds()) < _MIN_MOVE_S:
            return reading
        return dataclasses.replace(
            reading, measured_at=at, flags=reading.flags | {QualityFlag.CLOCK_CORRECTED}
        )

    async def store_clock(self) -> None:
        """Record the timer's accumulated error (``vitalgate status`` shows the clock offset)."""
        rate, offset = self.rate, self.highest_offset
        if rate is None or offset is None or rate == self._stored_rate:
            return
        self._stored_rate = rate
        error_s = offset * 60.0 * (1.0 - 1.0 / rate)
        await asyncio.to_thread(
            self.env.registry.record_clock,
            self.env.link.address,
            measured_offset_s=error_s,
            checked_at=self.env.clock.now(),
            anchor=None,
        )

    def take(self, received_at: datetime, data: bytes) -> None:
        assert self.start_local is not None and self.start_utc is not None
        try:
            records = codec.parse_measurements(data, e2e_crc=self.e2e)
        except ParseError as exc:
            self.result.rejected.append(parse_reason("CGM measurement", exc))
            self.undecodable += 1
            return
        for m in records:
            self._observe(m.time_offset_min, received_at)
            reading = self.env.builder.cgm(
                m,
                session_start_local=self.start_local,
                session_start_utc=self.start_utc,
                received_at=received_at,
            )
            if isinstance(reading, Rejected):
                self.rejected_offsets.add(m.time_offset_min)
            else:
                self.rejected_offsets.discard(m.time_offset_min)
            self.pending.append(self._placed(reading, received_at))

    async def flush(self) -> list[int]:
        """Deliver what is pending; the time offsets now durably in the outbox."""
        items, self.pending = self.pending, []
        await deliver(self.env, items, self.result)
        return [r.time_offset_min for r in items if isinstance(r, CgmReading)]


_SETTLE_ROUNDS = 4
#: The largest time offset a record can carry (u16 minutes).
_MAX_OFFSET_MIN = 0xFFFF
#: A CGM measures at most once a minute, so a back-fill chunk of this many minutes of time
#: offsets holds at most this many records; the chunk is half the stream buffer (at least 1).
_MAX_RECORDS_PER_MINUTE = 1
#: Response codes of a device that does not support the "within range" operator.
_RANGE_REFUSED = frozenset(
    {
        racp.ResponseCode.OPCODE_NOT_SUPPORTED,
        racp.ResponseCode.INVALID_OPERATOR,
        racp.ResponseCode.OPERATOR_NOT_SUPPORTED,
        racp.ResponseCode.INVALID_OPERAND,
        racp.ResponseCode.OPERAND_NOT_SUPPORTED,
    }
)


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


def _chunks(low: int, high: int, span: int) -> list[tuple[int, int]]:
    """``[low, high]`` cut into inclusive ranges of at most ``span`` offsets, oldest first."""
    return [(a, min(a + span - 1, high)) for a in range(low, high + 1, span)]


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
    # Drops and undecodable values up to the last back-fill that proved every record up to
    # the device's present durable: later ones stop the sync point following the live stream.
    healed = (0, 0)
    chunk_min = max(1, env.limits.stream_buffer // (2 * _MAX_RECORDS_PER_MINUTE))
    ranges_supported = True

    def damage() -> tuple[int, int]:
        return inbox.dropped, stream.undecodable

    async def backfill(request: racp.RacpRequest) -> racp.ResponseCode:
        """Run one RACP report; every record it brought is in the outbox on return."""
        _log.debug("%s: CGM back-fill %s", link.address, request)
        finished = asyncio.Event()

        async def consume() -> None:
            while not (finished.is_set() and inbox.empty()):
                got = await inbox.get(0.05)
                if got is not None:
                    stream.take(*got)
                    if len(stream.pending) >= env.limits.download_batch:
                        durable.update(await stream.flush())

        live, stream.live = stream.live, False
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
        finally:
            stream.live = live
        durable.update(await stream.flush())
        code = response.response_code
        if code in (racp.ResponseCode.SUCCESS, racp.ResponseCode.NO_RECORDS_FOUND):
            return code
        if code in _RANGE_REFUSED and request.operator is racp.Operator.WITHIN_RANGE_OF:
            return code
        raise DeviceError(f"{link.address}: RACP report refused: {code!r}")

    async def device_offset() -> int | None:
        """The sensor timer now (CGM Status), None when the device does not tell."""
        if not link.has(uuids.CGM_STATUS):
            return None
        try:
            return codec.parse_status(
                await link.read(uuids.CGM_STATUS), e2e_crc=e2e
            ).time_offset_min
        except ParseError as exc:
            result.rejected.append(parse_reason("CGM status", exc))
            return None

    async def fill(after: int) -> int:
        """Back-fill every record after offset ``after``; returns the offset up to which the
        device provably holds no record that is not in the outbox (``after`` if none).

        The records up to the sensor timer's present minute - 1 (CGM Status) exist already,
        so they are asked for in closed ranges ("within range of", at most half the stream
        buffer each): a range answered completely -- success or "no records found", nothing
        dropped or undecodable meanwhile, nothing rejected -- holds every record the device
        has there, and an offset in it that brought no record is a sensor drop-out. What is
        newer is asked for open-ended and proves nothing (the device may still be storing it).
        """
        nonlocal ranges_supported, healed
        before = damage()
        covered = after
        blocked: int | None = None
        now_min = await device_offset() if ranges_supported else None
        if now_min is not None:
            for low, high in _chunks(after + 1, now_min - 1, chunk_min):
                at_start = damage()
                code = await backfill(
                    racp.report_records(
                        racp.Operator.WITHIN_RANGE_OF, racp.FilterType.SEQUENCE_NUMBER, low, high
                    )
                )
                if code in _RANGE_REFUSED:
                    ranges_supported = False  # the open-ended back-fill below, proving nothing
                    now_min = None
                    break
                if damage() != at_start:  # incomplete: the next catch-up asks again
                    return covered if blocked is None else blocked
                rejected = [o for o in stream.rejected_offsets if low <= o <= high]
                if rejected and blocked is None:
                    blocked = min(rejected) - 1  # fetch on, but prove nothing past it
                covered = high
        if covered < _MAX_OFFSET_MIN:
            await backfill(racp.report_from_sequence(covered + 1))
        if now_min is not None and damage() == before:
            # every record that existed before this back-fill is in the outbox now, so the
            # values dropped or undecodable before it no longer hold the sync point back
            healed = damage()
        return covered if blocked is None else blocked

    async def move_sync(new_last: int | None, *, proven: bool = False) -> None:
        """Record a new sync point. Only a proven one (:func:`fill`) passes a gap; along the
        live stream it follows only while nothing was dropped or undecodable since the last
        complete back-fill."""
        nonlocal last
        if new_last is None or (last is not None and new_last <= last):
            return
        if not proven and damage() != healed:
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

    async def catch_up() -> None:
        """Back-fill what the device holds after the sync point; move the sync point as far
        as that proves, then along the live records that follow without a gap."""
        for _ in range(_SETTLE_ROUNDS):
            start = last if last is not None else -1
            covered = await fill(start)
            if covered > start:
                await move_sync(covered, proven=True)
            learn_interval()
            await move_sync(_contiguous(last, durable, interval_min))
            if covered <= start or not any(o > (last if last is not None else -1) for o in durable):
                return  # done, or no progress: the next live value tries again

    async def advance_live() -> bool:
        """Move the sync point along the live stream; False when the stream has a gap."""
        learn_interval()
        await move_sync(_contiguous(last, durable, interval_min))
        return not any(o > (last if last is not None else -1) for o in durable)

    await catch_up()
    stream.live = True

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
            await stream.store_clock()
            if not await advance_live():
                await catch_up()  # a gap in the live stream: back-fill it while connected
        if got is None and ended() and inbox.empty():
            break
    result.dropped = inbox.dropped
    return result
