"""Fuzz target for the ingest payload validator ``vitalgate.cloud_sync.schema.decode_batch``.

Harness input layout: ``data[0]`` picks the mode and the topic/client pair; the rest is either

* mode "raw" (even ``data[0]``): the MQTT payload itself (random or mutated JSON bytes), or
* mode "mutate" (odd ``data[0]``): a program of edits applied to a valid template payload of the
  topic's kind (replace a node by a tricky value, delete or add a key, duplicate or drop a
  reading), so the fuzzer reaches the per-reading checks instead of stopping at JSON syntax.

The contract: ``decode_batch`` raises nothing but :class:`~vitalgate.errors.SchemaError`, and what
it accepts obeys the schema's promises (``check_accepted``): the topic's gateway and kind, the
authenticated client, finite float values, an aware UTC ``measured_at``, a 32-hex reading id,
known quality flags.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from vitalgate.cloud_sync import schema
from vitalgate.cloud_sync.store import StoredReading
from vitalgate.errors import SchemaError
from vitalgate.readings import (
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

__all__ = [
    "KINDS",
    "TOPIC_CASES",
    "ValidatorContractError",
    "check_accepted",
    "run_schema_harness",
    "sample_readings",
    "template_payload",
]

GATEWAY = "gw-0001"
OTHER_GATEWAY = "gw-0002"
KINDS: tuple[ReadingKind, ...] = tuple(ReadingKind)


#: The instants a store can hold: InfluxDB (and the line protocol) keep signed 64-bit epoch
#: nanoseconds, the SQLite store a signed 64-bit INTEGER of them.
STORABLE_FROM = datetime(1677, 9, 21, 0, 12, 43, 145225, tzinfo=UTC)
STORABLE_UNTIL = datetime(2262, 4, 11, 23, 47, 16, 854775, tzinfo=UTC)


class ValidatorContractError(AssertionError):
    """decode_batch accepted something its contract says it must reject (a validator bug)."""


def sample_readings(kind: ReadingKind, *, count: int = 2) -> list[Reading]:
    """``count`` valid readings of ``kind`` with every optional field set (fixed, seedless)."""
    device = DeviceIdentity(
        address="AA:BB:CC:DD:EE:01", manufacturer="Acme", model="M-1", serial="SN-42"
    )
    t0 = datetime(2026, 11, 24, 7, 30, tzinfo=UTC)
    out: list[Reading] = []
    for i in range(count):
        common: dict[str, Any] = {
            "patient_id": "p-123",
            "device": device,
            "measured_at": t0 + timedelta(minutes=5 * i),
            "received_at": t0 + timedelta(minutes=5 * i + 3),
            "device_time": datetime(2026, 11, 24, 8, 30) + timedelta(minutes=5 * i),
            "sequence_number": 7 + i,
            "flags": frozenset({QualityFlag.IRREGULAR_PULSE}) if i % 2 else frozenset(),
        }
        reading: Reading
        match kind:
            case ReadingKind.BLOOD_PRESSURE:
                reading = BloodPressureReading(
                    **common,
                    systolic_mmhg=128.0 + i,
                    diastolic_mmhg=82.0,
                    mean_arterial_pressure_mmhg=97.3,
                    pulse_rate_bpm=64.0,
                    user_id=1,
                )
            case ReadingKind.GLUCOSE:
                reading = GlucoseReading(
                    **common,
                    glucose_mg_dl=104.0 + i,
                    sample_type=1,
                    sample_location=1,
                    meal=Meal.PREPRANDIAL,
                    carbohydrate_g=45.0,
                    is_control_solution=False,
                )
            case ReadingKind.CGM:
                reading = CgmReading(
                    **common,
                    glucose_mg_dl=110.0 + i,
                    time_offset_min=5 * i,
                    session_start=t0 - timedelta(days=1),
                    trend_mg_dl_per_min=-0.5,
                    quality_pct=95.0,
                )
            case ReadingKind.HEART_RATE:
                reading = HeartRateReading(
                    **common,
                    heart_rate_bpm=72.0 + i,
                    rr_intervals_s=(0.8125, 0.8339),
                    sensor_contact=True,
                    energy_expended_kj=12.0,
                    rmssd_ms=42.5,
                )
            case ReadingKind.PULSE_OXIMETRY:
                reading = PulseOximetryReading(
                    **common,
                    spo2_pct=97.0,
                    pulse_rate_bpm=66.0 + i,
                    perfusion_index_pct=3.5,
                    continuous=False,
                )
            case ReadingKind.BODY_TEMPERATURE:
                reading = BodyTemperatureReading(**common, temperature_c=36.6 + i / 10, site=2)
            case ReadingKind.WEIGHT:
                reading = WeightReading(
                    **common, weight_kg=81.4 + i, bmi_kg_m2=25.1, height_m=1.8, user_id=1
                )
            case ReadingKind.DEVICE_STATUS:
                reading = DeviceStatusReading(**common, battery_pct=80.0 - i, clock_offset_s=-3.5)
        out.append(reading)
    return out


def template_payload(kind: ReadingKind, *, count: int = 2) -> bytes:
    """A valid readings message of ``kind`` from :data:`GATEWAY`."""
    return schema.encode_batch(
        GATEWAY,
        kind,
        sample_readings(kind, count=count),
        sent_at=datetime(2026, 11, 25, 3, 0, tzinfo=UTC),
    )


#: (topic, client_gateway_id) pairs the harness publishes on, indexed by ``data[0] >> 1``.
TOPIC_CASES: tuple[tuple[str, str | None], ...] = (
    *((schema.topic_readings(GATEWAY, k), None) for k in KINDS),
    *((schema.topic_readings(GATEWAY, k), GATEWAY) for k in KINDS),
    (schema.topic_readings(GATEWAY, ReadingKind.GLUCOSE), OTHER_GATEWAY),
    (schema.topic_readings(OTHER_GATEWAY, ReadingKind.BLOOD_PRESSURE), None),
    (schema.topic_status(GATEWAY), None),
    (schema.topic_deadletter(GATEWAY), None),
    ("vitalgate/v1/gw-0001/readings/unknown", None),
    ("vitalgate/v1/+/readings/glucose", None),
    ("vitalgate/v1/gw-0001/readings/glucose/extra", None),
    ("vitalgate/v2/gw-0001/readings/glucose", None),
    ("vitalgate/v1/deadletter/readings/glucose", None),
    ("", None),
)

_TEMPLATES: dict[ReadingKind, Any] = {}

# Values that have broken hand-written validators before: wrong types, boundaries, huge and
# tiny numbers, look-alike strings, nested containers.
_TRICKY: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    1,
    2**31,
    2**63,
    -(2**63) - 1,
    10**30,
    0.0,
    -0.0,
    2.0,
    1.5,
    1e308,
    -1e308,
    5e-324,
    "",
    "x",
    "gw-0001",
    "gw-0002",
    "p-123",
    "deadletter",
    "a" * 65,
    "0" * 32,
    "A" * 32,
    "g" * 32,
    "2026-11-24T07:30:00.000000Z",
    "2026-11-24T07:30:00.000000+00:00",
    "2026-02-30T07:30:00.000000Z",
    "0001-01-01T00:00:00.000000Z",
    "9999-12-31T23:59:59.999999Z",
    "2026-11-24T24:00:00.000000Z",
    "2026-11-24T07:30:00",
    "2026-11-24T07:30:00.123456",
    "\uff12\uff10\uff12\uff16-11-24T07:30:00.000000Z",  # full-width digits
    "2026-11-24 07:30:00.000000Z",
    "irregular_pulse",
    "IRREGULAR_PULSE",
    "blood_pressure",
    "preprandial",
    "\x00",
    "\u2028",
    [],
    [1],
    [0.8, -0.1],
    ["irregular_pulse", "irregular_pulse"],
    [[]],
    {},
    {"a": 1},
    {"systolic_mmhg": 1},
)


class _Program:
    """A byte stream read as small integers (a deterministic FuzzedDataProvider)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._i = 0

    def __bool__(self) -> bool:
        return self._i < len(self._data)

    def byte(self) -> int:
        if self._i >= len(self._data):
            return 0
        b = self._data[self._i]
        self._i += 1
        return b

    def u16(self) -> int:
        return self.byte() | (self.byte() << 8)

    def text(self) -> str:
        n = self.byte() % 16
        raw = bytes(self.byte() for _ in range(n))
        return raw.decode("utf-8", "replace")


