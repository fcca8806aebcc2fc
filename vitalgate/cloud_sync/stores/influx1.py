"""InfluxDB 1.x: line protocol on ``POST /write?db=..&precision=ns``, InfluxQL on ``/query``.

InfluxDB 1.x keeps string fields, so every point carries ``reading_id``; a re-delivered reading
has the same series and nanosecond timestamp and overwrites itself. Authentication is HTTP
basic (``username``/``password``), as InfluxDB 1.x expects when ``auth-enabled`` is on.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from vitalgate.cloud_sync.store import (
    StoredReading,
)
from vitalgate.cloud_sync.stores.base import FlagCodec, ReadsThrough, default_flag_codec
from vitalgate.cloud_sync.stores.influxql import HttpEndpoint, InfluxQLReader
from vitalgate.cloud_sync.stores.lineprotocol import LineProtocolFormatter

__all__ = ["Influx1Store"]


class Influx1Store(ReadsThrough):
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

    def close(self) -> None:
        self._http.close()
