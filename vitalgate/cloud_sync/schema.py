"""The wire schema between gateways and the ingest: MQTT topics and JSON payloads, version 1.

Topics (``<gateway_id>``: 1-64 characters of ``[A-Za-z0-9_.-]``, never ``deadletter``)::

    vitalgate/v1/<gateway_id>/readings/<kind>   QoS 1, not retained; one ReadingKind per message
    vitalgate/v1/<gateway_id>/status            retained; "online" / "offline" (the Last Will)
    vitalgate/v1/<gateway_id>/alerts            QoS 1; alert events
    vitalgate/v1/deadletter/<gateway_id>        QoS 1; payloads the ingest rejected, with the reason

A readings message carries many readings of one kind (``vitalgate.readings/1``); the JSON Schema
files in ``vitalgate/cloud_sync/schemas/`` are the normative definition and ``docs/schema.md``
explains every field. :func:`decode_batch` is a hand-written validator enforcing exactly what the
JSON Schema says (a test checks the two agree on valid payloads and on many mutations), fast
enough for the ingest's target of >= 250k readings/s per worker: it turns a payload into
:class:`~vitalgate.cloud_sync.store.StoredReading` objects or raises :class:`SchemaError` naming
the field (``readings[3].values.systolic_mmhg: ...``).

The gateway side encodes each reading once with :func:`encode_reading` (the outbox keeps those
bytes) and joins them into a message with :func:`encode_batch`, so a replay costs no re-encoding.
"""

from __future__ import annotations

import base64
import enum
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import MISSING, fields
from datetime import UTC, datetime, timedelta
from itertools import repeat
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, get_args

import msgspec
import orjson

from vitalgate.cloud_sync.store import StoredReading
from vitalgate.errors import SchemaError, StoreError
from vitalgate.readings import (
    READING_TYPES,
    DeviceIdentity,
    Meal,
    QualityFlag,
    Reading,
    ReadingKind,
)

if TYPE_CHECKING:
    from vitalgate.cloud_sync.stores.lineprotocol import LineProtocolFormatter

__all__ = [
    "ALERT_SCHEMA",
    "ATTRIBUTE_FIELDS",
    "DEADLETTER_SCHEMA",
    "FLAG_BITS",
    "MAX_READINGS_PER_MESSAGE",
    "READINGS_SCHEMA",
    "SCHEMA_FILES",
    "STATUS_SCHEMA",
    "TOPIC_ROOT",
    "Channel",
    "StatusState",
    "check_gateway_id",
    "decode_batch",
    "decode_batch_lines",
    "decode_payload",
    "decode_status",
    "encode_alert",
    "encode_batch",
    "encode_deadletter",
    "encode_reading",
    "encode_reading_checked",
    "encode_status",
    "flags_from_bitmask",
    "flags_to_bitmask",
    "format_utc",
    "json_schema",
    "parse_topic",
    "reading_from_dict",
    "reading_to_dict",
    "topic_alerts",
    "topic_deadletter",
    "topic_readings",
    "topic_readings_filter",
    "topic_status",
]

TOPIC_ROOT: Final = "vitalgate/v1"
READINGS_SCHEMA: Final = "vitalgate.readings/1"
STATUS_SCHEMA: Final = "vitalgate.status/1"
ALERT_SCHEMA: Final = "vitalgate.alert/1"
DEADLETTER_SCHEMA: Final = "vitalgate.deadletter/1"

#: The JSON Schema file of each payload schema, inside ``vitalgate/cloud_sync/schemas/``.
SCHEMA_FILES: Final[Mapping[str, str]] = {
    READINGS_SCHEMA: "readings-v1.schema.json",
    STATUS_SCHEMA: "status-v1.schema.json",
    ALERT_SCHEMA: "alert-v1.schema.json",
    DEADLETTER_SCHEMA: "deadletter-v1.schema.json",
}

#: Upper bound on readings in one message (the publisher sends at most a few hundred).
MAX_READINGS_PER_MESSAGE: Final = 10_000
#: Upper bound on the length of a device string (address, manufacturer, model, serial, id).
MAX_DEVICE_STRING: Final = 256
#: Largest finite double; JSON Schema bounds numbers with it so both validators reject infinity.
_MAX_FLOAT: Final = 1.7976931348623157e308

Channel = Literal["readings", "status", "alerts", "deadletter"]
StatusState = Literal["online", "offline"]

#: Bit of each quality flag in the integer ``flags`` field of the store (bit i = ``1 << i``).
#: Append-only: a bit, once given, keeps its meaning forever (stored data depends on it).
FLAG_BITS: Final[Mapping[QualityFlag, int]] = {
    QualityFlag.BODY_MOVEMENT: 0,
    QualityFlag.CUFF_TOO_LOOSE: 1,
    QualityFlag.IRREGULAR_PULSE: 2,
    QualityFlag.PULSE_RATE_OUT_OF_RANGE: 3,
    QualityFlag.IMPROPER_POSITION: 4,
    QualityFlag.SENSOR_STATUS: 5,
    QualityFlag.NO_SENSOR_CONTACT: 6,
    QualityFlag.CONTROL_SOLUTION: 7,
    QualityFlag.IMPLAUSIBLE: 8,
    QualityFlag.OUTLIER: 9,
    QualityFlag.DUPLICATE: 10,
    QualityFlag.LOW_QUALITY: 11,
    QualityFlag.MOTION_ARTIFACT: 12,
    QualityFlag.CLOCK_CORRECTED: 13,
    QualityFlag.CLOCK_UNSET: 14,
    QualityFlag.NO_DEVICE_TIME: 15,
    QualityFlag.DERIVED: 16,
}
_BIT_OF_STR: Final[dict[str, int]] = {str(f): 1 << b for f, b in FLAG_BITS.items()}
_FLAG_OF_BIT: Final[dict[int, QualityFlag]] = {b: f for f, b in FLAG_BITS.items()}


#: measured_at must fit signed 64-bit epoch nanoseconds (InfluxDB, SQLite INTEGER).
_MIN_MEASURED_AT = datetime(1677, 9, 22, tzinfo=UTC)
_MAX_MEASURED_AT = datetime(2262, 4, 11, tzinfo=UTC)


def flags_to_bitmask(flags: frozenset[QualityFlag] | frozenset[str] | Sequence[str]) -> int:
    """The integer bitmask of flags (see :data:`FLAG_BITS`); raises SchemaError on unknown."""
    mask = 0
    for f in flags:
        try:
            mask |= _BIT_OF_STR[f]
        except KeyError:
            raise SchemaError(f"unknown quality flag {f!r}") from None
    return mask


def flags_from_bitmask(mask: int) -> frozenset[QualityFlag]:
    """The flags of a bitmask; raises SchemaError for bits no flag owns."""
    if mask < 0:
        raise SchemaError(f"flag bitmask must not be negative, got {mask}")
    out: set[QualityFlag] = set()
    bit = 0
    while mask:
        if mask & 1:
            try:
                out.add(_FLAG_OF_BIT[bit])
            except KeyError:
                raise SchemaError(f"flag bitmask has unknown bit {bit}") from None
        mask >>= 1
        bit += 1
    return frozenset(out)


# ---------------------------------------------------------------------------------------------
# Topics

_ID_CHARS_RE: Final = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_RESERVED_GATEWAY_IDS: Final = frozenset({"deadletter"})
_KIND_BY_VALUE: Final[dict[str, ReadingKind]] = {str(k): k for k in ReadingKind}


def check_gateway_id(gateway_id: str) -> str:
    """Return ``gateway_id`` if it is valid in topics and payloads, else raise SchemaError."""
    if not isinstance(gateway_id, str) or _ID_CHARS_RE.fullmatch(gateway_id) is None:
        raise SchemaError(
            f"gateway_id must be 1-64 characters of [A-Za-z0-9_.-], got {gateway_id!r}"
        )
    if gateway_id in _RESERVED_GATEWAY_IDS:
        raise SchemaError(f"gateway_id {gateway_id!r} is reserved")
    return gateway_id


