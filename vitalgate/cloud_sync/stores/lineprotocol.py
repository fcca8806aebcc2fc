"""Fast InfluxDB line protocol for stored readings: f-strings, cached escaping, no Point objects.

One reading becomes one line::

    blood_pressure,device=Omron|M7|123,gateway=gw-1,patient=p-1 systolic_mmhg=128.0,\
diastolic_mmhg=82.0,flags=4i,reading_id="3f..." 1795939800000000000

* measurement = the reading kind; tags (sorted by key, as InfluxDB prefers) ``device``,
  ``gateway``, ``patient``; a tag whose value is empty is left out (line protocol has no empty
  tag values);
* fields = the numeric values (floats, units in the names), ``flags`` as an integer bitmask
  (bit order :data:`vitalgate.cloud_sync.schema.FLAG_BITS`; always written, so every reading has
  at least one field and ``flags`` marks the existence of a point), and optionally
  ``reading_id`` as a string field (InfluxDB keeps it; VictoriaMetrics would store it as 0);
* timestamp = ``measured_at`` in integer nanoseconds since the Unix epoch (UTC).

Escaping follows the InfluxDB line protocol reference: in the measurement, commas and spaces
are escaped with a backslash; in tag keys, tag values and field keys, commas, equals signs and
spaces; in string field values, double quotes and backslashes. Line protocol cannot represent
a newline, a trailing backslash, or an odd run of backslashes before a comma, an equals sign or
a space, in a tag value or key: such a value raises
:class:`LineProtocolError` instead of corrupting the batch. Field values must be finite numbers.

Formatting costs ~0.5 us per reading (escaped tag values are cached per formatter), about 20x
faster than ``influxdb_client.Point(...).to_line_protocol()``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from vitalgate.cloud_sync.store import StoredReading
from vitalgate.cloud_sync.stores.base import StoreRejectedError, datetime_to_ns

__all__ = [
    "LineProtocolError",
    "LineProtocolFormatter",
    "LineProtocolStore",
    "datetime_to_ns",
    "escape_field_key",
    "escape_measurement",
    "escape_string_value",
    "escape_tag",
]

_MEASUREMENT_TABLE = str.maketrans({",": "\\,", " ": "\\ "})
_TAG_TABLE = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ "})
_STRING_TABLE = str.maketrans({'"': '\\"', "\\": "\\\\"})
_UNREPRESENTABLE = ("\n", "\r")

#: A field value the fast path may have written without validating it: not finite, not a
#: number (bool, None, a string). Tag values can match too (a patient called "nan"): a match
#: only sends the batch through the validating slow path.
_SUSPICIOUS = re.compile(r"=(?:nan|-?inf|True|False|None|'|\"|[A-Za-z_]+\()")

#: Bound of each per-formatter escape cache (entries); the cache is cleared when it is reached.
ESCAPE_CACHE_MAX = 65_536


_AMBIGUOUS_BACKSLASH = re.compile(r"(?<!\\)(?:\\\\)*\\[,= ]")


class LineProtocolError(StoreRejectedError, ValueError):
    """A reading that cannot be written as line protocol (a permanent, per-reading problem)."""


def _check_representable(what: str, text: str) -> None:
    if not text:
        raise LineProtocolError(f"{what} must not be empty")
    for bad in _UNREPRESENTABLE:
        if bad in text:
            raise LineProtocolError(f"{what} {text!r} contains a line break")
    if text.endswith("\\"):
        raise LineProtocolError(f"{what} {text!r} ends with a backslash")
    if "\\" in text and _AMBIGUOUS_BACKSLASH.search(text):
        # An odd run of backslashes before a character that gets escaped would swallow the
        # escape: "\\," is written "\\\\," and read back as "\\\\" plus a separator.
        raise LineProtocolError(f"{what} {text!r} has a backslash before ',', '=' or ' '")


def escape_measurement(name: str) -> str:
    """Escape a measurement name (commas and spaces)."""
    _check_representable("measurement", name)
    return name.translate(_MEASUREMENT_TABLE)


def escape_tag(text: str) -> str:
    """Escape a tag key, tag value or field key (commas, equals signs, spaces)."""
    _check_representable("tag or field key/value", text)
    return text.translate(_TAG_TABLE)


escape_field_key = escape_tag


def escape_string_value(text: str) -> str:
    """A double-quoted string field value (double quotes and backslashes escaped)."""
    if "\n" in text or "\r" in text:
        # InfluxDB accepts raw newlines inside quoted strings, but a line-oriented reader of
        # the batch would not: keep every line one line.
        raise LineProtocolError(f"string field {text!r} contains a line break")
    return '"' + text.translate(_STRING_TABLE) + '"'


def _format_value(key: str, value: float) -> str:
    # float repr is the shortest round-trip text ("128.0", "1e-07"); both InfluxDB and
    # VictoriaMetrics parse it as a float field. ints (JSON "64") are written as floats too, so
    # a field never changes type between points; bools are not numbers here.
    if type(value) is not float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise LineProtocolError(f"field {key!r} is not a number: {value!r}")
        value = float(value)
    if not math.isfinite(value):
        raise LineProtocolError(f"field {key!r} is not finite: {value!r}")
    return repr(value)


class _SlowPathError(Exception):
    """Internal: the fast path met something it does not handle; use the validating path."""


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


class LineProtocolFormatter:
    """Formats :class:`StoredReading` batches as line protocol.

    ``flags_to_mask`` turns a reading's flags into the integer bitmask written as ``flags``
    (normally ``FlagCodec(schema.FLAG_BITS).mask``); its results are cached per distinct flag
    set. ``include_reading_id`` adds the ``reading_id`` string field.

    :meth:`body` is the fast path the stores use: cached tag sets and field-key prefixes, one
    f-string per reading, then one regex pass over the whole body for values that are not
    finite numbers; anything unusual (a new tag set, field key or flag set, a suspicious value)
    re-runs the batch through :meth:`line`, which validates every value and raises
    :class:`LineProtocolError` naming the reading. Keep one formatter per writer thread (its
    caches are plain dicts).
    """

    __slots__ = (
        "_field_prefix",
        "_field_text",
        "_flags_to_mask",
        "_include_reading_id",
        "_masks",
        "_tags",
    )

    def __init__(
        self,
        flags_to_mask: Callable[[frozenset[str]], int],
        *,
        include_reading_id: bool = True,
    ) -> None:
        self._flags_to_mask = flags_to_mask
        self._include_reading_id = include_reading_id
        self._tags: dict[tuple[object, str, str, str], str] = {}
        self._field_prefix: dict[str, str] = {}  # value name -> "escaped_name="
        self._masks: dict[frozenset[str], int] = {frozenset(): 0}
        self._field_text: dict[str, dict[float, str]] = {}

    def field_text_cache(self, key: str) -> dict[float, str]:
        """A cache of ``escaped_key=repr(value)`` for one value field, keyed by the value.

        Readings repeat a small set of values (device resolution), and ``repr(float)`` is the
        dearest step of formatting a field. Only finite, non-zero floats may be stored (``0.0
        == -0.0`` would share an entry; look up floats only, as ``True == 1 == 1.0``). The
        cache is emptied when it reaches :data:`ESCAPE_CACHE_MAX` entries.
        """
        cache = self._field_text.get(key)
        if cache is None:
            self._prefix(key)  # LineProtocolError for a reserved name
            if len(self._field_text) >= ESCAPE_CACHE_MAX:
                self._field_text.clear()
            cache = self._field_text[key] = {}
        elif len(cache) >= ESCAPE_CACHE_MAX:
            cache.clear()
        return cache

    @property
    def include_reading_id(self) -> bool:
        """Whether each line carries the ``reading_id`` string field."""
        return self._include_reading_id

    def _tag_set(self, reading: StoredReading) -> str:
        return self.tag_set(reading.kind, reading.device_id, reading.gateway_id, reading.patient_id)

    def tag_set(self, kind: object, device_id: str, gateway_id: str, patient_id: str) -> str:
        """``measurement,device=..,gateway=..,patient=..`` (escaped, cached); LineProtocolError."""
        key = (kind, device_id, gateway_id, patient_id)
        cached = self._tags.get(key)
        if cached is not None:
            return cached
        if not patient_id:
            raise LineProtocolError("patient_id must not be empty")
        parts = [escape_measurement(str(kind))]
        for tag, value in (
            ("device", device_id),
            ("gateway", gateway_id),
            ("patient", patient_id),
        ):
            if value:
                parts.append(f"{tag}={escape_tag(value)}")
        text = ",".join(parts)
        if len(self._tags) >= ESCAPE_CACHE_MAX:
            self._tags.clear()
        self._tags[key] = text
        return text

    def field_prefix(self, key: str) -> str:
        """``escaped_key=`` of a value field (cached); LineProtocolError for a reserved name."""
        return self._prefix(key)

    def flags_mask(self, flags: frozenset[str]) -> int:
        """The ``flags`` bitmask of a flag set (cached)."""
        return self._mask(flags)

    def _prefix(self, key: str) -> str:
        cached = self._field_prefix.get(key)
        if cached is None:
            if key in ("flags", "reading_id"):
                raise LineProtocolError(f"value name {key!r} is reserved")
            cached = escape_field_key(key) + "="
            if len(self._field_prefix) >= ESCAPE_CACHE_MAX:
                self._field_prefix.clear()
            self._field_prefix[key] = cached
        return cached

    def _mask(self, flags: frozenset[str]) -> int:
        mask = self._masks.get(flags)
        if mask is None:
            mask = self._flags_to_mask(flags)
            if len(self._masks) >= ESCAPE_CACHE_MAX:
                self._masks.clear()
            self._masks[flags] = mask
        return mask

    def line(self, reading: StoredReading) -> str:
        """One reading as one line (no trailing newline), fully validated."""
        prefix = self._prefix
        fields = [f"{prefix(k)}{_format_value(k, v)}" for k, v in reading.values.items()]
        fields.append(f"flags={self._mask(reading.flags)}i")
        if self._include_reading_id:
            fields.append(f"reading_id={escape_string_value(reading.reading_id)}")
        return f"{self._tag_set(reading)} {','.join(fields)} {datetime_to_ns(reading.measured_at)}"

    def lines(self, readings: Iterable[StoredReading]) -> list[str]:
        """Every reading as a validated line; raises LineProtocolError naming the reading."""
        line = self.line
        out: list[str] = []
        for reading in readings:
            try:
                out.append(line(reading))
            except StoreRejectedError as exc:
                raise LineProtocolError(f"reading {reading.reading_id!r}: {exc}") from exc
        return out

    def body(self, readings: Sequence[StoredReading]) -> bytes:
        """A whole write body: the lines joined by newlines, UTF-8 encoded (the fast path)."""
        try:
            text = self._fast_text(readings)
        except (_SlowPathError, KeyError, TypeError, AttributeError, StoreRejectedError):
            text = None  # the slow path validates every line and names the reading
        if text is None or _SUSPICIOUS.search(text) is not None:
            text = "\n".join(self.lines(readings))
        return text.encode()

    def _fast_text(self, readings: Sequence[StoredReading]) -> str:
        tags = self._tags
        prefixes = self._field_prefix
        masks = self._masks
        with_id = self._include_reading_id
        epoch, one_us = _EPOCH, _ONE_US
        out: list[str] = []
        append = out.append
        for r in readings:
            tag_set = tags.get((r.kind, r.device_id, r.gateway_id, r.patient_id))
            if tag_set is None:
                tag_set = self._tag_set(r)
            values = r.values
            if values:
                head = f"{tag_set} {','.join([f'{prefixes[k]}{v!r}' for k, v in values.items()])},"
            else:
                head = f"{tag_set} "
            mask = masks[r.flags]
            ns = (r.measured_at - epoch) // one_us * 1000
            if with_id:
                rid = r.reading_id
                if '"' in rid or "\\" in rid or "\n" in rid:
                    raise _SlowPathError
                append(f'{head}flags={mask}i,reading_id="{rid}" {ns}')
            else:
                append(f"{head}flags={mask}i {ns}")
        return "\n".join(out)


@runtime_checkable
class LineProtocolStore(Protocol):
    """A store that takes pre-formatted line protocol (the ingest's fast path).

    ``line_formatter`` is the formatter whose lines :meth:`write_lines` expects (it knows, for
    example, whether the store keeps ``reading_id``); ``write_lines`` writes a body of
    newline-separated lines and raises StoreError like ``write``.
    """

    @property
    def line_formatter(self) -> LineProtocolFormatter: ...

    def write_lines(self, body: bytes) -> None: ...
