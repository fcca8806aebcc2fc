"""Clocks for the simulated devices: simulated (stepped or accelerated) and real wall time.

The world's clock is timezone-aware UTC. Every simulated device keeps its own
:class:`DeviceClock` on top of it: a naive, device-local wall clock with its own offset and drift
(ppm) that the device's owner sets (Current Time writes) and that a fault can reset to
2000-01-01 00:00:00 -- the clock faults real home monitors show after a battery change.

* :class:`SimClock` -- simulated UTC time. With ``speed=0`` it only moves when a test calls
  ``await clock.advance(timedelta(...))``, which wakes every sleeper whose deadline falls inside
  the step *in deadline order*, letting each woken task run until it sleeps on the clock again
  (so one call to ``advance(timedelta(days=14))`` makes a CGM produce all of its 4,032 readings,
  in order, in a fraction of a second). With ``speed>0`` it also runs on its own, ``speed``
  simulated seconds per real second (``speed=60`` turns an hour into a minute).
* :class:`WallClock` -- real UTC time with the same interface.

Both are asyncio-friendly: ``await clock.sleep_until(t)`` / ``await clock.sleep(d)``.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = [
    "CLOCK_RESET_TIME",
    "Clock",
    "DeviceClock",
    "SimClock",
    "WallClock",
]

#: The device-local time a clock-reset fault sets (a typical "battery removed" state).
CLOCK_RESET_TIME = datetime(2000, 1, 1, 0, 0, 0)

# After waking a sleeper, how long advance() waits (real seconds) for it to sleep on the clock
# again or finish. A task blocked elsewhere (a BLE indication awaiting its confirmation) gets this
# long; then the clock moves on without it so a test never hangs on a stuck device.
_SETTLE_TIMEOUT_S = 2.0

_Sleeper = tuple[datetime, int, "asyncio.Future[None]", "asyncio.Task[object] | None"]


def _require_utc(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() != timedelta(0):
        raise ValueError(f"{name} must be timezone-aware UTC, got {value!r}")


@runtime_checkable
class Clock(Protocol):
    """What devices need from a clock: the current UTC time and sleeping until a UTC time."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    async def sleep_until(self, when: datetime) -> None:
        """Return once ``now() >= when`` (immediately if it already is)."""
        ...

    async def sleep(self, delay: timedelta) -> None:
        """Sleep ``delay`` of this clock's time."""
        ...

    async def wait(self, event: asyncio.Event) -> None:
        """Wait for ``event`` (not for a time): a stepped clock does not wait for this task."""
        ...