def topic_readings(gateway_id: str, kind: ReadingKind | str) -> str:
    """``vitalgate/v1/<gateway_id>/readings/<kind>``."""
    kind_value = _KIND_BY_VALUE.get(str(kind))
    if kind_value is None:
        raise SchemaError(f"unknown reading kind {kind!r}")
    return f"{TOPIC_ROOT}/{check_gateway_id(gateway_id)}/readings/{kind_value}"


def topic_readings_filter(gateway_id: str = "+") -> str:
    """A subscription filter for the readings of one gateway (``+``: of every gateway)."""
    if gateway_id != "+":
        check_gateway_id(gateway_id)
    return f"{TOPIC_ROOT}/{gateway_id}/readings/+"


def topic_status(gateway_id: str) -> str:
    """``vitalgate/v1/<gateway_id>/status`` (retained)."""
    return f"{TOPIC_ROOT}/{check_gateway_id(gateway_id)}/status"


def topic_alerts(gateway_id: str) -> str:
    """``vitalgate/v1/<gateway_id>/alerts``."""
    return f"{TOPIC_ROOT}/{check_gateway_id(gateway_id)}/alerts"


def topic_deadletter(gateway_id: str) -> str:
    """``vitalgate/v1/deadletter/<gateway_id>``: what the ingest rejected from that gateway."""
    return f"{TOPIC_ROOT}/deadletter/{check_gateway_id(gateway_id)}"


def parse_topic(topic: str) -> tuple[str, Channel, ReadingKind | None]:
    """Split a vitalgate topic into ``(gateway_id, channel, kind or None)``.

    Raises SchemaError for anything that is not exactly one of the four topic shapes.
    """
    parts = topic.split("/")
    if len(parts) < 4 or parts[0] != "vitalgate" or parts[1] != "v1":
        raise SchemaError(f"not a vitalgate/v1 topic: {topic!r}")
    if parts[2] == "deadletter":
        if len(parts) != 4:
            raise SchemaError(f"malformed dead-letter topic: {topic!r}")
        return check_gateway_id(parts[3]), "deadletter", None
    gateway_id = check_gateway_id(parts[2])
    channel = parts[3]
    if channel == "readings":
        if len(parts) != 5:
            raise SchemaError(f"malformed readings topic: {topic!r}")
        kind = _KIND_BY_VALUE.get(parts[4])
        if kind is None:
            raise SchemaError(f"unknown reading kind {parts[4]!r} in topic {topic!r}")
        return gateway_id, "readings", kind
    if channel in ("status", "alerts") and len(parts) == 4:
        return gateway_id, channel, None  # type: ignore[return-value]
    raise SchemaError(f"unknown vitalgate topic: {topic!r}")


# ---------------------------------------------------------------------------------------------
# Times


def format_utc(dt: datetime) -> str:
    """RFC 3339 UTC with microseconds and ``Z``: ``2026-11-24T07:30:00.000000Z``."""
    off = dt.utcoffset()
    if off is None:
        raise SchemaError(f"datetime must be timezone-aware, got {dt!r}")
    if off:
        dt = dt.astimezone(UTC)
    return dt.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _format_local(dt: datetime) -> str:
    if dt.tzinfo is not None:
        raise SchemaError(f"device_time must be naive (as the device sent it), got {dt!r}")
    return dt.isoformat(timespec="microseconds" if dt.microsecond else "seconds")


_fromiso: Final = datetime.fromisoformat
_UTC_HINT: Final = "must be an RFC 3339 UTC time like 2026-11-24T07:30:00.000000Z"
_LOCAL_HINT: Final = "must be null or a naive time like 2026-11-24T08:30:00[.000000]"

# The shapes are checked by length, separator positions and ASCII-ness; datetime.fromisoformat
# then rejects any non-digit in the remaining positions and any impossible date or time. A unit
# test proves this equals the regular expressions of the JSON Schema:
#   UTC:   ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$
#   local: ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{6})?$


def _parse_utc(value: object, where: str) -> datetime:
    if not (
        type(value) is str
        and len(value) == 27
        and value[26] == "Z"
        and value[4:20:3] == "--T::."
        and value.isascii()
    ):
        raise SchemaError(f"{where}: {_UTC_HINT}")
    try:
        dt = _fromiso(value)
    except ValueError:
        raise SchemaError(f"{where}: not a valid date-time: {value!r}") from None
    if dt.tzinfo is not UTC:  # pragma: no cover - excluded by the shape check
        raise SchemaError(f"{where}: {_UTC_HINT}")
    return dt


def _parse_local(value: object, where: str) -> datetime:
    if not (
        type(value) is str
        and (len(value) == 19 or (len(value) == 26 and value[19] == "."))
        and value[4:17:3] == "--T::"
        and value.isascii()
    ):
        raise SchemaError(f"{where}: {_LOCAL_HINT}")
    try:
        dt = _fromiso(value)
    except ValueError:
        raise SchemaError(f"{where}: not a valid date-time: {value!r}") from None
    if dt.tzinfo is not None:
        raise SchemaError(f"{where}: {_LOCAL_HINT}")
    return dt


# ---------------------------------------------------------------------------------------------
# Reading <-> dict

_BASE_FIELDS: Final = frozenset(f.name for f in fields(Reading))


def _attribute_names(cls: type[Reading]) -> tuple[str, ...]:
    return tuple(
        f.name for f in fields(cls) if f.name not in _BASE_FIELDS and f.name not in cls.value_fields
    )


#: The non-numeric / extra fields of each kind, carried in a reading's ``attributes`` object.
ATTRIBUTE_FIELDS: Final[Mapping[ReadingKind, tuple[str, ...]]] = {
    kind: _attribute_names(cls) for kind, cls in READING_TYPES.items()
}
#: Value fields of each kind that the reading class requires (absent in a payload -> NaN).
_REQUIRED_VALUE_FIELDS: Final[Mapping[ReadingKind, frozenset[str]]] = {
    kind: frozenset(
        f.name
        for f in fields(cls)
        if f.name in cls.value_fields and f.default is MISSING and f.default_factory is MISSING
    )
    for kind, cls in READING_TYPES.items()
}


def _attr_to_json(value: object) -> object:
    if isinstance(value, datetime):
        return format_utc(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, enum.Enum):
        return value.value
    return value


def reading_to_dict(reading: Reading) -> dict[str, Any]:
    """The JSON-ready dict of one reading (one element of a message's ``readings`` array)."""
    cls = type(reading)
    dev = reading.device
    return {
        "reading_id": reading.reading_id,
        "patient_id": reading.patient_id,
        "device": {
            "id": dev.key,
            "address": dev.address,
            "manufacturer": dev.manufacturer,
            "model": dev.model,
            "serial": dev.serial,
        },
        "measured_at": format_utc(reading.measured_at),
        "received_at": format_utc(reading.received_at),
        "device_time": None if reading.device_time is None else _format_local(reading.device_time),
        "sequence_number": reading.sequence_number,
        "values": reading.values(),
        "flags": sorted(str(f) for f in reading.flags),
        "attributes": {
            name: _attr_to_json(getattr(reading, name)) for name in ATTRIBUTE_FIELDS[cls.kind]
        },
    }


def encode_reading(reading: Reading) -> bytes:
    """One reading as compact JSON bytes (what the outbox stores and :func:`encode_batch` joins)."""
    return orjson.dumps(reading_to_dict(reading))


def encode_reading_checked(reading: Reading) -> bytes:
    """Like :func:`encode_reading`, but first checks the reading against the schema.

    Raises SchemaError naming the field (``reading.patient_id: ...``) for a reading the ingest
    would reject (a patient id with a space, a device id with a control character, ...).
    """
    d = reading_to_dict(reading)
    _check_reading(d, reading.kind, "reading")
    return orjson.dumps(d)


