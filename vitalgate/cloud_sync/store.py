"""The store interface: what the ingest writes into and what dashboards and reports read from.

Three implementations live beside this module: InfluxDB 2.x/3.x through influxdb-client's write
API (tested against VictoriaMetrics), InfluxDB 1.x (line protocol on ``/write``, InfluxQL on
``/query``), and an embedded SQLite store for a single home or the demo.

Idempotency: the same reading always maps to the same series (measurement = kind; tags patient,
gateway, device) and the same timestamp (``measured_at``), so a re-delivery overwrites instead of
duplicating.

Reads: ``query`` returns a columnar :class:`ReadingSeries`; ``downsample`` aggregates one field
in the store (fixed bins aligned to the Unix epoch, excluded flags left out, exact quantiles),
so a chart of dense data does not move every reading (``downsample_fields``: several fields of
one kind in one read); ``count_flagged`` counts the readings
carrying a flag per device.

Thread-safety: every store may be used from several threads at once (the dashboard runs a
page's reads side by side; the ingest writes from a worker thread). The HTTP stores share a
pooled urllib3 client; the SQLite store serialises writes on one connection and reads on a
small pool of their own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from vitalgate.readings import ReadingKind

__all__ = [
    "BinnedSeries",
    "DeviceLatest",
    "ReadingReads",
    "ReadingSeries",
    "ReadingStore",
    "StoredReading",
]


@dataclass(frozen=True, slots=True)
class StoredReading:
    """One reading as the store keeps it: the unit of writes (built from a validated payload)."""

    kind: ReadingKind
    reading_id: str
    patient_id: str
    gateway_id: str
    device_id: str
    measured_at: datetime  # timezone-aware UTC
    values: dict[str, float]  # numeric fields, units in the names
    flags: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ReadingSeries:
    """A columnar range of one patient's readings of one kind, oldest first.

    ``times_ns`` holds UTC epoch nanoseconds; every array in ``values`` has the same length as
    ``times_ns`` (NaN where a reading lacks that field). Columnar so a 90-day page is cheap.
    """

    kind: ReadingKind
    patient_id: str
    times_ns: npt.NDArray[np.int64]
    values: dict[str, npt.NDArray[np.float64]]
    reading_ids: tuple[str, ...] = ()
    device_ids: tuple[str, ...] = ()
    flags: tuple[frozenset[str], ...] = field(default=())

    def __len__(self) -> int:
        return int(self.times_ns.shape[0])


@dataclass(frozen=True, slots=True)
class BinnedSeries:
    """One field of one patient's readings of one kind, aggregated in fixed time bins.

    Bin ``k`` covers ``[offset_s + k * bin_s, offset_s + (k + 1) * bin_s)`` seconds after the
    Unix epoch (UTC), whatever the store: the boundaries do not depend on the query range.
    Only bins holding at least one reading are present, oldest first. ``starts_ns`` is each
    bin's start (UTC epoch ns, on the boundary even where the queried range starts inside the
    bin); ``mean``, ``min`` and ``max`` are the field's statistics over the bin and ``count``
    the readings in it. ``quantiles`` maps each requested probability to the quantile of all
    those readings together (NumPy's default "linear" definition; NaN without readings).
    """

    kind: ReadingKind
    patient_id: str
    field_name: str
    bin_s: int
    offset_s: int
    starts_ns: npt.NDArray[np.int64]
    mean: npt.NDArray[np.float64]
    min: npt.NDArray[np.float64]
    max: npt.NDArray[np.float64]
    count: npt.NDArray[np.int64]
    quantiles: dict[float, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.starts_ns.shape[0])

    @property
    def total(self) -> int:
        """The number of readings aggregated (the sum of ``count``)."""
        return int(self.count.sum())


@dataclass(frozen=True, slots=True)
class DeviceLatest:
    """The newest reading per device of a patient (for status views)."""

    patient_id: str
    kind: ReadingKind
    device_id: str
    gateway_id: str
    measured_at: datetime


class ReadingReads(Protocol):
    """The read half of a store (what a store's separate reader object offers)."""

    def query(
        self,
        patient_id: str,
        kind: ReadingKind,
        start: datetime,
        end: datetime,
        *,
        reading_ids: bool = True,
    ) -> ReadingSeries:
        """Readings with start <= measured_at < end, oldest first.

        ``reading_ids=False`` leaves the reading ids out (``reading_ids`` is empty): cheaper
        where the store keeps them as strings beside the values, for callers that only chart.
        """
        ...

    def downsample(
        self,
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
        """``field`` of the readings with start <= measured_at < end, aggregated in the store.

        Bins are ``bin_s`` seconds wide, aligned to the Unix epoch shifted by ``offset_s`` (see
        :class:`BinnedSeries`). Readings without the field, and readings carrying any flag of
        ``exclude_flags``, are left out of the bins and the ``quantiles`` (probabilities in
        [0, 1]). Raises ValueError for a bad bin width, field name or probability.
        """
        ...

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
        """:meth:`downsample` of several fields of one kind in one read of the range.

        Per field name, what ``downsample`` gives for it (``quantiles`` per field; a field
        absent from the mapping gets none); the store reads the rows once for all of them.
        """
        ...

    def count_flagged(
        self, patient_id: str, kind: ReadingKind, flag: str, start: datetime, end: datetime
    ) -> dict[str, int]:
        """Per device id, how many readings with start <= measured_at < end carry ``flag``.

        Devices without such a reading are absent.
        """
        ...

    def patients(self) -> list[str]:
        """Every patient id with at least one reading."""
        ...

    def latest(self, patient_id: str) -> list[DeviceLatest]:
        """The newest reading of each (kind, device) of a patient."""
        ...


@runtime_checkable
class ReadingStore(ReadingReads, Protocol):
    """A time-series store of readings. Writes are idempotent by (series, timestamp)."""

    def write(self, readings: Sequence[StoredReading]) -> None:
        """Durably write a batch; raises StoreError when the store refused or is unreachable."""
        ...

    def close(self) -> None: ...
