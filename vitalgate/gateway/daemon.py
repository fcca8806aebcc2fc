"""``vitalgate run``: watch for registered devices, sync them when they advertise, publish.

Structure (one :class:`asyncio.TaskGroup`):

* the **scanner** listens to advertisements; a registered device that advertises and is due
  (not being served, past its reconnect time) is queued for service. The queue is bounded
  (``_WANTED_MAX``); when it is full an advertisement is ignored -- the device advertises again.
* the **dispatcher** starts one supervised task per queued device; the connection cap
  (``limits.max_concurrent_connections``) is a semaphore inside :func:`~.link.connect`.
  Streaming devices, which stay connected, may hold all links but one, so a spot device
  (BP monitor, meter, thermometer, scale) that advertises is always served; more streaming
  devices than that is reported at start (a warning naming the setting to raise).
* each device task is wrapped by the **supervisor** (:meth:`Daemon._supervise`): any error
  a device causes is logged (without health data), counted, written to the registry as the
  device's last error, and the device is retried later with exponential backoff and jitter.
  One misbehaving device never stops the others or the daemon.
* the **publisher** (``vitalgate.cloud_sync``), when given, runs alongside and drains the outbox
  to MQTT. BLE sessions never wait on it: they only write to the outbox. On stop it outlives
  the device sessions by up to ``_SHUTDOWN_DRAIN_S`` so what they delivered last is published
  now rather than at the next start (it is durable in the outbox either way).
* a **refresher** reloads the registry every ``_REFRESH_S`` seconds so devices paired while the
  daemon runs are picked up.
* a **watchdog** reports a device that has not synced for ``devices.silent_after_h`` (BP
  monitor, meter, scale, thermometer; 72 h by default) or ``devices.stream_silent_after_h``
  (CGM, heart rate, oximeter; 1 h) -- switched off, out of range, battery empty, or paired to
  another phone -- once per silence: a WARNING naming the device (no health data) and, with an
  ``events`` queue (the outbox), a ``device_silent`` alert event for the care team; when it
  syncs again, a ``device_silent`` event with ``resolved: true``. A device being served is
  never silent, and the clock starts no earlier than the daemon (a gateway that was off is not
  the device's fault).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError

from vitalgate.cloud_sync.schema import format_utc
from vitalgate.errors import DeviceError, VitalgateError
from vitalgate.gateway.config import GatewayConfig
from vitalgate.gateway.kinds import SERVICE_KINDS
from vitalgate.gateway.link import Backoff, TransientDeviceError
from vitalgate.gateway.pipeline import Pipeline
from vitalgate.gateway.registry import DeviceRecord, DeviceRegistry, SyncPoint
from vitalgate.gateway.runner import GatewayContext, reconnect_delay, sync_device
from vitalgate.gateway.timefix import GatewayClock

__all__ = ["Daemon", "DaemonStats", "DeviceStats"]

_log = logging.getLogger(__name__)

_WANTED_MAX = 64
_REFRESH_S = 10.0
#: How often (real seconds, whatever the gateway clock's speed) the watchdog looks for silent
#: devices; the limits themselves are in gateway time.
_WATCH_S = 30.0


@dataclass(slots=True)
class DeviceStats:
    """Per-device counters kept by the supervisor (no health values)."""

    syncs: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    readings_offered: int = 0
    readings_added: int = 0
    rejected: int = 0
    last_error: str | None = None


@dataclass(slots=True)
class DaemonStats:
    devices: dict[str, DeviceStats] = field(default_factory=dict)
    advertisements: int = 0
    ignored_queue_full: int = 0
    unexpected_errors: int = 0

    def of(self, address: str) -> DeviceStats:
        return self.devices.setdefault(address, DeviceStats())


#: On stop, how long the publisher may keep draining the outbox after the sessions ended.
_SHUTDOWN_DRAIN_S = 5.0


class Publishing(Protocol):
    """What the daemon needs of a publisher (:class:`vitalgate.cloud_sync.publisher.Publisher`)."""

    def run(self) -> Awaitable[Any]: ...

    def wait_drained(self) -> Awaitable[None]: ...


class EventQueue(Protocol):
    """Where operational alert events go (:class:`vitalgate.cloud_sync.outbox.Outbox`)."""

    def add_alert(self, event: Mapping[str, Any]) -> None: ...


class Daemon:
    """The gateway's long-running service. Call :meth:`run` with a stop event."""

    def __init__(
        self,
        config: GatewayConfig,
        registry: DeviceRegistry,
        pipeline: Pipeline,
        *,
        clock: GatewayClock,
        publisher: Publishing | None = None,
        events: EventQueue | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._config = config
        self._registry = registry
        self._pipeline = pipeline
        self._clock = clock
        self._publisher = publisher
        self._events = events
        self._silent: set[str] = set()  # addresses reported silent and not synced since
        self._started: datetime | None = None
        self._rng = rng if rng is not None else random.Random()
        self._records: dict[str, DeviceRecord] = {}
        self._busy: set[str] = set()
        self._not_before: dict[str, datetime] = {}
        self._wanted: asyncio.Queue[tuple[BLEDevice, DeviceRecord]] = asyncio.Queue(_WANTED_MAX)
        self.stats = DaemonStats()
        self.idle = asyncio.Event()  # set whenever no device is being served (for tests)

    async def _refresh(self) -> None:
        records = await asyncio.to_thread(self._registry.devices)
        self._records = {r.address.upper(): r for r in records}

    def _on_advertisement(self, device: BLEDevice, adv: AdvertisementData) -> None:
        self.stats.advertisements += 1
        address = device.address.upper()
        record = self._records.get(address)
        if record is None or address in self._busy:
            return
        not_before = self._not_before.get(address)
        if not_before is not None and self._clock.now() < not_before:
            return
        try:
            self._wanted.put_nowait((device, record))
        except asyncio.QueueFull:
            self.stats.ignored_queue_full += 1
            return
        self._busy.add(address)
        self.idle.clear()

    async def _supervise(
        self, ctx: GatewayContext, device: BLEDevice, record: DeviceRecord
    ) -> None:
        """Run one device's sync; whatever it raises is logged, counted and recorded."""
        address = record.address.upper()
        stats = self.stats.of(address)
        try:
            # Re-read the record: the sync point may have moved since it was queued.
            fresh = await asyncio.to_thread(self._registry.find, address)
            if fresh is None:
                return  # removed meanwhile
            result = await sync_device(ctx, device, fresh)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the top-level supervisor: one device must not stop others
            stats.failures += 1
            stats.consecutive_failures += 1
            reason = str(exc) or type(exc).__name__
            if not isinstance(exc, VitalgateError):
                self.stats.unexpected_errors += 1
                _log.exception("%s: unexpected error in device session", address)
            else:
                _log.warning("%s: sync failed: %s", address, reason)
            stats.last_error = reason
            await self._record_error(address, reason)
            backoff = Backoff(
                self._config.limits.backoff_initial_s,
                self._config.limits.backoff_max_s,
                attempts=1,
            )
            delay_s = backoff.delay_s(min(stats.consecutive_failures, 16), self._rng)
            if isinstance(exc, TransientDeviceError):
                delay_s = min(delay_s, self._config.limits.backoff_max_s)
            self._not_before[address] = self._clock.now() + timedelta(seconds=delay_s)
        else:
            stats.syncs += 1
            stats.consecutive_failures = 0
            stats.readings_offered += result.offered
            stats.readings_added += result.added
            stats.rejected += len(result.rejected)
            problem = result.problem
            if problem is not None:
                stats.last_error = problem
                await self._record_error(address, problem)
            elif fresh.last_error is not None:
                await asyncio.to_thread(self._registry.clear_error, address)
            if result.sync is None:
                # No sync point to move (spot devices, streams, nothing new): the sync still
                # happened, and `vitalgate status` shows when.
                await asyncio.to_thread(
                    self._registry.advance_sync, address, SyncPoint(), at=self._clock.now()
                )
            self._not_before[address] = self._clock.now() + reconnect_delay(ctx, record.kind)
            _log.info("%s: synced (%d new readings)", address, result.added)
            if address in self._silent:
                self._silent.discard(address)
                _log.info("%s: syncing again", address)
                await self._event(fresh, resolved=True, silent_s=None, since=None)
        finally:
            self._busy.discard(address)
            if not self._busy:
                self.idle.set()

    async def _record_error(self, address: str, reason: str) -> None:
        try:
            await asyncio.to_thread(
                self._registry.record_error, address, reason, at=self._clock.now()
            )
        except DeviceError:
            pass
        except Exception:  # the registry failing must not take the supervisor down
            self.stats.unexpected_errors += 1
            _log.exception("%s: could not record the error in the registry", address)

    async def _dispatch(self, ctx: GatewayContext, tg: asyncio.TaskGroup) -> None:
        while True:
            device, record = await self._wanted.get()
            tg.create_task(self._supervise(ctx, device, record), name=f"device-{record.address}")

    async def _refresher(self) -> None:
        while True:
            await asyncio.sleep(_REFRESH_S)
            try:
                await self._refresh()
            except Exception:  # keep the last good list; the next refresh retries
                self.stats.unexpected_errors += 1
                _log.exception("reloading the device registry failed")

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(_WATCH_S)
            try:
                await self._report_silent()
            except Exception:  # the watchdog must not take device service down
                self.stats.unexpected_errors += 1
                _log.exception("checking for silent devices failed")

    async def _report_silent(self) -> None:
        """Warn once about each device that has not synced for longer than its limit."""
        now = self._clock.now()
        started = self._started or now
        for address, record in list(self._records.items()):
            limit_s = self._config.devices.silent_after_s(record.kind.streaming)
            if limit_s <= 0 or address in self._busy or address in self._silent:
                continue
            known = [t for t in (record.last_sync, record.last_seen, record.paired_at) if t]
            since = max([started, *known])
            silent_s = (now - since).total_seconds()
            if silent_s < limit_s:
                continue
            self._silent.add(address)
            last = max(known) if known else None
            _log.warning(
                "%s (%s): no sync for %.1f h (limit %.1f h): switched off, out of range or"
                " battery empty?",
                address,
                record.kind,
                silent_s / 3600,
                limit_s / 3600,
            )
            await self._event(record, resolved=False, silent_s=silent_s, since=last)

    async def _event(
        self,
        record: DeviceRecord,
        *,
        resolved: bool,
        silent_s: float | None,
        since: datetime | None,
    ) -> None:
        """Queue a ``device_silent`` alert event (durable in the outbox) if there is a queue."""
        if self._events is None:
            return
        event: dict[str, Any] = {
            "type": "device_silent",
            "resolved": resolved,
            "device": record.address.upper(),
            "device_kind": str(record.kind),
            "patient_id": record.patient_id,
            "name": record.name,
        }
        if silent_s is not None:
            event["silent_h"] = round(silent_s / 3600, 1)
        if since is not None:
            event["last_sync"] = format_utc(since)
        try:
            await asyncio.to_thread(self._events.add_alert, event)
        except Exception:  # a full or closed outbox: the WARNING above still tells
            self.stats.unexpected_errors += 1
            _log.exception("%s: could not queue the device_silent event", record.address)

    async def _run_publisher(self) -> None:
        """The publisher, restarted after a failure (it must not take device service down)."""
        assert self._publisher is not None
        failures = 0
        while True:
            try:
                await self._publisher.run()
                return
            except asyncio.CancelledError:
                raise
            except Exception:  # supervisor: log, count, restart with backoff
                failures += 1
                self.stats.unexpected_errors += 1
                _log.exception("publisher failed; restarting")
                await asyncio.sleep(min(60.0, 2.0**failures) * self._rng.uniform(0.5, 1.0))

    async def _drain(self, publishing: asyncio.Task[None]) -> None:
        """Let the publisher empty the outbox for a moment, then stop it."""
        assert self._publisher is not None
        try:
            async with asyncio.timeout(_SHUTDOWN_DRAIN_S):
                await self._publisher.wait_drained()
        except TimeoutError:
            _log.info("outbox not drained on stop: the rest is published at the next start")
        finally:
            publishing.cancel()

    async def _scan(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async with BleakScanner(self._on_advertisement, service_uuids=list(SERVICE_KINDS)):
                    await stop.wait()
            except BleakError as exc:
                _log.warning("scanner failed, restarting in 5 s: %s", exc)
                try:
                    async with asyncio.timeout(5.0):
                        await stop.wait()
                except TimeoutError:
                    continue

    async def run(self, stop: asyncio.Event) -> None:
        """Serve devices until ``stop`` is set; then finish running sessions and return."""
        await self._refresh()
        self._started = self._clock.now()
        self.idle.set()
        # Streaming devices keep their link: they may hold all links but one, so a BP monitor
        # or a meter that advertises always gets connected.
        links = self._config.limits.max_concurrent_connections
        stream_links = max(1, links - 1)
        ctx = GatewayContext(
            config=self._config,
            registry=self._registry,
            pipeline=self._pipeline,
            clock=self._clock,
            limiter=asyncio.Semaphore(links),
            rng=self._rng,
            stop=stop,
            stream_limiter=asyncio.Semaphore(stream_links),
        )
        _log.info("gateway %s serving %d device(s)", self._config.gateway_id, len(self._records))
        streaming = sum(1 for r in self._records.values() if r.kind.streaming)
        if streaming > stream_links:
            _log.warning(
                "%d streaming devices (CGM, heart rate, oximeter) share %d link(s): raise "
                "limits.max_concurrent_connections to %d so each keeps its link",
                streaming,
                stream_links,
                streaming + 1,
            )
        async with asyncio.TaskGroup() as outer:
            publishing = None
            if self._publisher is not None:
                publishing = outer.create_task(self._run_publisher(), name="publisher")
            async with asyncio.TaskGroup() as tg:
                background = [
                    tg.create_task(self._dispatch(ctx, tg), name="dispatch"),
                    tg.create_task(self._refresher(), name="refresher"),
                    tg.create_task(self._watchdog(), name="watchdog"),
                ]
                await self._scan(stop)
                for task in background:
                    task.cancel()
            # The sessions have ended; what they delivered is durable in the outbox.
            if publishing is not None:
                await self._drain(publishing)
        _log.info("gateway %s stopped", self._config.gateway_id)