def reading_from_dict(d: Mapping[str, Any], kind: ReadingKind | str | None = None) -> Reading:
    """Rebuild the reading of :func:`reading_to_dict` (validating it first).

    ``kind`` defaults to ``d["kind"]`` if present. Value fields absent from ``values`` (the
    encoder leaves out None and non-finite values) come back as None, or NaN where the class
    requires a number.
    """
    kind_value = kind if kind is not None else d.get("kind")
    k = _KIND_BY_VALUE.get(str(kind_value))
    if k is None:
        raise SchemaError(f"unknown reading kind {kind_value!r}")
    cls = READING_TYPES[k]
    if not isinstance(d, dict):
        d = dict(d)
    d = {key: val for key, val in d.items() if key != "kind"}
    _check_reading(d, k, "reading")
    dev = d["device"]
    values = d["values"]
    identity = DeviceIdentity(
        address=dev["address"],
        manufacturer=dev["manufacturer"],
        model=dev["model"],
        serial=dev["serial"],
    )
    if identity.key != dev["id"]:
        raise SchemaError(f"reading.device.id: {dev['id']!r} is not the device's key")
    kwargs: dict[str, Any] = {
        "reading_id": d["reading_id"],
        "patient_id": d["patient_id"],
        "device": identity,
        "measured_at": _fromiso(d["measured_at"]),
        "received_at": _fromiso(d["received_at"]),
        "device_time": None if d["device_time"] is None else _fromiso(d["device_time"]),
        "sequence_number": None if d["sequence_number"] is None else int(d["sequence_number"]),
        "flags": frozenset(QualityFlag(f) for f in d["flags"]),
    }
    required = _REQUIRED_VALUE_FIELDS[k]
    for name in cls.value_fields:
        v = values.get(name)
        if v is None:
            kwargs[name] = math.nan if name in required else None
        else:
            kwargs[name] = float(v)
    attrs = d["attributes"]
    for name, conv in _ATTR_FROM_JSON[k].items():
        if name in attrs:
            kwargs[name] = conv(attrs[name])
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"reading: cannot build {cls.__name__}: {exc}") from exc


def _int_or_none(v: Any) -> int | None:
    return None if v is None else int(v)


def _bool_or_none(v: Any) -> bool | None:
    return None if v is None else bool(v)


def _meal_or_none(v: Any) -> Meal | None:
    return None if v is None else Meal(v)


def _utc_or_none(v: Any) -> datetime | None:
    return None if v is None else _fromiso(v)


def _floats(v: Any) -> tuple[float, ...]:
    return tuple(float(x) for x in v)


# ---------------------------------------------------------------------------------------------
# Attribute checks (one table per kind; mirrored by the JSON Schema's per-kind branches)

#: An attribute check returns None when the value is valid, else the problem (": must be ...",
#: or "[3]: must be ..." for an element), appended to the attribute's path in the error.
_AttrCheck = Callable[[object], str | None]


def _is_int_min(v: object, minimum: int) -> bool:
    """An integer >= minimum as JSON Schema counts it (2.0 is an integer; true is not)."""
    t = type(v)
    if t is int:
        return v >= minimum  # type: ignore[operator]
    return t is float and v.is_integer() and v >= minimum  # type: ignore[attr-defined,operator]


def _check_int_min(minimum: int, nullable: bool) -> _AttrCheck:
    problem = f": must be an integer >= {minimum}" + (" or null" if nullable else "")

    def check(v: object) -> str | None:
        if v is None and nullable:
            return None
        return None if _is_int_min(v, minimum) else problem

    return check


def _check_bool(nullable: bool) -> _AttrCheck:
    problem = ": must be true or false" + (" or null" if nullable else "")

    def check(v: object) -> str | None:
        if type(v) is bool or (v is None and nullable):
            return None
        return problem

    return check


def _check_meal(v: object) -> str | None:
    if v is None or (type(v) is str and v in _MEALS):
        return None
    return f": must be null or one of {sorted(_MEALS)}"


def _check_utc_or_null(v: object) -> str | None:
    if v is None:
        return None
    try:
        _parse_utc(v, "")
    except SchemaError as exc:
        return str(exc)
    return None


def _check_rr(v: object) -> str | None:
    if type(v) is not list:
        return ": must be an array of numbers (seconds)"
    if len(v) > _MAX_RR:
        return f": at most {_MAX_RR} intervals"
    for i, x in enumerate(v):
        t = type(x)
        if (t is not float and t is not int) or not 0.0 <= x <= _MAX_FLOAT:
            return f"[{i}]: must be a finite number >= 0"
    return None


_MEALS: Final = frozenset(str(m) for m in Meal)
_MAX_RR: Final = 1024

_ATTR_CHECKS: Final[Mapping[ReadingKind, Mapping[str, _AttrCheck]]] = {
    ReadingKind.BLOOD_PRESSURE: {"user_id": _check_int_min(0, True)},
    ReadingKind.GLUCOSE: {
        "sample_type": _check_int_min(0, True),
        "sample_location": _check_int_min(0, True),
        "meal": _check_meal,
        "is_control_solution": _check_bool(False),
    },
    ReadingKind.CGM: {
        "time_offset_min": _check_int_min(0, False),
        "session_start": _check_utc_or_null,
    },
    ReadingKind.HEART_RATE: {
        "rr_intervals_s": _check_rr,
        "sensor_contact": _check_bool(True),
    },
    ReadingKind.PULSE_OXIMETRY: {"continuous": _check_bool(False)},
    ReadingKind.BODY_TEMPERATURE: {"site": _check_int_min(0, True)},
    ReadingKind.WEIGHT: {"user_id": _check_int_min(0, True)},
    ReadingKind.DEVICE_STATUS: {},
}
#: Attributes a payload must carry (those without a default in the reading class).
_REQUIRED_ATTRS: Final[Mapping[ReadingKind, frozenset[str]]] = {
    ReadingKind.CGM: frozenset({"time_offset_min"}),
}
_ATTR_FROM_JSON: Final[Mapping[ReadingKind, Mapping[str, Callable[[Any], Any]]]] = {
    ReadingKind.BLOOD_PRESSURE: {"user_id": _int_or_none},
    ReadingKind.GLUCOSE: {
        "sample_type": _int_or_none,
        "sample_location": _int_or_none,
        "meal": _meal_or_none,
        "is_control_solution": bool,
    },
    ReadingKind.CGM: {"time_offset_min": int, "session_start": _utc_or_none},
    ReadingKind.HEART_RATE: {"rr_intervals_s": _floats, "sensor_contact": _bool_or_none},
    ReadingKind.PULSE_OXIMETRY: {"continuous": bool},
    ReadingKind.BODY_TEMPERATURE: {"site": _int_or_none},
    ReadingKind.WEIGHT: {"user_id": _int_or_none},
    ReadingKind.DEVICE_STATUS: {},
}
_VALUE_FIELDS: Final[Mapping[ReadingKind, frozenset[str]]] = {
    kind: frozenset(cls.value_fields) for kind, cls in READING_TYPES.items()
}
assert all(set(_ATTR_CHECKS[k]) == set(ATTRIBUTE_FIELDS[k]) for k in ReadingKind)

# ---------------------------------------------------------------------------------------------
# Batch encode / decode

_READING_KEYS: Final = frozenset(
    {
        "reading_id",
        "patient_id",
        "device",
        "measured_at",
        "received_at",
        "device_time",
        "sequence_number",
        "values",
        "flags",
        "attributes",
    }
)
_DEVICE_KEYS: Final = frozenset({"id", "address", "manufacturer", "model", "serial"})
_BATCH_KEYS: Final = frozenset({"schema", "gateway_id", "kind", "sent_at", "readings"})
_FLAG_VALUES: Final = frozenset(str(f) for f in QualityFlag)
_HEX32_RE: Final = re.compile(r"[0-9a-f]{32}")
#: Characters a device id may not hold: control characters (they cannot be escaped in line
#: protocol tags).
_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f]")


