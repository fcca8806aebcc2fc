"""InfluxDB 2.x/3.x through influxdb-client's write API, with two read paths.

Writes: pre-formatted line protocol (one ``bytes`` body per batch, not ``Point`` objects,
which are ~20x slower to build) through ``influxdb_client``'s synchronous write API, i.e.
``POST /api/v2/write?org=..&bucket=..&precision=ns``. That endpoint is served by InfluxDB 2.x,
InfluxDB 3.x and VictoriaMetrics alike.

Reads, chosen by ``read=``:

* ``"influxql"`` -- InfluxQL on ``/query`` (InfluxDB 2.x through its 1.x compatibility API with
  a DBRP mapping of the bucket to ``database``; InfluxDB 3.x natively): the portable read path.
* ``"victoriametrics"`` -- VictoriaMetrics' ``/api/v1/export`` (range queries),
  ``/api/v1/query`` (latest per device) and ``/api/v1/label/patient/values`` (patients).
  VictoriaMetrics stores each field as a series ``<kind>_<field>`` with the tags as labels,
  trims timestamps to milliseconds and keeps no strings (a string field is stored as 0), so
  this store leaves ``reading_id`` out of the lines when reading through VictoriaMetrics
  (``include_reading_id`` defaults accordingly) and results carry no reading ids. The
  downsampled read (``downsample``) and ``count_flagged`` are computed here from the export
  read, with the same results as the stores that aggregate server-side.

Identity on VictoriaMetrics is series + millisecond: two readings of one device and kind within
the same millisecond would overwrite each other. BLE health devices report at most a few
readings per second per kind, and a gateway stamps each reading of a device series with a
distinct ``measured_at``, so this does not occur in practice; the InfluxDB paths keep ns.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import orjson
import urllib3
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException

from vitalgate.cloud_sync.store import (
    BinnedSeries,
    DeviceLatest,
    ReadingSeries,
    StoredReading,
)
from vitalgate.cloud_sync.stores.base import (
    FlagCodec,
    OneFieldFromMany,
    ReadsThrough,
    StoreRejectedError,
    StoreUnavailableError,
    bin_reduce,
    build_series,
    check_downsample_fields,
    default_flag_codec,
    ns_to_datetime,
    to_utc_ns,
)
from vitalgate.cloud_sync.stores.influxql import HttpEndpoint, InfluxQLReader
from vitalgate.cloud_sync.stores.lineprotocol import LineProtocolFormatter
from vitalgate.readings import ReadingKind

__all__ = ["Influx2Store", "VictoriaMetricsReader"]

ReadPath = Literal["influxql", "victoriametrics"]


def _prom_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class VictoriaMetricsReader(OneFieldFromMany):
    """The read side on VictoriaMetrics' Prometheus-style APIs."""

    def __init__(self, endpoint: HttpEndpoint, *, flag_codec: FlagCodec) -> None:
        self._http = endpoint
        self._codec = flag_codec

    def query(
        self,
        patient_id: str,
        kind: ReadingKind,
        start: datetime,
        end: datetime,
        *,
        reading_ids: bool = True,
    ) -> ReadingSeries:
        """The export read; VictoriaMetrics keeps no strings, so never any reading ids."""
        kind = ReadingKind(kind)
        start_ns, end_ns = to_utc_ns(start, "start"), to_utc_ns(end, "end")
        prefix = f"{kind}_"
        selector = f'{{__name__=~"{kind}_.+",patient={_prom_string(patient_id)}}}'
        body = self._http.request(
            "POST",
            "/api/v1/export",
            fields={
                "match[]": selector,
                "start": str(math.floor(start_ns / 1e9) - 1),
                "end": str(math.ceil(end_ns / 1e9) + 1),
            },
        )
        rows: dict[tuple[int, str], dict[str, float]] = {}
        field_names: set[str] = set()
        for line in body.splitlines():
            if not line.strip():
                continue
            doc: dict[str, Any] = orjson.loads(line)
            metric = doc["metric"]
            name = str(metric.get("__name__", ""))
            if not name.startswith(prefix):
                continue
            field = name[len(prefix) :]
            device = str(metric.get("device", ""))
            if field != "flags":
                field_names.add(field)
            for ts_ms, value in zip(doc["timestamps"], doc["values"], strict=True):
                t_ns = int(ts_ms) * 1_000_000
                if start_ns <= t_ns < end_ns:
                    rows.setdefault((t_ns, device), {})[field] = float(value)
        keys = sorted(rows)
        names = sorted(field_names)
        return build_series(
            kind,
            patient_id,
            [t for t, _ in keys],
            {n: [rows[k].get(n) for k in keys] for n in names},
            device_ids=[d for _, d in keys],
            flags=[self._codec.flags(int(rows[k].get("flags", 0))) for k in keys],
        )

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
        """Binned here from one export read (VictoriaMetrics has no InfluxQL to do it)."""
        every = check_downsample_fields(
            fields, start, end, bin_s=bin_s, offset_s=offset_s, quantiles=quantiles
        )
        exclude = self._codec.query_mask(exclude_flags)
        series = self.query(patient_id, kind, start, end)
        keep: npt.NDArray[np.bool_] | None = None
        if exclude:
            masks = np.fromiter((self._codec.query_mask(f) for f in series.flags), np.int64)
            keep = masks & exclude == 0
        out: dict[str, BinnedSeries] = {}
        for args in every:
            values = series.values.get(args.field, np.full(len(series), np.nan))
            if keep is not None:
                values = np.where(keep, values, np.nan)
            out[args.field] = bin_reduce(series.kind, patient_id, args, series.times_ns, values)
        return out

    def count_flagged(
        self, patient_id: str, kind: ReadingKind, flag: str, start: datetime, end: datetime
    ) -> dict[str, int]:
        name = str(flag)
        self._codec.query_mask((name,))  # ValueError for an unknown flag
        series = self.query(patient_id, kind, start, end)
        out: dict[str, int] = {}
        for device, flags in zip(series.device_ids, series.flags, strict=True):
            if name in flags:
                out[device] = out.get(device, 0) + 1
        return dict(sorted(out.items()))

    def patients(self) -> list[str]:
        body = self._http.request(
            "GET",
            "/api/v1/label/patient/values",
            fields={"start": "0", "end": str(int(time.time()) + 86_400 * 365 * 10)},
        )
        return sorted(str(p) for p in orjson.loads(body).get("data", ()))

    def latest(self, patient_id: str) -> list[DeviceLatest]:
        # tlast_over_time drops the metric name, so ask once per kind (seven small queries).
        # The window reaches from 1980 (VictoriaMetrics answers nothing for a window starting
        # at the epoch) to a day ahead (clock skew between gateways and this host).
        now = int(time.time()) + 86_400
        window_s = now - 315_532_800
        out: list[DeviceLatest] = []
        for kind in ReadingKind:
            selector = f'{{__name__="{kind}_flags",patient={_prom_string(patient_id)}}}'
            body = self._http.request(
                "POST",
                "/api/v1/query",
                fields={"query": f"tlast_over_time({selector}[{window_s}s])", "time": str(now)},
            )
            newest: dict[str, tuple[float, str]] = {}
            for item in orjson.loads(body)["data"]["result"]:
                metric = item["metric"]
                device = str(metric.get("device", ""))
                t_s = float(item["value"][1])
                if device not in newest or t_s > newest[device][0]:
                    newest[device] = (t_s, str(metric.get("gateway", "")))
            out.extend(
                DeviceLatest(
                    patient_id=patient_id,
                    kind=kind,
                    device_id=device,
                    gateway_id=gateway,
                    measured_at=ns_to_datetime(round(t_s * 1000) * 1_000_000),
                )
                for device, (t_s, gateway) in sorted(newest.items())
            )
        return out


