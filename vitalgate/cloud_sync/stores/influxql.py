"""The InfluxQL read side over HTTP ``/query``, and the HTTP plumbing the Influx stores share.

InfluxQL on ``/query`` is served by InfluxDB 1.x natively, by InfluxDB 2.x through its 1.x
compatibility API (the bucket needs a DBRP mapping; authenticate with ``Authorization: Token``)
and by InfluxDB 3.x: the portable read path. Results are requested with ``epoch=ns`` and
``chunked=true`` (so no server-side row limit truncates a long range) and parsed with orjson.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import urllib3

from vitalgate.cloud_sync.store import DeviceLatest, ReadingSeries
from vitalgate.cloud_sync.stores.base import (
    FlagCodec,
    StoreRejectedError,
    StoreUnavailableError,
    build_series,
    ns_to_datetime,
    to_utc_ns,
)
from vitalgate.readings import ReadingKind

__all__ = ["HttpEndpoint", "InfluxQLReader", "quote_identifier", "quote_string"]

log = logging.getLogger(__name__)

_TAG_COLUMNS = frozenset({"time", "device", "gateway", "patient", "flags", "reading_id"})


def quote_identifier(name: str) -> str:
    """An InfluxQL double-quoted identifier."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_string(text: str) -> str:
    """An InfluxQL single-quoted string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass
class HttpEndpoint:
    """A base URL with a pooled urllib3 client; maps HTTP outcomes onto StoreError subclasses.

    400, 413 and 422 (the data itself is refused) raise :class:`StoreRejectedError`; everything
    else that is not 2xx -- connection errors, timeouts, 5xx, but also 401/403/404, which mean
    the store is misconfigured rather than the data bad -- raises
    :class:`StoreUnavailableError`, so the ingest keeps the data and retries.
    """

    base_url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 30.0
    verify_tls: bool = True
    ca_file: str | None = None
    _pool: urllib3.PoolManager = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        kwargs: dict[str, Any] = {}
        if self.base_url.startswith("https:"):
            kwargs["cert_reqs"] = "CERT_REQUIRED" if self.verify_tls else "CERT_NONE"
            if self.ca_file:
                kwargs["ca_certs"] = self.ca_file
        self._pool = urllib3.PoolManager(
            num_pools=2,
            maxsize=4,
            retries=False,
            timeout=urllib3.Timeout(connect=min(5.0, self.timeout_s), read=self.timeout_s),
            **kwargs,
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        fields: Mapping[str, str] | None = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> bytes:
        url = f"{self.base_url}{path}"
        all_headers = {**self.headers, **(headers or {})}
        try:
            if body is None:
                resp = self._pool.request(method, url, fields=fields, headers=all_headers)
            else:
                if fields:
                    url += "?" + urllib.parse.urlencode(fields)
                resp = self._pool.request(method, url, body=body, headers=all_headers)
        except urllib3.exceptions.HTTPError as exc:
            raise StoreUnavailableError(f"{method} {self.base_url}{path}: {exc}") from exc
        status = int(resp.status)
        if 200 <= status < 300:
            return bytes(resp.data)
        text = bytes(resp.data[:500]).decode("utf-8", "replace").strip()
        message = f"{method} {self.base_url}{path}: HTTP {status}: {text}"
        if status in (400, 413, 422):
            raise StoreRejectedError(message)
        raise StoreUnavailableError(message)

    def close(self) -> None:
        self._pool.clear()


class InfluxQLReader:
    """Range queries, patients and latest-per-device through InfluxQL ``/query``."""

    def __init__(
        self,
        endpoint: HttpEndpoint,
        database: str,
        *,
        retention_policy: str = "",
        flag_codec: FlagCodec,
        extra_params: Mapping[str, str] | None = None,
    ) -> None:
        self._http = endpoint
        self._db = database
        self._rp = retention_policy
        self._codec = flag_codec
        self._extra = dict(extra_params or {})

    def _source(self, kind: ReadingKind) -> str:
        if self._rp:
            return f"{quote_identifier(self._rp)}.{quote_identifier(str(kind))}"
        return quote_identifier(str(kind))

    def run(self, q: str) -> list[dict[str, Any]]:
        """Every series of every (chunked) result of one statement; raises StoreError."""
        params = {"db": self._db, "q": q, "epoch": "ns", "chunked": "true", "chunk_size": "10000"}
        if self._rp:
            params["rp"] = self._rp
        params.update(self._extra)
        body = self._http.request("POST", "/query", fields=params)
        series: list[dict[str, Any]] = []
        for chunk in body.splitlines():
            if not chunk.strip():
                continue
            doc = orjson.loads(chunk)
            if "error" in doc:
                raise StoreRejectedError(f"InfluxQL error: {doc['error']}")
            for result in doc.get("results", ()):
                if "error" in result:
                    raise StoreRejectedError(f"InfluxQL error: {result['error']}")
                series.extend(result.get("series", ()))
        return series

    def query(
        self, patient_id: str, kind: ReadingKind, start: datetime, end: datetime
    ) -> ReadingSeries:
        kind = ReadingKind(kind)
        q = (
            f"SELECT * FROM {self._source(kind)} WHERE patient = {quote_string(patient_id)}"
            f" AND time >= {to_utc_ns(start, 'start')} AND time < {to_utc_ns(end, 'end')}"
        )
        rows: list[tuple[int, str, str, int, dict[str, float | None]]] = []
        field_names: set[str] = set()
        for s in self.run(q):
            columns: list[str] = s["columns"]
            idx = {name: i for i, name in enumerate(columns)}
            value_cols = [(c, i) for c, i in idx.items() if c not in _TAG_COLUMNS]
            field_names.update(c for c, _ in value_cols)
            i_time, i_dev = idx["time"], idx.get("device")
            i_rid, i_flags = idx.get("reading_id"), idx.get("flags")
            for row in s["values"]:
                rows.append(
                    (
                        int(row[i_time]),
                        "" if i_rid is None or row[i_rid] is None else str(row[i_rid]),
                        "" if i_dev is None or row[i_dev] is None else str(row[i_dev]),
                        0 if i_flags is None or row[i_flags] is None else int(row[i_flags]),
                        {c: row[i] for c, i in value_cols},
                    )
                )
        rows.sort(key=lambda r: (r[0], r[2]))
        names = sorted(field_names)
        return build_series(
            kind,
            patient_id,
            [r[0] for r in rows],
            {n: [r[4].get(n) for r in rows] for n in names},
            reading_ids=[r[1] for r in rows],
            device_ids=[r[2] for r in rows],
            flags=[self._codec.flags(r[3]) for r in rows],
        )

    def patients(self) -> list[str]:
        sources = ",".join(self._source(k) for k in ReadingKind)
        found: set[str] = set()
        for s in self.run(f'SHOW TAG VALUES FROM {sources} WITH KEY = "patient"'):
            i = s["columns"].index("value")
            found.update(str(row[i]) for row in s.get("values", ()))
        return sorted(found)

    def latest(self, patient_id: str) -> list[DeviceLatest]:
        sources = ",".join(self._source(k) for k in ReadingKind)
        q = (
            f"SELECT last(flags) FROM {sources} WHERE patient = {quote_string(patient_id)}"
            " GROUP BY device, gateway"
        )
        newest: dict[tuple[str, str], tuple[int, str]] = {}
        for s in self.run(q):
            name = str(s["name"]).rsplit(".", 1)[-1]
            tags = s.get("tags", {})
            key = (name, str(tags.get("device", "")))
            for row in s["values"]:
                t = int(row[0])
                if key not in newest or t > newest[key][0]:
                    newest[key] = (t, str(tags.get("gateway", "")))
        return [
            DeviceLatest(
                patient_id=patient_id,
                kind=ReadingKind(kind),
                device_id=device,
                gateway_id=gateway,
                measured_at=ns_to_datetime(t),
            )
            for (kind, device), (t, gateway) in sorted(newest.items())
        ]
