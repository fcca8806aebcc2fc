"""The daemon against simulated devices: advertise -> connect -> sync, over simulated days."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from vitalgate.firmware_sim.clock import SimClock
from vitalgate.firmware_sim.devices.bp_monitor import BloodPressureMonitor
from vitalgate.firmware_sim.devices.common import PatientProfile
from vitalgate.firmware_sim.devices.glucose_meter import GlucoseMeter
from vitalgate.firmware_sim.truth import TruthLog
from vitalgate.firmware_sim.world import SimWorld
from vitalgate.gateway.daemon import Daemon
from vitalgate.gateway.kinds import DeviceKind
from vitalgate.gateway.pairing import pair_device
from vitalgate.gateway.pipeline import Pipeline
from vitalgate.gateway.registry import DeviceRegistry

from .helpers import START, MemorySink, make_config, make_patient, make_setup, match_truth


async def wait_until(predicate: Callable[[], bool], timeout_s: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def test_daemon_serves_devices_over_days(sim_world: SimWorld, tmp_path: Path) -> None:
    clock = SimClock(START)
    truth = TruthLog()
    anna = make_patient("p-anna", PatientProfile.TYPE2_DIABETIC_HYPERTENSIVE, seed=1)
    ben = make_patient("p-ben", PatientProfile.HYPERTENSIVE, seed=2)
    devices = [
        await sim_world.add(
            BloodPressureMonitor(
                make_setup("BP-A", 21, {1: anna, 2: ben}, clock_error_s=40.0),
                clock=clock,
                truth=truth,
            )
        ),
        await sim_world.add(
            GlucoseMeter(make_setup("GM-A", 22, {1: anna}), clock=clock, truth=truth)
        ),
        await sim_world.add(
            GlucoseMeter(
                make_setup("GM-B", 23, {1: ben}, clock_error_s=-700.0), clock=clock, truth=truth
            )
        ),
    ]
    config = make_config(tmp_path)
    sink = MemorySink()
    with DeviceRegistry(config.registry_path) as registry:
        passkeys = {d.address: d.setup.passkey for d in devices}

        async def passkey(address: str, name: str) -> int | None:
            return passkeys.get(address)

        plan = [
            (DeviceKind.BLOOD_PRESSURE, None, {1: "p-anna", 2: "p-ben"}),
            (DeviceKind.GLUCOSE, "p-anna", None),
            (DeviceKind.GLUCOSE, "p-ben", None),
        ]
        for device, (kind, pid, users) in zip(devices, plan, strict=True):
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
        daemon = Daemon(config, registry, Pipeline(sink), clock=clock)
        stop = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(daemon.run(stop))
            for device in devices:
                device.start()
            for _ in range(3 * 4):
                await clock.advance(timedelta(hours=6))
                await asyncio.sleep(0.2)
            done = await wait_until(lambda: len(sink.readings) >= len(truth), 20.0)
            stop.set()
            await task
        problems = match_truth(list(truth), list(sink.readings.values()))
        assert done, (len(sink.readings), len(truth), daemon.stats)
        assert problems == [], problems[:10]
        assert len(sink.readings) == len(truth)
        assert daemon.stats.unexpected_errors == 0, daemon.stats
