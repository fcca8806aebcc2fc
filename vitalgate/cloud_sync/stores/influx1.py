"""InfluxDB 1.x: line protocol on ``POST /write?db=..&precision=ns``, InfluxQL on ``/query``.

InfluxDB 1.x keeps string fields, so every point carries ``reading_id``; a re-delivered reading
has the same series and nanosecond timestamp and overwrites itself. Authentication is HTTP
basic (``username``/``password``), as InfluxDB 1.x expects when ``auth-enabled`` is on.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from datetime import datetime

from vitalgate.cloud_sync.store import (
    BinnedSeries,
    DeviceLatest,
    ReadingSeries,
    StoredReading,
)
from vitalgate.cloud_sync.stores.base import FlagCodec, default_flag_codec
from vitalgate.cloud_sync.stores.influxql import HttpEndpoint, InfluxQLReader
from vitalgate.cloud_sync.stores.lineprotocol import LineProtocolFormatter
from vitalgate.readings import ReadingKind

__all__ = ["Influx1Store"]


class Influx1Store:
    """The :class:`~vitalgate.cloud_sync.store.ReadingStore` on an InfluxDB 1.x server."""

    def __init__(
        self,
        base_url: str,
        database: str,
        *,
        retention_policy: str = "",
        username: str = "",
        password: str = "",
        timeout_s: float = 30.0,
        verify_tls: bool = True,
        ca_file: str | None = None,
        flag_codec: FlagCodec | None = None,
    ) -> None:
        if not database:
            raise ValueError("an InfluxDB 1.x store needs a database name")
        headers: dict[str, str] = {}
        if username:
            token = base64.b64encode(f"{username}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        self.database = database
        self.retention_policy = retention_policy
        self._http = HttpEndpoint(
            base_url, headers=headers, timeout_s=timeout_s, verify_tls=verify_tls, ca_file=ca_file
        )
        codec = flag_codec if flag_codec is not None else default_flag_codec()
        self._formatter = LineProtocolFormatter(codec.mask, include_reading_id=True)
        self._reader = InfluxQLReader(
            self._http, database, retention_policy=retention_policy, flag_codec=codec
        )
        self._write_params = {"db": database, "precision": "ns"}
        if retention_policy:
            self._write_params["rp"] = retention_policy

    def __repr__(self) -> str:
        return f"Influx1Store({self._http.base_url!r}, {self.database!r})"

    @property
    def line_formatter(self) -> LineProtocolFormatter:
        """The formatter of this store's lines (for :meth:`write_lines` callers)."""
        return self._formatter

    def write(self, readings: Sequence[StoredReading]) -> None:
        if not readings:
            return
        self.write_lines(self._formatter.body(readings))

    def write_lines(self, body: bytes) -> None:
        """Write a pre-formatted line-protocol body (newline-separated lines)."""
        self._http.request(
            "POST",
            "/write",
            fields=self._write_params,
            body=body,
            headers={"Content-Type": "text/plain; charset=utf-8"},
        )

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
        return self._reader.downsample(
            patient_id,
            kind,
            field,
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

    def close(self) -> None:
        self._http.close()
