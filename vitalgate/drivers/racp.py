"""Record Access Control Point (RACP, 0x2A52) codecs, shared by Glucose, CGM and Pulse Oximeter.

References: Glucose Service (GLS) v1.0, "Record Access Control Point" and Glucose Profile (GLP)
v1.0, "Record Access Control Point procedures"; GATT Specification Supplement (GSS) "Record
Access Control Point" (0x2A52); Continuous Glucose Monitoring Service (CGMS) v1.0.1, which uses
the same control point with filter type 0x01 meaning the CGM Time Offset (a u16 like the Glucose
Sequence Number).

Every value is ``opcode u8, operator u8, operand...``:

* requests (written by the collector): Report Stored Records (1), Delete Stored Records (2),
  Abort Operation (3, operator Null, no operand), Report Number of Stored Records (4). With the
  operators "<=" / ">=" the operand is ``filter type u8 + one value``, with "within range"
  ``filter type u8 + min + max`` (inclusive); "all", "first" and "last" take no operand.
  Filter 1 (sequence number / time offset) values are u16; filter 2 (user facing time) values
  are a 7-byte Date Time.
* responses (indicated by the device): Number of Stored Records Response (5, operator Null,
  operand u16) and Response Code (6, operator Null, operand ``request opcode u8 + code u8``).

An incremental download is ``report_from_sequence(last + 1)`` -> ``01 03 01 <u16>``; records
arrive as notifications and the procedure ends with ``06 00 01 01`` (success) or
``06 00 01 06`` (no records found).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from vitalgate.drivers._bytes import ByteReader, ByteWriter, OpenIntEnum
from vitalgate.errors import ParseError

__all__ = [
    "PROFILE",
    "FilterType",
    "FilterValue",
    "Opcode",
    "Operator",
    "RacpRequest",
    "RacpRequestError",
    "RacpResponse",
    "ResponseCode",
    "abort",
    "delete_records",
    "encode_request",
    "encode_response",
    "parse_request",
    "parse_response",
    "report_all",
    "report_from_sequence",
    "report_number_of_records",
    "report_records",
]

PROFILE = "racp"


class Opcode(OpenIntEnum):
    REPORT_STORED_RECORDS = 0x01
    DELETE_STORED_RECORDS = 0x02
    ABORT_OPERATION = 0x03
    REPORT_NUMBER_OF_STORED_RECORDS = 0x04
    NUMBER_OF_STORED_RECORDS_RESPONSE = 0x05
    RESPONSE_CODE = 0x06


class Operator(OpenIntEnum):
    NULL = 0x00
    ALL_RECORDS = 0x01
    LESS_THAN_OR_EQUAL_TO = 0x02
    GREATER_THAN_OR_EQUAL_TO = 0x03
    WITHIN_RANGE_OF = 0x04  # inclusive
    FIRST_RECORD = 0x05  # the oldest record
    LAST_RECORD = 0x06  # the most recent record


class FilterType(OpenIntEnum):
    SEQUENCE_NUMBER = 0x01  # Glucose: sequence number; CGM: time offset (both u16)
    USER_FACING_TIME = 0x02  # Date Time (base time + time offset)

    @classmethod
    def time_offset(cls) -> FilterType:
        """The CGM name of filter type 0x01 (Time Offset, u16 minutes)."""
        return cls.SEQUENCE_NUMBER


class ResponseCode(OpenIntEnum):
    SUCCESS = 0x01
    OPCODE_NOT_SUPPORTED = 0x02
    INVALID_OPERATOR = 0x03
    OPERATOR_NOT_SUPPORTED = 0x04
    INVALID_OPERAND = 0x05
    NO_RECORDS_FOUND = 0x06
    ABORT_UNSUCCESSFUL = 0x07
    PROCEDURE_NOT_COMPLETED = 0x08
    OPERAND_NOT_SUPPORTED = 0x09


FilterValue = int | datetime

_REQUEST_OPCODES = frozenset(
    {
        Opcode.REPORT_STORED_RECORDS,
        Opcode.DELETE_STORED_RECORDS,
        Opcode.ABORT_OPERATION,
        Opcode.REPORT_NUMBER_OF_STORED_RECORDS,
    }
)
_NO_OPERAND = frozenset({Operator.ALL_RECORDS, Operator.FIRST_RECORD, Operator.LAST_RECORD})
_ONE_VALUE = frozenset({Operator.LESS_THAN_OR_EQUAL_TO, Operator.GREATER_THAN_OR_EQUAL_TO})


class RacpRequestError(ParseError):
    """A RACP request a device must refuse; carries the response code to indicate back."""

    def __init__(
        self,
        message: str,
        *,
        request_opcode: int,
        response_code: ResponseCode,
        offset: int,
        payload: bytes,
    ) -> None:
        super().__init__(PROFILE, message, offset=offset, payload=payload)
        self.request_opcode = request_opcode
        self.response_code = response_code

    def response(self) -> RacpResponse:
        """The Response Code indication a device sends for this request."""
        return RacpResponse.for_request(self.request_opcode, self.response_code)


def _check_value(filter_type: FilterType, value: FilterValue) -> None:
    if filter_type == FilterType.SEQUENCE_NUMBER:
        if isinstance(value, datetime) or not 0 <= value <= 0xFFFF:
            raise ValueError(f"sequence number filter needs a u16, got {value!r}")
    elif filter_type == FilterType.USER_FACING_TIME:
        if not isinstance(value, datetime) or value.tzinfo is not None:
            raise ValueError(f"user facing time filter needs a naive datetime, got {value!r}")
    else:
        raise ValueError(f"unsupported filter type {filter_type!r}")


@dataclass(frozen=True, slots=True)
class RacpRequest:
    """A RACP request. ``values`` holds one value for <= / >=, two (min, max) for a range."""

    opcode: Opcode
    operator: Operator
    filter_type: FilterType | None = None
    values: tuple[FilterValue, ...] = ()

    def __post_init__(self) -> None:
        if self.opcode not in _REQUEST_OPCODES:
            raise ValueError(f"{self.opcode!r} is not a request opcode")
        if self.opcode == Opcode.ABORT_OPERATION:
            if self.operator != Operator.NULL or self.filter_type or self.values:
                raise ValueError("Abort Operation takes operator Null and no operand")
            return
        if self.operator in _NO_OPERAND:
            if self.filter_type is not None or self.values:
                raise ValueError(f"{self.operator.name} takes no operand")
            return
        if self.operator in _ONE_VALUE:
            expected = 1
        elif self.operator == Operator.WITHIN_RANGE_OF:
            expected = 2
        else:
            raise ValueError(f"operator {self.operator!r} is not valid for {self.opcode.name}")
        if self.filter_type is None or len(self.values) != expected:
            raise ValueError(f"{self.operator.name} needs a filter type and {expected} value(s)")
        for value in self.values:
            _check_value(self.filter_type, value)
        if expected == 2:
            low, high = self.values
            if (isinstance(low, datetime) and isinstance(high, datetime) and low > high) or (
                isinstance(low, int) and isinstance(high, int) and low > high
            ):
                raise ValueError(f"range minimum {low!r} is above maximum {high!r}")

    def __bytes__(self) -> bytes:
        return encode_request(self)


def encode_request(request: RacpRequest) -> bytes:
    writer = ByteWriter().u8(int(request.opcode)).u8(int(request.operator))
    if request.filter_type is not None:
        writer.u8(int(request.filter_type))
        for value in request.values:
            if isinstance(value, datetime):
                writer.date_time(value)
            else:
                writer.u16(value, "sequence number")
    return writer.getvalue()


def parse_request(data: bytes) -> RacpRequest:
    """Decode a RACP request as a device does.

    Raises :class:`RacpRequestError` (a ParseError) carrying the Response Code the device must
    indicate: opcode not supported, invalid operator, invalid operand or operand not supported.
    """
    payload = bytes(data)
    reader = ByteReader(payload, PROFILE)
    opcode_raw = payload[0] if payload else 0

    def fail(message: str, code: ResponseCode) -> RacpRequestError:
        return RacpRequestError(
            message,
            request_opcode=opcode_raw,
            response_code=code,
            offset=reader.offset,
            payload=payload,
        )

    if not payload:
        raise fail("empty request", ResponseCode.OPCODE_NOT_SUPPORTED)
    opcode = Opcode(reader.u8("opcode"))
    if opcode not in _REQUEST_OPCODES:
        raise fail(f"{opcode!r} is not a request opcode", ResponseCode.OPCODE_NOT_SUPPORTED)
    if not reader.remaining:
        raise fail("missing operator", ResponseCode.INVALID_OPERATOR)
    operator = Operator(reader.u8("operator"))

    if opcode == Opcode.ABORT_OPERATION:
        if operator != Operator.NULL:
            raise fail("Abort Operation needs operator Null", ResponseCode.INVALID_OPERATOR)
        if reader.remaining:
            raise fail("Abort Operation takes no operand", ResponseCode.INVALID_OPERAND)
        return RacpRequest(opcode, operator)

    if operator in _NO_OPERAND:
        if reader.remaining:
            raise fail(f"{operator.name} takes no operand", ResponseCode.INVALID_OPERAND)
        return RacpRequest(opcode, operator)
    if operator in _ONE_VALUE:
        count = 1
    elif operator == Operator.WITHIN_RANGE_OF:
        count = 2
    else:
        raise fail(f"invalid operator {operator!r}", ResponseCode.INVALID_OPERATOR)

    if not reader.remaining:
        raise fail("missing filter type", ResponseCode.INVALID_OPERAND)
    filter_type = FilterType(reader.u8("filter type"))
    if filter_type == FilterType.SEQUENCE_NUMBER:
        size = 2
    elif filter_type == FilterType.USER_FACING_TIME:
        size = 7
    else:
        raise fail(f"filter type {filter_type!r}", ResponseCode.OPERAND_NOT_SUPPORTED)
    if reader.remaining != size * count:
        raise fail(
            f"{operator.name} with {filter_type.name} needs {size * count} operand bytes, "
            f"got {reader.remaining}",
            ResponseCode.INVALID_OPERAND,
        )
    values: list[FilterValue] = []
    for _ in range(count):
        if size == 2:
            values.append(reader.u16("sequence number"))
            continue
        try:
            moment = reader.date_time("user facing time")
        except ParseError as exc:
            raise fail(exc.reason, ResponseCode.INVALID_OPERAND) from exc
        if moment is None:
            raise fail("user facing time is 'not known'", ResponseCode.INVALID_OPERAND)
        values.append(moment)
    try:
        return RacpRequest(opcode, operator, filter_type, tuple(values))
    except ValueError as exc:  # e.g. range minimum above maximum
        raise fail(str(exc), ResponseCode.INVALID_OPERAND) from exc


# --- request helpers ---------------------------------------------------------------------------


def report_records(
    operator: Operator,
    filter_type: FilterType | None = None,
    *values: FilterValue,
) -> RacpRequest:
    """Report Stored Records, e.g. ``report_records(Operator.LAST_RECORD)`` or
    ``report_records(Operator.WITHIN_RANGE_OF, FilterType.SEQUENCE_NUMBER, 10, 20)``."""
    return RacpRequest(Opcode.REPORT_STORED_RECORDS, operator, filter_type, values)


def report_all() -> RacpRequest:
    return RacpRequest(Opcode.REPORT_STORED_RECORDS, Operator.ALL_RECORDS)


def report_from_sequence(sequence_number: int) -> RacpRequest:
    """Report records with sequence number (CGM: time offset) >= ``sequence_number``."""
    return RacpRequest(
        Opcode.REPORT_STORED_RECORDS,
        Operator.GREATER_THAN_OR_EQUAL_TO,
        FilterType.SEQUENCE_NUMBER,
        (sequence_number,),
    )


def report_number_of_records(
    operator: Operator = Operator.ALL_RECORDS,
    filter_type: FilterType | None = None,
    *values: FilterValue,
) -> RacpRequest:
    return RacpRequest(Opcode.REPORT_NUMBER_OF_STORED_RECORDS, operator, filter_type, values)


def delete_records(
    operator: Operator = Operator.ALL_RECORDS,
    filter_type: FilterType | None = None,
    *values: FilterValue,
) -> RacpRequest:
    return RacpRequest(Opcode.DELETE_STORED_RECORDS, operator, filter_type, values)


def abort() -> RacpRequest:
    return RacpRequest(Opcode.ABORT_OPERATION, Operator.NULL)


# --- responses ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RacpResponse:
    """A RACP indication: a number of records, or a response code for a request opcode."""

    opcode: Opcode
    number_of_records: int | None = None
    request_opcode: Opcode | None = None
    response_code: ResponseCode | None = None

    def __post_init__(self) -> None:
        if self.opcode == Opcode.NUMBER_OF_STORED_RECORDS_RESPONSE:
            if self.number_of_records is None or not 0 <= self.number_of_records <= 0xFFFF:
                raise ValueError("Number of Stored Records Response needs a u16 count")
            if self.request_opcode is not None or self.response_code is not None:
                raise ValueError("Number of Stored Records Response carries only the count")
        elif self.opcode == Opcode.RESPONSE_CODE:
            if self.request_opcode is None or self.response_code is None:
                raise ValueError("Response Code needs request_opcode and response_code")
            if not 0 <= self.request_opcode <= 0xFF or not 0 <= self.response_code <= 0xFF:
                raise ValueError("request opcode and response code are u8")
            if self.number_of_records is not None:
                raise ValueError("Response Code carries no record count")
        else:
            raise ValueError(f"{self.opcode!r} is not a response opcode")

    @classmethod
    def count(cls, number_of_records: int) -> RacpResponse:
        return cls(Opcode.NUMBER_OF_STORED_RECORDS_RESPONSE, number_of_records=number_of_records)

    @classmethod
    def for_request(cls, request_opcode: int, response_code: ResponseCode) -> RacpResponse:
        return cls(
            Opcode.RESPONSE_CODE,
            request_opcode=Opcode(request_opcode),
            response_code=response_code,
        )

    @property
    def is_success(self) -> bool:
        return self.response_code == ResponseCode.SUCCESS

    def __bytes__(self) -> bytes:
        return encode_response(self)


def encode_response(response: RacpResponse) -> bytes:
    writer = ByteWriter().u8(int(response.opcode)).u8(int(Operator.NULL))
    if response.number_of_records is not None:
        writer.u16(response.number_of_records, "number of records")
    else:
        assert response.request_opcode is not None and response.response_code is not None
        writer.u8(int(response.request_opcode)).u8(int(response.response_code))
    return writer.getvalue()


def parse_response(data: bytes) -> RacpResponse:
    """Decode a RACP indication. Raises ParseError for anything but a well-formed response."""
    reader = ByteReader(data, PROFILE)
    opcode = Opcode(reader.u8("opcode"))
    operator_offset = reader.offset
    operator = Operator(reader.u8("operator"))
    if opcode not in (Opcode.NUMBER_OF_STORED_RECORDS_RESPONSE, Opcode.RESPONSE_CODE):
        raise reader.error(f"{opcode!r} is not a response opcode", offset=0)
    if operator != Operator.NULL:
        raise reader.error(
            f"response operator must be Null, got {operator!r}", offset=operator_offset
        )
    if opcode == Opcode.NUMBER_OF_STORED_RECORDS_RESPONSE:
        count = reader.u16("number of records")
        reader.expect_end()
        return RacpResponse.count(count)
    request_opcode = Opcode(reader.u8("request opcode"))
    code = ResponseCode(reader.u8("response code"))
    reader.expect_end()
    return RacpResponse(Opcode.RESPONSE_CODE, request_opcode=request_opcode, response_code=code)
