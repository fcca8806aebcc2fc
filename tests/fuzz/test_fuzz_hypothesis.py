"""Hypothesis fuzzing of the same contracts the atheris harnesses check (seeded, bounded).

Random and structured inputs for every codec target and for ``decode_batch``; for the validator,
accepted payloads must also satisfy the normative JSON Schema file (the fast validator may never
accept what the schema forbids).
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from tests.fuzz.codecs import HARNESSES, check_target
from tests.fuzz.payloads import (
    GATEWAY,
    KINDS,
    TOPIC_CASES,
    check_accepted,
    run_schema_harness,
    template_payload,
)
from vitalgate.cloud_sync import schema
from vitalgate.errors import SchemaError
from vitalgate.readings import ReadingKind

TARGETS = [(h, t) for h, targets in HARNESSES.items() for t in targets]
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize(("harness", "target"), TARGETS, ids=[f"{h}.{t.name}" for h, t in TARGETS])
@seed(0x5EED)
@FUZZ
@given(data=st.binary(max_size=64))
def test_codec_target_only_parse_error_and_stable(harness: str, target: Any, data: bytes) -> None:
    check_target(target, data)


@seed(0x5EED)
@settings(max_examples=2000, deadline=None)
@given(data=st.binary(max_size=256))
def test_schema_harness_random_programs(data: bytes) -> None:
    run_schema_harness(data)


_json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
_json = st.recursive(
    _json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(obj: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*path, i))
    return out


_VALIDATOR = jsonschema.Draft202012Validator(
    schema.json_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)


@seed(0x5EED)
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(KINDS), data=st.data())
def test_mutated_payload_accepted_only_when_json_schema_agrees(
    kind: ReadingKind, data: st.DataObject
) -> None:
    doc = json.loads(template_payload(kind))
    for _ in range(data.draw(st.integers(1, 3))):
        paths = _paths(doc)
        path = data.draw(st.sampled_from(paths))
        value = data.draw(_json)
        if not path:
            doc = value
            continue
        parent = doc
        for p in path[:-1]:
            parent = parent[p]
        parent[path[-1]] = value
    payload = json.dumps(doc).encode()
    topic = schema.topic_readings(GATEWAY, kind)
    try:
        readings = schema.decode_batch(topic, payload, client_gateway_id=GATEWAY)
    except SchemaError:
        return
    check_accepted(topic, GATEWAY, payload, readings)
    errors = sorted(_VALIDATOR.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, f"decode_batch accepted what the JSON Schema rejects: {errors[0].message}"


def test_topic_cases_cover_every_kind_and_the_cross_gateway_case() -> None:
    topics = {t for t, _ in TOPIC_CASES}
    assert all(schema.topic_readings(GATEWAY, k) in topics for k in KINDS)
    assert any(c not in (None, schema.parse_topic(t)[0]) for t, c in TOPIC_CASES if c)