class WallClock:
    """Real UTC wall-clock time (``datetime.now(UTC)``) behind the :class:`Clock` interface."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime) -> None:
        _require_utc("when", when)
        while True:
            remaining_s = (when - self.now()).total_seconds()
            if remaining_s <= 0:
                return
            # Re-check after waking: the system clock may have been stepped meanwhile.
            await asyncio.sleep(min(remaining_s, 60.0))

    async def sleep(self, delay: timedelta) -> None:
        await self.sleep_until(self.now() + delay)

    async def wait(self, event: asyncio.Event) -> None:
        await event.wait()


class SimClock:
    """Simulated UTC time, stepped by tests and/or running ``speed`` times faster than real time.

    ``start`` is the simulated time at creation. The clock needs a running event loop only for
    sleeping and (with ``speed>0``) for reading the time, so create it inside the loop that uses
    it, like the rest of the simulation.
    """

    def __init__(self, start: datetime, *, speed: float = 0.0) -> None:
        _require_utc("start", start)
        if not speed >= 0.0:
            raise ValueError(f"speed must be >= 0 (0 = stepped only), got {speed!r}")
        self._speed = float(speed)
        self._base = start.astimezone(UTC)
        self._real_anchor: float | None = None
        self._sleepers: list[_Sleeper] = []
        self._counter = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        # Tasks woken by advance() that have not yet slept again, with the event they set then.
        self._settling: dict[asyncio.Task[object], asyncio.Event] = {}
        self._advance_lock = asyncio.Lock()

    @property
    def speed(self) -> float:
        """Simulated seconds per real second; 0 for a clock that only moves in ``advance``."""
        return self._speed

    def _loop_time(self) -> float:
        return asyncio.get_running_loop().time()

    def now(self) -> datetime:
        if self._speed == 0.0:
            return self._base
        if self._real_anchor is None:
            self._real_anchor = self._loop_time()
            return self._base
        elapsed_real_s = self._loop_time() - self._real_anchor
        return self._base + timedelta(seconds=elapsed_real_s * self._speed)

    def _rebase(self, new_now: datetime) -> None:
        """Make ``now()`` return ``new_now`` at this instant (keeps running if speed > 0)."""
        self._base = new_now
        if self._speed != 0.0:
            self._real_anchor = self._loop_time()

    async def sleep(self, delay: timedelta) -> None:
        await self.sleep_until(self.now() + delay)

    def _release_current_task(self) -> asyncio.Task[object] | None:
        """The calling task is idle on the clock again: let a running advance() go on."""
        task: asyncio.Task[object] | None = asyncio.current_task()
        if task is not None:
            settled = self._settling.pop(task, None)
            if settled is not None:
                settled.set()
        return task

    async def wait(self, event: asyncio.Event) -> None:
        """Wait for ``event``; meanwhile :meth:`advance` does not wait for this task."""
        self._release_current_task()
        await event.wait()

    async def sleep_until(self, when: datetime) -> None:
        _require_utc("when", when)
        task = self._release_current_task()
        if when <= self.now():
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (when, next(self._counter), future, task))
        self._schedule_timer()
        await future

    def _schedule_timer(self) -> None:
        """With speed > 0, arm one loop timer for the earliest deadline."""
        if self._speed == 0.0:
            return
        self._drop_cancelled()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._sleepers:
            return
        delay_real_s = max(0.0, (self._sleepers[0][0] - self.now()).total_seconds() / self._speed)
        self._timer = asyncio.get_running_loop().call_later(delay_real_s, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        now = self.now()
        while self._sleepers and self._sleepers[0][0] <= now:
            _, _, future, _ = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)
        self._schedule_timer()

    def _drop_cancelled(self) -> None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)

    async def advance(self, delta: timedelta) -> None:
        """Move simulated time forward by ``delta``, waking sleepers in deadline order.

        Each woken task runs until it sleeps on this clock again, finishes, or blocks elsewhere
        for longer than a short real-time grace period; only then does time move on, so devices
        see every scheduled instant in order, as they would in real time.
        """
        if delta < timedelta(0):
            raise ValueError(f"a clock cannot go backwards (delta={delta})")
        async with self._advance_lock:
            # Let tasks started just before this call reach their first sleep on the clock.
            for _ in range(5):
                await asyncio.sleep(0)
            target = self.now() + delta
            while True:
                self._drop_cancelled()
                if not self._sleepers or self._sleepers[0][0] > target:
                    break
                when, _, future, task = heapq.heappop(self._sleepers)
                if when > self.now():
                    self._rebase(when)
                future.set_result(None)
                await self._settle(task)
            if target > self.now():
                self._rebase(target)
            self._schedule_timer()
            # Let anything woken on the last step, or only runnable now, take its turn.
            for _ in range(3):
                await asyncio.sleep(0)

    async def _settle(self, task: asyncio.Task[object] | None) -> None:
        """Wait until the woken ``task`` sleeps on the clock again, ends, or times out."""
        if task is None or task.done():
            await asyncio.sleep(0)
            return
        event = asyncio.Event()
        self._settling[task] = event
        wait_event = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait(
                {wait_event, task}, timeout=_SETTLE_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            wait_event.cancel()
            self._settling.pop(task, None)


class DeviceClock:
    """A device's own wall clock: naive device-local time with an offset and a drift.

    ``local_offset`` is the device owner's UTC offset (what the clock shows when set correctly);
    ``error`` an extra constant error; ``drift_ppm`` how fast it runs (+100 ppm gains 8.64 s a day).
    """

    def __init__(
        self,
        clock: Clock,
        *,
        local_offset: timedelta,
        error: timedelta = timedelta(0),
        drift_ppm: float = 0.0,
    ) -> None:
        self._clock = clock
        self._local_offset = local_offset
        self.drift_ppm = float(drift_ppm)
        true_now = clock.now()
        self._anchor_true = true_now
        self._anchor_device = true_now.replace(tzinfo=None) + local_offset + error

    @property
    def clock(self) -> Clock:
        """The world clock this device clock runs on."""
        return self._clock

    def now(self) -> datetime:
        """The device's current local time (naive), as it would write it into a record."""
        elapsed = self._clock.now() - self._anchor_true
        gained = elapsed * (self.drift_ppm * 1e-6)
        return self._anchor_device + elapsed + gained

    def device_time_at(self, true_time: datetime) -> datetime:
        """What this device's clock shows(ed) at the true UTC instant ``true_time``."""
        _require_utc("true_time", true_time)
        elapsed = true_time - self._anchor_true
        return self._anchor_device + elapsed + elapsed * (self.drift_ppm * 1e-6)

    def set(self, device_time: datetime) -> None:
        """Set the clock to ``device_time`` (naive local) now, e.g. from a Current Time write."""
        if device_time.tzinfo is not None:
            raise ValueError("a device clock holds naive device-local time")
        self._anchor_true = self._clock.now()
        self._anchor_device = device_time

    def set_correct(self) -> None:
        """Set the clock to the correct local time (as a phone app would)."""
        self.set(self._clock.now().replace(tzinfo=None) + self._local_offset)

    def reset(self) -> None:
        """The clock-reset fault: the clock restarts from 2000-01-01 00:00:00."""
        self.set(CLOCK_RESET_TIME)

    def error(self) -> timedelta:
        """How far the device clock is from the correct local time, now."""
        return self.now() - (self._clock.now().replace(tzinfo=None) + self._local_offset)
