"""The store interface: what the ingest writes into and what dashboards and reports read from.

Three implementations live beside this module: InfluxDB 2.x/3.x through influxdb-client's write
API (tested against VictoriaMetrics), InfluxDB 1.x (line protocol on ``/write``, InfluxQL on
``/query``), and an embedded SQLite store for a single home or the demo.

Idempotency: the same reading always maps to the same series (measurement = kind; tags patient,
gateway, device) and the same timestamp (``measured_at``), so a re-delivery overwrites instead of
duplicating.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from vitalgate.readings import ReadingKind

__all__ = ["DeviceLatest", "ReadingSeries", "ReadingStore", "StoredReading"]


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
class DeviceLatest:
    """The newest reading per device of a patient (for status views)."""

    patient_id: str
    kind: ReadingKind
    device_id: str
    gateway_id: str
    measured_at: datetime


@runtime_checkable
class ReadingStore(Protocol):
    """A time-series store of readings. Writes are idempotent by (series, timestamp)."""

    def write(self, readings: Sequence[StoredReading]) -> None:
        """Durably write a batch; raises StoreError when the store refused or is unreachable."""
        ...

    def query(
        self, patient_id: str, kind: ReadingKind, start: datetime, end: datetime
    ) -> ReadingSeries:
        """Readings with start <= measured_at < end, oldest first."""
        ...

    def patients(self) -> list[str]:
        """Every patient id with at least one reading."""
        ...

    def latest(self, patient_id: str) -> list[DeviceLatest]:
        """The newest reading of each (kind, device) of a patient."""
        ...

    def close(self) -> None: ...
