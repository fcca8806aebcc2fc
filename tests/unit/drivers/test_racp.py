"""Record Access Control Point (0x2A52): requests, responses and device-side request checks.

Vectors from GLS v1.0 / GLP v1.0 "Record Access Control Point" and the GSS definition:
opcode u8, operator u8, operand (filter type u8 + u16 sequence number or 7-byte Date Time).
"""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st

from vitalgate.drivers import racp
from vitalgate.drivers.racp import (
    FilterType,
    Opcode,
    Operator,
    RacpRequest,
    RacpRequestError,
    RacpResponse,
    ResponseCode,
)
from vitalgate.errors import ParseError

T1 = datetime(2026, 11, 25, 7, 30, 0)
T1_HEX = "ea070b19071e00"
T2 = datetime(2026, 11, 26, 8, 0, 0)
T2_HEX = "ea070b1a080000"

REQUESTS = [
    pytest.param(racp.report_all(), "0101", id="GLP RACP report stored records: all (01 01)"),
    pytest.param(
        racp.report_from_sequence(0x1234),
        "01 03 01 3412",
        id="GLP RACP report >= sequence 0x1234 (incremental download)",
    ),
    pytest.param(
        racp.report_records(Operator.LESS_THAN_OR_EQUAL_TO, FilterType.SEQUENCE_NUMBER, 10),
        "01 02 01 0a00",
        id="GLP RACP report <= sequence 10",
    ),
    pytest.param(
        racp.report_records(Operator.WITHIN_RANGE_OF, FilterType.SEQUENCE_NUMBER, 10, 20),
        "01 04 01 0a00 1400",
        id="GLP RACP report within sequence 10..20",
    ),
    pytest.param(
        racp.report_records(Operator.GREATER_THAN_OR_EQUAL_TO, FilterType.USER_FACING_TIME, T1),
        f"01 03 02 {T1_HEX}",
        id="GLP RACP report >= user facing time",
    ),
    pytest.param(
        racp.report_records(Operator.LESS_THAN_OR_EQUAL_TO, FilterType.USER_FACING_TIME, T1),
        f"01 02 02 {T1_HEX}",
        id="GLP RACP report <= user facing time",
    ),
    pytest.param(
        racp.report_records(Operator.WITHIN_RANGE_OF, FilterType.USER_FACING_TIME, T1, T2),
        f"01 04 02 {T1_HEX} {T2_HEX}",
        id="GLP RACP report within user facing time range",
    ),
    pytest.param(
        racp.report_records(Operator.FIRST_RECORD), "01 05", id="GLP RACP report first record"
    ),
    pytest.param(
        racp.report_records(Operator.LAST_RECORD), "01 06", id="GLP RACP report last record"
    ),
    pytest.param(racp.delete_records(), "02 01", id="GLP RACP delete all"),
    pytest.param(
        racp.delete_records(Operator.WITHIN_RANGE_OF, FilterType.SEQUENCE_NUMBER, 1, 5),
        "02 04 01 0100 0500",
        id="GLP RACP delete within sequence range",
    ),
    pytest.param(racp.abort(), "03 00", id="GLP RACP abort operation (operator null)"),
    pytest.param(
        racp.report_number_of_records(), "04 01", id="GLP RACP report number of records: all"
    ),
    pytest.param(
        racp.report_number_of_records(
            Operator.GREATER_THAN_OR_EQUAL_TO, FilterType.SEQUENCE_NUMBER, 7
        ),
        "04 03 01 0700",
        id="GLP RACP report number of records >= sequence 7",
    ),
]


@pytest.mark.parametrize(("request_", "hex_data"), REQUESTS)
def test_request_vectors(request_: RacpRequest, hex_data: str) -> None:
    data = bytes.fromhex(hex_data)
    assert racp.encode_request(request_) == data
    assert bytes(request_) == data
    assert racp.parse_request(data) == request_


