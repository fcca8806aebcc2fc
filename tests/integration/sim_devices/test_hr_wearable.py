"""The HR/PPG wearable through plain bleak: HR with RR intervals, PPG + accelerometer streams."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta

import numpy as np
import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakGATTProtocolError
from bleak.uuids import normalize_uuid_str

from tests.integration.sim_devices.conftest import Household
from vitalgate.drivers import heart_rate as hrc
from vitalgate.drivers import ppg_stream as ppgc
from vitalgate.firmware_sim.devices.common import PatientProfile
from vitalgate.firmware_sim.devices.hr_wearable import HeartRateWearable

HR_SERVICE = normalize_uuid_str("180d")
HR_MEASUREMENT = normalize_uuid_str("2a37")


@pytest.mark.parametrize("rate_hz", [64, 256])
async def test_heart_rate_and_ppg_streams(household: Household, rate_hz: int) -> None:
    patient = household.patient("erin", PatientProfile.NORMOTENSIVE)
    await household.add(HeartRateWearable, serial="HR-1", seed=41, users={1: patient}, passkey=None)
    device = await BleakScanner.find_device_by_filter(
        lambda _d, adv: HR_SERVICE in adv.service_uuids, timeout=5.0
    )
    assert device is not None
    async with BleakClient(device) as client:
        await client.write_gatt_char(
            ppgc.CONFIG_UUID, ppgc.encode_config(ppgc.PpgStreamConfig(rate_hz)), response=True
        )
        with pytest.raises(BleakGATTProtocolError):
            await client.write_gatt_char(ppgc.CONFIG_UUID, b"\x10\x00", response=True)
        hr: list[hrc.HeartRateMeasurement] = []
        ppg: list[ppgc.PpgPacket] = []
        accel: list[ppgc.AccelPacket] = []
        await client.start_notify(
            HR_MEASUREMENT, lambda _c, d: hr.append(hrc.parse_measurement(bytes(d)))
        )
        await client.start_notify(
            ppgc.PPG_DATA_UUID, lambda _c, d: ppg.append(ppgc.parse_ppg_packet(bytes(d)))
        )
        await client.start_notify(
            ppgc.ACCEL_DATA_UUID, lambda _c, d: accel.append(ppgc.parse_accel_packet(bytes(d)))
        )
        await household.clock.advance(timedelta(seconds=20))
        await asyncio.sleep(0.2)
    assert len(hr) == 20
    rr = [x for m in hr for x in m.rr_intervals_s]
    assert 15 <= len(rr) <= 35
    assert 40 < 60 / np.mean(rr) < 110
    assert all(m.sensor_contact for m in hr)
    truth = household.truth.records(device_serial="HR-1")
    assert [t.values["heart_rate_bpm"] for t in truth] == [m.heart_rate_bpm for m in hr]
    # Streams: contiguous sequence numbers and sample indices, 20 s of samples each.
    assert [p.sequence for p in ppg] == list(range(len(ppg)))
    samples = sum(len(p.ppg_counts) for p in ppg)
    assert samples == 20 * rate_hz
    for prev, cur in itertools.pairwise(ppg):
        assert ppgc.samples_missing(prev, cur) == 0
    assert sum(len(p.samples) for p in accel) == samples
    z = np.array([s.z_mg for p in accel for s in p.samples])
    assert 500 < np.median(z) < 1200  # gravity on a wrist
