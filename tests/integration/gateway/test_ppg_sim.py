"""Heart rate derived from the wearable's raw PPG + accelerometer stream (vendor service).

The gateway subscribes to the simulated wearable's PPG and accelerometer data, runs the
streaming beat detector and delivers one heart-rate reading per window with the RR intervals
of the detected beats; on the windows the quality index accepts, the derived heart rate is
within a few bpm of the simulator's truth. Raw samples are not delivered.
"""

from __future__ import annotations

import asyncio
import statistics
from datetime import timedelta
from pathlib import Path

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
    MemorySink,
    make_config,
    make_context,
    make_patient,
    make_setup,
    pair_all,
    wait_until,
)

_REJECTING = {QualityFlag.LOW_QUALITY, QualityFlag.MOTION_ARTIFACT}


async def test_heart_rate_from_ppg_matches_the_truth(sim_world: SimWorld, tmp_path: Path) -> None:
    clock = SimClock(START)
    truth = TruthLog()
    anna = make_patient("p-anna", PatientProfile.NORMOTENSIVE, seed=1)
    wearable = await sim_world.add(
        HeartRateWearable(make_setup("HR-P", 91, {1: anna}), clock=clock, truth=truth)
    )
    config = make_config(tmp_path)
    sink = MemorySink()
    with DeviceRegistry(config.registry_path) as registry:
        await pair_all(config, registry, clock, [(wearable, DeviceKind.HEART_RATE, "p-anna", None)])
        ctx = make_context(config, registry, sink, clock)
        wearable.start()
        await wearable.start_advertising()
        task = asyncio.create_task(
            sync_device(ctx, wearable.address, registry.get(wearable.address))
        )
        ppg_char = wearable.ppg_char
        accel_char = wearable.accel_char
        assert ppg_char is not None and accel_char is not None
        assert await wait_until(
            lambda: wearable.is_subscribed(ppg_char) and wearable.is_subscribed(accel_char), 5.0
        )
        await asyncio.sleep(0.2)
        for _ in range(5 * 30 + 3):
            await clock.advance(timedelta(seconds=1))
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.3)
        ctx.stop.set()
        result = await task
    assert result.dropped == 0 and result.stream_resets == 0, result
    readings = [r for r in sink.readings.values() if isinstance(r, HeartRateReading)]
    # device readings carry the strap's contact bit; PPG-derived ones do not
    derived = sorted((r for r in readings if r.sensor_contact is None), key=lambda r: r.measured_at)
    device = [r for r in readings if r.sensor_contact is not None]
    assert len(device) == len(truth)
    assert 4 <= len(derived) <= 5, derived
    accepted = [r for r in derived if not (r.flags & _REJECTING)]
    assert accepted, [sorted(r.flags) for r in derived]
    for r in derived:
        assert r.patient_id == "p-anna"
        assert QualityFlag.NO_DEVICE_TIME in r.flags
        assert r.rr_intervals_s and all(0.3 <= rr <= 2.0 for rr in r.rr_intervals_s)
    for r in accepted:
        window = [
            t.values["heart_rate_bpm"]
            for t in truth
            if r.measured_at - timedelta(seconds=33) <= t.measured_at <= r.measured_at
        ]
        assert len(window) >= 25
        assert abs(r.heart_rate_bpm - statistics.fmean(window)) < 4.0, (r, window)
        # the RR intervals are the detected beats': they add up to most of the window
        assert 20.0 <= sum(r.rr_intervals_s) <= 31.0
