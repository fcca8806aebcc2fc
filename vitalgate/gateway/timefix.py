"""Device time versus gateway time: correcting ``measured_at`` when a device clock is wrong.

Home monitors stamp readings with a naive, device-local clock that drifts, resets to
2000-01-01 after a battery change, or was never set. At every sync the gateway reads the device's
Current Time (0x2A2B) and measures the offset ``device - gateway`` (:func:`measure_clock`). The
offset of a clock drifting at a constant rate grows linearly from the last time the gateway knew
it (the :class:`~vitalgate.gateway.registry.ClockAnchor`, usually ~0 right after the gateway set
the clock), so a reading stamped between the anchor and now is corrected by the offset
interpolated at its time (:class:`TimeFixer`).

Rules, applied once per reading (``device_time`` is kept untouched on the reading):

* no device time -> ``measured_at = received_at``, flag ``NO_DEVICE_TIME``;
* device-local -> UTC through the patient's timezone, once (an ambiguous local time in the
  autumn DST fold takes the first occurrence, ``fold=0``);
* when the clock is detectably wrong -- its error against the patient's wall clock, measured
  now or at the last anchor, exceeds the tolerance -- every reading is placed with the raw
  offset (device time minus UTC) in effect at its time, ``measured_at = device time - raw
  offset``, flag ``CLOCK_CORRECTED``. Working in raw offsets handles devices that ignore
  daylight saving (most do) across a DST change;
* a reading stamped while the clock was unset (year before :data:`MIN_PLAUSIBLE_YEAR`) is
  corrected with the offset measured now if the clock is still in that unset epoch (flags
  ``CLOCK_UNSET`` and ``CLOCK_CORRECTED``); if the clock has since been set by someone else the
  stamp cannot be placed: ``measured_at = received_at`` with ``CLOCK_UNSET``;
* a reading stamped with a plausible time while the device's clock now reads year 2000 was taken
  before the reset: it is corrected by the last anchor's offset only;
* whatever remains in the future beyond the tolerance is clamped to ``received_at`` and flagged
  ``CLOCK_CORRECTED`` (a reading cannot postdate its receipt).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from vitalgate.gateway.registry import ClockAnchor
from vitalgate.readings import QualityFlag

__all__ = [
    "MIN_PLAUSIBLE_YEAR",
    "ClockCheck",
    "FollowedClock",
    "GatewayClock",
    "SystemClock",
    "TimeFix",
    "TimeFixer",
    "local_to_utc",
    "measure_clock",
    "utc_to_local",
]

#: Device times before this year are an unset / reset clock (2000-01-01 after a battery swap).
MIN_PLAUSIBLE_YEAR = 2015

# Corrections below this are rounding noise and leave a reading unflagged.
_MIN_CORRECTION_S = 0.001


class GatewayClock(Protocol):
    """The gateway's notion of time (injectable: simulation runs it accelerated)."""

    def now(self) -> datetime:
        """Timezone-aware UTC."""
        ...

    async def sleep(self, delay: timedelta) -> None: ...


