"""The InfluxQL read side over HTTP ``/query``, and the HTTP plumbing the Influx stores share.

InfluxQL on ``/query`` is served by InfluxDB 1.x natively, by InfluxDB 2.x through its 1.x
compatibility API (the bucket needs a DBRP mapping; authenticate with ``Authorization: Token``)
and by InfluxDB 3.x: the portable read path. Results are requested with ``epoch=ns`` and
``chunked=true`` (so no server-side row limit truncates a long range) and parsed with orjson.

Range reads ask for the fields and the ``device`` tag only (``SELECT *::field, "device"::tag``)
and turn the JSON rows into NumPy columns at once (one transpose per chunk, no per-row
records). The downsampled read is ``SELECT mean(), min(), max(), count() ... GROUP BY
time(<bin>, <offset>) fill(none)``: InfluxQL's preset bin boundaries are the Unix epoch plus
the offset, as :class:`~vitalgate.cloud_sync.store.BinnedSeries` defines. Its quantiles are
read exactly with InfluxQL's nearest-rank ``percentile()``, asked for the two order statistics
NumPy's linear definition interpolates between. Excluded flags are a bitwise condition on the
``flags`` field (``flags & <mask> = 0``), used only when the range holds a reading to exclude
(checked in the same request as the unconditioned aggregates): the condition costs InfluxDB a
second column per aggregate.
"""

from __future__ import annotations

import logging
import math
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import urllib3

from vitalgate.cloud_sync.store import BinnedSeries, DeviceLatest, ReadingSeries
from vitalgate.cloud_sync.stores.base import (
    FlagCodec,
    OneFieldFromMany,
    StoreRejectedError,
    StoreUnavailableError,
    binned_from_rows,
    check_downsample_fields,
    empty_binned,
    ns_to_datetime,
    quantile_ranks,
    quantile_value,
    to_utc_ns,
)
from vitalgate.readings import ReadingKind

__all__ = ["HttpEndpoint", "InfluxQLReader", "quote_identifier", "quote_string"]

log = logging.getLogger(__name__)

_TAG_COLUMNS = frozenset({"time", "device", "gateway", "patient", "flags", "reading_id"})
# Quantiles near either end are read with bottom()/top() while they return at most this many
# values; beyond, with two percentile() calls.
_SELECTOR_LIMIT = 20_000


def _float_column(column: Sequence[object]) -> npt.NDArray[np.float64]:
    """A JSON column as float64 (null -> NaN)."""
    return np.array(column, dtype=np.float64)


def _string_column(column: Sequence[object]) -> list[str]:
    """A JSON column of strings (null -> "")."""
    if None in column:
        return ["" if v is None else str(v) for v in column]
    return list(column)  # type: ignore[arg-type]


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


