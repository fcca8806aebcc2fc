"""One test per device fault, showing the symptom a gateway sees through plain bleak.

(Disconnect mid-transfer, corrupt packet, duplicate re-send, year-2000 clock reset, wrong
passkey, refused pairing and full memory are in test_glucose_meter.py.)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import datetime, timedelta

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError
from bleak.uuids import normalize_uuid_str

from tests.integration.sim_devices.conftest import START, TZ, Household
from vitalgate.drivers import battery, current_time, racp
from vitalgate.drivers import blood_pressure as bpc
from vitalgate.drivers import glucose as glc
from vitalgate.errors import ParseError
from vitalgate.firmware_sim.devices.bp_monitor import BloodPressureMonitor
from vitalgate.firmware_sim.devices.common import PatientProfile
from vitalgate.firmware_sim.devices.glucose_meter import GlucoseMeter
from vitalgate.firmware_sim.faults import Fault, FaultKind

MEASUREMENT = normalize_uuid_str("2a18")
RACP = normalize_uuid_str("2a52")
BATTERY_LEVEL = normalize_uuid_str("2a19")
CURRENT_TIME = normalize_uuid_str("2a2b")
BP_MEASUREMENT = normalize_uuid_str("2a35")


async def _meter(household: Household, *faults: Fault) -> BLEDevice:
    patient = household.patient("ivy", PatientProfile.TYPE2_DIABETIC)
    await household.add(GlucoseMeter, serial="GM-F", seed=61, users={1: patient}, faults=faults)
    await household.clock.advance(timedelta(days=3))
    device = await BleakScanner.find_device_by_filter(
        lambda _d, adv: normalize_uuid_str("1808") in adv.service_uuids, timeout=5.0
    )
    assert device is not None
    return device


async def _download(client: BleakClient) -> tuple[list[bytes], racp.RacpResponse]:
    raw: list[bytes] = []
    responses: asyncio.Queue[racp.RacpResponse] = asyncio.Queue(maxsize=4)
    await client.start_notify(MEASUREMENT, lambda _c, d: raw.append(bytes(d)))
    await client.start_notify(
        RACP, lambda _c, d: responses.put_nowait(racp.parse_response(bytes(d)))
    )
    await client.write_gatt_char(RACP, racp.encode_request(racp.report_all()), response=True)
    return raw, await asyncio.wait_for(responses.get(), 5.0)


async def test_vanish_mid_transfer_ends_in_a_supervision_timeout(household: Household) -> None:
    device = await _meter(household, Fault(kind=FaultKind.VANISH, device="GM-F", after_records=3))
    lost = asyncio.Event()
    client = BleakClient(device, pair=True, disconnected_callback=lambda _c: lost.set())
    await client.connect()
    raw: list[bytes] = []
    await client.start_notify(MEASUREMENT, lambda _c, d: raw.append(bytes(d)))
    await client.start_notify(RACP, lambda _c, _d: None)
    silent_since = time.monotonic()
    # The device goes silent mid-procedure; even the write response may never arrive.
    with contextlib.suppress(BleakError):
        await client.write_gatt_char(RACP, racp.encode_request(racp.report_all()), response=True)
    await asyncio.wait_for(lost.wait(), 10.0)
    assert time.monotonic() - silent_since > 1.0  # no disconnect: the timeout had to expire
    assert len(raw) == 3
    with pytest.raises(BleakError):
        await client.read_gatt_char(BATTERY_LEVEL)


@pytest.mark.parametrize("kind", [FaultKind.TRUNCATED_PACKET, FaultKind.OVERLONG_PACKET])
async def test_truncated_and_overlong_packets_are_parse_errors(
    household: Household, kind: FaultKind
) -> None:
    device = await _meter(household, Fault(kind=kind, device="GM-F", after_records=1))
    async with BleakClient(device, pair=True) as client:
        raw, done = await _download(client)
    assert done.is_success
    with pytest.raises(ParseError) as info:
        glc.parse_measurement(raw[1])
    assert info.value.payload == raw[1]
    for i, data in enumerate(raw):
        if i != 1:
            glc.parse_measurement(data)


async def test_slow_responses(household: Household) -> None:
    device = await _meter(
        household, Fault(kind=FaultKind.SLOW_RESPONSES, device="GM-F", latency_s=0.05)
    )
    async with BleakClient(device, pair=True) as client:
        started = time.monotonic()
        for _ in range(4):
            await client.read_gatt_char(BATTERY_LEVEL)
        assert time.monotonic() - started >= 4 * 0.05


async def test_low_battery(household: Household) -> None:
    device = await _meter(
        household, Fault(kind=FaultKind.LOW_BATTERY, device="GM-F", battery_pct=5, at_s=3600)
    )
    async with BleakClient(device, pair=True) as client:
        assert battery.parse_battery_level(bytes(await client.read_gatt_char(BATTERY_LEVEL))) == 5
        raw, _ = await _download(client)
    statuses = [glc.parse_measurement(d).sensor_status for d in raw]
    assert statuses[-1] is not None and statuses[-1] & glc.SensorStatus.DEVICE_BATTERY_LOW


async def test_clock_drift_shows_in_current_time_and_is_corrected(household: Household) -> None:
    patient = household.patient("jon", PatientProfile.HYPERTENSIVE)
    await household.add(
        BloodPressureMonitor,
        serial="BP-F",
        seed=62,
        users={1: patient},
        faults=(Fault(kind=FaultKind.CLOCK_DRIFT, device="BP-F", ppm=500.0),),
    )
    await household.clock.advance(timedelta(days=3))
    device = await BleakScanner.find_device_by_filter(
        lambda _d, adv: normalize_uuid_str("1810") in adv.service_uuids, timeout=5.0
    )
    assert device is not None

    def true_local() -> datetime:
        return household.clock.now().astimezone(TZ).replace(tzinfo=None)

    async with BleakClient(device, pair=True) as client:
        shown = current_time.parse_current_time(bytes(await client.read_gatt_char(CURRENT_TIME)))
        assert shown.exact_time is not None
        error = shown.exact_time - true_local()
        assert error == pytest.approx(timedelta(days=3) * 500e-6, abs=timedelta(seconds=1))
        records: list[bpc.BloodPressureMeasurement] = []
        await client.start_notify(
            BP_MEASUREMENT, lambda _c, d: records.append(bpc.parse_measurement(bytes(d)))
        )
        await client.write_gatt_char(
            CURRENT_TIME, current_time.encode_current_time(true_local()), response=True
        )
        fixed = current_time.parse_current_time(bytes(await client.read_gatt_char(CURRENT_TIME)))
        assert fixed.exact_time is not None
        assert abs(fixed.exact_time - true_local()) < timedelta(seconds=1)
        await asyncio.sleep(0.1)
    # Records measured before the fix carry the drifted time: later ones drift more.
    truth = household.truth.records(device_serial="BP-F")
    drift = [
        t.device_time - t.measured_at.astimezone(TZ).replace(tzinfo=None)  # type: ignore[operator]
        for t in truth
    ]
    assert drift == sorted(drift) and drift[-1] > timedelta(seconds=60)
    assert truth[0].measured_at > START
