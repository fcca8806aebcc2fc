"""Line protocol formatting: exact lines, escaping, refusal of what cannot be represented."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vitalgate.cloud_sync.schema import FLAG_BITS
from vitalgate.cloud_sync.store import StoredReading
from vitalgate.cloud_sync.stores.base import FlagCodec, StoreRejectedError, datetime_to_ns
from vitalgate.cloud_sync.stores.lineprotocol import (
    LineProtocolError,
    LineProtocolFormatter,
    escape_measurement,
    escape_string_value,
    escape_tag,
)
from vitalgate.readings import ReadingKind

CODEC = FlagCodec(FLAG_BITS)
T = datetime(2026, 11, 24, 7, 30, 0, 123456, tzinfo=UTC)


def reading(**kw: object) -> StoredReading:
    base: dict[str, object] = {
        "kind": ReadingKind.BLOOD_PRESSURE,
        "reading_id": "0123456789abcdef0123456789abcdef",
        "patient_id": "p-1",
        "gateway_id": "gw-1",
        "device_id": "Omron|M7|SN1",
        "measured_at": T,
        "values": {"systolic_mmhg": 128.0, "diastolic_mmhg": 82.5},
        "flags": frozenset({"irregular_pulse", "body_movement"}),
    }
    base.update(kw)
    return StoredReading(**base)  # type: ignore[arg-type]


def test_exact_line() -> None:
    fmt = LineProtocolFormatter(CODEC.mask)
    expected = (
        "blood_pressure,device=Omron|M7|SN1,gateway=gw-1,patient=p-1 "
        'systolic_mmhg=128.0,diastolic_mmhg=82.5,flags=5i,reading_id="0123456789abcdef0123456789abcdef"'
        " 1795505400123456000"
    )
    assert fmt.line(reading()) == expected
    assert fmt.body([reading()]) == expected.encode()
    assert fmt.body([reading()]) == expected.encode()  # the cached fast path agrees


def test_without_reading_id_and_without_values() -> None:
    fmt = LineProtocolFormatter(CODEC.mask, include_reading_id=False)
    r = reading(values={}, flags=frozenset())
    assert fmt.line(r) == (
        "blood_pressure,device=Omron|M7|SN1,gateway=gw-1,patient=p-1 flags=0i 1795505400123456000"
    )
    assert fmt.body([r, r]).decode().splitlines() == [fmt.line(r)] * 2


@pytest.mark.parametrize(
    ("func", "raw", "escaped"),
    [
        (escape_measurement, "blood pressure,x", "blood\\ pressure\\,x"),
        (escape_measurement, "a=b", "a=b"),
        (escape_tag, "a b,c=d", "a\\ b\\,c\\=d"),
        (escape_tag, 'q"uote', 'q"uote'),
        (escape_string_value, 'say "hi" \\o/', '"say \\"hi\\" \\\\o/"'),
    ],
    ids=["measurement", "measurement-equals", "tag", "tag-quote", "string"],
)
def test_escaping(func: object, raw: str, escaped: str) -> None:
    assert func(raw) == escaped  # type: ignore[operator]


@pytest.mark.parametrize("bad", ["two\nlines", "cr\rx", "ends\\", ""], ids=repr)
def test_unrepresentable_tags_raise(bad: str) -> None:
    with pytest.raises(LineProtocolError):
        escape_tag(bad)
    fmt = LineProtocolFormatter(CODEC.mask)
    with pytest.raises(LineProtocolError):
        fmt.body([reading(patient_id=bad)])


@pytest.mark.parametrize(
    "value", [math.nan, math.inf, -math.inf, True, None, "128", 1e400], ids=repr
)
def test_bad_values_are_refused_by_the_fast_path_too(value: object) -> None:
    fmt = LineProtocolFormatter(CODEC.mask)
    fmt.body([reading()])  # warm the caches, so the fast path runs
    with pytest.raises(LineProtocolError) as info:
        fmt.body([reading(), reading(values={"systolic_mmhg": value})])
    assert isinstance(info.value, StoreRejectedError) and "systolic_mmhg" in str(info.value)


def test_int_values_are_written_as_floats_and_reserved_names_refused() -> None:
    fmt = LineProtocolFormatter(CODEC.mask, include_reading_id=False)
    assert " systolic_mmhg=128.0,flags" in fmt.line(reading(values={"systolic_mmhg": 128}))
    with pytest.raises(LineProtocolError):
        fmt.line(reading(values={"flags": 1.0}))


def test_naive_timestamp_and_unknown_flag_refused() -> None:
    fmt = LineProtocolFormatter(CODEC.mask)
    with pytest.raises(LineProtocolError):
        fmt.body([reading(measured_at=datetime(2026, 1, 1))])
    with pytest.raises(StoreRejectedError):
        fmt.body([reading(flags=frozenset({"no_such_flag"}))])


def test_reading_id_injection_is_escaped() -> None:
    fmt = LineProtocolFormatter(CODEC.mask)
    fmt.body([reading()])
    body = fmt.body([reading(reading_id='x",systolic_mmhg=1,y="')]).decode()
    assert body.endswith('reading_id="x\\",systolic_mmhg=1,y=\\"" 1795505400123456000')


def test_datetime_to_ns_is_exact() -> None:
    assert datetime_to_ns(datetime(1970, 1, 1, tzinfo=UTC)) == 0
    far = datetime(2262, 4, 11, 23, 47, 16, 854775, tzinfo=UTC)
    assert datetime_to_ns(far) == 9_223_372_036_854_775_000
    assert datetime_to_ns(T + timedelta(microseconds=1)) - datetime_to_ns(T) == 1000


# -- a reference parser (InfluxDB line protocol reference) for round-trip properties ----------

_UNESCAPE_TAG = re.compile(r"\\([,= ])")


def _split(text: str, sep: str, *, quotes: bool = True) -> list[str]:
    """Split on unescaped ``sep`` (outside double quotes when ``quotes``)."""
    out, cur, i, quoted = [], [], 0, False
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            cur.append(text[i : i + 2])
            i += 2
            continue
        if c == '"' and quotes:
            quoted = not quoted
        if c == sep and not quoted:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    out.append("".join(cur))
    return out


def parse_line(line: str) -> tuple[str, dict[str, str], dict[str, object], int]:
    # The series key has no quoting: its first unescaped space ends it.
    series, rest = _split(line, " ", quotes=False)[0], None
    rest = line[len(series) + 1 :]
    fields_text, ts = _split(rest, " ")
    measurement, *tag_parts = _split(series, ",", quotes=False)
    tags = {}
    for part in tag_parts:
        k, v = _split(part, "=", quotes=False)
        tags[_UNESCAPE_TAG.sub(r"\1", k)] = _UNESCAPE_TAG.sub(r"\1", v)
    fields: dict[str, object] = {}
    for part in _split(fields_text, ","):
        k, v = _split(part, "=")
        key = _UNESCAPE_TAG.sub(r"\1", k)
        if v.startswith('"'):
            fields[key] = re.sub(r"\\([\"\\])", r"\1", v[1:-1])
        elif v.endswith("i"):
            fields[key] = int(v[:-1])
        else:
            fields[key] = float(v)
    return measurement.replace("\\ ", " ").replace("\\,", ","), tags, fields, int(ts)


tag_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"), min_size=1
).filter(lambda s: not s.endswith("\\") and not re.search(r"(?<!\\)(?:\\\\)*\\[,= ]", s))


@pytest.mark.parametrize("text", ["\\,", "a\\=b", "x\\\\\\ y"])
def test_a_backslash_that_would_swallow_an_escape_is_refused(text: str) -> None:
    # "\\," would be written "\\\\," and read back as "\\\\" followed by a tag separator.
    with pytest.raises(LineProtocolError, match="backslash before"):
        escape_tag(text)
    assert escape_tag("a\\\\,b") == "a\\\\\\,b"  # an even run is fine


finite = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(
    device=tag_text,
    patient=tag_text,
    values=st.dictionaries(st.sampled_from(["systolic_mmhg", "diastolic_mmhg", "x y,z=w"]), finite),
    flags=st.frozensets(st.sampled_from(sorted(str(f) for f in FLAG_BITS))),
    micros=st.integers(min_value=0, max_value=10**16),
    rid=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r")),
)
def test_round_trip_through_a_reference_parser(
    device: str,
    patient: str,
    values: dict[str, float],
    flags: frozenset[str],
    micros: int,
    rid: str,
) -> None:
    at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    r = reading(
        device_id=device,
        patient_id=patient,
        values=values,
        flags=flags,
        reading_id=rid,
        measured_at=at,
    )
    fmt = LineProtocolFormatter(CODEC.mask)
    body = fmt.body([r, r]).decode()
    assert body == fmt.body([r, r]).decode()  # fast path (second call) == validating path
    line = body.split("\n")[0]
    measurement, tags, fields, ts = parse_line(line)
    assert measurement == "blood_pressure"
    assert tags == {"device": device, "gateway": "gw-1", "patient": patient}
    assert fields.pop("flags") == CODEC.mask(flags)
    assert fields.pop("reading_id") == rid
    assert fields == values
    assert ts == micros * 1000
    assert CODEC.flags(CODEC.mask(flags)) == flags
