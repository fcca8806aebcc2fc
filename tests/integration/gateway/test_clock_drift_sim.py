"""Drifting device clocks (the clock_drift fault), seen through bleak and corrected.

Each device runs ``PPM`` fast; the gateway measures the clock at every sync (Current Time on
meters, monitors, thermometers and scales; the live measurements' time offsets on a CGM, whose
session timer runs on the same drifting crystal) and places every reading within 1 s of the
truth.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

from vitalgate.firmware_sim.clock import SimClock
from vitalgate.firmware_sim.devices.bp_monitor import BloodPressureMonitor
from vitalgate.firmware_sim.devices.cgm import ContinuousGlucoseMonitor
from vitalgate.firmware_sim.devices.common import PatientProfile, SimHealthDevice
from vitalgate.firmware_sim.devices.glucose_meter import GlucoseMeter
from vitalgate.firmware_sim.devices.thermometer import Thermometer
from vitalgate.firmware_sim.devices.weight_scale import WeightScale
from vitalgate.firmware_sim.faults import Fault, FaultInjector, FaultKind
from vitalgate.firmware_sim.truth import TruthLog
from vitalgate.firmware_sim.world import SimWorld
from vitalgate.gateway.daemon import Daemon
from vitalgate.gateway.kinds import DeviceKind
from vitalgate.gateway.pipeline import Pipeline
from vitalgate.gateway.registry import DeviceRegistry
from vitalgate.gateway.timefix import local_to_utc
from vitalgate.readings import QualityFlag, ReadingKind

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

PPM = 2000.0  # 173 s a day


def _drift(serial: str, ppm: float = PPM) -> FaultInjector:
    return FaultInjector(
        (Fault(kind=FaultKind.CLOCK_DRIFT, device=serial, ppm=ppm),), seed=7, serial=serial
    )


def _check(truth: TruthLog, readings: list[Any], serials: set[str]) -> None:
    assert {t.device_serial for t in truth} == serials
    problems = match_truth(list(truth), readings)  # within 1.5 s (see match_truth)
    assert problems == [], (len(problems), problems[:10])
    assert len(readings) == len(truth)
    for serial in serials:
        mine = [r for r in readings if r.device.serial == serial]
        assert any(QualityFlag.CLOCK_CORRECTED in r.flags for r in mine), serial
    # Records moved by a clock correction stay on whole seconds, off the milliseconds of live
    # samples (a live CGM reading placed at its receipt time is not moved by an offset).
    moved = [
        r
        for r in readings
        if QualityFlag.CLOCK_CORRECTED in r.flags and r.measured_at != r.received_at
    ]
    assert [r.measured_at for r in moved if r.measured_at.microsecond] == []


async def test_drifting_device_clocks_are_measured_and_corrected(
    sim_world: SimWorld, tmp_path: Path
) -> None:
    clock = SimClock(START)
    truth = TruthLog()
    anna = make_patient("p-anna", PatientProfile.TYPE2_DIABETIC_HYPERTENSIVE, seed=1)
    kw: dict[str, Any] = {"clock": clock, "truth": truth}
    devices: list[tuple[SimHealthDevice, DeviceKind]] = [
        (
            Thermometer(make_setup("TH-D", 71, {1: anna}), faults=_drift("TH-D"), **kw),
            DeviceKind.THERMOMETER,
        ),
        (
            BloodPressureMonitor(make_setup("BP-D", 72, {1: anna}), faults=_drift("BP-D"), **kw),
            DeviceKind.BLOOD_PRESSURE,
        ),
        (
            GlucoseMeter(make_setup("GM-D", 73, {1: anna}), faults=_drift("GM-D"), **kw),
            DeviceKind.GLUCOSE,
        ),
        (
            WeightScale(make_setup("WS-D", 74, {1: anna}), faults=_drift("WS-D"), **kw),
            DeviceKind.WEIGHT_SCALE,
        ),
    ]
    plan = [(await sim_world.add(d), kind, "p-anna", None) for d, kind in devices]
    config = make_config(tmp_path)
    sink = MemorySink()
    with DeviceRegistry(config.registry_path) as registry:
        await pair_all(config, registry, clock, plan)
        daemon = Daemon(config, registry, Pipeline(sink), clock=clock)
        stop = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(daemon.run(stop))
            for device, *_ in plan:
                device.start()
            # Time stands still while the gateway talks to a device: a clock step between the
            # gateway's Current Time write and its arrival would make the write itself wrong.
            for _ in range(36):
                await clock.advance(timedelta(hours=1))
                await asyncio.sleep(0.02)
                assert await wait_until(lambda: not any(d.is_connected for d, _ in devices), 5.0)
            await wait_until(lambda: len(sink.readings) >= len(truth), 10.0)
            stop.set()
            await task
        assert daemon.stats.unexpected_errors == 0, daemon.stats
        records = [registry.get(d.address) for d, *_ in plan]
    tz = anna.timezone
    for device, _ in devices:
        # the clocks really drifted: between two syncs (the gateway sets the clock at each)
        # stamps ran seconds ahead of the truth
        errors_s = [
            (local_to_utc(t.device_time, tz) - t.measured_at).total_seconds()
            for t in truth
            if t.device_serial == device.serial and t.device_time is not None
        ]
        assert max(errors_s) > 2.0, (device.serial, errors_s)
    assert all(r.clock_checked_at is not None for r in records)
    _check(truth, list(sink.readings.values()), {"TH-D", "BP-D", "GM-D", "WS-D"})


async def test_cgm_timer_drift_is_measured_from_live_readings(
    sim_world: SimWorld, tmp_path: Path
) -> None:
    clock = SimClock(START)
    truth = TruthLog()
    anna = make_patient("p-anna", PatientProfile.TYPE2_DIABETIC, seed=1)
    cgm = await sim_world.add(
        ContinuousGlucoseMonitor(
            make_setup("CGM-D", 75, {1: anna}),
            faults=_drift("CGM-D", ppm=1000.0),
            clock=clock,
            truth=truth,
        )
    )
    config = make_config(tmp_path)
    sink = MemorySink()
    with DeviceRegistry(config.registry_path) as registry:
        await pair_all(config, registry, clock, [(cgm, DeviceKind.CGM, "p-anna", None)])
        daemon = Daemon(config, registry, Pipeline(sink), clock=clock)
        stop = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(daemon.run(stop))
            cgm.start()
            # The CGM streams live once the gateway holds its link; time then moves from one
            # measurement instant to the next, so each live measurement reaches the gateway at
            # the simulated instant it was taken (as over a real radio).
            assert await wait_until(lambda: cgm.is_connected, 10.0)
            await asyncio.sleep(0.3)
            end = START + timedelta(hours=6)
            while clock.now() < end:
                offset = cgm.time_offset_min()
                due = cgm.true_time_of_offset((offset // cgm.interval_min + 1) * cgm.interval_min)
                await clock.advance(due - clock.now())
                await asyncio.sleep(0.005)
            await wait_until(lambda: len(sink.readings) >= len(truth), 10.0)
            stop.set()
            await task
        assert daemon.stats.unexpected_errors == 0, daemon.stats
        record = registry.get(cgm.address)
    # the sensor's time offsets ran fast: 6 h at 1000 ppm is 21.6 s
    last = [t for t in truth if t.kind is ReadingKind.CGM][-1]
    elapsed_s = (last.measured_at - START).total_seconds()
    assert last.attributes["time_offset_min"] * 60 > elapsed_s + 20
    _check(truth, list(sink.readings.values()), {"CGM-D"})
    # the measured error is kept (vitalgate status shows it)
    assert record.clock_offset_s is not None and record.clock_offset_s > 15.0, record
