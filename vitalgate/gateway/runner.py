"""One sync of one device: connect, identify, check the clock, run the profile session.

The order inside a connection:

1. Device Information when the registry has no identity yet (reading ids use the serial);
2. Battery Level, when the device has it;
3. Current Time, when the device has it: the offset against the gateway clock
   (:func:`~vitalgate.gateway.timefix.measure_clock`) decides how this sync's readings are
   corrected;
4. the profile session (:data:`~vitalgate.gateway.sessions.SESSIONS`), which delivers readings
   and advances the sync point only after the outbox has them;
5. the clock is set (where the config allows and the clock is off) and read back to verify it
   took -- a write that "succeeds" while the clock stays wrong is reported. Devices that drop
   the link after their transfer (BP monitor, thermometer, scale, oximeter) are set before the
   session instead; their records are deleted once transferred, so no record stamped by the
   old clock is left behind. RACP devices keep their records, so their clock is set only after
   the download succeeded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

from bleak.backends.device import BLEDevice

from vitalgate.drivers import battery as battery_codec
from vitalgate.drivers import current_time as cts_codec
from vitalgate.drivers import device_information as dis_codec
from vitalgate.drivers import uuids
from vitalgate.errors import DeviceError, ParseError
from vitalgate.gateway.config import GatewayConfig
from vitalgate.gateway.kinds import DeviceKind
from vitalgate.gateway.link import Backoff, Link, connect
from vitalgate.gateway.pipeline import Pipeline, ReadingBuilder
from vitalgate.gateway.registry import DeviceRecord, DeviceRegistry
from vitalgate.gateway.sessions import SESSIONS
from vitalgate.gateway.sessions.base import SessionEnv, SessionResult
from vitalgate.gateway.timefix import (
    ClockCheck,
    GatewayClock,
    TimeFixer,
    anchor_after_sync,
    measure_clock,
    utc_to_local,
)

__all__ = ["GatewayContext", "read_identity", "sync_device"]

_log = logging.getLogger(__name__)

_DIS_CHARS = (
    uuids.MANUFACTURER_NAME_STRING,
    uuids.MODEL_NUMBER_STRING,
    uuids.SERIAL_NUMBER_STRING,
    uuids.HARDWARE_REVISION_STRING,
    uuids.FIRMWARE_REVISION_STRING,
    uuids.SOFTWARE_REVISION_STRING,
    uuids.SYSTEM_ID,
)

#: Kinds whose stored records live on after a transfer: set their clock only after a sync.
_KEEPS_RECORDS = frozenset({DeviceKind.GLUCOSE, DeviceKind.CGM})


@dataclass(slots=True)
class GatewayContext:
    """What device syncs share: config, registry, pipeline, clock, connection cap."""

    config: GatewayConfig
    registry: DeviceRegistry
    pipeline: Pipeline
    clock: GatewayClock
    limiter: asyncio.Semaphore
    rng: random.Random
    stop: asyncio.Event
    #: Links streaming devices may hold at once (they stay connected): fewer than ``limiter``
    #: allows, so a BP monitor or a meter always finds a free link. None: no separate cap.
    stream_limiter: asyncio.Semaphore | None = None

    @property
    def backoff(self) -> Backoff:
        lim = self.config.limits
        return Backoff(lim.backoff_initial_s, lim.backoff_max_s, lim.connect_attempts)


async def read_identity(link: Link) -> dis_codec.DeviceInformation:
    """Read the Device Information Service (the characteristics the device has)."""
    values = {}
    for uuid in _DIS_CHARS:
        if link.has(uuid):
            values[uuid] = await link.read(uuid)
    try:
        return dis_codec.parse_device_information(values)
    except ParseError as exc:
        raise DeviceError(f"{link.address}: bad Device Information: {exc.reason}") from exc


_CLOCK_READ_ATTEMPTS = 4


async def _read_clock(link: Link, ctx: GatewayContext, record: DeviceRecord) -> ClockCheck | None:
    """Read Current Time and compare it with the gateway clock at the read's midpoint.

    A read that takes longer than the clock tolerance leaves the offset uncertain by that much:
    it is retried (up to ``_CLOCK_READ_ATTEMPTS`` reads); None when none was quick enough, and
    the sync goes without a measurement (the last anchor still applies).
    """
    tz = _tz(ctx, record)
    for attempt in range(_CLOCK_READ_ATTEMPTS):
        if attempt:
            await asyncio.sleep(0.1 * 3**attempt)  # let whatever delayed the read pass
        before = ctx.clock.now()
        data = await link.read(uuids.CURRENT_TIME)
        after = ctx.clock.now()
        try:
            current = cts_codec.parse_current_time(data)
        except ParseError as exc:
            raise DeviceError(f"{link.address}: bad Current Time: {exc.reason}") from exc
        round_trip_s = (after - before).total_seconds()
        if round_trip_s <= ctx.config.devices.clock_tolerance_s:
            return measure_clock(current.exact_time, before + (after - before) / 2, tz)
        _log.info("%s: Current Time read took %.1f s: retrying", link.address, round_trip_s)
    return None


def _tz(ctx: GatewayContext, record: DeviceRecord) -> ZoneInfo:
    """The device's time zone: its patient's (the first mapped user's for a shared device)."""
    patient_id = record.patient_id
    if patient_id is None and record.user_patients:
        patient_id = record.user_patients[min(record.user_patients)]
    assert patient_id is not None
    return ctx.config.patient(patient_id).timezone


@dataclass(frozen=True, slots=True)
class _ClockSet:
    """Outcome of setting a device clock."""

    written: bool  # a write was accepted
    readback: ClockCheck | None  # the verified clock after the write, None if unverified


_CLOCK_SET_ATTEMPTS = 2


async def _set_clock(
    link: Link, ctx: GatewayContext, record: DeviceRecord, check: ClockCheck
) -> _ClockSet:
    """Write Current Time (patient-local) and read it back to verify it took.

    Raises DeviceError when the device accepts the write but its clock stays wrong (the
    "time sync succeeds but the clock stays wrong" failure of some monitors).
    """
    tz = _tz(ctx, record)
    tolerance = ctx.config.devices.clock_tolerance_s
    readback: ClockCheck | None = None
    for _ in range(_CLOCK_SET_ATTEMPTS):
        local_now = utc_to_local(ctx.clock.now(), tz)
        try:
            await link.write(uuids.CURRENT_TIME, cts_codec.encode_current_time(local_now))
        except DeviceError as exc:
            _log.info("%s: device refused the clock update: %s", link.address, exc)
            return _ClockSet(written=False, readback=None)
        readback = await _read_clock(link, ctx, record)
        if (
            readback is not None
            and readback.offset_s is not None
            and abs(readback.offset_s) <= tolerance
        ):
            _log.info("%s: clock set (was off by %.1f s)", link.address, check.offset_s or 0.0)
            return _ClockSet(written=True, readback=readback)
    if readback is not None:
        raise DeviceError(
            f"{link.address}: clock update did not take (still off by {readback.offset_s} s)"
        )
    return _ClockSet(written=True, readback=None)


def _clock_wrong(ctx: GatewayContext, check: ClockCheck) -> bool:
    """Worth setting: unknown, unset, or off from the patient's wall clock beyond tolerance."""
    return (
        check.offset_s is None
        or check.unset
        or (abs(check.offset_s) > ctx.config.devices.clock_tolerance_s)
    )


async def sync_device(
    ctx: GatewayContext, device: BLEDevice | str, record: DeviceRecord
) -> SessionResult:
    """Connect to a registered device and run its session once; returns the counts.

    Raises DeviceError (TransientDeviceError for what a retry may fix) when the device
    misbehaves; whatever was delivered before the error stays delivered.
    """
    async with contextlib.AsyncExitStack() as stack:
        if record.kind.streaming and ctx.stream_limiter is not None:
            await stack.enter_async_context(ctx.stream_limiter)
        return await _sync_connected(ctx, device, record)


async def _sync_connected(
    ctx: GatewayContext, device: BLEDevice | str, record: DeviceRecord
) -> SessionResult:
    lim = ctx.config.limits
    async with connect(
        device,
        limiter=ctx.limiter,
        timeout_s=lim.connect_timeout_s,
        backoff=ctx.backoff,
        rng=ctx.rng,
    ) as link:
        now = ctx.clock.now()
        await asyncio.to_thread(ctx.registry.mark_seen, record.address, now)
        if not record.serial and not record.manufacturer and link.has(uuids.SERIAL_NUMBER_STRING):
            info = await read_identity(link)
            await asyncio.to_thread(
                ctx.registry.set_identity,
                record.address,
                manufacturer=info.manufacturer_name or "",
                model=info.model_number or "",
                serial=info.serial_number or "",
                firmware=info.firmware_revision or "",
            )
            record = await asyncio.to_thread(ctx.registry.get, record.address)
        level: int | None = None
        if link.has(uuids.BATTERY_LEVEL):
            try:
                level = battery_codec.parse_battery_level(await link.read(uuids.BATTERY_LEVEL))
            except ParseError as exc:
                _log.info("%s: bad battery level: %s", link.address, exc.reason)
            else:
                await asyncio.to_thread(ctx.registry.set_battery, record.address, level)
        check: ClockCheck | None = None
        clock_set = _ClockSet(written=False, readback=None)
        has_clock = link.has(uuids.CURRENT_TIME)
        if has_clock:
            check = await _read_clock(link, ctx, record)
        set_first = record.kind not in _KEEPS_RECORDS
        if check is not None and ctx.config.devices.set_clock and set_first:
            if _clock_wrong(ctx, check):
                clock_set = await _set_clock(link, ctx, record, check)
            await _record_clock(ctx, record, check, clock_set)
        _log.debug("%s: clock check %s, anchor %s", record.address, check, record.clock_anchor)
        fixer = TimeFixer(
            tz=_tz(ctx, record),
            check=check,
            anchor=record.clock_anchor,
            tolerance_s=ctx.config.devices.clock_tolerance_s,
            set_to=clock_set.readback,
        )
        builder = ReadingBuilder(record, fixer)
        # Device health (battery, clock error as found) travels like a reading, to the dashboard.
        offset = None if check is None or check.unset else check.offset_s
        status = builder.device_status(now, battery_pct=level, clock_offset_s=offset)
        if status:
            await ctx.pipeline.deliver(status)
        env = SessionEnv(
            link=link,
            builder=builder,
            pipeline=ctx.pipeline,
            registry=ctx.registry,
            clock=ctx.clock,
            limits=lim,
            policy=ctx.config.devices,
            stop=ctx.stop,
        )
        session = SESSIONS[record.kind]
        result = await session(env)
        if check is not None and not set_first:
            if ctx.config.devices.set_clock and link.is_connected and _clock_wrong(ctx, check):
                clock_set = await _set_clock(link, ctx, record, check)
            await _record_clock(ctx, record, check, clock_set)
        return result


async def _record_clock(
    ctx: GatewayContext, record: DeviceRecord, check: ClockCheck, clock_set: _ClockSet
) -> None:
    """Store this sync's measurement and the anchor for the next sync.

    A clock written but not verified leaves no anchor (the old one no longer describes the
    clock): the next sync's measurement alone then corrects the readings.
    """
    if clock_set.written and clock_set.readback is None:
        anchor = None
        clear = True
    else:
        anchor = anchor_after_sync(check, clock_set.readback)
        clear = False
    await asyncio.to_thread(
        ctx.registry.record_clock,
        record.address,
        measured_offset_s=check.offset_s,
        checked_at=check.gateway_now,
        anchor=anchor,
        clear_anchor=clear,
    )


def reconnect_delay(ctx: GatewayContext, kind: DeviceKind) -> timedelta:
    """How long after a sync the daemon waits before syncing a device again."""
    policy = ctx.config.devices
    seconds = policy.stream_reconnect_s if kind.streaming else policy.reconnect_interval_s
    return timedelta(seconds=seconds)
