"""Thermometer, weight scale and pulse oximeter through plain bleak."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bleak import BleakClient, BleakScanner
from bleak.uuids import normalize_uuid_str

from tests.integration.sim_devices.conftest import Household
from vitalgate.drivers import pulse_oximeter as plx
from vitalgate.drivers import thermometer as thc
from vitalgate.drivers import weight_scale as wsc
from vitalgate.firmware_sim.devices.common import PatientProfile
from vitalgate.firmware_sim.devices.pulse_oximeter import PulseOximeter
from vitalgate.firmware_sim.devices.thermometer import Thermometer
from vitalgate.firmware_sim.devices.weight_scale import WeightScale


async def _download(service: str, characteristic: str, count: int) -> list[bytes]:
    device = await BleakScanner.find_device_by_filter(
        lambda _d, adv: normalize_uuid_str(service) in adv.service_uuids, timeout=5.0
    )
    assert device is not None
    got: list[bytes] = []
    done = asyncio.Event()
    async with BleakClient(device, pair=True) as client:

        def on_value(_c: object, data: bytearray) -> None:
            got.append(bytes(data))
            if len(got) == count:
                done.set()

        await client.start_notify(normalize_uuid_str(characteristic), on_value)
        await asyncio.wait_for(done.wait(), 5.0)
    return got


async def test_thermometer(household: Household) -> None:
    patient = household.patient("fay", PatientProfile.NORMOTENSIVE)
    thermo = await household.add(Thermometer, serial="TH-1", seed=51, users={1: patient})
    await household.clock.advance(timedelta(days=2))
    truth = household.truth.records(device_serial="TH-1")
    assert len(truth) == 4
    got = [thc.parse_measurement(d) for d in await _download("1809", "2a1c", 4)]
    assert [(m.temperature_c, m.timestamp) for m in got] == [
        (t.values["temperature_c"], t.device_time) for t in truth
    ]
    assert all(36.0 < m.temperature_c < 37.6 for m in got)
    assert not thermo.memory


async def test_weight_scale(household: Household) -> None:
    patient = household.patient("gus", PatientProfile.HYPERTENSIVE)
    await household.add(WeightScale, serial="WS-1", seed=52, users={1: patient})
    await household.clock.advance(timedelta(days=3))
    truth = household.truth.records(device_serial="WS-1")
    got = [wsc.parse_measurement(d) for d in await _download("181d", "2a9d", len(truth))]
    assert [m.weight_kg for m in got] == [t.values["weight_kg"] for t in truth]
    assert all(m.user_id == 1 and m.bmi_kg_m2 for m in got)


async def test_pulse_oximeter_spot_and_continuous(household: Household) -> None:
    patient = household.patient("hal", PatientProfile.NORMOTENSIVE)
    await household.add(PulseOximeter, serial="OX-1", seed=53, users={1: patient})
    await household.clock.advance(timedelta(days=1))
    spot_truth = household.truth.records(device_serial="OX-1")
    assert len(spot_truth) == 2
    device = await BleakScanner.find_device_by_filter(
        lambda _d, adv: normalize_uuid_str("1822") in adv.service_uuids, timeout=5.0
    )
    assert device is not None
    spot: list[plx.SpotCheckMeasurement] = []
    continuous: list[plx.ContinuousMeasurement] = []
    async with BleakClient(device, pair=True) as client:
        await client.start_notify(
            normalize_uuid_str("2a5e"),
            lambda _c, d: spot.append(plx.parse_spot_check_measurement(bytes(d))),
        )
        await client.start_notify(
            normalize_uuid_str("2a5f"),
            lambda _c, d: continuous.append(plx.parse_continuous_measurement(bytes(d))),
        )
        await household.clock.advance(timedelta(seconds=30))
        await asyncio.sleep(0.2)
    assert [(m.spo2_pct, m.timestamp) for m in spot] == [
        (t.values["spo2_pct"], t.device_time) for t in spot_truth
    ]
    assert len(continuous) == 30
    assert all(85 <= m.spo2_pct <= 100 for m in continuous)