RESPONSES = [
    pytest.param("05 00 2a00", RacpResponse.count(42), id="GLP RACP number of records = 42"),
    pytest.param("05 00 0000", RacpResponse.count(0), id="GLP RACP number of records = 0"),
    pytest.param("05 00 ffff", RacpResponse.count(65535), id="GLP RACP number of records max"),
    *[
        pytest.param(
            f"06 00 01 {code:02x}",
            RacpResponse.for_request(Opcode.REPORT_STORED_RECORDS, code),
            id=f"GLP RACP response code {int(code)} {code.name}",
        )
        for code in ResponseCode
    ],
    pytest.param(
        "06 00 03 07",
        RacpResponse.for_request(Opcode.ABORT_OPERATION, ResponseCode.ABORT_UNSUCCESSFUL),
        id="GLP RACP abort unsuccessful",
    ),
    pytest.param(
        "06 00 02 01",
        RacpResponse.for_request(Opcode.DELETE_STORED_RECORDS, ResponseCode.SUCCESS),
        id="GLP RACP delete success",
    ),
]


@pytest.mark.parametrize(("hex_data", "expected"), RESPONSES)
def test_response_vectors(hex_data: str, expected: RacpResponse) -> None:
    data = bytes.fromhex(hex_data)
    assert racp.parse_response(data) == expected
    assert racp.encode_response(expected) == data


def test_incremental_download_end_markers() -> None:
    # Notes: the procedure ends with 06 00 01 01 (success) or 06 00 01 06 (no records found).
    done = racp.parse_response(bytes.fromhex("06000101"))
    assert done.is_success and done.request_opcode is Opcode.REPORT_STORED_RECORDS
    empty = racp.parse_response(bytes.fromhex("06000106"))
    assert not empty.is_success and empty.response_code is ResponseCode.NO_RECORDS_FOUND


def test_every_code_is_defined() -> None:
    assert [int(c) for c in Opcode] == [1, 2, 3, 4, 5, 6]
    assert [int(o) for o in Operator] == [0, 1, 2, 3, 4, 5, 6]
    assert [int(t) for t in FilterType] == [1, 2]
    assert [int(r) for r in ResponseCode] == list(range(1, 10))
    assert FilterType.time_offset() is FilterType.SEQUENCE_NUMBER


def test_unknown_response_code_is_kept() -> None:
    response = racp.parse_response(bytes.fromhex("06 00 01 0a"))
    assert response.response_code == 0x0A
    assert racp.encode_response(response) == bytes.fromhex("0600010a")


@pytest.mark.parametrize(
    ("hex_data", "code"),
    [
        ("", ResponseCode.OPCODE_NOT_SUPPORTED),
        ("07 01", ResponseCode.OPCODE_NOT_SUPPORTED),
        ("05 00 0100", ResponseCode.OPCODE_NOT_SUPPORTED),  # a response opcode is no request
        ("00 01", ResponseCode.OPCODE_NOT_SUPPORTED),
        ("01", ResponseCode.INVALID_OPERATOR),
        ("01 00", ResponseCode.INVALID_OPERATOR),  # null operator for report
        ("01 07", ResponseCode.INVALID_OPERATOR),
        ("03 01", ResponseCode.INVALID_OPERATOR),  # abort needs null
        ("03 00 00", ResponseCode.INVALID_OPERAND),  # abort takes no operand
        ("01 01 00", ResponseCode.INVALID_OPERAND),  # "all" takes no operand
        ("01 03", ResponseCode.INVALID_OPERAND),  # missing filter type
        ("01 03 03 0100", ResponseCode.OPERAND_NOT_SUPPORTED),  # unknown filter type
        ("01 03 00 0100", ResponseCode.OPERAND_NOT_SUPPORTED),  # filter type 0 reserved
        ("01 03 01 01", ResponseCode.INVALID_OPERAND),  # short sequence number
        ("01 03 01 010000", ResponseCode.INVALID_OPERAND),  # long sequence number
        ("01 04 01 0a00", ResponseCode.INVALID_OPERAND),  # range needs two values
        ("01 04 01 1400 0a00", ResponseCode.INVALID_OPERAND),  # min above max
        ("01 03 02 ea070d19071e00", ResponseCode.INVALID_OPERAND),  # month 13
        ("01 03 02 00000000000000", ResponseCode.INVALID_OPERAND),  # time not known
        (f"01 04 02 {T2_HEX} {T1_HEX}", ResponseCode.INVALID_OPERAND),  # time range reversed
    ],
    ids=[
        "empty",
        "opcode-7",
        "opcode-5-is-a-response",
        "opcode-0-reserved",
        "missing-operator",
        "null-operator",
        "operator-7",
        "abort-non-null",
        "abort-operand",
        "all-with-operand",
        "missing-filter",
        "filter-3",
        "filter-0",
        "short-seq",
        "long-seq",
        "range-one-value",
        "range-reversed",
        "bad-date",
        "unknown-date",
        "time-range-reversed",
    ],
)
def test_parse_request_refusals(hex_data: str, code: ResponseCode) -> None:
    data = bytes.fromhex(hex_data)
    with pytest.raises(RacpRequestError) as info:
        racp.parse_request(data)
    assert info.value.response_code is code
    assert isinstance(info.value, ParseError)
    response = info.value.response()
    assert response.response_code is code
    assert response.request_opcode == (data[0] if data else 0)