def encode_batch(
    gateway_id: str,
    kind: ReadingKind | str,
    readings: Sequence[Reading] | Sequence[bytes],
    *,
    sent_at: datetime | None = None,
) -> bytes:
    """One readings message (``vitalgate.readings/1``) as UTF-8 JSON bytes.

    ``readings`` are Reading objects (encoded here; each must be of ``kind``) or readings already
    encoded by :func:`encode_reading` (joined as they are, which is what the outbox replays).
    """
    k = _KIND_BY_VALUE.get(str(kind))
    if k is None:
        raise SchemaError(f"unknown reading kind {kind!r}")
    check_gateway_id(gateway_id)
    if not readings:
        raise SchemaError("a readings message needs at least one reading")
    if len(readings) > MAX_READINGS_PER_MESSAGE:
        raise SchemaError(f"at most {MAX_READINGS_PER_MESSAGE} readings per message")
    parts: list[bytes] = []
    for r in readings:
        if isinstance(r, bytes | bytearray | memoryview):
            parts.append(bytes(r))
        else:
            if r.kind is not k:
                raise SchemaError(f"a {r.kind} reading cannot go into a {k} message")
            parts.append(encode_reading(r))
    at = format_utc(sent_at if sent_at is not None else datetime.now(UTC))
    head = orjson.dumps(
        {"schema": READINGS_SCHEMA, "gateway_id": gateway_id, "kind": str(k), "sent_at": at}
    )
    return b"".join((head[:-1], b',"readings":[', b",".join(parts), b"]}"))


def _keys_error(where: str, got: object, expected: frozenset[str]) -> SchemaError:
    keys = set(got) if isinstance(got, dict) else set()
    missing = sorted(expected - keys)
    extra = sorted(keys - expected)
    parts = []
    if missing:
        parts.append(f"missing {', '.join(missing)}")
    if extra:
        parts.append(f"unexpected {', '.join(map(repr, extra))}")
    return SchemaError(f"{where}: {'; '.join(parts)}")


def _check_id(v: object, where: str) -> str:
    if type(v) is not str or _ID_CHARS_RE.fullmatch(v) is None:
        raise SchemaError(f"{where}: must be 1-64 characters of [A-Za-z0-9_.-]")
    return v


def _check_device(dev: object, where: str) -> str:
    if type(dev) is not dict:
        raise SchemaError(f"{where}: must be an object")
    if dev.keys() != _DEVICE_KEYS:
        raise _keys_error(where, dev, _DEVICE_KEYS)
    for key in ("address", "manufacturer", "model", "serial"):
        s = dev[key]
        if type(s) is not str or len(s) > MAX_DEVICE_STRING:
            raise SchemaError(f"{where}.{key}: must be a string of at most {MAX_DEVICE_STRING}")
    dev_id = dev["id"]
    if (
        type(dev_id) is not str
        or not 1 <= len(dev_id) <= MAX_DEVICE_STRING
        or _CONTROL_RE.search(dev_id) is not None
    ):
        raise SchemaError(
            f"{where}.id: must be 1-{MAX_DEVICE_STRING} characters without control characters"
        )
    return dev_id


def _check_reading(r: object, kind: ReadingKind, where: str) -> None:
    """Full check of one reading dict (used by reading_from_dict)."""
    try:
        _decode_readings([r], kind, "")
    except SchemaError as exc:
        raise SchemaError(str(exc).replace("readings[0]", where, 1)) from None


# StoredReading is a frozen slotted dataclass: its generated __init__ sets every field through
# object.__setattr__, which costs about as much as the rest of the validation of a reading. The
# hot loop fills the slots through their descriptors instead: the same object, half the cost.
_new_object: Final = object.__new__
_STORED_SETTERS: Final = tuple(
    getattr(StoredReading, name).__set__ for name in StoredReading.__slots__
)
assert StoredReading.__slots__ == (
    "kind",
    "reading_id",
    "patient_id",
    "gateway_id",
    "device_id",
    "measured_at",
    "values",
    "flags",
)
_EMPTY_FLAGS: Final[frozenset[str]] = frozenset()
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US: Final = timedelta(microseconds=1)


def _decode_readings(
    readings: list[Any], kind: ReadingKind, gateway_id: str
) -> list[StoredReading]:
    """Validate and convert a list of reading dicts: the hot loop of the ingest.

    Every check is inline and cheap; error messages (with the reading's index) are only built
    on failure.
    """
    value_fields = _VALUE_FIELDS[kind]
    attr_checks = _ATTR_CHECKS[kind]
    required_attrs = _REQUIRED_ATTRS.get(kind, frozenset())
    device_keys = _DEVICE_KEYS
    flag_values = _FLAG_VALUES
    hex_match = _HEX32_RE.fullmatch
    fromiso = _fromiso
    utc = UTC
    max_float = _MAX_FLOAT
    new = _new_object
    cls = StoredReading
    set_kind, set_rid, set_pid, set_gw, set_dev, set_time, set_values, set_flags = _STORED_SETTERS
    ok_patients: set[str] = set()
    ok_devices: dict[tuple[object, ...], str] = {}
    out: list[StoredReading] = []
    append = out.append
    for i, r in enumerate(readings):
        # len() == 10 plus the ten lookups below (KeyError on any missing) is the exact key check.
        if type(r) is not dict or len(r) != 10:
            raise _reading_shape_error(r, i)
        try:
            rid = r["reading_id"]
            pid = r["patient_id"]
            dev = r["device"]
            m = r["measured_at"]
            rec = r["received_at"]
            dt = r["device_time"]
            seq = r["sequence_number"]
            vals = r["values"]
            fl = r["flags"]
            attrs = r["attributes"]
        except KeyError:
            raise _reading_shape_error(r, i) from None
        if type(rid) is not str or hex_match(rid) is None:
            raise SchemaError(f"readings[{i}].reading_id: must be 32 lowercase hex characters")
        if type(pid) is not str or pid not in ok_patients:
            ok_patients.add(_check_id(pid, f"readings[{i}].patient_id"))
        if type(dev) is not dict or dev.keys() != device_keys:
            _check_device(dev, f"readings[{i}].device")
        dev_key = tuple(dev.values())
        try:
            dev_id = ok_devices.get(dev_key)
        except TypeError:  # an unhashable value: _check_device names it
            dev_id = None
        if dev_id is None:
            dev_id = ok_devices[dev_key] = _check_device(dev, f"readings[{i}].device")
        if not (
            type(m) is str
            and len(m) == 27
            and m[26] == "Z"
            and m[4:20:3] == "--T::."
            and m.isascii()
        ):
            raise SchemaError(f"readings[{i}].measured_at: {_UTC_HINT}")
        try:
            measured_at = fromiso(m)
        except ValueError:
            raise SchemaError(f"readings[{i}].measured_at: not a valid date-time: {m!r}") from None
        if measured_at.tzinfo is not utc:  # pragma: no cover - excluded by the shape check
            raise SchemaError(f"readings[{i}].measured_at: {_UTC_HINT}")
        if not _MIN_MEASURED_AT <= measured_at <= _MAX_MEASURED_AT:
            raise SchemaError(
                f"readings[{i}].measured_at: outside the range a time-series store can hold "
                f"(1677-09-22 .. 2262-04-11, epoch nanoseconds): {m!r}"
            )
        if not (
            type(rec) is str
            and len(rec) == 27
            and rec[26] == "Z"
            and rec[4:20:3] == "--T::."
            and rec.isascii()
        ):
            raise SchemaError(f"readings[{i}].received_at: {_UTC_HINT}")
        try:
            rec_t = fromiso(rec)
        except ValueError:
            raise SchemaError(
                f"readings[{i}].received_at: not a valid date-time: {rec!r}"
            ) from None
        if rec_t.tzinfo is not utc:  # pragma: no cover - excluded by the shape check
            raise SchemaError(f"readings[{i}].received_at: {_UTC_HINT}")
        if dt is not None and not (
            type(dt) is str
            and len(dt) == 19
            and dt[4:17:3] == "--T::"
            and dt.isascii()
            and _fromiso_naive_ok(dt)
        ):
            _parse_local(dt, f"readings[{i}].device_time")
        if seq is not None and (type(seq) is not int or seq < 0) and not _is_int_min(seq, 0):
            raise SchemaError(f"readings[{i}].sequence_number: must be an integer >= 0 or null")
        if type(vals) is not dict:
            raise SchemaError(f"readings[{i}].values: must be an object")
        values: dict[str, float] = vals
        for name, v in vals.items():
            if type(v) is float and -max_float <= v <= max_float and name in value_fields:
                continue
            values = _check_values(vals, value_fields, kind, i)
            break
        if type(fl) is not list:
            raise SchemaError(f"readings[{i}].flags: must be an array of quality flags")
        if fl:
            try:
                flags = frozenset(fl)
            except TypeError:
                flags = _EMPTY_FLAGS
            if not flags or not flags <= flag_values:
                bad = [f for f in fl if type(f) is not str or f not in flag_values]
                raise SchemaError(f"readings[{i}].flags: unknown quality flag {bad[0]!r}")
            if len(flags) != len(fl):
                raise SchemaError(f"readings[{i}].flags: must not repeat a flag")
        else:
            flags = _EMPTY_FLAGS
        if type(attrs) is not dict:
            raise SchemaError(f"readings[{i}].attributes: must be an object")
        for name, v in attrs.items():
            check = attr_checks.get(name)
            if check is None:
                raise SchemaError(
                    f"readings[{i}].attributes: unexpected {name!r} (a {kind} reading may have "
                    f"{', '.join(sorted(attr_checks)) or 'none'})"
                )
            problem = check(v)
            if problem is not None:
                raise SchemaError(f"readings[{i}].attributes.{name}{problem}")
        if required_attrs and not required_attrs <= attrs.keys():
            missing = ", ".join(sorted(required_attrs - attrs.keys()))
            raise SchemaError(f"readings[{i}].attributes: missing {missing}")
        obj = new(cls)
        set_kind(obj, kind)
        set_rid(obj, rid)
        set_pid(obj, pid)
        set_gw(obj, gateway_id)
        set_dev(obj, dev_id)
        set_time(obj, measured_at)
        set_values(obj, values)
        set_flags(obj, flags)
        append(obj)
    return out