def _fresh(index: int) -> Any:
    """A private copy of a tricky value (the edits must never alias the shared table)."""
    return json.loads(json.dumps(_TRICKY[index % len(_TRICKY)]))


def _nodes(obj: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    yield path, obj
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _nodes(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _nodes(v, (*path, i))


def _get(obj: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        obj = obj[p]
    return obj


def _mutate(doc: Any, prog: _Program) -> Any:
    for _ in range(8):
        if not prog:
            break
        op = prog.byte() % 6
        nodes = list(_nodes(doc))
        path, node = nodes[prog.u16() % len(nodes)]
        if op in (0, 1):  # replace a node by a tricky value
            value = _fresh(prog.byte())
            if not path:
                doc = value
            else:
                _get(doc, path[:-1])[path[-1]] = value
        elif op == 2 and isinstance(node, dict) and node:  # delete a key
            keys = list(node)
            del node[keys[prog.byte() % len(keys)]]
        elif op == 3 and isinstance(node, dict):  # add a key
            node[prog.text()] = _fresh(prog.byte())
        elif op == 4 and isinstance(node, list) and node:  # duplicate or drop an element
            i = prog.byte() % len(node)
            if prog.byte() & 1:
                node.append(json.loads(json.dumps(node[i])))
            else:
                del node[i]
        elif op == 5 and isinstance(node, str):  # edit a string
            i = prog.byte() % (len(node) + 1)
            node = node[:i] + prog.text() + node[i + 1 :]
            if not path:
                doc = node
            else:
                _get(doc, path[:-1])[path[-1]] = node
    return doc


def check_accepted(
    topic: str, client: str | None, payload: bytes, readings: list[StoredReading]
) -> None:
    """Raise ValidatorContractError unless accepted readings keep every promise of the schema."""
    gateway, channel, kind = schema.parse_topic(topic)

    def fail(why: str) -> None:
        raise ValidatorContractError(f"decode_batch({topic!r}, {payload!r}) accepted: {why}")

    if channel != "readings":
        fail(f"a {channel} topic")
    if client is not None and client != gateway:
        fail(f"client {client} publishing for {gateway}")
    if not readings:
        fail("an empty batch")
    for r in readings:
        if r.gateway_id != gateway or r.kind is not kind:
            fail(f"a reading of {r.gateway_id}/{r.kind}")
        if len(r.reading_id) != 32 or r.reading_id.strip("0123456789abcdef"):
            fail(f"reading_id {r.reading_id!r}")
        if r.measured_at.utcoffset() != timedelta(0):
            fail(f"measured_at {r.measured_at!r}")
        if not STORABLE_FROM <= r.measured_at <= STORABLE_UNTIL:
            fail(f"measured_at {r.measured_at.isoformat()} which no store can hold")
        for name, v in r.values.items():
            if type(v) is not float or not math.isfinite(v):
                fail(f"value {name}={v!r}")
        if not r.flags <= {str(f) for f in QualityFlag}:
            fail(f"flags {r.flags!r}")
        if not r.device_id or not r.patient_id:
            fail("an empty device or patient id")


def run_schema_harness(data: bytes) -> None:
    """The fuzz entry: only SchemaError, and what is accepted keeps the schema's promises."""
    if not data:
        return
    topic, client = TOPIC_CASES[(data[0] >> 1) % len(TOPIC_CASES)]
    if data[0] & 1:
        try:
            kind = schema.parse_topic(topic)[2] or ReadingKind.GLUCOSE
        except SchemaError:
            kind = ReadingKind.GLUCOSE
        if kind not in _TEMPLATES:
            _TEMPLATES[kind] = json.loads(template_payload(kind))
        doc = _mutate(json.loads(json.dumps(_TEMPLATES[kind])), _Program(data[1:]))
        payload = json.dumps(doc, ensure_ascii=bool(data[0] & 2)).encode("utf-8", "surrogatepass")
    else:
        payload = data[1:]
    try:
        readings = schema.decode_batch(topic, payload, client_gateway_id=client)
    except SchemaError:
        return
    check_accepted(topic, client, payload, readings)