class InfluxQLReader(OneFieldFromMany):
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

    def run_many(self, statements: list[str]) -> list[list[dict[str, Any]]]:
        """The series of each of several statements sent in one request; raises StoreError."""
        params = {
            "db": self._db,
            "q": ";".join(statements),
            "epoch": "ns",
            "chunked": "true",
            "chunk_size": "10000",
        }
        if self._rp:
            params["rp"] = self._rp
        params.update(self._extra)
        body = self._http.request("POST", "/query", fields=params)
        out: list[list[dict[str, Any]]] = [[] for _ in statements]
        for chunk in body.splitlines():
            if not chunk.strip():
                continue
            doc = orjson.loads(chunk)
            if "error" in doc:
                raise StoreRejectedError(f"InfluxQL error: {doc['error']}")
            for result in doc.get("results", ()):
                if "error" in result:
                    raise StoreRejectedError(f"InfluxQL error: {result['error']}")
                out[int(result.get("statement_id", 0))].extend(result.get("series", ()))
        return out

    def _where(self, patient_id: str, start_ns: int, end_ns: int, exclude_mask: int = 0) -> str:
        where = f"patient = {quote_string(patient_id)} AND time >= {start_ns} AND time < {end_ns}"
        if exclude_mask:
            where += f' AND "flags" & {exclude_mask} = 0'
        return where

    def query(
        self,
        patient_id: str,
        kind: ReadingKind,
        start: datetime,
        end: datetime,
        *,
        reading_ids: bool = True,
    ) -> ReadingSeries:
        kind = ReadingKind(kind)
        where = self._where(patient_id, to_utc_ns(start, "start"), to_utc_ns(end, "end"))
        if reading_ids:
            fields = "*::field"
        else:
            # The numeric fields only: reading_id, a 32-character string per row, is the
            # largest column of the answer.
            numeric = self._numeric_fields(kind)
            if not numeric:  # no such measurement yet
                return ReadingSeries(
                    kind=kind, patient_id=patient_id, times_ns=np.empty(0, np.int64), values={}
                )
            fields = ", ".join(f"{quote_identifier(f)}::field" for f in numeric)
        q = f'SELECT {fields}, "device"::tag FROM {self._source(kind)} WHERE {where}'
        times: list[npt.NDArray[np.int64]] = []
        ids: list[str] = []
        devices: list[str] = []
        masks: list[npt.NDArray[np.float64]] = []
        parts: list[tuple[int, dict[str, npt.NDArray[np.float64]]]] = []
        field_names: set[str] = set()
        for s in self.run(q):
            rows = s.get("values") or ()
            if not rows:
                continue
            n = len(rows)
            columns = dict(zip(s["columns"], zip(*rows, strict=True), strict=True))
            times.append(np.array(columns["time"], dtype=np.int64))
            rid, dev, fl = columns.get("reading_id"), columns.get("device"), columns.get("flags")
            if reading_ids:
                ids.extend([""] * n if rid is None else _string_column(rid))
            devices.extend([""] * n if dev is None else _string_column(dev))
            masks.append(np.zeros(n) if fl is None else _float_column(fl))
            values = {c: _float_column(v) for c, v in columns.items() if c not in _TAG_COLUMNS}
            field_names.update(values)
            parts.append((n, values))
        if not parts:
            return ReadingSeries(
                kind=kind, patient_id=patient_id, times_ns=np.empty(0, np.int64), values={}
            )
        t = np.concatenate(times)
        out = {
            name: np.concatenate([v.get(name, np.full(n, np.nan)) for n, v in parts])
            for name in sorted(field_names)
        }
        mask = np.nan_to_num(np.concatenate(masks), nan=0.0).astype(np.int64)
        if t.size > 1 and not bool(np.all(t[1:] > t[:-1])):
            # Several series or chunks, or readings of two devices at one instant: order by
            # (time, device) as every store does.
            order = np.lexsort((np.array(devices, dtype=np.str_), t))
            t, mask = t[order], mask[order]
            out = {name: v[order] for name, v in out.items()}
            picked = order.tolist()
            ids = [ids[i] for i in picked] if reading_ids else []
            devices = [devices[i] for i in picked]
        unique, inverse = np.unique(mask, return_inverse=True)
        decoded = [self._codec.flags(int(m)) for m in unique.tolist()]
        return ReadingSeries(
            kind=kind,
            patient_id=patient_id,
            times_ns=t,
            values=out,
            reading_ids=tuple(ids),
            device_ids=tuple(devices),
            flags=tuple(map(decoded.__getitem__, inverse.reshape(-1).tolist())),
        )

    def _numeric_fields(self, kind: ReadingKind) -> list[str]:
        """The float and integer field keys of a kind's measurement (``SHOW FIELD KEYS``)."""
        names: list[str] = []
        for s in self.run(f"SHOW FIELD KEYS FROM {self._source(kind)}"):
            i_key, i_type = s["columns"].index("fieldKey"), s["columns"].index("fieldType")
            names.extend(
                str(row[i_key])
                for row in s.get("values") or ()
                if row[i_type] in ("float", "integer") and row[i_key] not in names
            )
        return names

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
        kind = ReadingKind(kind)
        every = check_downsample_fields(
            fields, start, end, bin_s=bin_s, offset_s=offset_s, quantiles=quantiles
        )
        args = every[0]  # the range and the bins are the same for every field
        names = [quote_identifier(a.field) for a in every]
        exclude = self._codec.query_mask(exclude_flags)
        plain = f"{self._source(kind)} WHERE " + self._where(patient_id, args.start_ns, args.end_ns)
        aggregates = ", ".join(f"mean({n}), min({n}), max({n}), count({n})" for n in names)

        def bins(source: str) -> str:
            return (
                f"SELECT {aggregates} FROM {source}"
                f" GROUP BY time({args.bin_s}s, {args.offset_s}s) fill(none)"
            )

        source = plain
        if exclude:
            # Most ranges hold no reading to exclude, and the bitwise condition costs InfluxDB
            # a second column per aggregate: aggregate without it, and check in the same
            # request that nothing had to be excluded; only if something had, aggregate again.
            answer, flagged = self.run_many(
                [bins(plain), f'SELECT count("flags") FROM {plain} AND "flags" & {exclude} != 0']
            )
            if any(row[1] for s in flagged for row in s.get("values") or ()):
                source = f"{self._source(kind)} WHERE " + self._where(
                    patient_id, args.start_ns, args.end_ns, exclude
                )
                answer = self.run(bins(source))
        else:
            answer = self.run(bins(plain))
        rows = [row for s in answer for row in s.get("values") or ()]
        out: dict[str, BinnedSeries] = {}
        for i, (field_args, name) in enumerate(zip(every, names, strict=True)):
            # Columns: time, then mean, min, max, count of each field. fill(none) keeps no bin
            # without any point; a bin may still hold none of this field (count 0 or null).
            at = 1 + 4 * i
            mine = [(row[0], *row[at : at + 4]) for row in rows if row[at + 3]]
            n = sum(int(row[4]) for row in mine)
            if n == 0:
                nan = {q: math.nan for q in field_args.quantiles}
                out[field_args.field] = empty_binned(kind, patient_id, field_args, nan)
                continue
            out[field_args.field] = binned_from_rows(
                kind,
                patient_id,
                field_args,
                mine,
                self._quantiles(name, source, n, field_args.quantiles),
            )
        return out

    def _quantiles(
        self, name: str, source: str, n: int, quantiles: Sequence[float]
    ) -> dict[float, float]:
        """Exact linear quantiles of ``n`` values, in one request.

        Each quantile needs the order statistics at two ranks. Near either end they come from
        ``bottom()``/``top()`` (the k smallest or largest values, sorted here): one pass over the
        points. Otherwise from two nearest-rank ``percentile()`` calls, a pass each: InfluxQL's
        ``percentile(x, p)`` is the value at 0-based rank ``floor(n * p / 100 + 0.5) - 1`` of the
        sorted values, so ``p = 100 * (r + 1) / n`` hits rank ``r`` exactly (the 0.5 absorbs any
        rounding of the division).
        """
        statements: list[str] = []
        plans: list[tuple[str, int, int, float]] = []  # call, ranks, weight
        for q in quantiles:
            first, last, t = quantile_ranks(n, q)
            if last + 1 <= min(n - first, _SELECTOR_LIMIT):
                statements.append(f"SELECT bottom({name}, {last + 1}) FROM {source}")
                plans.append(("bottom", first, last, t))
            elif n - first <= _SELECTOR_LIMIT:
                statements.append(f"SELECT top({name}, {n - first}) FROM {source}")
                plans.append(("top", first, last, t))
            else:
                # Fixed notation: InfluxQL number literals have no exponent.
                p_first, p_last = (f"{100.0 * (r + 1) / n:.17f}" for r in (first, last))
                statements.append(
                    f"SELECT percentile({name}, {p_first}), percentile({name}, {p_last})"
                    f" FROM {source}"
                )
                plans.append(("percentile", first, last, t))
        if not statements:
            return {}
        out: dict[float, float] = {}
        answers = self.run_many(statements)
        for q, (call, first, last, t), answer in zip(quantiles, plans, answers, strict=True):
            rows = [row for s in answer for row in s.get("values") or ()]
            if call == "percentile":  # the values at ranks first and last
                values = [float(v) for v in rows[0][1:]] if len(rows) == 1 else []
                i, j = 0, 1
            else:  # the smallest values (ranks 0..last) or the largest (ranks first..n-1)
                values = sorted(float(row[1]) for row in rows)
                base = 0 if call == "bottom" else first
                i, j = first - base, last - base
                if len(values) != (last + 1 if call == "bottom" else n - first):
                    values = []
            if not values:
                raise StoreUnavailableError("InfluxQL answered no quantile (data changed?)")
            out[float(q)] = quantile_value(values[i], values[j], t)
        return out

    def count_flagged(
        self, patient_id: str, kind: ReadingKind, flag: str, start: datetime, end: datetime
    ) -> dict[str, int]:
        bit = self._codec.query_mask((flag,))
        where = self._where(patient_id, to_utc_ns(start, "start"), to_utc_ns(end, "end"))
        q = (
            f'SELECT count("flags") FROM {self._source(ReadingKind(kind))} WHERE {where}'
            f' AND "flags" & {bit} != 0 GROUP BY "device"'
        )
        out: dict[str, int] = {}
        for s in self.run(q):
            device = str((s.get("tags") or {}).get("device", ""))
            for row in s.get("values") or ():
                out[device] = out.get(device, 0) + int(row[1])
        return dict(sorted(out.items()))

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