def _reading_shape_error(r: object, i: int) -> SchemaError:
    if type(r) is not dict:
        return SchemaError(f"readings[{i}]: must be an object")
    return _keys_error(f"readings[{i}]", r, _READING_KEYS)


def _fromiso_naive_ok(value: str) -> bool:
    try:
        return _fromiso(value).tzinfo is None
    except ValueError:
        return False


def _check_values(
    vals: dict[str, Any], value_fields: frozenset[str], kind: ReadingKind, i: int
) -> dict[str, float]:
    """The slow path of a values object: ints become floats; anything else is an error."""
    values: dict[str, float] = {}
    for name, v in vals.items():
        if name not in value_fields:
            raise SchemaError(
                f"readings[{i}].values: unexpected {name!r} (a {kind} reading has "
                f"{', '.join(sorted(value_fields))})"
            )
        t = type(v)
        if (t is not float and t is not int) or not -_MAX_FLOAT <= v <= _MAX_FLOAT:
            raise SchemaError(f"readings[{i}].values.{name}: must be a finite number")
        values[name] = float(v)
    return values


def decode_payload(
    payload: bytes | bytearray | memoryview | str | Mapping[str, Any],
) -> tuple[str, ReadingKind, list[StoredReading]]:
    """Validate a readings payload on its own (no topic): ``(gateway_id, kind, readings)``."""
    if isinstance(payload, bytes | bytearray | memoryview | str):
        try:
            obj = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise SchemaError(f"payload is not valid UTF-8 JSON: {exc}") from None
    else:
        obj = payload
    return _check_envelope(obj)


def _check_envelope(obj: object) -> tuple[str, ReadingKind, list[StoredReading]]:
    gateway_id, kind, readings = _check_envelope_only(obj)
    return gateway_id, kind, _decode_readings(readings, kind, gateway_id)


def _check_envelope_only(obj: object) -> tuple[str, ReadingKind, list[Any]]:
    """The envelope checks of decode_payload: ``(gateway_id, kind, raw reading dicts)``."""
    if type(obj) is not dict:
        raise SchemaError("payload: must be a JSON object")
    if obj.keys() != _BATCH_KEYS:
        raise _keys_error("payload", obj, _BATCH_KEYS)
    if obj["schema"] != READINGS_SCHEMA:
        raise SchemaError(f"schema: must be {READINGS_SCHEMA!r}, got {obj['schema']!r}")
    gateway_id = obj["gateway_id"]
    if type(gateway_id) is not str:
        raise SchemaError("gateway_id: must be a string")
    try:
        check_gateway_id(gateway_id)
    except SchemaError as exc:
        raise SchemaError(f"gateway_id: {exc}") from None
    kind_value = obj["kind"]
    kind = _KIND_BY_VALUE.get(kind_value) if type(kind_value) is str else None
    if kind is None:
        raise SchemaError(f"kind: must be one of {sorted(_KIND_BY_VALUE)}, got {kind_value!r}")
    _parse_utc(obj["sent_at"], "sent_at")
    readings = obj["readings"]
    if type(readings) is not list or not readings:
        raise SchemaError("readings: must be a non-empty array")
    if len(readings) > MAX_READINGS_PER_MESSAGE:
        raise SchemaError(f"readings: at most {MAX_READINGS_PER_MESSAGE} per message")
    return gateway_id, kind, readings


def decode_batch(
    topic: str,
    payload: bytes | bytearray | memoryview | str,
    *,
    client_gateway_id: str | None = None,
) -> list[StoredReading]:
    """Validate a readings message against its topic and the schema; the readings to store.

    The topic must be ``vitalgate/v1/<gateway_id>/readings/<kind>`` with the payload's gateway_id
    and kind; ``client_gateway_id`` (the authenticated MQTT client, when known) must match too.
    Raises SchemaError with a precise reason otherwise.
    """
    topic_gateway, channel, topic_kind = parse_topic(topic)
    if channel != "readings":
        raise SchemaError(f"not a readings topic: {topic!r}")
    if client_gateway_id is not None and client_gateway_id != topic_gateway:
        raise SchemaError(
            f"client {client_gateway_id!r} may not publish to gateway {topic_gateway!r}'s topic"
        )
    gateway_id, kind, readings = decode_payload(payload)
    if gateway_id != topic_gateway:
        raise SchemaError(f"gateway_id: payload says {gateway_id!r}, topic says {topic_gateway!r}")
    if kind is not topic_kind:
        raise SchemaError(f"kind: payload says {kind!r}, topic says {topic_kind!r}")
    return readings


class _FallbackError(Exception):
    """Internal: the fast path met something it does not handle; use the reference path."""


#: What makes decode_batch_lines leave its fast path for the reference path (decode_batch and
#: the formatter), which then raises the precise error or formats the unusual reading.
_FALLBACK_ERRORS: Final = (
    _FallbackError,
    SchemaError,
    StoreError,
    KeyError,
    TypeError,
    ValueError,
    AttributeError,
)


def decode_batch_lines(
    topic: str,
    payload: bytes | bytearray | memoryview | str,
    formatter: LineProtocolFormatter,
    *,
    client_gateway_id: str | None = None,
) -> tuple[bytes, int]:
    """Validate a readings message and format it as line protocol in one pass (the ingest's path).

    Returns ``(body, count)``: the message's readings as newline-separated lines (no trailing
    newline) and how many there are. It accepts and rejects exactly what :func:`decode_batch`
    does, raising the same SchemaError, and the body equals
    ``formatter.body(decode_batch(topic, payload, ...))`` (LineProtocolError included, for a
    value line protocol cannot represent); property tests check both. It builds no
    StoredReading objects. A valid message is decoded by msgspec into typed structs that carry
    most of the schema's rules and is checked and formatted a column at a time
    (:func:`_typed_lines`). What that path refuses (msgspec's types are stricter than JSON
    Schema's: 2.0 is no int there) or does not take goes to the orjson path, a reading at a
    time (:func:`_row_lines`); and anything unusual there (an error to name...) is handed to
    the reference path for that message.
    """
    try:
        return _typed_lines(topic, payload, formatter, client_gateway_id)
    except _TYPED_FALLBACK_ERRORS:
        pass
    try:
        return _fast_lines(topic, payload, formatter, client_gateway_id)
    except _FALLBACK_ERRORS:
        pass
    readings = decode_batch(topic, payload, client_gateway_id=client_gateway_id)
    return formatter.body(readings), len(readings)


