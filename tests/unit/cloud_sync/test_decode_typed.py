"""schema._typed_lines (msgspec decoding of a readings message) against the reference.

decode_batch_lines tries the typed path first and takes the orjson paths whenever it raises, so
the property that matters is: whatever the typed path returns equals
``formatter.body(decode_batch(...))``; and it must not raise for a typical message (or the
ingest would pay for two decodes). test_decode_lines.py checks decode_batch_lines as a whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.cloud_sync.test_decode_lines import (
    FORMATTERS,
    _topic_of,
    mixed_columns_message,
    topic_and_client,
)
from tests.unit.cloud_sync.test_schema import any_reading, sample_readings
from tests.unit.cloud_sync.test_schema_jsonschema import _batch, mutated_payloads
from vitalgate.cloud_sync import schema
from vitalgate.cloud_sync.stores.base import default_flag_codec
from vitalgate.cloud_sync.stores.lineprotocol import LineProtocolError, LineProtocolFormatter
from vitalgate.errors import SchemaError
from vitalgate.readings import Reading, ReadingKind

Payload = bytes | bytearray | memoryview | str


def _reference(topic: str, payload: Payload, fmt: LineProtocolFormatter, client: str | None) -> Any:
    try:
        readings = schema.decode_batch(topic, payload, client_gateway_id=client)
    except SchemaError as exc:
        return ("schema", str(exc))
    try:
        return ("ok", fmt.body(readings), len(readings))
    except LineProtocolError as exc:
        return ("line", str(exc))


def _typed_agrees(topic: str, payload: Payload, client: str | None = None) -> bool:
    """Whether the typed path took the payload; if it did, its result is the reference's."""
    took = False
    for fmt in FORMATTERS.values():
        try:
            body, count = schema._typed_lines(topic, payload, fmt, client)
        except schema._TYPED_FALLBACK_ERRORS:
            continue
        assert ("ok", body, count) == _reference(topic, payload, fmt, client), payload
        took = True
    return took


def test_every_kind_takes_the_typed_path() -> None:
    for kind in ReadingKind:
        fmt = LineProtocolFormatter(default_flag_codec().mask, include_reading_id=True)
        payload = schema.encode_batch("gw-1", kind, sample_readings(20, kind=kind))
        topic = schema.topic_readings("gw-1", kind)
        body, count = schema._typed_lines(topic, payload, fmt, None)
        assert count == 20
        assert body == fmt.body(schema.decode_batch(topic, payload))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(readings=st.lists(any_reading, min_size=1, max_size=5))
def test_valid_payloads_take_the_typed_path(readings: list[Reading]) -> None:
    payload = orjson.dumps(_batch(readings))
    topic = _topic_of(payload)
    outcome = _reference(topic, payload, FORMATTERS[True], None)
    took = _typed_agrees(topic, payload)
    epoch = b'"measured_at":"1970-01-01T00:00:00.000000Z"' in payload
    # Only lines line protocol cannot carry, and the epoch itself, leave the typed path.
    assert took or outcome[0] == "line" or epoch, outcome


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=mutated_payloads(), topic_case=st.sampled_from(["own", "other_gw", "client"]))
def test_mutated_payloads_typed_path_agrees(payload: bytes, topic_case: str) -> None:
    _typed_agrees(*topic_and_client(payload, topic_case))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), n=st.integers(min_value=2, max_value=6))
def test_mixed_columns_typed_path_agrees(data: st.DataObject, n: int) -> None:
    _typed_agrees(*mixed_columns_message(data, n))


def _bp_text(reading_0: dict[str, Any] | None = None, raw: tuple[str, str] | None = None) -> bytes:
    obj = _batch(list(sample_readings(3, kind=ReadingKind.BLOOD_PRESSURE)))
    if reading_0:
        obj["readings"][0].update(reading_0)
    text = orjson.dumps(obj)
    if raw is not None:
        old, new = raw
        assert old.encode() in text
        text = text.replace(old.encode(), new.encode(), 1)
    return text


_TOPIC_BP = schema.topic_readings("gw-1", ReadingKind.BLOOD_PRESSURE)


