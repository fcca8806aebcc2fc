"""schema.decode_batch_lines (the ingest's one-pass validate + format path) against the reference.

The reference is ``formatter.body(schema.decode_batch(topic, payload))``: for every payload the
fast path must accept and reject exactly the same (same SchemaError message, same
LineProtocolError for a value line protocol cannot represent) and produce the same bytes. The
formatters are shared across examples so that their caches (tag sets, field texts, flag masks)
carry state from one payload into the next, as they do in a running worker.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.cloud_sync.test_schema import any_reading, sample_readings
from tests.unit.cloud_sync.test_schema_jsonschema import _batch, mutated_payloads
from vitalgate.cloud_sync import schema
from vitalgate.cloud_sync.stores.base import datetime_to_ns, default_flag_codec
from vitalgate.cloud_sync.stores.lineprotocol import LineProtocolError, LineProtocolFormatter
from vitalgate.errors import SchemaError
from vitalgate.readings import Reading, ReadingKind

Outcome = tuple[str, Any, int]

FORMATTERS = {
    with_id: LineProtocolFormatter(default_flag_codec().mask, include_reading_id=with_id)
    for with_id in (False, True)
}


def _reference(
    topic: str, payload: bytes, fmt: LineProtocolFormatter, client: str | None
) -> Outcome:
    try:
        readings = schema.decode_batch(topic, payload, client_gateway_id=client)
    except SchemaError as exc:
        return ("schema", str(exc), 0)
    try:
        return ("ok", fmt.body(readings), len(readings))
    except LineProtocolError as exc:
        return ("line", str(exc), 0)


def _fast(topic: str, payload: bytes, fmt: LineProtocolFormatter, client: str | None) -> Outcome:
    try:
        body, count = schema.decode_batch_lines(topic, payload, fmt, client_gateway_id=client)
    except SchemaError as exc:
        return ("schema", str(exc), 0)
    except LineProtocolError as exc:
        return ("line", str(exc), 0)
    return ("ok", body, count)


def _topic_of(payload: bytes) -> str:
    try:
        obj = orjson.loads(payload)
        return schema.topic_readings(obj["gateway_id"], obj["kind"])
    except (orjson.JSONDecodeError, SchemaError, KeyError, TypeError):
        return schema.topic_readings("gw-1", ReadingKind.BLOOD_PRESSURE)


def _assert_same(topic: str, payload: bytes, client: str | None = None) -> Outcome:
    outcome = None
    for fmt in FORMATTERS.values():
        ref = _reference(topic, payload, fmt, client)
        fast = _fast(topic, payload, fmt, client)
        assert fast == ref, f"on {topic!r} {payload!r}"
        outcome = fast
    assert outcome is not None
    return outcome


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(readings=st.lists(any_reading, min_size=1, max_size=5))
def test_valid_payloads_give_the_reference_lines(readings: list[Reading]) -> None:
    payload = orjson.dumps(_batch(readings))
    kind, status, _ = _assert_same(_topic_of(payload), payload)
    # Only lines line protocol cannot carry (a device id ending in a backslash) may fail.
    assert kind in ("ok", "line"), status


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=mutated_payloads(), topic_case=st.sampled_from(["own", "other_gw", "client"]))
def test_mutated_payloads_get_the_reference_verdict(payload: bytes, topic_case: str) -> None:
    _assert_same(*topic_and_client(payload, topic_case))


def topic_and_client(payload: bytes, topic_case: str) -> tuple[str, bytes, str | None]:
    """(topic, payload, client gateway): the payload's own topic, another gateway's topic, or
    its own with the authenticated client named."""
    topic = _topic_of(payload)
    client = None
    if topic_case == "other_gw":
        topic = topic.replace("/v1/", "/v1/x", 1)
    elif topic_case == "client":
        client = "gw-1"
    return topic, payload, client


def _bp_payload(**changes: Any) -> tuple[str, bytes, dict[str, Any]]:
    obj = _batch(list(sample_readings(3, kind=ReadingKind.BLOOD_PRESSURE)))
    for key, value in changes.items():
        obj["readings"][1][key] = value
    return schema.topic_readings("gw-1", ReadingKind.BLOOD_PRESSURE), orjson.dumps(obj), obj


@pytest.mark.parametrize(
    ("changes", "verdict"),
    [
        ({}, "ok"),
        ({"values": {"systolic_mmhg": 120, "diastolic_mmhg": 80.5}}, "ok"),  # ints -> floats
        ({"values": {"systolic_mmhg": 0.0, "diastolic_mmhg": -0.0}}, "ok"),
        ({"values": {"systolic_mmhg": -0.0, "diastolic_mmhg": 0.0}}, "ok"),
        ({"values": {"systolic_mmhg": True, "diastolic_mmhg": 80.0}}, "schema"),
        ({"values": {"systolic_mmhg": 1e308, "diastolic_mmhg": 5e-324}}, "ok"),
        ({"values": {}}, "ok"),
        ({"values": {"flags": 1.0}}, "schema"),
        ({"device_time": "2026-11-01T08:30:00.000001"}, "ok"),
        ({"device_time": "2026-11-01T08:30:00+01:00"}, "schema"),
        ({"device_time": "2026-02-30T08:30:00"}, "schema"),
        ({"sequence_number": 7.0}, "ok"),
        ({"sequence_number": True}, "schema"),
        ({"sequence_number": -1}, "schema"),
        ({"flags": ["irregular_pulse", "irregular_pulse"]}, "schema"),
        ({"flags": ["irregular_pulse", "body_movement"]}, "ok"),
        ({"flags": [["irregular_pulse"]]}, "schema"),
        ({"attributes": {"user_id": True}}, "schema"),
        ({"attributes": {"user_id": 2.0}}, "ok"),
        ({"attributes": {}}, "ok"),
        ({"reading_id": "A" * 32}, "schema"),
        ({"reading_id": "0" * 32}, "ok"),
        ({"reading_id": "0" * 31 + "g"}, "schema"),
        ({"measured_at": "2024-02-29T23:59:59.999999Z"}, "ok"),
        ({"measured_at": "2023-02-29T23:59:59.999999Z"}, "schema"),
        ({"measured_at": "2026-11-24T24:00:00.000000Z"}, "schema"),
        ({"measured_at": "2026-11-24T23:59:60.000000Z"}, "schema"),
        ({"measured_at": "2026-11-24T07:30:00.000000+00:00"}, "schema"),
        ({"received_at": "2026-13-24T07:30:00.000000Z"}, "schema"),
        ({"patient_id": "p 1"}, "schema"),
        ({"device": {"id": "x"}}, "schema"),
    ],
    ids=repr,
)
def test_hand_picked_cases(changes: dict[str, Any], verdict: str) -> None:
    topic, payload, _ = _bp_payload(**changes)
    assert _assert_same(topic, payload)[0] == verdict


def test_unrepresentable_device_id_raises_line_protocol_error() -> None:
    topic, _, obj = _bp_payload()
    dev = obj["readings"][1]["device"]
    dev["serial"] = "ends\\"
    dev["id"] = f"{dev['manufacturer']}|{dev['model']}|{dev['serial']}"
    kind, message, _ = _assert_same(topic, orjson.dumps(obj))
    assert kind == "line" and "backslash" in message


def test_a_second_device_and_patient_in_one_message() -> None:
    topic, _, obj = _bp_payload()
    other = copy.deepcopy(obj["readings"][2])
    other["device"]["serial"] = "other"
    other["device"]["id"] = "other-id,with=escapes and spaces"
    other["patient_id"] = "p-2"
    obj["readings"].append(other)
    obj["readings"].append(copy.deepcopy(obj["readings"][0]))
    kind, body, count = _assert_same(topic, orjson.dumps(obj))
    assert kind == "ok" and count == 5
    assert b"device=other-id\\,with\\=escapes\\ and\\ spaces,gateway=gw-1,patient=p-2 " in body


@pytest.mark.parametrize(
    "text",
    [
        "1970-01-01T00:00:00.000000Z",
        "1969-12-31T23:59:59.999999Z",
        "1677-09-22T00:00:00.000000Z",
        "2262-04-10T23:59:59.999999Z",
        "2000-02-29T12:00:00.000001Z",
        "2024-02-29T23:59:59.999999Z",
        "2024-03-01T00:00:00.000000Z",
        "2100-03-01T00:00:00.000000Z",
        "2038-01-19T03:14:08.000000Z",
        "2026-12-31T23:59:59.999999Z",
    ],
)
def test_timestamps_at_edge_dates(text: str) -> None:
    topic, payload, obj = _bp_payload(measured_at=text)
    kind, body, _ = _assert_same(topic, payload)
    assert kind == "ok"
    line = body.split(b"\n")[1]
    expected = datetime_to_ns(datetime.fromisoformat(text))
    assert line.rsplit(b" ", 1)[1] == str(expected).encode()
    assert obj["readings"][1]["measured_at"] == text


@settings(max_examples=300, deadline=None)
@given(
    at=st.datetimes(
        min_value=datetime(1677, 9, 22),
        max_value=datetime(2262, 4, 10),
        timezones=st.just(UTC),
    )
)
def test_timestamps_match_datetime_to_ns(at: datetime) -> None:
    text = schema.format_utc(at)
    topic, payload, _ = _bp_payload(measured_at=text)
    kind, body, _ = _assert_same(topic, payload)
    assert kind == "ok"
    assert body.split(b"\n")[1].rsplit(b" ", 1)[1] == str(datetime_to_ns(at)).encode()


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00.000000Z", "9999-12-31T23:59:59.999999Z"])
def test_times_beyond_epoch_nanoseconds_are_rejected_by_both_paths(text: str) -> None:
    """A store keeps signed 64-bit epoch ns: such a reading would poison the ingest."""
    topic, payload, _ = _bp_payload(measured_at=text)
    kind, _, _ = _assert_same(topic, payload)
    assert kind == "schema"


def test_field_text_cache_keeps_zero_signs_and_ints_apart() -> None:
    fmt = LineProtocolFormatter(default_flag_codec().mask, include_reading_id=False)
    topic = schema.topic_readings("gw-1", ReadingKind.BLOOD_PRESSURE)
    seen = []
    for values in (
        {"systolic_mmhg": 120.0, "diastolic_mmhg": 0.0},
        {"systolic_mmhg": 120, "diastolic_mmhg": -0.0},
        {"systolic_mmhg": 120.5, "diastolic_mmhg": 0.0},
    ):
        _, payload, _ = _bp_payload(values=values)
        body, _ = schema.decode_batch_lines(topic, payload, fmt)
        assert body == fmt.body(schema.decode_batch(topic, payload))
        seen.append(body.split(b"\n")[1].split(b" ")[1])
    assert seen == [
        b"systolic_mmhg=120.0,diastolic_mmhg=0.0,flags=0i",
        b"systolic_mmhg=120.0,diastolic_mmhg=-0.0,flags=0i",
        b"systolic_mmhg=120.5,diastolic_mmhg=0.0,flags=0i",
    ]


def test_every_kind_takes_the_orjson_path() -> None:
    """Typical messages of each kind never fall back from the orjson path to the reference."""
    for kind in ReadingKind:
        fmt = LineProtocolFormatter(default_flag_codec().mask, include_reading_id=True)
        payload = schema.encode_batch("gw-1", kind, sample_readings(20, kind=kind))
        topic = schema.topic_readings("gw-1", kind)
        body, count = schema._fast_lines(topic, payload, fmt, None)
        assert count == 20
        assert body == fmt.body(schema.decode_batch(topic, payload))


def test_received_before_measured_and_a_day_apart_is_fine() -> None:
    at = datetime(2026, 11, 24, 7, 30, tzinfo=UTC)
    topic, payload, _ = _bp_payload(
        measured_at=schema.format_utc(at), received_at=schema.format_utc(at - timedelta(days=1))
    )
    assert _assert_same(topic, payload)[0] == "ok"


# The typed path (schema._typed_lines) checks each distinct value once: these cases mix,
# across the readings of one message, values that are equal in Python but not in the schema
# (1 == 1.0 == True, 0.0 == -0.0), key orders, devices and shapes.

_MIXED_COLUMNS = {
    "attributes": [
        {"user_id": None},
        {"user_id": 1},
        {"user_id": 1.0},
        {"user_id": True},
        {"user_id": 0},
        {"user_id": False},
        {"user_id": -1},
        {"user_id": "1"},
        {},
    ],
    "values": [
        {"systolic_mmhg": 120.0, "diastolic_mmhg": 80.0},
        {"diastolic_mmhg": 80.0, "systolic_mmhg": 120.0},
        {"systolic_mmhg": 120, "diastolic_mmhg": 80.0},
        {"systolic_mmhg": True, "diastolic_mmhg": 80.0},
        {"systolic_mmhg": 0.0, "diastolic_mmhg": -0.0},
        {"systolic_mmhg": -0.0, "diastolic_mmhg": 0.0},
        {"systolic_mmhg": 1e308, "diastolic_mmhg": 5e-324},
        {"systolic_mmhg": 120.0},
        {},
    ],
    "flags": [[], ["irregular_pulse"], ["body_movement", "irregular_pulse"], ["x"], "irregular"],
    "sequence_number": [None, 0, 5, 5.0, -1, True, 2**63, "5"],
    "device_time": [
        None,
        "2026-11-01T08:30:00",
        "2026-11-01T08:30:00.000001",
        "2026-02-30T08:30:00",
    ],
    "received_at": [
        "2026-11-24T07:30:00.000000Z",
        "2026-11-24T07:30:01.000000Z",
        "2026-11-24T07:30:00Z",
    ],
    "measured_at": [
        "2026-11-24T07:30:00.000000Z",
        "1970-01-01T00:00:00.000000Z",
        "2026-11-24T07:30:00.00000Z",
        "2026-11-24T07:30:00.0000000Z",
        "2026-11-24T07:30:00.000000+00:00",
        "2026-11-24 07:30:00.000000Z",
    ],
    "patient_id": ["p-1", "p-2", "p 3"],
    "reading_id": ["0" * 32, "f" * 32, "F" * 32, "0" * 31, "0" * 16 + "\n" + "0" * 15],
}


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), n=st.integers(min_value=2, max_value=6))
def test_mixed_columns_get_the_reference_verdict(data: st.DataObject, n: int) -> None:
    _assert_same(*mixed_columns_message(data, n))


def mixed_columns_message(data: st.DataObject, n: int) -> tuple[str, bytes]:
    """A blood-pressure message of ``n`` readings with 1-3 columns drawn from _MIXED_COLUMNS
    (each reading its own draw) and, at times, a second device."""
    obj = _batch(list(sample_readings(n, kind=ReadingKind.BLOOD_PRESSURE)))
    mixed = data.draw(st.sets(st.sampled_from(sorted(_MIXED_COLUMNS)), min_size=1, max_size=3))
    for key in mixed:
        for r in obj["readings"]:
            r[key] = copy.deepcopy(data.draw(st.sampled_from(_MIXED_COLUMNS[key])))
    if data.draw(st.booleans()):
        obj["readings"][-1]["device"] = dict(obj["readings"][0]["device"], serial="other")
    return schema.topic_readings("gw-1", ReadingKind.BLOOD_PRESSURE), orjson.dumps(obj)


@pytest.mark.parametrize(
    ("column", "values", "verdict"),
    [
        ("attributes", [{"user_id": 1}, {"user_id": True}], "schema"),
        ("attributes", [{"user_id": True}, {"user_id": 1}], "schema"),
        ("attributes", [{"user_id": 1}, {"user_id": 1.0}], "ok"),
        ("values", [{"systolic_mmhg": 0.0}, {"systolic_mmhg": -0.0}], "ok"),
        (
            "values",
            [
                {"systolic_mmhg": 1.0, "diastolic_mmhg": 2.0},
                {"diastolic_mmhg": 2.0, "systolic_mmhg": 1.0},
            ],
            "ok",
        ),
        ("measured_at", ["2026-11-24T07:30:00.0000000Z", "2026-11-24T07:30:00.00000Z"], "schema"),
        ("reading_id", ["0" * 31 + "\n", "0" * 32], "schema"),
        ("sequence_number", [None, 3], "ok"),
        ("sequence_number", [3, -3], "schema"),
        ("flags", [[], ["irregular_pulse", "irregular_pulse"]], "schema"),
    ],
    ids=repr,
)
def test_distinct_values_are_compared_by_type(column: str, values: list[Any], verdict: str) -> None:
    obj = _batch(list(sample_readings(len(values), kind=ReadingKind.BLOOD_PRESSURE)))
    for r, value in zip(obj["readings"], values, strict=True):
        r[column] = value
    topic = schema.topic_readings("gw-1", ReadingKind.BLOOD_PRESSURE)
    assert _assert_same(topic, orjson.dumps(obj))[0] == verdict


@pytest.mark.parametrize("text", ["1e400", "-1e400", "1.7976931348623159e308", "NaN", "Infinity"])
def test_orjson_refuses_non_finite_numbers(text: str) -> None:
    """The orjson path relies on it: every float orjson returns is finite."""
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(f"[{text}]")
