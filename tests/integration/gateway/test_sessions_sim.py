"""BP and glucose sessions against simulated devices: every truth record arrives exactly once."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from vitalgate.errors import DeviceError
from vitalgate.firmware_sim.clock import SimClock
from vitalgate.firmware_sim.devices.bp_monitor import BloodPressureMonitor
from vitalgate.firmware_sim.devices.common import PatientProfile
from vitalgate.firmware_sim.devices.glucose_meter import GlucoseMeter
from vitalgate.firmware_sim.faults import Fault, FaultInjector, FaultKind
from vitalgate.firmware_sim.truth import TruthLog
from vitalgate.firmware_sim.world import SimWorld
from vitalgate.gateway.kinds import DeviceKind
from vitalgate.gateway.pairing import pair_device
from vitalgate.gateway.registry import DeviceRegistry
from vitalgate.gateway.runner import sync_device
from vitalgate.readings import QualityFlag, ReadingKind

from .helpers import (
    START,
    MemorySink,
    make_config,
    make_context,
    make_patient,
    make_setup,
    match_truth,
)


async def test_bp_two_users_and_glucose_meter(sim_world: SimWorld, tmp_path: Path) -> None:
    clock = SimClock(START)
    truth = TruthLog()
    anna = make_patient("p-anna", PatientProfile.TYPE2_DIABETIC_HYPERTENSIVE, seed=1)
    ben = make_patient("p-ben", PatientProfile.NORMOTENSIVE, seed=2)
    bp = await sim_world.add(
        BloodPressureMonitor(
            make_setup("BP-1", 11, {1: anna, 2: ben}, clock_error_s=-95.0),
            clock=clock,
            truth=truth,
        )
    )
    meter = await sim_world.add(
        GlucoseMeter(
            make_setup("GM-1", 12, {1: anna}, clock_error_s=30.0),
            clock=clock,
            truth=truth,
            control_tests_per_month=30.0,
        )
    )
    config = make_config(tmp_path)
    sink = MemorySink()
    with DeviceRegistry(config.registry_path) as registry:
        ctx = make_context(config, registry, sink, clock)
        passkeys = {bp.address: bp.setup.passkey, meter.address: meter.setup.passkey}

        async def passkey(address: str, name: str) -> int | None:
            return passkeys.get(address)

        # Pair first (the clock is off when the devices were made: pairing does not fix the
        # records already stored, the sync's clock check does).
        for device, kind, pid, users in (
            (bp, DeviceKind.BLOOD_PRESSURE, None, {1: "p-anna", 2: "p-ben"}),
            (meter, DeviceKind.GLUCOSE, "p-anna", None),
        ):
            await device.start_advertising()  # pairing mode
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
        bp.start()
        meter.start()
        for day in range(2):
            await clock.advance(timedelta(days=1))
            for device in (bp, meter):
                record = registry.get(device.address)
                result = await sync_device(ctx, device.address, record)
                assert result.problem is None, result.problem
            # Syncing again changes nothing.
            result = await sync_device(ctx, meter.address, registry.get(meter.address))
            assert result.offered == 0, day

        readings = list(sink.readings.values())
        problems = match_truth(list(truth), readings)
        assert problems == [], problems[:10]
        assert len(readings) == len(truth)
        assert {r.patient_id for r in readings if r.kind == ReadingKind.BLOOD_PRESSURE} == {
            "p-anna",
            "p-ben",
        }
        controls = [r for r in readings if QualityFlag.CONTROL_SOLUTION in r.flags]
        assert controls, "the meter made control-solution tests"
        assert all(not r.is_clinical for r in controls)
        rec = registry.get(meter.address)
        assert rec.sync.last_racp_seq == max(
            r.sequence_number for r in readings if r.sequence_number is not None
        )
        assert rec.battery_pct is not None
        assert rec.serial == "GM-1"


@pytest.mark.parametrize("fault", ["wrong_passkey", "refuse_pairing"])
async def test_pairing_failures_are_clear(sim_world: SimWorld, tmp_path: Path, fault: str) -> None:
    clock = SimClock(START)
    anna = make_patient("p-anna", PatientProfile.TYPE2_DIABETIC, seed=1)
    injector = FaultInjector((Fault(kind=FaultKind(fault), device="GM-X"),), seed=1, serial="GM-X")
    meter = await sim_world.add(
        GlucoseMeter(
            make_setup("GM-X", 13, {1: anna}), clock=clock, truth=TruthLog(), faults=injector
        )
    )
    config = make_config(tmp_path, connect_attempts=1)
    await meter.start_advertising()

    async def passkey(address: str, name: str) -> int | None:
        return meter.setup.passkey  # what the owner was told; the device shows another

    with DeviceRegistry(config.registry_path) as registry:
        with pytest.raises(DeviceError, match="pairing failed"):
            await pair_device(
                config=config,
                registry=registry,
                clock=clock,
                device=meter.address,
                kind=DeviceKind.GLUCOSE,
                patient_id="p-anna",
                passkey=passkey,
            )
        assert registry.devices() == []
