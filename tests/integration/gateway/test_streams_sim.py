"""Live streams: heart rate from a wearable arrives completely, bounded, with the right patient."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from vitalgate.cloud_sync.outbox import Outbox
from vitalgate.firmware_sim.clock import SimClock
from vitalgate.firmware_sim.devices.common import PatientProfile
from vitalgate.firmware_sim.devices.hr_wearable import HeartRateWearable
from vitalgate.firmware_sim.truth import TruthLog
from vitalgate.firmware_sim.world import SimWorld
from vitalgate.gateway.kinds import DeviceKind
from vitalgate.gateway.registry import DeviceRegistry
from vitalgate.gateway.runner import sync_device
from vitalgate.readings import HeartRateReading, QualityFlag

from .helpers import (
    START,
    make_config,
    make_context,
    make_patient,
    make_setup,
    outbox_measurements,
    pair_all,
)


async def test_heart_rate_stream(sim_world: SimWorld, tmp_path: Path) -> None:
    clock = SimClock(START)
    truth = TruthLog()
    anna = make_patient("p-anna", PatientProfile.NORMOTENSIVE, seed=1)
    hr = await sim_world.add(
        HeartRateWearable(make_setup("HR-1", 71, {1: anna}), clock=clock, truth=truth)
    )
    config = make_config(tmp_path)
    with DeviceRegistry(config.registry_path) as registry, Outbox(config.outbox_path) as sink:
        await pair_all(config, registry, clock, [(hr, DeviceKind.HEART_RATE, "p-anna", None)])
        ctx = make_context(config, registry, sink, clock)
        hr.start()
        await hr.start_advertising()
        task = asyncio.create_task(sync_device(ctx, hr.address, registry.get(hr.address)))
        for _ in range(200):
            await asyncio.sleep(0.01)
            if (
                hr.is_connected and len(hr.subscribers)
                if hasattr(hr, "subscribers")
                else hr.is_connected
            ):
                break
        await asyncio.sleep(0.2)
        sent_before = len(truth)
        for _ in range(60):
            await clock.advance(timedelta(seconds=1))
            await asyncio.sleep(0.005)
        ctx.stop.set()
        result = await task
        # The strap's own readings (PPG-derived ones carry no sensor_contact).
        readings = [
            r
            for r in outbox_measurements(sink)
            if isinstance(r, HeartRateReading) and r.sensor_contact is not None
        ]
        assert sink.deadletters() == []
    assert result.dropped == 0
    assert len(truth) - sent_before >= 55
    assert len(readings) == len(truth), (len(readings), len(truth), result)
    assert {r.patient_id for r in readings} == {"p-anna"}
    assert all(QualityFlag.NO_DEVICE_TIME in r.flags for r in readings)
    rr_truth = sorted(float(t.values["heart_rate_bpm"]) for t in truth)
    assert sorted(r.heart_rate_bpm for r in readings) == rr_truth
