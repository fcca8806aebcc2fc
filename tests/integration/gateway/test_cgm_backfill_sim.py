"""A CGM back-fill larger than the gateway's stream buffer loses no reading.

The soak lost CGM readings while the link stayed up: a back-fill of more records than the
session's inbox holds (``[limits] stream_buffer``) dropped some of them; a session that dropped
anything never moved its sync point again, so every later back-fill asked for the same ever
longer run from the frozen point, overflowed again and dropped the newest records every time --
for as long as the link lasted (days: a CGM streams). Here the sensor has two days of records
before the gateway first connects, the stream buffer holds 64 values and each reading is its
own outbox transaction (as in the soak), and the CGM then streams live for hours: every record
must arrive, and the sync point must reach the newest one.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from vitalgate.firmware_sim.clock import SimClock
from vitalgate.firmware_sim.devices.cgm import ContinuousGlucoseMonitor
from vitalgate.firmware_sim.devices.common import PatientProfile
from vitalgate.firmware_sim.truth import TruthLog
from vitalgate.firmware_sim.world import SimWorld
from vitalgate.gateway.daemon import Daemon
from vitalgate.gateway.kinds import DeviceKind
from vitalgate.gateway.pipeline import Pipeline
from vitalgate.gateway.registry import DeviceRegistry
from vitalgate.readings import ReadingKind

from .helpers import (
    START,
    MemorySink,
    make_config,
    make_patient,
    make_setup,
    match_truth,
    pair_all,
    wait_until,
)

STREAM_BUFFER = 64


async def _step_to_next_measurement(clock: SimClock, cgm: ContinuousGlucoseMonitor) -> None:
    offset = cgm.time_offset_min()
    due = cgm.true_time_of_offset((offset // cgm.interval_min + 1) * cgm.interval_min)
    await clock.advance(due - clock.now())
    await asyncio.sleep(0.005)


async def test_cgm_backfill_larger_than_the_stream_buffer_loses_nothing(
    sim_world: SimWorld, tmp_path: Path
) -> None:
    clock = SimClock(START)
    truth = TruthLog()
    anna = make_patient("p-anna", PatientProfile.TYPE2_DIABETIC, seed=1)
    cgm = await sim_world.add(
        ContinuousGlucoseMonitor(
            make_setup("CGM-B", 81, {1: anna}),
            clock=clock,
            truth=truth,
            dropouts_per_day=3.0,  # gaps the back-fill must prove empty, not wait on
        )
    )
    config = make_config(tmp_path, stream_buffer=STREAM_BUFFER, download_batch=1)
    sink = MemorySink()
    with DeviceRegistry(config.registry_path) as registry:
        await pair_all(config, registry, clock, [(cgm, DeviceKind.CGM, "p-anna", None)])
        cgm.start()
        await clock.advance(timedelta(days=2))  # two days of records before the gateway runs
        stored_before = len(cgm.records)
        assert stored_before > 8 * STREAM_BUFFER, stored_before
        daemon = Daemon(config, registry, Pipeline(sink), clock=clock)
        stop = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(daemon.run(stop))
            assert await wait_until(lambda: cgm.is_connected, 10.0)
            assert await wait_until(lambda: len(sink.readings) >= stored_before, 60.0), (
                len(sink.readings),
                stored_before,
            )
            end = clock.now() + timedelta(hours=3)
            while clock.now() < end:
                await _step_to_next_measurement(clock, cgm)
            assert await wait_until(lambda: len(sink.readings) >= len(truth), 20.0)
            assert cgm.is_connected  # one link all along: nothing was fetched again later
            stop.set()
            await task
        assert daemon.stats.unexpected_errors == 0, daemon.stats
        record = registry.get(cgm.address)
    cgm_truth = [t for t in truth if t.kind is ReadingKind.CGM]
    readings = list(sink.readings.values())
    problems = match_truth(cgm_truth, readings, tolerance_s=1.0)
    assert problems == [], (len(problems), problems[:10])
    assert len(readings) == len(cgm_truth)
    newest = max(t.attributes["time_offset_min"] for t in cgm_truth)
    assert record.sync.cgm_last_offset_min is not None
    assert record.sync.cgm_last_offset_min >= newest - cgm.interval_min, (
        record.sync.cgm_last_offset_min,
        newest,
    )