@pytest.mark.parametrize(
    "literal",
    [
        "1e400",
        "-1e400",
        "1.7976931348623157e308",
        "1.7976931348623158e308",
        "1.7976931348623159e308",
        "4.9e-324",
        "1e-400",
        "-0",
        "-0.0",
        "100000000000000000000000",
        "9007199254740993",
        "9223372036854775807",
        "9223372036854775808",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775809",
        "1.0",
        "7E0",
        "9" * 400,
        "0.1000000000000000055511151231257827",
        "123456789012345678901234567890.5e-10",
    ],
)
def test_number_literals_get_the_reference_verdict(literal: str) -> None:
    """msgspec and orjson parse numbers apart: where they differ, the typed path must not accept."""
    payload = _bp_text({"values": {"systolic_mmhg": 12345.25}}, ("12345.25", literal))
    _typed_agrees(_TOPIC_BP, payload)
    payload = _bp_text({"sequence_number": 424242}, ("424242", literal))
    _typed_agrees(_TOPIC_BP, payload)
    payload = _bp_text({"attributes": {"user_id": 424242}}, ("424242", literal))
    _typed_agrees(_TOPIC_BP, payload)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('"patient_id":"', '"patient_id":"\\ud800'),  # a lone surrogate
        ('"patient_id":"', '"patient_id":"\\u0070'),  # an escaped ASCII letter
        ('"manufacturer":"', '"manufacturer":"\\u0000'),
        ('"id":"', '"id":"\\u001f'),
        ('"reading_id":"', '"reading_id":"x","reading_id":"'),  # duplicate keys: the last wins
        ('{"schema"', ' \n\t{"schema"'),
        ('"readings":[', '"readings":[ '),
        ('"sent_at"', '"schema":"vitalgate.readings/1","sent_at"'),
    ],
    ids=repr,
)
def test_raw_text_variants_get_the_reference_verdict(old: str, new: str) -> None:
    _typed_agrees(_TOPIC_BP, _bp_text(raw=(old, new)))


@pytest.mark.parametrize("tail", [b" ", b"\n", b"x", b"{}", b"\xef\xbb\xbf"])
def test_trailing_and_leading_bytes(tail: bytes) -> None:
    payload = _bp_text()
    _typed_agrees(_TOPIC_BP, payload + tail)
    _typed_agrees(_TOPIC_BP, tail + payload)


def test_msgspec_refusals_fall_back_with_the_reference_message() -> None:
    payload = _bp_text({"attributes": {"user_id": 2.0}})  # an integer to JSON Schema, not msgspec
    fmt = FORMATTERS[False]
    with pytest.raises(msgspec.ValidationError):
        schema._typed_lines(_TOPIC_BP, payload, fmt, None)
    assert schema.decode_batch_lines(_TOPIC_BP, payload, fmt) == (
        fmt.body(schema.decode_batch(_TOPIC_BP, payload)),
        3,
    )
    payload = _bp_text({"attributes": {"user_id": True}})
    with pytest.raises(SchemaError) as exc:
        schema.decode_batch_lines(_TOPIC_BP, payload, fmt)
    assert str(exc.value) == "readings[0].attributes.user_id: must be an integer >= 0 or null"


def test_fuzz_corpus_typed_path_agrees() -> None:
    """The schema fuzz seeds (tests/fuzz/corpus/schema) through the typed path."""
    from tests.fuzz.payloads import TOPIC_CASES

    corpus = Path(__file__).parents[2] / "fuzz" / "corpus" / "schema"
    files = sorted(corpus.glob("*.bin"))
    assert len(files) >= 50
    for path in files:
        data = path.read_bytes()
        if not data:
            continue
        topic, client = TOPIC_CASES[(data[0] >> 1) % len(TOPIC_CASES)]
        for t in (topic, _topic_of(data[1:])):
            _typed_agrees(t, data[1:], client)
            _typed_agrees(t, data[1:], None)


def test_str_and_buffer_payloads() -> None:
    payload = _bp_text()
    for variant in (payload.decode(), bytearray(payload), memoryview(payload)):
        assert _typed_agrees(_TOPIC_BP, variant)
    lone = payload.decode().replace('"patient_id":"', '"patient_id":"\ud800', 1)
    assert not _typed_agrees(_TOPIC_BP, lone)
