"""The glucose meter through plain bleak: bonding, RACP download, incremental download, faults."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError, BleakGATTProtocolError
from bleak.uuids import normalize_uuid_str

from tests.integration.sim_devices.conftest import Household
from vitalgate.drivers import glucose as glc
from vitalgate.drivers import racp
from vitalgate.errors import ParseError
from vitalgate.firmware_sim.devices.common import PatientProfile
from vitalgate.firmware_sim.devices.glucose_meter import GlucoseMeter
from vitalgate.firmware_sim.faults import Fault, FaultKind

GLUCOSE_SERVICE = normalize_uuid_str("1808")
MEASUREMENT = normalize_uuid_str("2a18")
CONTEXT = normalize_uuid_str("2a34")
RACP = normalize_uuid_str("2a52")
CURRENT_TIME = normalize_uuid_str("2a2b")


class Collector:
    """What a gateway does: subscribe, write a RACP request, collect until the response."""

    def __init__(self, client: BleakClient) -> None:
        self.client = client
        self.raw: list[bytes] = []
        self.contexts: list[glc.GlucoseMeasurementContext] = []
        self.responses: asyncio.Queue[racp.RacpResponse] = asyncio.Queue(maxsize=16)

    async def subscribe(self) -> None:
        await self.client.start_notify(MEASUREMENT, lambda _c, d: self.raw.append(bytes(d)))
        await self.client.start_notify(
            CONTEXT, lambda _c, d: self.contexts.append(glc.parse_context(bytes(d)))
        )
        await self.client.start_notify(
            RACP, lambda _c, d: self.responses.put_nowait(racp.parse_response(bytes(d)))
        )

    async def request(self, request: racp.RacpRequest) -> racp.RacpResponse:
        await self.client.write_gatt_char(RACP, racp.encode_request(request), response=True)
        return await asyncio.wait_for(self.responses.get(), 5.0)

    def measurements(self) -> list[glc.GlucoseMeasurement]:
        return [glc.parse_measurement(d) for d in self.raw]


async def _meter(household: Household, faults: tuple[Fault, ...] = ()) -> GlucoseMeter:
    patient = household.patient("carol", PatientProfile.TYPE2_DIABETIC)
    meter: GlucoseMeter = await household.add(
        GlucoseMeter, serial="GM-1", seed=21, users={1: patient}, faults=faults
    )
    await household.clock.advance(timedelta(days=3))
    return meter


async def _find() -> BLEDevice:
    device = await BleakScanner.find_device_by_filter(
        lambda _d, adv: GLUCOSE_SERVICE in adv.service_uuids, timeout=5.0
    )
    assert device is not None
    return device


async def test_download_all_then_only_new_records(household: Household) -> None:
    meter = await _meter(household)
    truth = household.truth.records(device_serial="GM-1")
    assert len(truth) >= 12
    device = await _find()
    async with BleakClient(device, pair=True) as client:
        collector = Collector(client)
        await collector.subscribe()
        count = await collector.request(racp.report_number_of_records())
        assert count.number_of_records == len(truth)
        done = await collector.request(racp.report_all())
        assert done.response_code is racp.ResponseCode.SUCCESS
        got = collector.measurements()
        assert [(m.sequence_number, m.glucose_mg_dl, m.user_facing_time) for m in got] == [
            (t.sequence_number, t.values["glucose_mg_dl"], t.device_time) for t in truth
        ]
        with_context = [m.sequence_number for m in got if m.context_follows]
        assert [c.sequence_number for c in collector.contexts] == with_context
        last = got[-1].sequence_number

    await household.clock.advance(timedelta(days=1))
    new_truth = [
        t
        for t in household.truth.records(device_serial="GM-1")
        if t.sequence_number is not None and t.sequence_number > last
    ]
    assert new_truth
    async with BleakClient(device) as client:  # bonded: no pairing
        collector = Collector(client)
        await collector.subscribe()
        done = await collector.request(racp.report_from_sequence(last + 1))
        assert done.is_success
        assert [m.sequence_number for m in collector.measurements()] == [
            t.sequence_number for t in new_truth
        ]
        nothing = await collector.request(racp.report_from_sequence(meter.next_sequence_number))
        assert nothing.response_code is racp.ResponseCode.NO_RECORDS_FOUND


async def test_racp_operators_filters_delete_and_errors(household: Household) -> None:
    meter = await _meter(household)
    seqs = [r.sequence_number for r in meter.records]
    times = [r.user_facing_time for r in meter.records if r.user_facing_time is not None]
    device = await _find()
    async with BleakClient(device, pair=True) as client:
        c = Collector(client)
        await c.subscribe()

        async def count(
            operator: racp.Operator,
            filter_type: racp.FilterType | None = None,
            *values: racp.FilterValue,
        ) -> int:
            request = racp.report_number_of_records(operator, filter_type, *values)
            response = await c.request(request)
            assert response.number_of_records is not None
            return response.number_of_records

        seq = racp.FilterType.SEQUENCE_NUMBER
        uft = racp.FilterType.USER_FACING_TIME
        assert await count(racp.Operator.LESS_THAN_OR_EQUAL_TO, seq, seqs[3]) == 4
        assert await count(racp.Operator.GREATER_THAN_OR_EQUAL_TO, seq, seqs[3]) == len(seqs) - 3
        assert await count(racp.Operator.WITHIN_RANGE_OF, seq, seqs[2], seqs[5]) == 4
        assert await count(racp.Operator.FIRST_RECORD) == 1
        assert await count(racp.Operator.WITHIN_RANGE_OF, uft, times[1], times[4]) == 4
        c.raw.clear()
        assert (await c.request(racp.report_records(racp.Operator.LAST_RECORD))).is_success
        assert [m.sequence_number for m in c.measurements()] == [seqs[-1]]
        # Errors come back as Response Codes from the codec's request parser.
        await client.write_gatt_char(RACP, bytes([0x01, 0x09]), response=True)
        response = await asyncio.wait_for(c.responses.get(), 5.0)
        assert response.response_code is racp.ResponseCode.INVALID_OPERATOR
        await client.write_gatt_char(RACP, bytes([0x01, 0x03, 0x07, 0x01, 0x00]), response=True)
        response = await asyncio.wait_for(c.responses.get(), 5.0)
        assert response.response_code is racp.ResponseCode.OPERAND_NOT_SUPPORTED
        await client.write_gatt_char(RACP, bytes([0x09, 0x01]), response=True)
        response = await asyncio.wait_for(c.responses.get(), 5.0)
        assert response.response_code is racp.ResponseCode.OPCODE_NOT_SUPPORTED
        # Delete the oldest two, then there are two fewer.
        deleted = await c.request(
            racp.delete_records(racp.Operator.LESS_THAN_OR_EQUAL_TO, seq, seqs[1])
        )
        assert deleted.is_success
        assert await count(racp.Operator.ALL_RECORDS) == len(seqs) - 2


async def test_bonding_required_before_subscribing(household: Household) -> None:
    await _meter(household)
    device = await _find()
    async with BleakClient(device) as client:
        with pytest.raises(BleakGATTProtocolError):
            await client.start_notify(RACP, lambda _c, _d: None)


async def test_fault_disconnect_mid_transfer(household: Household) -> None:
    await _meter(
        household,
        faults=(Fault(kind=FaultKind.DISCONNECT_MID_TRANSFER, device="GM-1", after_records=5),),
    )
    device = await _find()
    lost = asyncio.Event()
    client = BleakClient(device, pair=True, disconnected_callback=lambda _c: lost.set())
    await client.connect()
    c = Collector(client)
    await c.subscribe()
    await client.write_gatt_char(RACP, racp.encode_request(racp.report_all()), response=True)
    await asyncio.wait_for(lost.wait(), 5.0)
    assert len(c.raw) == 5 and c.responses.empty()
    with pytest.raises(BleakError):
        await client.read_gatt_char(CURRENT_TIME)


async def test_fault_corrupt_packet_is_a_parse_error(household: Household) -> None:
    await _meter(
        household, faults=(Fault(kind=FaultKind.CORRUPT_PACKET, device="GM-1", after_records=2),)
    )
    async with BleakClient(await _find(), pair=True) as client:
        c = Collector(client)
        await c.subscribe()
        assert (await c.request(racp.report_all())).is_success
    with pytest.raises(ParseError):
        glc.parse_measurement(c.raw[2])
    assert all(glc.parse_measurement(d) for i, d in enumerate(c.raw) if i != 2)


async def test_fault_duplicate_resend(household: Household) -> None:
    await _meter(
        household, faults=(Fault(kind=FaultKind.DUPLICATE_RESEND, device="GM-1", after_records=1),)
    )
    async with BleakClient(await _find(), pair=True) as client:
        c = Collector(client)
        await c.subscribe()
        assert (await c.request(racp.report_all())).is_success
    seqs = [m.sequence_number for m in c.measurements()]
    assert seqs[1] == seqs[2] and len(seqs) == len(set(seqs)) + 1


async def test_fault_clock_reset_gives_year_2000(household: Household) -> None:
    await _meter(household, faults=(Fault(kind=FaultKind.CLOCK_RESET, device="GM-1", at_s=0.0),))
    async with BleakClient(await _find(), pair=True) as client:
        c = Collector(client)
        await c.subscribe()
        assert (await c.request(racp.report_all())).is_success
    assert {m.base_time.year for m in c.measurements() if m.base_time} == {2000}


async def test_fault_wrong_passkey_fails_pairing(household: Household) -> None:
    await _meter(household, faults=(Fault(kind=FaultKind.WRONG_PASSKEY, device="GM-1"),))
    with pytest.raises(BleakError):
        async with BleakClient(await _find(), pair=True):
            pass


async def test_fault_refused_pairing(household: Household) -> None:
    await _meter(household, faults=(Fault(kind=FaultKind.REFUSE_PAIRING, device="GM-1"),))
    with pytest.raises(BleakError):
        async with BleakClient(await _find(), pair=True):
            pass


async def test_fault_full_memory_overwrites_oldest(household: Household) -> None:
    await _meter(household, faults=(Fault(kind=FaultKind.FULL_MEMORY, device="GM-1", capacity=5),))
    truth = household.truth.records(device_serial="GM-1")
    async with BleakClient(await _find(), pair=True) as client:
        c = Collector(client)
        await c.subscribe()
        assert (await c.request(racp.report_all())).is_success
    assert [m.sequence_number for m in c.measurements()] == [t.sequence_number for t in truth[-5:]]


async def test_control_solution_tests_are_marked(household: Household) -> None:
    patient = household.patient("carol", PatientProfile.TYPE2_DIABETIC)
    await household.add(GlucoseMeter, serial="GM-C", seed=23, users={1: patient})
    await household.clock.advance(timedelta(days=30))
    truth = household.truth.records(device_serial="GM-C")
    controls = [t.sequence_number for t in truth if t.is_control_solution]
    assert 1 <= len(controls) <= 8  # a few a month
    assert controls[0] is not None
    async with BleakClient(await _find(), pair=True) as client:
        c = Collector(client)
        await c.subscribe()
        wanted = racp.report_records(
            racp.Operator.WITHIN_RANGE_OF,
            racp.FilterType.SEQUENCE_NUMBER,
            controls[0],
            controls[0],
        )
        assert (await c.request(wanted)).is_success
    (m,) = c.measurements()
    assert m.is_control_solution and m.sample_type is glc.SampleType.CONTROL_SOLUTION


async def test_abort_and_procedure_already_in_progress(household: Household) -> None:
    patient = household.patient("carol", PatientProfile.TYPE2_DIABETIC)
    meter: GlucoseMeter = await household.add(
        GlucoseMeter, serial="GM-A", seed=24, users={1: patient}, memory_capacity=600
    )
    for _ in range(500):  # a well-used meter
        meter.measure(meal=None, carbohydrate_id=None)
    async with BleakClient(await _find(), pair=True) as client:
        c = Collector(client)
        await c.subscribe()
        report = racp.encode_request(racp.report_all())
        await client.write_gatt_char(RACP, report, response=True)
        await client.write_gatt_char(RACP, racp.encode_request(racp.abort()), response=True)
        response = await asyncio.wait_for(c.responses.get(), 5.0)
        assert response.request_opcode is racp.Opcode.ABORT_OPERATION and response.is_success
        assert 0 < len(c.raw) < 500
        await asyncio.sleep(0.1)
        assert c.responses.empty()  # the aborted report gets no response of its own
        # A second request while a report runs is refused at the ATT level.
        await client.write_gatt_char(RACP, report, response=True)
        with pytest.raises(BleakGATTProtocolError) as info:
            await client.write_gatt_char(
                RACP, racp.encode_request(racp.report_number_of_records()), response=True
            )
        assert info.value.code == 0x80  # Procedure Already In Progress (GLS)
        assert (await asyncio.wait_for(c.responses.get(), 5.0)).is_success
