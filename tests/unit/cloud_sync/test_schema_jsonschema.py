"""The fast hand-written validator and the JSON Schema files agree.

Valid payloads come from hypothesis-built readings of every kind; invalid ones from random
mutations of them (a key deleted or added, a value replaced, a string nudged). For each, the
verdict of ``decode_payload`` must equal the verdict of ``jsonschema`` (draft 2020-12 with format
checking) on the same bytes.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.cloud_sync.test_schema import any_reading, sample_readings
from vitalgate.cloud_sync import schema
from vitalgate.errors import SchemaError
from vitalgate.readings import READING_TYPES, Reading, ReadingKind

_FORMATS = jsonschema.FormatChecker(formats=())


@_FORMATS.checks("date-time", raises=ValueError)  # type: ignore[untyped-decorator]
def _date_time(value: object) -> bool:
    if isinstance(value, str):
        return datetime.fromisoformat(value).tzinfo is not None
    return True


@_FORMATS.checks("vitalgate-local-date-time", raises=ValueError)  # type: ignore[untyped-decorator]
def _local_date_time(value: object) -> bool:
    if isinstance(value, str):
        return datetime.fromisoformat(value).tzinfo is None
    return True


def _validator(name: str) -> jsonschema.Draft202012Validator:
    doc = schema.json_schema(name)
    jsonschema.Draft202012Validator.check_schema(doc)
    return jsonschema.Draft202012Validator(doc, format_checker=_FORMATS)


READINGS = _validator(schema.READINGS_SCHEMA)


def _schema_ok(payload: bytes) -> bool:
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return False
    return bool(READINGS.is_valid(obj))


def _fast_ok(payload: bytes) -> bool:
    try:
        schema.decode_payload(payload)
    except SchemaError:
        return False
    return True


def _batch(readings: list[Reading]) -> dict[str, Any]:
    kind = readings[0].kind
    same = [r for r in readings if r.kind is kind]
    sent_at = datetime.fromisoformat("2026-11-25T03:00:00.000001+00:00")
    result: dict[str, Any] = orjson.loads(schema.encode_batch("gw-1", kind, same, sent_at=sent_at))
    return result


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(readings=st.lists(any_reading, min_size=1, max_size=4))
def test_valid_payloads_pass_both(readings: list[Reading]) -> None:
    payload = orjson.dumps(_batch(readings))
    assert _fast_ok(payload)
    assert _schema_ok(payload), list(READINGS.iter_errors(orjson.loads(payload)))


def test_schema_tables_match_the_reading_classes() -> None:
    doc = schema.json_schema()
    for kind, cls in READING_TYPES.items():
        assert set(doc["$defs"][f"values_{kind}"]["properties"]) == set(cls.value_fields)
        attrs = doc["$defs"][f"attributes_{kind}"]["properties"]
        assert set(attrs) == set(schema.ATTRIBUTE_FIELDS[kind])
    assert doc["properties"]["kind"]["enum"] == [str(k) for k in ReadingKind]


# -- mutations ---------------------------------------------------------------------------------

_INTERESTING: list[object] = [
    None,
    True,
    False,
    0,
    -1,
    1,
    2.0,
    1.5,
    -0.0,
    1e308,
    2**63,
    "",
    "x",
    "deadletter",
    "A" * 65,
    "gw-1\n",
    "p 1",
    "0" * 32,
    "0" * 31 + "G",
    "2026-11-01T07:30:00.000000Z",
    "2026-11-01T07:30:00.000000Z\n",
    "2026-02-30T07:30:00.000000Z",
    "2026-11-01T07:30:00",
    "2026-11-01T07:30:00.123456",
    "2026-11-01T07:30:00.12345Z",
    "2026-11-01 07:30:00",
    "outlier",
    "fasting",
    "blood_pressure",
    "glucose",
    "vitalgate.readings/1",
    "a\x00b",
    [],
    [1],
    ["outlier"],
    ["outlier", "outlier"],
    [0.8, -0.1],
    {},
    {"a": 1},
    {"systolic_mmhg": 1.0},
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.extend(_paths(v, (*prefix, i)))
    return out


def _get(node: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        node = node[p]
    return node


@st.composite
def mutated_payloads(draw: st.DrawFn) -> bytes:
    obj = _batch(draw(st.lists(any_reading, min_size=1, max_size=3)))
    for _ in range(draw(st.integers(1, 2))):
        paths = _paths(obj)
        # Mostly inside the readings (where most rules live), sometimes at the top level.
        zone = draw(st.sampled_from(["reading", "reading", "reading", "top"]))
        inner = [p for p in paths if len(p) > 2 and p[0] == "readings"]
        path = draw(st.sampled_from(inner if zone == "reading" and inner else paths[1:]))
        parent = _get(obj, path[:-1])
        key = path[-1]
        current = parent[key]
        op = draw(st.sampled_from(["delete", "add", "interesting", "random", "nudge", "swap"]))
        if op == "delete":
            del parent[key]
        elif op == "add":
            target = current if isinstance(current, dict | list) else parent
            value = copy.deepcopy(draw(st.sampled_from(_INTERESTING)))
            if isinstance(target, dict):
                name = draw(st.sampled_from(["extra", "values", "kind", "id", "user_id", "meal"]))
                target[name] = value
            else:
                target.append(value)
        elif op == "interesting":
            parent[key] = copy.deepcopy(draw(st.sampled_from(_INTERESTING)))
        elif op == "random":
            parent[key] = draw(json_values)
        elif op == "nudge" and isinstance(current, str):
            i = draw(st.integers(0, len(current)))
            ch = draw(st.characters(codec="utf-8") | st.sampled_from(list("0-:.TZ+ \nA")))
            mode = draw(st.sampled_from(["insert", "replace", "drop"]))
            if mode == "insert" or not current:
                parent[key] = current[:i] + ch + current[i:]
            elif mode == "replace":
                i = min(i, len(current) - 1)
                parent[key] = current[:i] + ch + current[i + 1 :]
            else:
                i = min(i, len(current) - 1)
                parent[key] = current[:i] + current[i + 1 :]
        elif op == "nudge" and isinstance(current, int | float) and not isinstance(current, bool):
            parent[key] = draw(
                st.sampled_from([-current - 1, current + 0.5, float(current), 1e308])
            )
        else:  # swap in the value of another field of the same payload
            parent[key] = copy.deepcopy(_get(obj, draw(st.sampled_from(paths))))
    try:
        return orjson.dumps(obj)
    except TypeError:  # an integer beyond 64 bits: orjson cannot write it, json can
        return json.dumps(obj).encode()


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=mutated_payloads())
def test_mutated_payloads_get_the_same_verdict(payload: bytes) -> None:
    fast = _fast_ok(payload)
    slow = _schema_ok(payload)
    if fast != slow:
        reason = ""
        try:
            schema.decode_payload(payload)
        except SchemaError as exc:
            reason = str(exc)
        errors = [e.message for e in READINGS.iter_errors(orjson.loads(payload))]
        pytest.fail(f"fast={fast} ({reason}) jsonschema={slow} ({errors[:3]}) on {payload!r}")


@pytest.mark.parametrize(
    "case",
    [
        "valid",
        "device_time_seconds",
        "device_time_micro",
        "int_value",
        "float_seq",
        "rr_ints",
        "cgm_missing_offset",
        "meal_null",
    ],
)
def test_hand_picked_edge_cases_agree(case: str) -> None:
    kind = ReadingKind.CGM if case == "cgm_missing_offset" else ReadingKind.HEART_RATE
    if case == "meal_null":
        kind = ReadingKind.GLUCOSE
    obj = _batch(list(sample_readings(2, kind=kind)))
    r = obj["readings"][0]
    if case == "device_time_seconds":
        r["device_time"] = "2026-11-01T08:30:00"
    elif case == "device_time_micro":
        r["device_time"] = "2026-11-01T08:30:00.000001"
    elif case == "int_value":
        r["values"]["heart_rate_bpm"] = 60
    elif case == "float_seq":
        r["sequence_number"] = 7.0
    elif case == "rr_ints":
        r["attributes"]["rr_intervals_s"] = [1, 0.5]
    elif case == "cgm_missing_offset":
        del r["attributes"]["time_offset_min"]
    elif case == "meal_null":
        r["attributes"]["meal"] = None
    payload = orjson.dumps(obj)
    assert _fast_ok(payload) == _schema_ok(payload)
    assert _fast_ok(payload) == (case != "cgm_missing_offset")


# -- the other payload schemas -----------------------------------------------------------------


def test_status_alert_deadletter_payloads_match_their_schemas() -> None:
    at = datetime.fromisoformat("2026-11-25T03:00:00+00:00")
    status = _validator(schema.STATUS_SCHEMA)
    alert = _validator(schema.ALERT_SCHEMA)
    dead = _validator(schema.DEADLETTER_SCHEMA)
    for state in ("online", "offline"):
        status.validate(orjson.loads(schema.encode_status("gw-1", state, at)))
    alert.validate(orjson.loads(schema.encode_alert("gw-1", {"type": "outbox_full"}, at)))
    dead.validate(orjson.loads(schema.encode_deadletter("why", "t", b"\xff", at)))
    assert not status.is_valid({"schema": "vitalgate.status/1", "gateway_id": "gw-1"})