class Influx2Store(ReadsThrough):
    """The :class:`~vitalgate.cloud_sync.store.ReadingStore` on InfluxDB 2.x/3.x (or VM)."""

    def __init__(
        self,
        url: str,
        *,
        org: str,
        bucket: str,
        token: str = "",
        read: ReadPath = "influxql",
        database: str | None = None,
        include_reading_id: bool | None = None,
        timeout_s: float = 30.0,
        verify_tls: bool = True,
        ca_file: str | None = None,
        flag_codec: FlagCodec | None = None,
        read_url: str | None = None,
    ) -> None:
        """``url`` is the write base (it may carry a path prefix: a VictoriaMetrics cluster's
        ``http://vminsert:8480/insert/0/influx``); ``read_url`` the read base where that
        differs (``http://vmselect:8481/select/0/prometheus``); default ``url``."""
        if read not in ("influxql", "victoriametrics"):
            raise ValueError(f"read must be 'influxql' or 'victoriametrics', got {read!r}")
        self.url = url.rstrip("/")
        self.read_url = (read_url or url).rstrip("/")
        self.org = org
        self.bucket = bucket
        self.read_path = read
        codec = flag_codec if flag_codec is not None else default_flag_codec()
        if include_reading_id is None:
            include_reading_id = read != "victoriametrics"
        self._formatter = LineProtocolFormatter(codec.mask, include_reading_id=include_reading_id)
        self._client = InfluxDBClient(
            url=self.url,
            token=token,
            org=org,
            timeout=int(timeout_s * 1000),
            verify_ssl=verify_tls,
            ssl_ca_cert=ca_file,
            enable_gzip=False,
            retries=False,
        )
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
        headers = {"Authorization": f"Token {token}"} if token else {}
        self._http = HttpEndpoint(
            self.read_url,
            headers=headers,
            timeout_s=timeout_s,
            verify_tls=verify_tls,
            ca_file=ca_file,
        )
        self._reader: InfluxQLReader | VictoriaMetricsReader
        if read == "influxql":
            self._reader = InfluxQLReader(self._http, database or bucket, flag_codec=codec)
        else:
            self._reader = VictoriaMetricsReader(self._http, flag_codec=codec)

    def __repr__(self) -> str:
        return f"Influx2Store({self.url!r}, bucket={self.bucket!r}, read={self.read_path!r})"

    @property
    def line_formatter(self) -> LineProtocolFormatter:
        """The formatter of this store's lines (for :meth:`write_lines` callers)."""
        return self._formatter

    def write(self, readings: Sequence[StoredReading]) -> None:
        if not readings:
            return
        self.write_lines(self._formatter.body(readings))

    def write_lines(self, body: bytes) -> None:
        """Write a pre-formatted line-protocol body through influxdb-client's write API."""
        try:
            self._write_api.write(
                bucket=self.bucket,
                org=self.org,
                record=body,
                write_precision=WritePrecision.NS,  # type: ignore[arg-type]
            )
        except ApiException as exc:
            message = f"write to {self.url} bucket {self.bucket!r}: HTTP {exc.status}: "
            message += str(exc.body or exc.reason)[:500]
            if exc.status in (400, 413, 422):
                raise StoreRejectedError(message) from exc
            raise StoreUnavailableError(message) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise StoreUnavailableError(f"write to {self.url}: {exc}") from exc

    def close(self) -> None:
        self._write_api.close()  # type: ignore[no-untyped-call]
        self._client.close()  # type: ignore[no-untyped-call]
        self._http.close()
