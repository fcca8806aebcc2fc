"""The wire schema: reading <-> dict round trips, topics, flag bits, decode_batch errors.

Also home of the hypothesis strategies and the plain ``sample_readings`` factory that the other
cloud_sync tests import.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vitalgate.cloud_sync import schema
from vitalgate.cloud_sync.schema import (
    FLAG_BITS,
    decode_batch,
    encode_batch,
    encode_reading,
    flags_from_bitmask,
    flags_to_bitmask,
    parse_topic,
    reading_from_dict,
    reading_to_dict,
    topic_alerts,
    topic_deadletter,
    topic_readings,
    topic_status,
)
from vitalgate.cloud_sync.store import StoredReading
from vitalgate.errors import SchemaError
from vitalgate.readings import (
    READING_TYPES,
    BloodPressureReading,
    BodyTemperatureReading,
    CgmReading,
    DeviceIdentity,
    DeviceStatusReading,
    GlucoseReading,
    HeartRateReading,
    Meal,
    PulseOximetryReading,
    QualityFlag,
    Reading,
    ReadingKind,
    WeightReading,
)

# ---------------------------------------------------------------------------------------------
# Strategies and factories (imported by the other cloud_sync tests)

ID_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"
ids = st.text(ID_ALPHABET, min_size=1, max_size=64)
device_text = st.text(
    st.characters(blacklist_categories=("Cc", "Cs")), max_size=40
)  # printable: device ids may not hold control characters
utc_times = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
local_times = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1))
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
opt_finite = st.none() | finite
opt_uint = st.none() | st.integers(0, 2**31)
flag_sets = st.frozensets(st.sampled_from(list(QualityFlag)))


@st.composite
def devices(draw: st.DrawFn) -> DeviceIdentity:
    return DeviceIdentity(
        address=draw(device_text),
        manufacturer=draw(device_text),
        model=draw(device_text),
        serial=draw(device_text),
    )


def _base(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "patient_id": draw(ids),
        "device": draw(devices()),
        "measured_at": draw(utc_times),
        "received_at": draw(utc_times),
        "device_time": draw(st.none() | local_times),
        "sequence_number": draw(opt_uint),
        "flags": draw(flag_sets),
    }


_KIND_FIELDS: dict[type[Reading], Callable[[st.DrawFn], dict[str, Any]]] = {
    BloodPressureReading: lambda d: {
        "systolic_mmhg": d(finite),
        "diastolic_mmhg": d(finite),
        "mean_arterial_pressure_mmhg": d(opt_finite),
        "pulse_rate_bpm": d(opt_finite),
        "user_id": d(opt_uint),
    },
    GlucoseReading: lambda d: {
        "glucose_mg_dl": d(finite),
        "sample_type": d(opt_uint),
        "sample_location": d(opt_uint),
        "meal": d(st.none() | st.sampled_from(list(Meal))),
        "carbohydrate_g": d(opt_finite),
        "hba1c_pct": d(opt_finite),
        "is_control_solution": d(st.booleans()),
    },
    CgmReading: lambda d: {
        "glucose_mg_dl": d(finite),
        "time_offset_min": d(st.integers(0, 2**20)),
        "session_start": d(st.none() | utc_times),
        "trend_mg_dl_per_min": d(opt_finite),
        "quality_pct": d(opt_finite),
    },
    HeartRateReading: lambda d: {
        "heart_rate_bpm": d(finite),
        "rr_intervals_s": tuple(d(st.lists(st.floats(0, 10, allow_nan=False), max_size=20))),
        "sensor_contact": d(st.none() | st.booleans()),
        "energy_expended_kj": d(opt_finite),
        "rmssd_ms": d(opt_finite),
    },
    PulseOximetryReading: lambda d: {
        "spo2_pct": d(finite),
        "pulse_rate_bpm": d(opt_finite),
        "perfusion_index_pct": d(opt_finite),
        "continuous": d(st.booleans()),
    },
    BodyTemperatureReading: lambda d: {"temperature_c": d(finite), "site": d(opt_uint)},
    WeightReading: lambda d: {
        "weight_kg": d(finite),
        "bmi_kg_m2": d(opt_finite),
        "height_m": d(opt_finite),
        "user_id": d(opt_uint),
    },
    DeviceStatusReading: lambda d: {
        "battery_pct": d(opt_finite),
        "clock_offset_s": d(opt_finite),
    },
}
assert set(_KIND_FIELDS) == set(READING_TYPES.values())


def readings_of(cls: type[Reading]) -> st.SearchStrategy[Reading]:
    @st.composite
    def build(draw: st.DrawFn) -> Reading:
        return cls(**_base(draw), **_KIND_FIELDS[cls](draw))

    return build()


any_reading = st.one_of(*(readings_of(cls) for cls in READING_TYPES.values()))

DEV = DeviceIdentity(address="AA:BB:CC:DD:EE:FF", manufacturer="Acme", model="BP-1", serial="123")
T0 = datetime(2026, 11, 1, 7, 30, tzinfo=UTC)


def sample_readings(
    n: int, *, start: int = 0, patient_id: str = "p-1", kind: ReadingKind | None = None
) -> list[Reading]:
    """``n`` distinct, deterministic readings (kinds cycling unless ``kind`` is given)."""
    kinds = [kind] if kind is not None else list(ReadingKind)
    out: list[Reading] = []
    for i in range(start, start + n):
        k = kinds[i % len(kinds)]
        at = T0 + timedelta(seconds=i)
        common: dict[str, Any] = {
            "patient_id": patient_id,
            "device": DEV,
            "measured_at": at,
            "received_at": at + timedelta(minutes=1),
            "device_time": at.replace(tzinfo=None) + timedelta(hours=1),
            "sequence_number": i,
        }
        v = 50.0 + (i % 97)
        if k is ReadingKind.BLOOD_PRESSURE:
            r: Reading = BloodPressureReading(
                systolic_mmhg=v + 60, diastolic_mmhg=v + 20, pulse_rate_bpm=v, user_id=1, **common
            )
        elif k is ReadingKind.GLUCOSE:
            r = GlucoseReading(glucose_mg_dl=v + 40, meal=Meal.FASTING, **common)
        elif k is ReadingKind.CGM:
            r = CgmReading(glucose_mg_dl=v + 50, time_offset_min=i, session_start=T0, **common)
        elif k is ReadingKind.HEART_RATE:
            r = HeartRateReading(heart_rate_bpm=v, rr_intervals_s=(0.8, 0.81), **common)
        elif k is ReadingKind.PULSE_OXIMETRY:
            r = PulseOximetryReading(spo2_pct=90 + i % 10, pulse_rate_bpm=v, **common)
        elif k is ReadingKind.BODY_TEMPERATURE:
            r = BodyTemperatureReading(temperature_c=36 + (i % 20) / 10, site=1, **common)
        elif k is ReadingKind.DEVICE_STATUS:
            r = DeviceStatusReading(battery_pct=float(i % 101), clock_offset_s=-2.5, **common)
        else:
            r = WeightReading(weight_kg=v + 20, user_id=2, **common)
        if i % 5 == 0:
            r = r.with_flags(QualityFlag.CLOCK_CORRECTED)
        out.append(r)
    return out


# ---------------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("cls", list(READING_TYPES.values()), ids=lambda c: c.__name__)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_reading_round_trip_every_class(cls: type[Reading], data: st.DataObject) -> None:
    r = data.draw(readings_of(cls))
    d = reading_to_dict(r)
    assert reading_from_dict(d, cls.kind) == r
    # ... and through the wire bytes, inside a batch that decode_batch accepts.
    wire = orjson.loads(encode_reading(r))
    assert reading_from_dict(wire, cls.kind) == r
    payload = encode_batch("gw-1", cls.kind, [encode_reading(r)])
    (stored,) = decode_batch(topic_readings("gw-1", cls.kind), payload)
    assert stored == StoredReading(
        kind=cls.kind,
        reading_id=r.reading_id,
        patient_id=r.patient_id,
        gateway_id="gw-1",
        device_id=r.device.key,
        measured_at=r.measured_at,
        values=r.values(),
        flags=frozenset(str(f) for f in r.flags),
    )


def test_example_payload_matches_the_contract() -> None:
    r = sample_readings(1, kind=ReadingKind.BLOOD_PRESSURE)[0]
    assert reading_to_dict(r) == {
        "reading_id": r.reading_id,
        "patient_id": "p-1",
        "device": {
            "id": "Acme|BP-1|123",
            "address": "AA:BB:CC:DD:EE:FF",
            "manufacturer": "Acme",
            "model": "BP-1",
            "serial": "123",
        },
        "measured_at": "2026-11-01T07:30:00.000000Z",
        "received_at": "2026-11-01T07:31:00.000000Z",
        "device_time": "2026-11-01T08:30:00",
        "sequence_number": 0,
        "values": {"systolic_mmhg": 110.0, "diastolic_mmhg": 70.0, "pulse_rate_bpm": 50.0},
        "flags": ["clock_corrected"],
        "attributes": {"user_id": 1},
    }
    sent = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    body = orjson.loads(encode_batch("gw-0001", "blood_pressure", [r], sent_at=sent))
    assert body == {
        "schema": "vitalgate.readings/1",
        "gateway_id": "gw-0001",
        "kind": "blood_pressure",
        "sent_at": "2026-11-25T03:00:00.000000Z",
        "readings": [reading_to_dict(r)],
    }


def test_non_finite_values_are_left_out_and_come_back_as_nan_or_none() -> None:
    r = BloodPressureReading(
        patient_id="p",
        device=DEV,
        measured_at=T0,
        received_at=T0,
        systolic_mmhg=math.nan,
        diastolic_mmhg=80.0,
        pulse_rate_bpm=math.inf,
    )
    d = reading_to_dict(r)
    assert d["values"] == {"diastolic_mmhg": 80.0}
    back = reading_from_dict(d, "blood_pressure")
    assert isinstance(back, BloodPressureReading)
    assert math.isnan(back.systolic_mmhg)
    assert back.pulse_rate_bpm is None
    assert back.reading_id == r.reading_id


def test_non_utc_measured_at_is_written_in_utc() -> None:
    from zoneinfo import ZoneInfo

    zero = datetime(2026, 1, 1, 12, tzinfo=ZoneInfo("Etc/UTC"))
    assert schema.format_utc(zero) == "2026-01-01T12:00:00.000000Z"
    paris = datetime(2026, 1, 1, 13, tzinfo=ZoneInfo("Europe/Paris"))
    assert schema.format_utc(paris) == "2026-01-01T12:00:00.000000Z"
    with pytest.raises(SchemaError, match="timezone-aware"):
        schema.format_utc(datetime(2026, 1, 1))


def test_reading_from_dict_checks_device_id_against_identity() -> None:
    d = reading_to_dict(sample_readings(1)[0])
    d["device"]["id"] = "someone|else|1"
    with pytest.raises(SchemaError, match=r"device\.id"):
        reading_from_dict(d, "blood_pressure")


# ---------------------------------------------------------------------------------------------
# Topics


def test_topics() -> None:
    assert topic_readings("gw-1", ReadingKind.CGM) == "vitalgate/v1/gw-1/readings/cgm"
    assert topic_status("gw-1") == "vitalgate/v1/gw-1/status"
    assert topic_alerts("gw-1") == "vitalgate/v1/gw-1/alerts"
    assert topic_deadletter("gw-1") == "vitalgate/v1/deadletter/gw-1"
    assert schema.topic_readings_filter() == "vitalgate/v1/+/readings/+"
    assert parse_topic("vitalgate/v1/gw-1/readings/cgm") == ("gw-1", "readings", ReadingKind.CGM)
    assert parse_topic("vitalgate/v1/gw-1/status") == ("gw-1", "status", None)
    assert parse_topic("vitalgate/v1/gw-1/alerts") == ("gw-1", "alerts", None)
    assert parse_topic("vitalgate/v1/deadletter/gw-1") == ("gw-1", "deadletter", None)


@pytest.mark.parametrize(
    "topic",
    [
        "vitalgate/v2/gw-1/status",
        "vitalgate/v1/gw-1/readings/pressure",
        "vitalgate/v1/gw-1/readings",
        "vitalgate/v1/gw-1/readings/cgm/extra",
        "vitalgate/v1/gw+1/status",
        "vitalgate/v1/gw#/status",
        "vitalgate/v1//status",
        "vitalgate/v1/deadletter",
        "vitalgate/v1/deadletter/gw-1/x",
        "vitalgate/v1/gw-1/unknown",
        "vitalgate/v1/" + "g" * 65 + "/status",
        "other/v1/gw-1/status",
    ],
)
def test_bad_topics_are_refused(topic: str) -> None:
    with pytest.raises(SchemaError):
        parse_topic(topic)


@pytest.mark.parametrize("gw", ["", "a/b", "a+b", "a#", "deadletter", "é", "x" * 65, "a b"])
def test_bad_gateway_ids_are_refused(gw: str) -> None:
    with pytest.raises(SchemaError):
        topic_status(gw)


@given(gw=ids.filter(lambda s: s != "deadletter"), kind=st.sampled_from(list(ReadingKind)))
def test_topic_round_trip(gw: str, kind: ReadingKind) -> None:
    assert parse_topic(topic_readings(gw, kind)) == (gw, "readings", kind)
    assert parse_topic(topic_deadletter(gw)) == (gw, "deadletter", None)


# ---------------------------------------------------------------------------------------------
# Flag bits


def test_flag_bits_cover_every_flag_once_and_never_move() -> None:
    assert set(FLAG_BITS) == set(QualityFlag)
    assert sorted(FLAG_BITS.values()) == list(range(len(FLAG_BITS)))
    # Stored data depends on these: pin a few.
    assert FLAG_BITS[QualityFlag.BODY_MOVEMENT] == 0
    assert FLAG_BITS[QualityFlag.CONTROL_SOLUTION] == 7
    assert FLAG_BITS[QualityFlag.NO_DEVICE_TIME] == 15


@given(flags=flag_sets)
def test_flag_bitmask_round_trip(flags: frozenset[QualityFlag]) -> None:
    mask = flags_to_bitmask(flags)
    assert flags_from_bitmask(mask) == flags
    assert flags_to_bitmask(frozenset(str(f) for f in flags)) == mask


def test_flag_bitmask_errors() -> None:
    with pytest.raises(SchemaError, match="unknown quality flag"):
        flags_to_bitmask(["no_such_flag"])
    with pytest.raises(SchemaError, match="unknown bit 40"):
        flags_from_bitmask(1 << 40)
    with pytest.raises(SchemaError):
        flags_from_bitmask(-1)


# ---------------------------------------------------------------------------------------------
# decode_batch: topic rules and precise errors


def _payload(n: int = 3, kind: ReadingKind = ReadingKind.BLOOD_PRESSURE, gw: str = "gw-1") -> bytes:
    return encode_batch(gw, kind, sample_readings(n, kind=kind))


def test_decode_batch_accepts_and_converts() -> None:
    rs = sample_readings(50, kind=ReadingKind.GLUCOSE)
    out = decode_batch("vitalgate/v1/gw-1/readings/glucose", encode_batch("gw-1", "glucose", rs))
    assert [s.reading_id for s in out] == [r.reading_id for r in rs]
    assert all(type(s) is StoredReading for s in out)
    assert out[0].flags == frozenset({"clock_corrected"})
    assert out[1].values == {"glucose_mg_dl": 91.0, "meal_code": 3.0}  # fasting
    assert out[1].measured_at == T0 + timedelta(seconds=1)
    assert out[1].measured_at.tzinfo is UTC


def test_decode_batch_topic_must_match_payload_and_client() -> None:
    p = _payload()
    with pytest.raises(SchemaError, match="payload says 'gw-1', topic says 'gw-2'"):
        decode_batch("vitalgate/v1/gw-2/readings/blood_pressure", p)
    with pytest.raises(SchemaError, match="kind: payload says"):
        decode_batch("vitalgate/v1/gw-1/readings/glucose", p)
    with pytest.raises(SchemaError, match="client 'gw-9' may not publish"):
        decode_batch("vitalgate/v1/gw-1/readings/blood_pressure", p, client_gateway_id="gw-9")
    with pytest.raises(SchemaError, match="not a readings topic"):
        decode_batch("vitalgate/v1/gw-1/status", p)
    ok = decode_batch("vitalgate/v1/gw-1/readings/blood_pressure", p, client_gateway_id="gw-1")
    assert len(ok) == 3


def _mutated(path: str, value: object, *, delete: bool = False) -> bytes:
    obj = orjson.loads(_payload())
    *parents, last = path.split(".")
    node: Any = obj
    for p in parents:
        node = node[int(p)] if p.isdigit() else node[p]
    key: Any = int(last) if last.isdigit() else last
    if delete:
        del node[key]
    else:
        node[key] = value
    return orjson.dumps(obj)


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        ("schema", "vitalgate.readings/2", "schema: must be"),
        ("gateway_id", "gw/1", "gateway_id: "),
        ("kind", "pressure", "kind: must be one of"),
        ("sent_at", "yesterday", "sent_at: must be an RFC 3339"),
        ("readings", [], "readings: must be a non-empty array"),
        ("readings.1", "x", r"readings\[1\]: must be an object"),
        ("readings.2.reading_id", "ABC", r"readings\[2\]\.reading_id: must be 32 lowercase hex"),
        ("readings.0.patient_id", "p 1", r"readings\[0\]\.patient_id: must be 1-64"),
        ("readings.0.device.id", "a\nb", r"readings\[0\]\.device\.id: must be 1-256"),
        ("readings.0.device.serial", 5, r"readings\[0\]\.device\.serial: must be a string"),
        ("readings.1.measured_at", "2026-11-01T07:30:00Z", r"readings\[1\]\.measured_at: must be"),
        (
            "readings.1.measured_at",
            "2026-02-30T07:30:00.000000Z",
            r"readings\[1\]\.measured_at: not a valid date-time",
        ),
        ("readings.1.received_at", "2026-11-01T07:30:00.000000+01:00", r"\.received_at: must"),
        ("readings.1.device_time", "2026-11-01T07:30:00Z", r"readings\[1\]\.device_time: must"),
        ("readings.1.sequence_number", -1, r"\.sequence_number: must be an integer >= 0"),
        ("readings.1.sequence_number", True, r"\.sequence_number: must be an integer >= 0"),
        ("readings.1.values.systolic_mmhg", "128", r"\.values\.systolic_mmhg: must be a finite"),
        ("readings.1.values.systolic_mmhg", None, r"\.values\.systolic_mmhg: must be a finite"),
        ("readings.1.values.glucose_mg_dl", 5.0, r"readings\[1\]\.values: unexpected 'glucose"),
        ("readings.1.flags", ["nope"], r"readings\[1\]\.flags: unknown quality flag 'nope'"),
        ("readings.1.flags", ["outlier", "outlier"], r"\.flags: must not repeat"),
        ("readings.1.flags", [["outlier"]], r"\.flags: unknown quality flag"),
        ("readings.1.attributes.user_id", "one", r"\.attributes\.user_id: must be an integer"),
        ("readings.1.attributes.meal", "fasting", r"\.attributes: unexpected 'meal'"),
        ("readings.1.extra", 1, r"readings\[1\]: unexpected 'extra'"),
        ("extra", 1, r"payload: unexpected 'extra'"),
    ],
)
def test_decode_batch_names_the_bad_field(path: str, value: object, reason: str) -> None:
    with pytest.raises(SchemaError, match=reason):
        decode_batch("vitalgate/v1/gw-1/readings/blood_pressure", _mutated(path, value))


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("readings.1.values", r"readings\[1\]: missing values"),
        ("readings.0.device.model", r"readings\[0\]\.device: missing model"),
        ("sent_at", "payload: missing sent_at"),
    ],
)
def test_decode_batch_names_missing_fields(path: str, reason: str) -> None:
    with pytest.raises(SchemaError, match=reason):
        decode_batch("vitalgate/v1/gw-1/readings/blood_pressure", _mutated(path, None, delete=True))


def test_decode_batch_integral_floats_and_ints() -> None:
    # JSON Schema counts 2.0 as an integer and 128 as a number: so does decode_batch.
    p = _mutated("readings.1.sequence_number", 2.0)
    assert len(decode_batch("vitalgate/v1/gw-1/readings/blood_pressure", p)) == 3
    p = _mutated("readings.1.values.systolic_mmhg", 128)
    out = decode_batch("vitalgate/v1/gw-1/readings/blood_pressure", p)
    assert out[1].values["systolic_mmhg"] == 128.0
    assert type(out[1].values["systolic_mmhg"]) is float


def test_decode_batch_refuses_garbage() -> None:
    topic = "vitalgate/v1/gw-1/readings/blood_pressure"
    for bad in (b"", b"\xff\xfe", b"[1]", b'{"schema": 1', b"null", b"1e400"):
        with pytest.raises(SchemaError):
            decode_batch(topic, bad)


# ---------------------------------------------------------------------------------------------
# Time shapes: the fast checks equal the JSON Schema's regular expressions

_UTC_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")
_LOCAL_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{6})?")


def _ok(fn: Callable[[object, str], datetime], s: str) -> bool:
    try:
        fn(s, "x")
    except SchemaError:
        return False
    return True


def _ref_ok(pattern: re.Pattern[str], s: str, *, aware: bool) -> bool:
    if pattern.fullmatch(s) is None:
        return False
    try:
        return (datetime.fromisoformat(s).tzinfo is not None) == aware
    except ValueError:
        return False


@pytest.mark.parametrize(
    "base",
    [
        "2026-11-01T07:30:00.000000Z",
        "2024-02-29T23:59:59.999999Z",
        "2026-11-01T07:30:00",
        "2026-11-01T07:30:00.123456",
    ],
)
def test_time_shape_checks_equal_regex_for_every_single_ascii_substitution(base: str) -> None:
    aware = base.endswith("Z")
    fn = schema._parse_utc if aware else schema._parse_local
    pattern = _UTC_RE if aware else _LOCAL_RE
    for i in range(len(base)):
        for c in range(128):
            s = base[:i] + chr(c) + base[i + 1 :]
            assert _ok(fn, s) == _ref_ok(pattern, s, aware=aware), repr(s)


@settings(max_examples=2000)
@given(
    s=st.text("0123456789-:.TZ+ ,Wz\n", min_size=17, max_size=29)
    | st.text(st.characters(), max_size=30)
)
def test_time_shape_checks_equal_regex_on_random_strings(s: str) -> None:
    assert _ok(schema._parse_utc, s) == _ref_ok(_UTC_RE, s, aware=True), repr(s)
    assert _ok(schema._parse_local, s) == _ref_ok(_LOCAL_RE, s, aware=False), repr(s)


# ---------------------------------------------------------------------------------------------
# Status, alert, dead letter


def test_status_round_trip_and_alert_envelope() -> None:
    at = datetime(2026, 11, 25, 3, tzinfo=UTC)
    payload = schema.encode_status("gw-1", "offline", at)
    assert schema.decode_status(payload) == ("gw-1", "offline", at)
    alert = orjson.loads(schema.encode_alert("gw-1", {"type": "outbox_full", "pending": 3}, at))
    assert alert == {
        "schema": "vitalgate.alert/1",
        "gateway_id": "gw-1",
        "at": "2026-11-25T03:00:00.000000Z",
        "type": "outbox_full",
        "pending": 3,
    }
    with pytest.raises(SchemaError, match="may not set"):
        schema.encode_alert("gw-1", {"type": "x", "gateway_id": "gw-2"}, at)
    with pytest.raises(SchemaError, match="type"):
        schema.encode_alert("gw-1", {"pending": 3}, at)
    dead = orjson.loads(schema.encode_deadletter("bad", "t/x", b"\x00\x01", at))
    assert dead["payload_b64"] == "AAE=" and dead["schema"] == "vitalgate.deadletter/1"
