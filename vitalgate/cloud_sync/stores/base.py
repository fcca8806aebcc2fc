"""What every store shares: the error split, the flags bitmask, columnar result building."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import numpy as np

from vitalgate.cloud_sync.store import ReadingSeries
from vitalgate.errors import StoreError
from vitalgate.readings import QualityFlag, ReadingKind

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)

__all__ = [
    "FlagCodec",
    "StoreRejectedError",
    "StoreUnavailableError",
    "build_series",
    "datetime_to_ns",
    "default_flag_codec",
    "ns_to_datetime",
    "to_utc_ns",
]


class StoreUnavailableError(StoreError):
    """The store could not be reached or failed transiently (retry the same write later)."""


class StoreRejectedError(StoreError):
    """The store refused the data itself (HTTP 400, a constraint): retrying will not help.

    The ingest answers it by writing message by message and dead-lettering what is refused.
    """


class FlagCodec:
    """Quality flags <-> the integer bitmask stored as the ``flags`` field.

    ``flag_bits`` maps a flag value to its bit position (``schema.FLAG_BITS``). Decoding keeps
    bits it does not know as ``"bit<N>"`` so a newer writer's flags are not silently dropped.
    """

    __slots__ = ("_bits", "_decoded")

    def __init__(self, flag_bits: Mapping[QualityFlag, int] | Mapping[str, int]) -> None:
        self._bits = {str(k): int(v) for k, v in flag_bits.items()}
        self._decoded: dict[int, frozenset[str]] = {0: frozenset()}

    def mask(self, flags: Iterable[str]) -> int:
        mask = 0
        for flag in flags:
            bit = self._bits.get(str(flag))
            if bit is None:
                raise StoreRejectedError(f"unknown quality flag {flag!r}")
            mask |= 1 << bit
        return mask

    def flags(self, mask: int) -> frozenset[str]:
        cached = self._decoded.get(mask)
        if cached is not None:
            return cached
        names = {name for name, bit in self._bits.items() if mask >> bit & 1}
        known = 0
        for bit in self._bits.values():
            known |= 1 << bit
        rest = mask & ~known
        bit = 0
        while rest:
            if rest & 1:
                names.add(f"bit{bit}")
            rest >>= 1
            bit += 1
        out = frozenset(names)
        if len(self._decoded) < 4096:
            self._decoded[mask] = out
        return out


def default_flag_codec() -> FlagCodec:
    """The codec for the bit order the payload schema defines."""
    from vitalgate.cloud_sync.schema import FLAG_BITS

    return FlagCodec(FLAG_BITS)


def ns_to_datetime(ns: int) -> datetime:
    """UTC datetime of integer epoch nanoseconds (microsecond resolution, as datetimes have)."""
    seconds, rest_ns = divmod(int(ns), 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=rest_ns // 1000)


def datetime_to_ns(when: datetime) -> int:
    """Integer nanoseconds since the Unix epoch of a timezone-aware datetime (exact, no float)."""
    if when.tzinfo is None:
        raise StoreRejectedError(f"timestamp {when!r} is naive; UTC is required")
    return ((when - _EPOCH) // _ONE_US) * 1000


def to_utc_ns(when: datetime, name: str) -> int:
    """Epoch ns of a query bound; naive datetimes are refused (UTC inside)."""
    if when.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware UTC, got {when!r}")
    return datetime_to_ns(when)


def build_series(
    kind: ReadingKind,
    patient_id: str,
    times_ns: Sequence[int],
    columns: Mapping[str, Sequence[float | None]],
    *,
    reading_ids: Sequence[str] = (),
    device_ids: Sequence[str] = (),
    flags: Sequence[frozenset[str]] = (),
) -> ReadingSeries:
    """A ReadingSeries from row-aligned sequences (None -> NaN), already sorted oldest first."""
    n = len(times_ns)
    values: dict[str, np.ndarray] = {}
    for name, column in columns.items():
        if len(column) != n:
            raise ValueError(f"column {name!r} has {len(column)} rows, expected {n}")
        values[name] = np.array(
            [np.nan if v is None else v for v in column], dtype=np.float64
        ).reshape(n)
    return ReadingSeries(
        kind=kind,
        patient_id=patient_id,
        times_ns=np.asarray(times_ns, dtype=np.int64).reshape(n),
        values=values,
        reading_ids=tuple(reading_ids),
        device_ids=tuple(device_ids),
        flags=tuple(flags),
    )