class SystemClock:
    """Real time: ``datetime.now(UTC)`` and ``asyncio.sleep``."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, delay: timedelta) -> None:
        import asyncio

        await asyncio.sleep(max(0.0, delay.total_seconds()))


class FollowedClock:
    """Another process's accelerated clock, followed from its anchor: ``sim_at`` at wall-clock
    ``wall_at`` (Unix seconds), running ``speed`` times real time. What a gateway uses against a
    time-accelerated simulation (``vitalgate run --sim-info``); sleeps stay real time."""

    def __init__(self, sim_at: datetime, wall_at: float, speed: float) -> None:
        if sim_at.tzinfo is None or sim_at.utcoffset() != timedelta(0):
            raise ValueError("sim_at must be timezone-aware UTC")
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self._sim_at = sim_at
        self._wall_at = wall_at
        self._speed = speed

    def now(self) -> datetime:
        import time

        return self._sim_at + timedelta(seconds=(time.time() - self._wall_at) * self._speed)

    async def sleep(self, delay: timedelta) -> None:
        import asyncio

        await asyncio.sleep(max(0.0, delay.total_seconds()))


def local_to_utc(local: datetime, tz: ZoneInfo) -> datetime:
    """A naive device-local wall time in ``tz`` as aware UTC (ambiguous times: ``fold=0``)."""
    if local.tzinfo is not None:
        raise ValueError(f"device-local time must be naive, got {local!r}")
    return local.replace(tzinfo=tz, fold=0).astimezone(UTC)


def utc_to_local(moment: datetime, tz: ZoneInfo) -> datetime:
    """Aware UTC as the naive wall time a device in ``tz`` should show."""
    if moment.tzinfo is None:
        raise ValueError(f"moment must be timezone-aware, got {moment!r}")
    return moment.astimezone(tz).replace(tzinfo=None)


def _plausible(local: datetime) -> bool:
    return local.year >= MIN_PLAUSIBLE_YEAR


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def _tz_offset_s(tz: ZoneInfo, moment: datetime) -> float:
    offset = moment.astimezone(tz).utcoffset()
    return 0.0 if offset is None else offset.total_seconds()


@dataclass(frozen=True, slots=True)
class ClockCheck:
    """The device clock read at a sync.

    ``raw_offset_s`` = device wall-clock time minus UTC; ``offset_s`` = device wall-clock time
    minus the patient's wall-clock time (the clock's error as a person would see it: drift, a
    reset, a missed daylight-saving change). Both None when the device reported "unknown".
    """

    gateway_now: datetime  # UTC
    device_now: datetime | None  # naive device-local, None if the device reported "unknown"
    raw_offset_s: float | None
    offset_s: float | None

    @property
    def unset(self) -> bool:
        """True when the device clock reads an implausible (reset/unset) year."""
        return self.device_now is None or not _plausible(self.device_now)


def measure_clock(device_now: datetime | None, gateway_now: datetime, tz: ZoneInfo) -> ClockCheck:
    """Compare a device's Current Time (naive local, fractions included) with the gateway clock."""
    if gateway_now.tzinfo is None:
        raise ValueError("gateway_now must be timezone-aware UTC")
    if device_now is None:
        return ClockCheck(
            gateway_now=gateway_now, device_now=None, raw_offset_s=None, offset_s=None
        )
    raw = (device_now - _naive_utc(gateway_now)).total_seconds()
    return ClockCheck(
        gateway_now=gateway_now,
        device_now=device_now,
        raw_offset_s=raw,
        offset_s=raw - _tz_offset_s(tz, gateway_now),
    )


@dataclass(frozen=True, slots=True)
class TimeFix:
    """The corrected time of one reading and what was done to get it."""

    measured_at: datetime  # UTC
    flags: frozenset[QualityFlag]
    applied_offset_s: float  # seconds subtracted from the tz-converted device time (0: none)


