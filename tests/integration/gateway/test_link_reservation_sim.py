"""Streaming devices keep their links; a spot device must still find one free.

Two CGMs and a BP monitor on a gateway with two links: the CGMs may hold one link between them
(all links but one), so the BP monitor's readings arrive; the start-up log names the setting to
raise so that each streaming device keeps a link of its own.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path

import pytest

from vitalgate.firmware_sim.clock import SimClock
from vitalgate.firmware_sim.devices.bp_monitor import BloodPressureMonitor
from vitalgate.firmware_sim.devices.cgm import ContinuousGlucoseMonitor
from vitalgate.firmware_sim.devices.common import PatientProfile
from vitalgate.firmware_sim.truth import TruthLog
from vitalgate.firmware_sim.world import SimWorld
from vitalgate.gateway.daemon import Daemon
from vitalgate.gateway.kinds import DeviceKind
from vitalgate.gateway.pipeline import Pipeline
from vitalgate.gateway.registry import DeviceRegistry
from vitalgate.readings import ReadingKind

from .helpers import START, MemorySink, make_config, make_patient, make_setup, pair_all, wait_until


async def test_spot_device_is_served_while_streams_hold_links(
    sim_world: SimWorld, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = SimClock(START)
    truth = TruthLog()
    anna = make_patient("p-anna", PatientProfile.TYPE2_DIABETIC_HYPERTENSIVE, seed=1)
    ben = make_patient("p-ben", PatientProfile.TYPE2_DIABETIC, seed=2)
    kw = {"clock": clock, "truth": truth}
    cgm_a = await sim_world.add(ContinuousGlucoseMonitor(make_setup("CGM-A", 71, {1: anna}), **kw))
    cgm_b = await sim_world.add(ContinuousGlucoseMonitor(make_setup("CGM-B", 72, {1: ben}), **kw))
    bp = await sim_world.add(BloodPressureMonitor(make_setup("BP-R", 73, {1: anna}), **kw))
    plan = [
        (cgm_a, DeviceKind.CGM, "p-anna", None),
        (cgm_b, DeviceKind.CGM, "p-ben", None),
        (bp, DeviceKind.BLOOD_PRESSURE, None, {1: "p-anna"}),
    ]
    config = make_config(tmp_path, max_concurrent_connections=2)
    sink = MemorySink()
    caplog.set_level(logging.WARNING, logger="vitalgate.gateway.daemon")
    with DeviceRegistry(config.registry_path) as registry:
        await pair_all(config, registry, clock, plan)
        daemon = Daemon(config, registry, Pipeline(sink), clock=clock)
        stop = asyncio.Event()

        def bp_readings() -> int:
            return sum(1 for r in sink.readings.values() if r.kind is ReadingKind.BLOOD_PRESSURE)

        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(daemon.run(stop))
            for device, *_ in plan:
                device.start()
            bp_truth = 0
            for _ in range(8):
                await clock.advance(timedelta(hours=3))
                await asyncio.sleep(0.2)
                bp_truth = sum(1 for t in truth if t.kind is ReadingKind.BLOOD_PRESSURE)
            assert bp_truth > 0
            served = await wait_until(lambda: bp_readings() >= bp_truth, 30.0)
            stop.set()
            await task
    assert served, (bp_readings(), bp_truth, daemon.stats)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        "2 streaming devices" in m and "max_concurrent_connections to 3" in m for m in warnings
    ), warnings