def _fast_lines(
    topic: str,
    payload: bytes | bytearray | memoryview | str,
    formatter: LineProtocolFormatter,
    client_gateway_id: str | None,
) -> tuple[bytes, int]:
    topic_gateway, channel, topic_kind = parse_topic(topic)
    if channel != "readings":
        raise _FallbackError
    if client_gateway_id is not None and client_gateway_id != topic_gateway:
        raise _FallbackError
    gateway_id, kind, readings = _check_envelope_only(orjson.loads(payload))
    if gateway_id != topic_gateway or kind is not topic_kind:
        raise _FallbackError
    return _row_lines(readings, kind, gateway_id, formatter)


def _row_lines(
    readings: list[Any], kind: ReadingKind, gateway_id: str, formatter: LineProtocolFormatter
) -> tuple[bytes, int]:
    """The orjson fast path, a reading at a time (messages the typed path does not take)."""
    value_fields = _VALUE_FIELDS[kind]
    prefixes = {name: formatter.field_prefix(name) for name in value_fields}
    attr_checks = _ATTR_CHECKS[kind]
    required_attrs = _REQUIRED_ATTRS.get(kind, frozenset())
    flag_values = _FLAG_VALUES
    hex_digits = "0123456789abcdef"  # stripping them leaves "" iff [0-9a-f]{32}
    id_match = _ID_CHARS_RE.fullmatch
    fromiso = _fromiso
    utc = UTC
    epoch, one_us = _EPOCH, _ONE_US
    max_float = _MAX_FLOAT
    mask_of = formatter.flags_mask
    with_id = formatter.include_reading_id
    field_texts = {name: formatter.field_text_cache(name) for name in value_fields}
    ok_patients: set[str] = set()
    ok_devices: dict[str, dict[str, Any]] = {}
    tag_sets: dict[tuple[str, str], str] = {}
    out: list[str] = []
    append = out.append
    for r in readings:
        if type(r) is not dict or len(r) != 10:
            raise _FallbackError
        rid = r["reading_id"]
        pid = r["patient_id"]
        dev = r["device"]
        m = r["measured_at"]
        rec = r["received_at"]
        dt = r["device_time"]
        seq = r["sequence_number"]
        vals = r["values"]
        fl = r["flags"]
        attrs = r["attributes"]
        if type(rid) is not str or len(rid) != 32 or rid.strip(hex_digits):
            raise _FallbackError
        if type(pid) is not str or pid not in ok_patients:
            if type(pid) is not str or id_match(pid) is None:
                raise _FallbackError
            ok_patients.add(pid)
        if type(dev) is not dict:
            raise _FallbackError
        dev_id = dev["id"]
        known = ok_devices.get(dev_id)
        if known is None or known != dev:
            dev_id = _check_device(dev, "")
            ok_devices[dev_id] = dev
        if not (
            type(m) is str
            and len(m) == 27
            and m[26] == "Z"
            and m[4:20:3] == "--T::."
            and m.isascii()
        ):
            raise _FallbackError
        measured_at = fromiso(m)
        if measured_at.tzinfo is not utc:  # pragma: no cover - excluded by the shape check
            raise _FallbackError
        if not _MIN_MEASURED_AT <= measured_at <= _MAX_MEASURED_AT:
            raise _FallbackError
        if not (
            type(rec) is str
            and len(rec) == 27
            and rec[26] == "Z"
            and rec[4:20:3] == "--T::."
            and rec.isascii()
        ):
            raise _FallbackError
        if fromiso(rec).tzinfo is not utc:  # pragma: no cover - excluded by the shape check
            raise _FallbackError
        if dt is not None and not (
            type(dt) is str
            and len(dt) == 19
            and dt[4:17:3] == "--T::"
            and dt.isascii()
            and fromiso(dt).tzinfo is None
        ):
            _parse_local(dt, "")
        if seq is not None and (type(seq) is not int or seq < 0):
            raise _FallbackError
        if type(vals) is not dict:
            raise _FallbackError
        fields: list[str] = []
        for name, v in vals.items():
            if type(v) is not float:
                raise _FallbackError
            cache = field_texts[name]  # KeyError (-> reference path) for a foreign name
            text = cache.get(v)
            if text is None:
                if not -max_float <= v <= max_float:
                    raise _FallbackError
                text = prefixes[name] + repr(v)
                if v:  # 0.0 == -0.0: zeros are never cached
                    cache[v] = text
            fields.append(text)
        if type(fl) is not list:
            raise _FallbackError
        if fl:
            flags = frozenset(fl)
            if not flags <= flag_values or len(flags) != len(fl):
                raise _FallbackError
            mask = mask_of(flags)
        else:
            mask = 0
        if type(attrs) is not dict:
            raise _FallbackError
        for name, v in attrs.items():
            if attr_checks[name](v) is not None:
                raise _FallbackError
        if required_attrs and not required_attrs <= attrs.keys():
            raise _FallbackError
        tag_set = tag_sets.get((pid, dev_id))
        if tag_set is None:
            try:
                tag_set = formatter.tag_set(kind, dev_id, gateway_id, pid)
            except ValueError:  # unrepresentable tag: the reference path names the reading
                raise _FallbackError from None
            tag_sets[pid, dev_id] = tag_set
        ns = (measured_at - epoch) // one_us * 1000
        if with_id:
            if fields:
                append(f'{tag_set} {",".join(fields)},flags={mask}i,reading_id="{rid}" {ns}')
            else:
                append(f'{tag_set} flags={mask}i,reading_id="{rid}" {ns}')
        elif fields:
            append(f"{tag_set} {','.join(fields)},flags={mask}i {ns}")
        else:
            append(f"{tag_set} flags={mask}i {ns}")
    return "\n".join(out).encode(), len(out)


# ---------------------------------------------------------------------------------------------
# The typed fast path: msgspec decodes and checks most of the schema in C


_I64_MAX: Final = 2**63 - 1
_Str256 = Annotated[str, msgspec.Meta(max_length=MAX_DEVICE_STRING)]
_UtcText = Annotated[str, msgspec.Meta(min_length=27, max_length=27)]
_Count = Annotated[int, msgspec.Meta(ge=0, le=_I64_MAX)]
_Finite = Annotated[float, msgspec.Meta(ge=-_MAX_FLOAT, le=_MAX_FLOAT)]
_FlagName = Literal[
    "body_movement",
    "cuff_too_loose",
    "irregular_pulse",
    "pulse_rate_out_of_range",
    "improper_position",
    "sensor_status",
    "no_sensor_contact",
    "control_solution",
    "implausible",
    "outlier",
    "duplicate",
    "low_quality",
    "motion_artifact",
    "clock_corrected",
    "clock_unset",
    "no_device_time",
    "derived",
]
_MealName = Literal["preprandial", "postprandial", "fasting", "casual", "bedtime"]
_RrIntervals = Annotated[
    tuple[Annotated[float, msgspec.Meta(ge=0.0, le=_MAX_FLOAT)], ...],
    msgspec.Meta(max_length=_MAX_RR),
]


class _MDevice(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_DEVICE_STRING)]
    address: _Str256
    manufacturer: _Str256
    model: _Str256
    serial: _Str256


