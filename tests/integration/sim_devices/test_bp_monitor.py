"""The BP monitor through plain bleak: memory indicated on subscribe, cleared once confirmed."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bleak import BleakClient, BleakScanner
from bleak.uuids import normalize_uuid_str

from tests.integration.sim_devices.conftest import Household
from vitalgate.drivers import blood_pressure as bpc
from vitalgate.firmware_sim.devices.bp_monitor import BloodPressureMonitor
from vitalgate.firmware_sim.devices.common import PatientProfile

BP_SERVICE = normalize_uuid_str("1810")
BP_MEASUREMENT = normalize_uuid_str("2a35")


async def test_two_users_memory_indicated_and_cleared(household: Household) -> None:
    alice = household.patient("alice", PatientProfile.HYPERTENSIVE)
    bob = household.patient("bob", PatientProfile.NORMOTENSIVE)
    monitor = await household.add(
        BloodPressureMonitor, serial="BP-1", seed=11, users={1: alice, 2: bob}
    )
    await household.clock.advance(timedelta(days=1))
    stored = list(monitor.memory)
    assert len(stored) == 8  # 2 users x 2 sessions x 2 readings

    device = await BleakScanner.find_device_by_filter(
        lambda _d, adv: BP_SERVICE in adv.service_uuids, timeout=5.0
    )
    assert device is not None
    received: list[bpc.BloodPressureMeasurement] = []
    done = asyncio.Event()
    async with BleakClient(device, pair=True) as client:

        def on_indication(_char: object, data: bytearray) -> None:
            received.append(bpc.parse_measurement(bytes(data)))
            if len(received) == 8:
                done.set()

        await client.start_notify(BP_MEASUREMENT, on_indication)
        await asyncio.wait_for(done.wait(), 5.0)
    assert not monitor.memory
    truth = household.truth.records(device_serial="BP-1")
    assert [(m.user_id, m.systolic_mmhg, m.diastolic_mmhg, m.timestamp) for m in received] == [
        (t.user_id, t.values["systolic_mmhg"], t.values["diastolic_mmhg"], t.device_time)
        for t in truth
    ]
    assert {t.patient_id for t in truth if t.user_id == 2} == {"bob"}


async def test_intermediate_cuff_pressure_during_a_measurement(household: Household) -> None:
    alice = household.patient("alice", PatientProfile.HYPERTENSIVE)
    await household.add(
        BloodPressureMonitor,
        serial="BP-2",
        seed=12,
        users={1: alice},
        disconnect_after_transfer=False,
    )
    await household.clock.advance(timedelta(hours=2))  # 07:00 readings -> advertises
    device = await BleakScanner.find_device_by_filter(
        lambda _d, adv: BP_SERVICE in adv.service_uuids, timeout=5.0
    )
    assert device is not None
    cuff: list[float] = []
    results: list[bpc.BloodPressureMeasurement] = []
    async with BleakClient(device, pair=True) as client:
        await client.start_notify(
            normalize_uuid_str("2a36"),
            lambda _c, d: cuff.append(bpc.parse_measurement(bytes(d)).cuff_pressure_mmhg),
        )
        await client.start_notify(
            BP_MEASUREMENT, lambda _c, d: results.append(bpc.parse_measurement(bytes(d)))
        )
        await asyncio.sleep(0.2)
        assert len(results) == 2  # the stored morning readings
        await household.clock.advance(timedelta(hours=14))  # the evening readings (21:00)
        await asyncio.sleep(0.2)
    assert len(results) == 4
    peak = max(cuff)
    assert peak > results[2].systolic_mmhg + 20
    assert cuff.index(peak) > 0 and cuff[-1] < peak  # inflates, then deflates
