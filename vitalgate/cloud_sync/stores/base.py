"""What every store shares: the error split, the flags bitmask, columnar result building, and
the argument checks and client-side reference of the downsampled read."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from vitalgate.cloud_sync.store import BinnedSeries, DeviceLatest, ReadingReads, ReadingSeries
from vitalgate.errors import StoreError
from vitalgate.readings import QualityFlag, ReadingKind

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_BIT_NAME = re.compile(r"bit([0-9]|[1-5][0-9]|6[0-2])")

__all__ = [
    "DownsampleArgs",
    "FlagCodec",
    "OneFieldFromMany",
    "ReadsThrough",
    "StoreRejectedError",
    "StoreUnavailableError",
    "bin_reduce",
    "binned_from_rows",
    "build_series",
    "check_downsample",
    "check_downsample_fields",
    "datetime_to_ns",
    "default_flag_codec",
    "empty_binned",
    "ns_to_datetime",
    "quantile_ranks",
    "quantile_value",
    "to_utc_ns",
]


class OneFieldFromMany:
    """``downsample`` as the one-field case of the store's ``downsample_fields`` (for classes
    that are :class:`~vitalgate.cloud_sync.store.ReadingReads` otherwise)."""

    def downsample(
        self: ReadingReads,
        patient_id: str,
        kind: ReadingKind,
        field: str,
        start: datetime,
        end: datetime,
        *,
        bin_s: int,
        offset_s: int = 0,
        exclude_flags: Iterable[str] = (),
        quantiles: Sequence[float] = (),
    ) -> BinnedSeries:
        return self.downsample_fields(
            patient_id,
            kind,
            (field,),
            start,
            end,
            bin_s=bin_s,
            offset_s=offset_s,
            exclude_flags=exclude_flags,
            quantiles={field: quantiles},
        )[field]


class ReadsThrough(OneFieldFromMany):
    """The read methods of a store, forwarded to ``self._reader`` (a store whose reads are
    served by a separate reader object: the InfluxQL reader, the VictoriaMetrics reader);
    ``downsample`` is the one-field ``downsample_fields``."""

    _reader: ReadingReads

    def query(
        self,
        patient_id: str,
        kind: ReadingKind,
        start: datetime,
        end: datetime,
        *,
        reading_ids: bool = True,
    ) -> ReadingSeries:
        return self._reader.query(patient_id, kind, start, end, reading_ids=reading_ids)

    def downsample_fields(
        self,
        patient_id: str,
        kind: ReadingKind,
        fields: Sequence[str],
        start: datetime,
        end: datetime,
        *,
        bin_s: int,
        offset_s: int = 0,
        exclude_flags: Iterable[str] = (),
        quantiles: Mapping[str, Sequence[float]] | None = None,
    ) -> dict[str, BinnedSeries]:
        return self._reader.downsample_fields(
            patient_id,
            kind,
            fields,
            start,
            end,
            bin_s=bin_s,
            offset_s=offset_s,
            exclude_flags=exclude_flags,
            quantiles=quantiles,
        )

    def count_flagged(
        self, patient_id: str, kind: ReadingKind, flag: str, start: datetime, end: datetime
    ) -> dict[str, int]:
        return self._reader.count_flagged(patient_id, kind, flag, start, end)

    def patients(self) -> list[str]:
        return self._reader.patients()

    def latest(self, patient_id: str) -> list[DeviceLatest]:
        return self._reader.latest(patient_id)


def check_downsample_fields(
    fields: Sequence[str],
    start: datetime,
    end: datetime,
    *,
    bin_s: int,
    offset_s: int,
    quantiles: Mapping[str, Sequence[float]] | None,
) -> list[DownsampleArgs]:
    """:func:`check_downsample` for each of several distinct fields (ValueError)."""
    if isinstance(fields, str) or not fields:
        raise ValueError(f"fields must be a non-empty sequence of field names, got {fields!r}")
    if len(set(fields)) != len(fields):
        raise ValueError(f"fields repeat a name: {list(fields)!r}")
    wanted = dict(quantiles or {})
    unknown = set(wanted) - set(fields)
    if unknown:
        raise ValueError(f"quantiles for fields not asked for: {sorted(unknown)!r}")
    return [
        check_downsample(f, start, end, bin_s=bin_s, offset_s=offset_s, quantiles=wanted.get(f, ()))
        for f in fields
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

    def query_mask(self, flags: Iterable[str]) -> int:
        """The bitmask of flags named in a query (``"bit<N>"`` names an unknown bit);
        raises ValueError for a name that is neither."""
        mask = 0
        for flag in flags:
            bit = self._bits.get(str(flag))
            if bit is None:
                match = _BIT_NAME.fullmatch(str(flag))
                if match is None:
                    raise ValueError(f"unknown quality flag {flag!r}")
                bit = int(match.group(1))
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


# --------------------------------------------------------------------------------------------
# The downsampled read (ReadingStore.downsample)

_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class DownsampleArgs:
    """The checked arguments of one ``downsample`` call (bounds in ns, offset in [0, bin))."""

    field: str
    bin_s: int
    offset_s: int
    start_ns: int
    end_ns: int
    quantiles: tuple[float, ...]

    @property
    def bin_ns(self) -> int:
        return self.bin_s * _NS_PER_S

    @property
    def offset_ns(self) -> int:
        return self.offset_s * _NS_PER_S


def check_downsample(
    field: str,
    start: datetime,
    end: datetime,
    *,
    bin_s: int,
    offset_s: int,
    quantiles: Sequence[float],
) -> DownsampleArgs:
    """Validate ``downsample`` arguments (ValueError) and normalise the offset into [0, bin)."""
    if not _FIELD_NAME.fullmatch(field) or field in ("flags", "reading_id"):
        raise ValueError(f"not a numeric field name: {field!r}")
    if isinstance(bin_s, bool) or not isinstance(bin_s, int) or bin_s < 1:
        raise ValueError(f"bin_s must be a positive whole number of seconds, got {bin_s!r}")
    if isinstance(offset_s, bool) or not isinstance(offset_s, int):
        raise ValueError(f"offset_s must be a whole number of seconds, got {offset_s!r}")
    for q in quantiles:
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile probabilities lie in [0, 1], got {q!r}")
    return DownsampleArgs(
        field=field,
        bin_s=bin_s,
        offset_s=offset_s % bin_s,
        start_ns=to_utc_ns(start, "start"),
        end_ns=to_utc_ns(end, "end"),
        quantiles=tuple(float(q) for q in quantiles),
    )


def empty_binned(
    kind: ReadingKind, patient_id: str, args: DownsampleArgs, quantiles: Mapping[float, float]
) -> BinnedSeries:
    """A BinnedSeries with no bins."""
    return BinnedSeries(
        kind=kind,
        patient_id=patient_id,
        field_name=args.field,
        bin_s=args.bin_s,
        offset_s=args.offset_s,
        starts_ns=np.empty(0, np.int64),
        mean=np.empty(0, np.float64),
        min=np.empty(0, np.float64),
        max=np.empty(0, np.float64),
        count=np.empty(0, np.int64),
        quantiles=dict(quantiles),
    )


def binned_from_rows(
    kind: ReadingKind,
    patient_id: str,
    args: DownsampleArgs,
    rows: Sequence[Sequence[Any]],
    quantiles: Mapping[float, float],
) -> BinnedSeries:
    """A BinnedSeries from a store's ``(bin start ns, mean, min, max, count)`` rows (at least
    one, oldest first)."""
    starts, mean, lo, hi, count = zip(*rows, strict=True)
    return BinnedSeries(
        kind=kind,
        patient_id=patient_id,
        field_name=args.field,
        bin_s=args.bin_s,
        offset_s=args.offset_s,
        starts_ns=np.array(starts, dtype=np.int64),
        mean=np.array(mean, dtype=np.float64),
        min=np.array(lo, dtype=np.float64),
        max=np.array(hi, dtype=np.float64),
        count=np.array(count, dtype=np.int64),
        quantiles=dict(quantiles),
    )


def quantile_ranks(n: int, q: float) -> tuple[int, int, float]:
    """The two 0-based order statistics NumPy's linear quantile ``q`` of ``n`` values reads,
    and the weight of the upper one: ``(lo, hi, t)`` (``n`` >= 1)."""
    h = (n - 1) * q
    lo = min(max(math.floor(h), 0), n - 1)
    return lo, min(lo + 1, n - 1), h - lo


def quantile_value(a: float, b: float, t: float) -> float:
    """Linear interpolation between order statistics ``a`` <= ``b``, as NumPy computes it."""
    diff = b - a
    return float(b - diff * (1.0 - t)) if t >= 0.5 else float(a + diff * t)


def bin_reduce(
    kind: ReadingKind,
    patient_id: str,
    args: DownsampleArgs,
    times_ns: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
) -> BinnedSeries:
    """The downsampled read computed here from readings already selected (time-sorted, NaN
    where a reading lacks the field): the client-side reference every store must agree with."""
    keep = np.isfinite(values)
    t, v = times_ns[keep], values[keep]
    quantiles = {q: float(np.quantile(v, q)) if v.size else math.nan for q in args.quantiles}
    if v.size == 0:
        return empty_binned(kind, patient_id, args, quantiles)
    bins = (t - args.offset_ns) // args.bin_ns
    if np.any(np.diff(bins) < 0):
        order = np.argsort(bins, kind="stable")
        bins, v = bins[order], v[order]
    starts = np.flatnonzero(np.concatenate(([True], bins[1:] != bins[:-1])))
    counts = np.diff(np.concatenate((starts, [bins.size])))
    return BinnedSeries(
        kind=kind,
        patient_id=patient_id,
        field_name=args.field,
        bin_s=args.bin_s,
        offset_s=args.offset_s,
        starts_ns=(bins[starts] * args.bin_ns + args.offset_ns).astype(np.int64),
        mean=np.add.reduceat(v, starts) / counts,
        min=np.minimum.reduceat(v, starts),
        max=np.maximum.reduceat(v, starts),
        count=counts.astype(np.int64),
        quantiles=quantiles,
    )