class _MAttrs(msgspec.Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    """Base of the per-kind attribute types (every field optional unless said)."""


class _MAttrsUser(_MAttrs, frozen=True, forbid_unknown_fields=True, gc=False):
    user_id: _Count | None = None


class _MAttrsGlucose(_MAttrs, frozen=True, forbid_unknown_fields=True, gc=False):
    sample_type: _Count | None = None
    sample_location: _Count | None = None
    meal: _MealName | None = None
    is_control_solution: bool = False


class _MAttrsCgm(_MAttrs, frozen=True, forbid_unknown_fields=True, gc=False):
    time_offset_min: _Count
    session_start: _UtcText | None = None


class _MAttrsHeartRate(_MAttrs, frozen=True, forbid_unknown_fields=True, gc=False):
    rr_intervals_s: _RrIntervals = ()
    sensor_contact: bool | None = None


class _MAttrsPulseOximetry(_MAttrs, frozen=True, forbid_unknown_fields=True, gc=False):
    continuous: bool = False


class _MAttrsBodyTemperature(_MAttrs, frozen=True, forbid_unknown_fields=True, gc=False):
    site: _Count | None = None


#: The attribute type of each kind: what _ATTR_CHECKS and _REQUIRED_ATTRS accept, in msgspec's
#: terms (its int takes no 2.0 and its bool no 1: such payloads take the reference path).
_M_ATTRS: Final[Mapping[ReadingKind, type[_MAttrs]]] = {
    ReadingKind.BLOOD_PRESSURE: _MAttrsUser,
    ReadingKind.GLUCOSE: _MAttrsGlucose,
    ReadingKind.CGM: _MAttrsCgm,
    ReadingKind.HEART_RATE: _MAttrsHeartRate,
    ReadingKind.PULSE_OXIMETRY: _MAttrsPulseOximetry,
    ReadingKind.BODY_TEMPERATURE: _MAttrsBodyTemperature,
    ReadingKind.WEIGHT: _MAttrsUser,
    ReadingKind.DEVICE_STATUS: _MAttrs,
}
assert set(get_args(_FlagName)) == _FLAG_VALUES
assert set(get_args(_MealName)) == _MEALS
assert all(set(_M_ATTRS[k].__struct_fields__) == set(ATTRIBUTE_FIELDS[k]) for k in ReadingKind)


def _batch_decoder(kind: ReadingKind) -> msgspec.json.Decoder[Any]:
    """The msgspec decoder of a readings message of one kind (the topic's)."""
    options: dict[str, Any] = {"forbid_unknown_fields": True, "gc": False}
    reading = msgspec.defstruct(
        f"_MReading_{kind}",
        [
            ("reading_id", Annotated[str, msgspec.Meta(min_length=32, max_length=32)]),
            ("patient_id", Annotated[str, msgspec.Meta(min_length=1, max_length=64)]),
            ("device", _MDevice),
            ("measured_at", _UtcText),
            ("received_at", _UtcText),
            ("device_time", str | None),
            ("sequence_number", _Count | None),
            ("values", dict[str, _Finite]),  # a dict: its key order is the order of the fields
            ("flags", list[_FlagName]),
            ("attributes", _M_ATTRS[kind]),
        ],
        **options,
    )
    batch = msgspec.defstruct(
        f"_MBatch_{kind}",
        [
            ("schema", Literal["vitalgate.readings/1"]),
            ("gateway_id", str),
            ("kind", Literal[str(kind)]),
            ("sent_at", _UtcText),
            (
                "readings",
                Annotated[
                    list[reading],  # type: ignore[valid-type]
                    msgspec.Meta(min_length=1, max_length=MAX_READINGS_PER_MESSAGE),
                ],
            ),
        ],
        **options,
    )
    return msgspec.json.Decoder(batch)


_BATCH_DECODERS: Final[Mapping[ReadingKind, msgspec.json.Decoder[Any]]] = {
    kind: _batch_decoder(kind) for kind in ReadingKind
}
_ATTR_SESSION_START: Final = operator.attrgetter("session_start")
_HEX_DIGITS: Final = b"0123456789abcdef"
#: Where a UTC time of the JSON Schema's shape (2026-11-24T07:30:00.000000Z) has its separators.
_UTC_SEPARATORS: Final = ((4, "-"), (7, "-"), (10, "T"), (13, ":"), (16, ":"), (19, "."), (26, "Z"))
#: What makes decode_batch_lines leave its typed path (:func:`_typed_lines`) for the orjson one:
#: msgspec's refusals (the orjson path names the problem, or accepts what msgspec's stricter
#: types do not, like an integer written 2.0) and the fast path's own.
_TYPED_FALLBACK_ERRORS: Final = (*_FALLBACK_ERRORS, msgspec.MsgspecError)


def _typed_lines(
    topic: str,
    payload: bytes | bytearray | memoryview | str,
    formatter: LineProtocolFormatter,
    client_gateway_id: str | None,
) -> tuple[bytes, int]:
    """decode_batch_lines for a typical message: msgspec decodes it into typed structs.

    msgspec checks in C what the JSON Schema says of types, key sets, lengths, numbers, flags
    and attributes; the rest (identifier characters, time shapes and dates, unique flags, one
    key order of the values) is checked here a column at a time, each distinct patient, device,
    time received, flag list or session start once. Anything msgspec or these checks refuse
    raises, and the caller takes the orjson path,
    which accept or name the problem exactly as :func:`decode_batch` does.
    """
    topic_gateway, channel, topic_kind = parse_topic(topic)
    if channel != "readings" or topic_kind is None:
        raise _FallbackError
    if client_gateway_id is not None and client_gateway_id != topic_gateway:
        raise _FallbackError
    batch = _BATCH_DECODERS[topic_kind].decode(payload)
    gateway_id = batch.gateway_id
    if gateway_id != topic_gateway:  # a topic gateway passed check_gateway_id
        raise _FallbackError
    _parse_utc(batch.sent_at, "sent_at")
    kind = topic_kind
    readings = batch.readings
    n = len(readings)
    rid_c = list(map(_ATTR_READING_ID, readings))
    pid_c = list(map(_ATTR_PATIENT_ID, readings))
    dev_c = list(map(_ATTR_DEVICE, readings))
    m_c = list(map(_ATTR_MEASURED_AT, readings))
    vals_c = list(map(_ATTR_VALUES, readings))
    fl_c = list(map(_ATTR_FLAGS, readings))
    # reading_id: 32 characters each (msgspec), all lowercase hex
    if "".join(rid_c).encode("ascii").translate(None, _HEX_DIGITS):
        raise _FallbackError
    # patient_id, device, received_at, device_time: once per distinct value
    patients = set(pid_c)
    id_match = _ID_CHARS_RE.fullmatch
    for pid in patients:
        if id_match(pid) is None:
            raise _FallbackError
    devices = set(dev_c)
    for dev in devices:
        if _CONTROL_RE.search(dev.id) is not None:
            raise _FallbackError
    for rec in set(map(_ATTR_RECEIVED_AT, readings)):
        _parse_utc(rec, "")
    for dt in set(map(_ATTR_DEVICE_TIME, readings)):
        if dt is not None:
            _parse_local(dt, "")
    # measured_at: 27 characters each (msgspec); the shape over the joined column, the dates
    m_text = "\n".join(m_c)
    if not m_text.isascii():
        raise _FallbackError
    for at, separator in _UTC_SEPARATORS:
        if m_text[at::28] != separator * n:
            raise _FallbackError
    times = list(map(_fromiso, m_c))
    if min(times) < _MIN_MEASURED_AT or max(times) > _MAX_MEASURED_AT:
        raise _FallbackError
    us_c = list(map(operator.floordiv, map(operator.sub, times, repeat(_EPOCH)), repeat(_ONE_US)))
    if 0 in us_c:  # the epoch itself is written as 0, not 0000
        raise _FallbackError
    # values: finite floats (msgspec), names of the kind; the texts a column at a time when
    # every reading lists the same names in the same order, else a reading at a time
    value_fields = _VALUE_FIELDS[kind]
    orders = set(map(tuple, vals_c))
    names = next(iter(orders)) if len(orders) == 1 else None
    fields: Iterable[str] | None
    if names is None:
        fields = _value_texts_by_reading(vals_c, value_fields, formatter)
    else:
        text_columns: list[list[Any]] = []
        for name in names:
            if name not in value_fields:
                raise _FallbackError
            column = list(map(operator.itemgetter(name), vals_c))
            cache = formatter.field_text_cache(name)
            texts = list(map(cache.get, column))
            if None in texts:
                prefix = formatter.field_prefix(name)
                for i, cached in enumerate(texts):
                    if cached is None:
                        v = column[i]
                        texts[i] = text = prefix + repr(v)
                        if v:  # 0.0 == -0.0: zeros are never cached
                            cache[v] = text
            text_columns.append(texts)
        if len(text_columns) == 3:  # typical of blood pressure, CGM, SpO2, weight
            fields = [f"{a},{b},{c}," for a, b, c in zip(*text_columns, strict=True)]
        elif len(text_columns) == 1:
            fields = map(str.__add__, text_columns[0], repeat(","))
        elif text_columns:
            fields = map(",".join, zip(*text_columns, repeat(""), strict=False))
        else:
            fields = None
    # flags: known names (msgspec), each at most once
    flag_keys = list(map(tuple, fl_c))
    mask_of: dict[tuple[Any, ...], int] = {}
    for key in set(flag_keys):
        if key:
            flags = frozenset(key)
            if len(flags) != len(key):
                raise _FallbackError
            mask_of[key] = formatter.flags_mask(flags)
        else:
            mask_of[key] = 0
    # attributes: typed (msgspec); a session start's shape and date
    if kind is ReadingKind.CGM:
        attrs_c = map(_ATTR_ATTRIBUTES, readings)
        for start in set(map(_ATTR_SESSION_START, attrs_c)):
            if start is not None:
                _parse_utc(start, "")
    # the tags, once per patient and device
    if len(patients) == 1 and len(devices) == 1:
        tag = formatter.tag_set(kind, dev_c[0].id, gateway_id, pid_c[0])
        tags: Iterable[str] = repeat(tag, n)
    else:
        tag_of = {
            (pid, dev): formatter.tag_set(kind, dev.id, gateway_id, pid)
            for pid, dev in set(zip(pid_c, dev_c, strict=True))
        }
        tags = map(tag_of.__getitem__, zip(pid_c, dev_c, strict=True))
    if len(mask_of) == 1:
        masks: Iterable[int] = repeat(mask_of[flag_keys[0]], n)
    else:
        masks = map(mask_of.__getitem__, flag_keys)
    # the lines (each text of fields ends with a comma, or is empty)
    if fields is None:
        fields = repeat("", n)
    if formatter.include_reading_id:
        lines = [
            f'{t} {f}flags={k}i,reading_id="{r}" {u}000'
            for t, f, k, r, u in zip(tags, fields, masks, rid_c, us_c, strict=True)
        ]
    else:
        lines = [
            f"{t} {f}flags={k}i {u}000"
            for t, f, k, u in zip(tags, fields, masks, us_c, strict=True)
        ]
    return "\n".join(lines).encode(), n


def _value_texts_by_reading(
    vals_c: list[dict[str, float]], value_fields: frozenset[str], formatter: LineProtocolFormatter
) -> list[str]:
    """Each reading's ``name=value,`` texts joined (with a trailing comma; "" for no values)."""
    caches: dict[str, dict[float, str]] = {}
    prefixes: dict[str, str] = {}
    out: list[str] = []
    append = out.append
    for vals in vals_c:
        parts: list[str] = []
        for name, v in vals.items():
            cache = caches.get(name)
            if cache is None:
                if name not in value_fields:
                    raise _FallbackError
                cache = caches[name] = formatter.field_text_cache(name)
                prefixes[name] = formatter.field_prefix(name)
            text = cache.get(v)
            if text is None:
                text = prefixes[name] + repr(v)
                if v:  # 0.0 == -0.0: zeros are never cached
                    cache[v] = text
            parts.append(text)
        parts.append("")
        append(",".join(parts))
    return out


_ATTR_READING_ID: Final = operator.attrgetter("reading_id")
_ATTR_PATIENT_ID: Final = operator.attrgetter("patient_id")
_ATTR_DEVICE: Final = operator.attrgetter("device")
_ATTR_MEASURED_AT: Final = operator.attrgetter("measured_at")
_ATTR_RECEIVED_AT: Final = operator.attrgetter("received_at")
_ATTR_DEVICE_TIME: Final = operator.attrgetter("device_time")
_ATTR_VALUES: Final = operator.attrgetter("values")
_ATTR_FLAGS: Final = operator.attrgetter("flags")
_ATTR_ATTRIBUTES: Final = operator.attrgetter("attributes")


# ---------------------------------------------------------------------------------------------
# Status, alerts, dead letters


def encode_status(gateway_id: str, state: StatusState, at: datetime) -> bytes:
    """A retained status message (``vitalgate.status/1``)."""
    if state not in ("online", "offline"):
        raise SchemaError(f"status state must be 'online' or 'offline', got {state!r}")
    return orjson.dumps(
        {
            "schema": STATUS_SCHEMA,
            "gateway_id": check_gateway_id(gateway_id),
            "state": state,
            "at": format_utc(at),
        }
    )


def decode_status(payload: bytes) -> tuple[str, StatusState, datetime]:
    """``(gateway_id, state, at)`` of a status message; raises SchemaError."""
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise SchemaError(f"status payload is not valid JSON: {exc}") from None
    keys = frozenset({"schema", "gateway_id", "state", "at"})
    if type(obj) is not dict or obj.keys() != keys:
        raise _keys_error("status", obj, keys)
    if obj["schema"] != STATUS_SCHEMA:
        raise SchemaError(f"status.schema: must be {STATUS_SCHEMA!r}")
    if obj["state"] not in ("online", "offline"):
        raise SchemaError("status.state: must be 'online' or 'offline'")
    gateway_id = _check_id(obj["gateway_id"], "status.gateway_id")
    return gateway_id, obj["state"], _parse_utc(obj["at"], "status.at")


_ALERT_RESERVED: Final = frozenset({"schema", "gateway_id", "at"})


def encode_alert(gateway_id: str, event: Mapping[str, Any], at: datetime) -> bytes:
    """An alert message (``vitalgate.alert/1``): the envelope plus the event's own fields.

    ``event`` must name its ``type`` (for example ``"outbox_full"``); its other fields are the
    alert engineer's to define. It may not override the envelope keys.
    """
    clash = _ALERT_RESERVED & event.keys()
    if clash:
        raise SchemaError(f"alert event may not set {sorted(clash)}")
    if not isinstance(event.get("type"), str) or not event["type"]:
        raise SchemaError("alert event needs a non-empty string 'type'")
    body = {
        "schema": ALERT_SCHEMA,
        "gateway_id": check_gateway_id(gateway_id),
        "at": format_utc(at),
    }
    body.update(event)
    try:
        return orjson.dumps(body)
    except TypeError as exc:
        raise SchemaError(f"alert event is not JSON-serialisable: {exc}") from exc


def encode_deadletter(reason: str, topic: str, payload: bytes, at: datetime) -> bytes:
    """A dead-letter record (``vitalgate.deadletter/1``) keeping the rejected payload whole."""
    return orjson.dumps(
        {
            "schema": DEADLETTER_SCHEMA,
            "reason": reason,
            "topic": topic,
            "payload_b64": base64.b64encode(payload).decode("ascii"),
            "at": format_utc(at),
        }
    )


def json_schema(schema: str = READINGS_SCHEMA) -> dict[str, Any]:
    """The JSON Schema document of a payload schema (from the package's ``schemas/`` files)."""
    from importlib.resources import files

    try:
        name = SCHEMA_FILES[schema]
    except KeyError:
        raise SchemaError(f"unknown payload schema {schema!r}") from None
    data = files("vitalgate.cloud_sync").joinpath("schemas", name).read_bytes()
    result: dict[str, Any] = orjson.loads(data)
    return result
