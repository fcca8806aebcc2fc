"""The pulse-oximeter session against the simulated oximeter (PLX service, plain bleak).

Spot checks are stored on the device and indicated on connect: every one of them reaches the
outbox once, with its patient and time. Continuous measurements (1 Hz while connected) are kept
as they arrive; the buffer between the BLE callback and the session is bounded and a burst larger
than it is counted as dropped, never silently lost.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from vitalgate.cloud_sync.outbox import Outbox
from vitalgate.firmware_sim.clock import SimClock
from vitalgate.firmware_sim.devices.common import PatientProfile
from vitalgate.firmware_sim.devices.pulse_oximeter import PulseOximeter
from vitalgate.firmware_sim.truth import TruthLog
from vitalgate.firmware_sim.world import SimWorld
from vitalgate.gateway.daemon import Daemon
from vitalgate.gateway.kinds import DeviceKind
from vitalgate.gateway.pipeline import Pipeline
from vitalgate.gateway.registry import DeviceRegistry
from vitalgate.gateway.runner import sync_device
from vitalgate.readings import PulseOximetryReading, QualityFlag, Reading

from .helpers import (
    START,
    MemorySink,
    make_config,
    make_context,
    make_patient,
    make_setup,
    match_truth,
    outbox_measurements,
    pair_all,
    pending_measurements,
    wait_until,
)


class _GatedSink(MemorySink):
    """A sink whose writes wait while ``gate`` is clear (a stalled disk or outbox)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()

    def add(self, readings: Sequence[Reading]) -> int:
        if not self.gate.wait(30.0):
            raise TimeoutError("gate never opened")
        return super().add(readings)


async def test_every_spot_check_reaches_the_outbox_once(
    sim_world: SimWorld, tmp_path: Path
) -> None:
    clock = SimClock(START)
    truth = TruthLog()
    ben = make_patient("p-ben", PatientProfile.HYPERTENSIVE, seed=2)
    ox = await sim_world.add(
        PulseOximeter(
            make_setup("OX-1", 81, {1: ben}),
            clock=clock,
            truth=truth,
            session_local_hours=(7.0, 13.0, 19.0),
        )
    )
    config = make_config(tmp_path)
    with DeviceRegistry(config.registry_path) as registry, Outbox(config.outbox_path) as outbox:
        await pair_all(config, registry, clock, [(ox, DeviceKind.PULSE_OXIMETER, "p-ben", None)])
        daemon = Daemon(config, registry, Pipeline(outbox), clock=clock)
        stop = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(daemon.run(stop))
            ox.start()
            for _ in range(2 * 8):
                await clock.advance(timedelta(hours=3))
                # the gateway collects until the device is quiet, then lets it go
                assert await wait_until(lambda: not ox.is_connected, 10.0)
            spots = [t for t in truth if not t.attributes["continuous"]]
            await wait_until(lambda: pending_measurements(outbox) >= len(spots), 10.0)
            stop.set()
            await task
        readings = outbox_measurements(outbox)
        assert outbox.deadletters() == []
    assert daemon.stats.unexpected_errors == 0, daemon.stats
    assert len(spots) >= 5  # two days, three spot checks a day (New York time)
    spot_readings = [
        r for r in readings if isinstance(r, PulseOximetryReading) and not r.continuous
    ]
    assert match_truth(spots, spot_readings) == []
    assert len(spot_readings) == len(spots)
    assert {r.patient_id for r in readings} == {"p-ben"}
    assert not ox.memory  # each confirmed spot check left the device's memory
    # continuous values sent while the gateway collected were kept, each one once
    continuous_truth = [t for t in truth if t.attributes["continuous"]]
    continuous = [r for r in readings if isinstance(r, PulseOximetryReading) and r.continuous]
    assert len(continuous) == len(continuous_truth)
    assert all(QualityFlag.NO_DEVICE_TIME in r.flags for r in continuous)


async def test_continuous_stream_is_kept_with_bounded_buffering(
    sim_world: SimWorld, tmp_path: Path
) -> None:
    clock = SimClock(START)
    truth = TruthLog()
    anna = make_patient("p-anna", PatientProfile.NORMOTENSIVE, seed=1)
    ox = await sim_world.add(
        PulseOximeter(make_setup("OX-2", 82, {1: anna}), clock=clock, truth=truth)
    )
    buffer = 64
    config = make_config(tmp_path, stream_buffer=buffer, quiet_period_s=0.5, download_batch=16)
    sink = _GatedSink()
    with DeviceRegistry(config.registry_path) as registry:
        await pair_all(config, registry, clock, [(ox, DeviceKind.PULSE_OXIMETER, "p-anna", None)])
        ctx = make_context(config, registry, sink, clock)
        ox.start()
        await ox.start_advertising()
        task = asyncio.create_task(sync_device(ctx, ox.address, registry.get(ox.address)))
        assert ox.continuous_char is not None
        char = ox.continuous_char
        assert await wait_until(lambda: ox.is_connected and ox.is_subscribed(char), 5.0)
        # paced: one simulated second at a time, the session keeps up
        for _ in range(60):
            await clock.advance(timedelta(seconds=1))
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.1)
        paced = [t for t in truth if t.attributes["continuous"]]
        assert len(paced) >= 55
        # a burst while the outbox is stalled: ten simulated minutes at once, far more than
        # the buffer holds; the BLE side must not wait for the outbox
        sink.gate.clear()
        await clock.advance(timedelta(minutes=10))
        sink.gate.set()
        result = await task
    continuous_truth = [t for t in truth if t.attributes["continuous"]]
    readings = [r for r in sink.readings.values() if isinstance(r, PulseOximetryReading)]
    assert len(continuous_truth) >= 600
    assert result.dropped > 0
    # nothing lost silently: every value sent was kept or counted as dropped
    assert len(readings) + result.dropped == len(continuous_truth), (len(readings), result)
    assert len(readings) >= len(paced) + buffer
    assert {r.patient_id for r in readings} == {"p-anna"}
    kept = sorted((r.spo2_pct, r.pulse_rate_bpm) for r in readings[: len(paced)])
    sent = sorted(
        (t.values["spo2_pct"], t.values["pulse_rate_bpm"]) for t in continuous_truth[: len(paced)]
    )
    assert kept == sent