class TimeFixer:
    """Corrects the device times of one sync's readings.

    ``check`` is the clock measured at this sync (None when the device has no Current Time or
    it could not be read reliably); ``anchor`` is what the clock showed at the previous sync
    (None before the first). ``set_to`` is the verified read-back when the gateway set the
    clock during this sync, before the records were read: a stamp later than that read-back
    was made by the corrected clock.

    A clock that is right (now and at the anchor, within the tolerance) is trusted and its
    stamps are converted with the patient's timezone, daylight-saving rules included. A clock
    that is wrong is modelled as UTC plus a raw offset that moves linearly from the anchor to
    now (drift; a device that ignores daylight saving keeps its offset), and each stamp is
    placed with the raw offset in effect at its time.
    """

    def __init__(
        self,
        *,
        tz: ZoneInfo,
        check: ClockCheck | None,
        anchor: ClockAnchor | None,
        tolerance_s: float,
        set_to: ClockCheck | None = None,
    ) -> None:
        if tolerance_s < 0:
            raise ValueError("tolerance_s must be >= 0")
        self._tz = tz
        self._check = check
        self._anchor = anchor
        self._tolerance_s = tolerance_s
        self._set_to = set_to

    @property
    def tz(self) -> ZoneInfo:
        return self._tz

    def clock_wrong(self) -> bool:
        """True when this sync's measurement (or the last anchor) is beyond the tolerance."""
        errors: list[float] = []
        anchor, check = self._anchor, self._check
        if anchor is not None:
            errors.append(anchor.raw_offset_s - _tz_offset_s(self._tz, anchor.at))
        if check is not None and check.offset_s is not None:
            errors.append(check.offset_s)
        return any(abs(e) > self._tolerance_s for e in errors)

    def _raw_offset_at(self, device_time: datetime) -> float | None:
        """The raw offset (device minus UTC) in effect when the device showed ``device_time``."""
        check, anchor = self._check, self._anchor
        if check is None or check.raw_offset_s is None:
            return anchor.raw_offset_s if anchor is not None else None
        current = check.raw_offset_s
        if check.unset or anchor is None:
            return current
        span_s = (check.gateway_now - anchor.at).total_seconds()
        if span_s <= 0:
            return current
        # First guess of the true time with the current offset; a linear drift makes the
        # interpolation insensitive to this guess's error (it is second order).
        true_guess = (device_time - timedelta(seconds=current)).replace(tzinfo=UTC)
        frac = (true_guess - anchor.at).total_seconds() / span_s
        if frac < 0:
            # Stamped before the anchor: by the clock as it was before the gateway set it.
            if anchor.previous_raw_offset_s is not None:
                return anchor.previous_raw_offset_s
            return anchor.raw_offset_s
        # After this check (a record stamped while the sync ran): the same drift continues.
        return anchor.raw_offset_s + (current - anchor.raw_offset_s) * frac

    def _stamped_after_set(self, device_time: datetime) -> bool:
        """True when ``device_time`` was stamped by the clock the gateway set in this sync.

        Such a stamp is at or after the verified read-back. A clock that ran fast showed a
        later time before the set than after it, so a stamp up to what it showed at this
        sync's check (before the set) is a record it held already, not a new one.
        """
        set_to, check = self._set_to, self._check
        if set_to is None or set_to.device_now is None or device_time < set_to.device_now:
            return False
        if check is None or check.device_now is None or check.unset:
            return True
        return device_time > check.device_now

    def fix(self, device_time: datetime | None, received_at: datetime) -> TimeFix:
        """The corrected UTC time of a reading stamped ``device_time`` (naive device-local)."""
        if received_at.tzinfo is None:
            raise ValueError("received_at must be timezone-aware UTC")
        received_at = received_at.astimezone(UTC)
        if device_time is None:
            return TimeFix(received_at, frozenset({QualityFlag.NO_DEVICE_TIME}), 0.0)
        flags: set[QualityFlag] = set()
        as_local = local_to_utc(device_time, self._tz)
        check = self._check
        raw: float | None
        if self._stamped_after_set(device_time):
            raw = None  # stamped by the clock the gateway just set and verified
        elif not _plausible(device_time):
            flags.add(QualityFlag.CLOCK_UNSET)
            if check is not None and check.raw_offset_s is not None and check.unset:
                raw = check.raw_offset_s  # stamped in the same unset epoch the clock is in now
            else:
                return TimeFix(received_at, frozenset(flags | {QualityFlag.CLOCK_CORRECTED}), 0.0)
        elif check is not None and check.unset:
            # A plausible stamp while the clock now reads year 2000: taken before the reset.
            raw = self._anchor.raw_offset_s if self._anchor is not None else None
        else:
            raw = self._raw_offset_at(device_time) if self.clock_wrong() else None
        measured_at = as_local
        if raw is not None:
            # Whole seconds: device clocks stamp whole seconds and the offset is known to about
            # a second, and a corrected record must stay off the milliseconds live samples of
            # the same device use (docs/schema.md, "Timestamps").
            placed = (device_time - timedelta(seconds=round(raw))).replace(tzinfo=UTC)
            if abs((placed - as_local).total_seconds()) >= _MIN_CORRECTION_S:
                measured_at = placed
                flags.add(QualityFlag.CLOCK_CORRECTED)
        if (measured_at - received_at).total_seconds() > self._tolerance_s:
            measured_at = received_at
            flags.add(QualityFlag.CLOCK_CORRECTED)
        applied = (as_local - measured_at).total_seconds()
        return TimeFix(measured_at, frozenset(flags), applied)


def anchor_after_sync(check: ClockCheck | None, readback: ClockCheck | None) -> ClockAnchor | None:
    """The anchor for the next sync: the read-back after setting the clock, else this check."""
    if readback is not None and readback.raw_offset_s is not None and not readback.unset:
        previous = None if check is None else check.raw_offset_s
        return ClockAnchor(
            at=readback.gateway_now,
            raw_offset_s=readback.raw_offset_s,
            previous_raw_offset_s=previous,
        )
    if check is None or check.raw_offset_s is None or check.unset:
        return None
    return ClockAnchor(at=check.gateway_now, raw_offset_s=check.raw_offset_s)
