"""The CGM through plain bleak: live notifications, RACP back-fill by time offset, SOCP, CRC."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakGATTProtocolError
from bleak.uuids import normalize_uuid_str

from tests.integration.sim_devices.conftest import Household
from vitalgate.drivers import cgm as cgmc
from vitalgate.drivers import racp
from vitalgate.firmware_sim.devices.cgm import ContinuousGlucoseMonitor
from vitalgate.firmware_sim.devices.common import PatientProfile

CGM_SERVICE = normalize_uuid_str("181f")
MEASUREMENT = normalize_uuid_str("2aa7")
FEATURE = normalize_uuid_str("2aa8")
SESSION_START = normalize_uuid_str("2aaa")
SOCP = normalize_uuid_str("2aac")
RACP = normalize_uuid_str("2a52")


async def test_live_notifications_and_backfill(household: Household) -> None:
    patient = household.patient("dave", PatientProfile.TYPE2_DIABETIC)
    await household.add(
        ContinuousGlucoseMonitor,
        serial="CGM-1",
        seed=31,
        users={1: patient},
        dropouts_per_day=0.0,
    )
    await household.clock.advance(timedelta(hours=6))
    device = await BleakScanner.find_device_by_filter(
        lambda _d, adv: CGM_SERVICE in adv.service_uuids, timeout=5.0
    )
    assert device is not None
    async with BleakClient(device, pair=True) as client:
        feature = cgmc.parse_feature(bytes(await client.read_gatt_char(FEATURE)))
        crc = feature.e2e_crc_supported
        assert crc
        start = cgmc.parse_session_start_time(
            bytes(await client.read_gatt_char(SESSION_START)), e2e_crc=crc
        )
        assert start.start_utc is not None
        got: list[cgmc.CgmMeasurement] = []
        responses: asyncio.Queue[racp.RacpResponse] = asyncio.Queue(maxsize=4)
        await client.start_notify(
            MEASUREMENT, lambda _c, d: got.extend(cgmc.parse_measurements(bytes(d), e2e_crc=crc))
        )
        await client.start_notify(
            RACP, lambda _c, d: responses.put_nowait(racp.parse_response(bytes(d)))
        )
        # Back-fill: everything since the session start (time offset >= 0).
        await client.write_gatt_char(RACP, racp.encode_request(racp.report_from_sequence(0)), True)
        assert (await asyncio.wait_for(responses.get(), 5.0)).is_success
        assert len(got) == 72  # 6 h x 12 per hour
        # Live: the next readings arrive as notifications while connected.
        await household.clock.advance(timedelta(minutes=30))
        await asyncio.sleep(0.2)
        assert len(got) == 78
        truth = household.truth.records(device_serial="CGM-1")
        assert [(m.time_offset_min, m.glucose_mg_dl, m.trend_mg_dl_per_min) for m in got] == [
            (t.sequence_number, t.values["glucose_mg_dl"], t.values.get("trend_mg_dl_per_min"))
            for t in truth
        ]
        assert [m.time_offset_min for m in got] == list(range(5, 395, 5))
        # By user-facing time is not a CGMS RACP filter.
        await client.write_gatt_char(
            RACP,
            racp.encode_request(
                racp.report_records(
                    racp.Operator.GREATER_THAN_OR_EQUAL_TO,
                    racp.FilterType.USER_FACING_TIME,
                    start.start,  # type: ignore[arg-type]
                )
            ),
            True,
        )
        response = await asyncio.wait_for(responses.get(), 5.0)
        assert response.response_code is racp.ResponseCode.OPERAND_NOT_SUPPORTED

        # SOCP stop / start session, with E2E-CRC; a bad CRC is refused with ATT 0x81.
        socp: asyncio.Queue[cgmc.SocpMessage] = asyncio.Queue(maxsize=4)
        await client.start_notify(
            SOCP, lambda _c, d: socp.put_nowait(cgmc.parse_socp_response(bytes(d), e2e_crc=crc))
        )
        stop = cgmc.encode_socp(cgmc.SocpMessage(cgmc.SocpOpcode.STOP_SESSION), e2e_crc=crc)
        await client.write_gatt_char(SOCP, stop, True)
        answer = await asyncio.wait_for(socp.get(), 5.0)
        assert answer.response_code is cgmc.SocpResponseCode.SUCCESS
        with pytest.raises(BleakGATTProtocolError):
            await client.write_gatt_char(SOCP, stop[:-1] + bytes([stop[-1] ^ 0xFF]), True)
        before = len(got)
        await household.clock.advance(timedelta(minutes=30))
        await asyncio.sleep(0.1)
        assert len(got) == before  # stopped: no readings
        start_msg = cgmc.encode_socp(cgmc.SocpMessage(cgmc.SocpOpcode.START_SESSION), e2e_crc=crc)
        await client.write_gatt_char(SOCP, start_msg, True)
        assert (await asyncio.wait_for(socp.get(), 5.0)).response_code is (
            cgmc.SocpResponseCode.SUCCESS
        )
        await household.clock.advance(timedelta(minutes=10))
        await asyncio.sleep(0.1)
        assert [m.time_offset_min for m in got[before:]] == [5, 10]