@pytest.mark.parametrize(
    "hex_data",
    [
        "",
        "06",
        "06 00",
        "06 00 01",
        "06 00 01 01 00",
        "05 00 01",
        "05 00 0100 00",
        "06 01 0101",
        "01 01",
        "04 01",
    ],
    ids=[
        "empty",
        "opcode-only",
        "no-operand",
        "response-code-short",
        "response-code-long",
        "count-short",
        "count-long",
        "non-null-operator",
        "request-opcode-1",
        "request-opcode-4",
    ],
)
def test_parse_response_rejects(hex_data: str) -> None:
    with pytest.raises(ParseError):
        racp.parse_response(bytes.fromhex(hex_data))


def test_request_construction_validates() -> None:
    with pytest.raises(ValueError):
        RacpRequest(Opcode.RESPONSE_CODE, Operator.NULL)
    with pytest.raises(ValueError):
        racp.report_records(Operator.GREATER_THAN_OR_EQUAL_TO)
    with pytest.raises(ValueError):
        racp.report_from_sequence(0x10000)
    with pytest.raises(ValueError):
        racp.report_records(Operator.ALL_RECORDS, FilterType.SEQUENCE_NUMBER, 1)
    with pytest.raises(ValueError):
        racp.report_records(
            Operator.GREATER_THAN_OR_EQUAL_TO, FilterType.USER_FACING_TIME, T1.astimezone()
        )
    with pytest.raises(ValueError):
        RacpResponse(Opcode.RESPONSE_CODE, number_of_records=1)


# --- properties --------------------------------------------------------------------------------

device_times = st.datetimes(
    min_value=datetime(1582, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)
).map(lambda d: d.replace(microsecond=0))


@st.composite
def requests(draw: st.DrawFn) -> RacpRequest:
    opcode = draw(
        st.sampled_from(
            [
                Opcode.REPORT_STORED_RECORDS,
                Opcode.DELETE_STORED_RECORDS,
                Opcode.ABORT_OPERATION,
                Opcode.REPORT_NUMBER_OF_STORED_RECORDS,
            ]
        )
    )
    if opcode is Opcode.ABORT_OPERATION:
        return RacpRequest(opcode, Operator.NULL)
    operator = draw(st.sampled_from([o for o in Operator if o is not Operator.NULL]))
    if operator in (Operator.ALL_RECORDS, Operator.FIRST_RECORD, Operator.LAST_RECORD):
        return RacpRequest(opcode, operator)
    filter_type = draw(st.sampled_from(list(FilterType)))
    count = 2 if operator is Operator.WITHIN_RANGE_OF else 1
    values: list[int] | list[datetime]
    if filter_type is FilterType.SEQUENCE_NUMBER:
        values = sorted(draw(st.integers(0, 0xFFFF)) for _ in range(count))
    else:
        values = sorted(draw(device_times) for _ in range(count))
    return RacpRequest(opcode, operator, filter_type, tuple(values))


@given(requests())
@settings(max_examples=400)
def test_request_round_trip(request_: RacpRequest) -> None:
    assert racp.parse_request(racp.encode_request(request_)) == request_


responses = st.one_of(
    st.integers(0, 0xFFFF).map(RacpResponse.count),
    st.builds(
        RacpResponse.for_request,
        st.integers(0, 0xFF),
        st.integers(0, 0xFF).map(ResponseCode),
    ),
)


@given(responses)
@settings(max_examples=300)
def test_response_round_trip(response: RacpResponse) -> None:
    assert racp.parse_response(racp.encode_response(response)) == response


@seed(2052)
@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=20))
def test_fuzz_only_parse_error(data: bytes) -> None:
    for parse in (racp.parse_request, racp.parse_response):
        try:
            parse(data)
        except ParseError:
            pass
