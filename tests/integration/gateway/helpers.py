"""Building blocks for gateway integration tests: a simulated household and a gateway."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from vitalgate.cloud_sync.outbox import Outbox
from vitalgate.cloud_sync.schema import reading_from_dict
from vitalgate.firmware_sim.clock import SimClock
from vitalgate.firmware_sim.devices.common import DeviceSetup, Patient, PatientProfile
from vitalgate.firmware_sim.truth import TruthLog, TruthRecord
from vitalgate.gateway.config import GatewayConfig, parse_config
from vitalgate.gateway.pipeline import Pipeline
from vitalgate.gateway.registry import DeviceRegistry
from vitalgate.gateway.runner import GatewayContext
from vitalgate.readings import Reading, ReadingKind

START = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
TZ = {"p-anna": "Europe/Berlin", "p-ben": "America/New_York"}


class MemorySink:
    """An idempotent in-memory reading sink with the Outbox's ``add`` contract.

    Device-health readings (``device_status``, one per sync) are kept apart in ``status``:
    ``readings`` holds the measurements, to be matched with the devices' ground truth.
    """

    def __init__(self) -> None:
        self.readings: dict[str, Reading] = {}
        self.status: dict[str, Reading] = {}
        self.offers = 0
        self._lock = threading.Lock()

    def add(self, readings: Sequence[Reading]) -> int:
        with self._lock:
            added = 0
            for r in readings:
                self.offers += 1
                into = self.status if r.kind is ReadingKind.DEVICE_STATUS else self.readings
                if r.reading_id not in into:
                    into[r.reading_id] = r
                    added += 1
            return added


def measurements(readings: Iterable[Reading]) -> list[Reading]:
    """The readings without the gateway's device-health ones (``device_status``)."""
    return [r for r in readings if r.kind is not ReadingKind.DEVICE_STATUS]


def outbox_measurements(outbox: Outbox) -> list[Reading]:
    """The readings pending in the outbox, device-health ones left out."""
    rows = outbox._db.execute(
        "SELECT kind, payload FROM outbox WHERE kind != 'device_status'"
    ).fetchall()
    return [reading_from_dict(orjson.loads(payload), kind) for kind, payload in rows]


def pending_measurements(outbox: Outbox) -> int:
    """The outbox's pending readings, device-health ones not counted."""
    return outbox.pending_count() - outbox.pending_count(ReadingKind.DEVICE_STATUS)


def make_config(state_dir: Path, **limits: Any) -> GatewayConfig:
    lim = {"quiet_period_s": 0.3, "procedure_timeout_s": 5.0, "connect_timeout_s": 5.0}
    lim.update(limits)
    return parse_config(
        {
            "gateway_id": "gw-test",
            "state_dir": str(state_dir),
            "patients": [{"id": pid, "timezone": tz} for pid, tz in TZ.items()],
            "limits": lim,
            "devices": {"clock_tolerance_s": 1.0, "reconnect_interval_s": 0.0},
        }
    )


def make_patient(pid: str, profile: PatientProfile, seed: int, start: datetime = START) -> Patient:
    return Patient(
        patient_id=pid,
        profile=profile,
        start=start,
        timezone=ZoneInfo(TZ[pid]),
        seed=seed,
    )


def make_setup(serial: str, seed: int, patients: dict[int, Patient], **kw: Any) -> DeviceSetup:
    return DeviceSetup(
        serial=serial,
        model=kw.pop("model", "SIM-1"),
        manufacturer="SimCorp",
        firmware="1.0",
        name=kw.pop("name", f"SIM {serial}"),
        seed=seed,
        passkey=kw.pop("passkey", 123456 + seed),
        patients=patients,
        **kw,
    )


def make_context(
    config: GatewayConfig, registry: DeviceRegistry, sink: MemorySink, clock: SimClock
) -> GatewayContext:
    return GatewayContext(
        config=config,
        registry=registry,
        pipeline=Pipeline(sink),
        clock=clock,
        limiter=asyncio.Semaphore(config.limits.max_concurrent_connections),
        rng=random.Random(0),
        stop=asyncio.Event(),
    )


def match_truth(
    truth: Sequence[TruthRecord], readings: Sequence[Reading], *, tolerance_s: float = 1.5
) -> list[str]:
    """Problems found matching each truth record to exactly one reading (empty: all good).

    The default tolerance: devices stamp whole seconds (up to 1 s lost) and the gateway corrects
    a wrong clock by whole seconds (up to 0.5 s more, timefix).
    """
    problems: list[str] = []
    by_device: dict[str, list[Reading]] = {}
    for r in readings:
        by_device.setdefault(r.device.serial, []).append(r)
    for t in truth:
        candidates = [
            r
            for r in by_device.get(t.device_serial, [])
            if r.kind == t.kind
            and r.device_time == t.device_time
            and (t.sequence_number is None or r.sequence_number == t.sequence_number)
        ]
        if len(candidates) != 1:
            problems.append(f"{t.device_serial} {t.device_time}: {len(candidates)} readings")
            continue
        r = candidates[0]
        if r.patient_id != t.patient_id:
            problems.append(f"{t.device_serial} {t.device_time}: patient {r.patient_id}")
        err = abs((r.measured_at - t.measured_at).total_seconds())
        if err > tolerance_s:
            problems.append(f"{t.device_serial} {t.device_time}: measured_at off by {err:.1f} s")
        for name, value in t.values.items():
            got = r.values().get(name)
            if got is None or abs(got - value) > 1e-6 * max(1.0, abs(value)):
                problems.append(f"{t.device_serial} {t.device_time}: {name} {got} != {value}")
    return problems


async def advance(clock: SimClock, delta: timedelta) -> None:
    await clock.advance(delta)


__all__ = [
    "START",
    "MemorySink",
    "TruthLog",
    "advance",
    "make_config",
    "make_context",
    "make_patient",
    "make_setup",
    "match_truth",
]


async def wait_until(predicate: Any, timeout_s: float) -> bool:
    """Poll ``predicate()`` every 50 ms (real time) until true or ``timeout_s`` passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def pair_all(
    config: GatewayConfig,
    registry: DeviceRegistry,
    clock: SimClock,
    plan: Sequence[tuple[Any, Any, str | None, dict[int, str] | None]],
) -> None:
    """Pair (device, kind, patient, users) tuples the way `vitalgate pair` does."""
    from vitalgate.gateway.pairing import pair_device

    passkeys = {d.address: d.setup.passkey for d, *_ in plan}

    async def passkey(address: str, name: str) -> int | None:
        return passkeys.get(address)

    for device, kind, pid, users in plan:
        await device.start_advertising()
        await pair_device(
            config=config,
            registry=registry,
            clock=clock,
            device=device.address,
            kind=kind,
            patient_id=pid,
            passkey=passkey,
            user_patients=users,
        )
        await device.stop_advertising()
