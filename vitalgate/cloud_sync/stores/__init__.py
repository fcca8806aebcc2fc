"""Reading stores behind one interface, chosen by URL.

:func:`open_store` maps a URL to a :class:`~vitalgate.cloud_sync.store.ReadingStore`:

==========================================================  ===================================
URL                                                         store
==========================================================  ===================================
``sqlite:///abs/path/readings.db``, ``sqlite:rel/path.db``  :class:`SqliteStore` (embedded)
``influxdb1://host:8086/DB?rp=RP&user=U&password=P``        :class:`Influx1Store`, plain HTTP
``influxdb1s://host:8086/DB?...``                           :class:`Influx1Store`, HTTPS
``http(s)://host:8086/?api=v1&db=DB&...``                   :class:`Influx1Store`
``influxdb2://host:8086?org=O&bucket=B&token=T``            :class:`Influx2Store`, InfluxQL reads
``influxdb2s://host:8086?...``                              :class:`Influx2Store`, HTTPS
``http(s)://host:8086/?api=v2&org=O&bucket=B&token=T``      :class:`Influx2Store`
``victoriametrics://host:8428``                             :class:`Influx2Store` writing
                                                            ``/api/v2/write``, reading through
                                                            VictoriaMetrics' export API
``victoriametrics://vminsert:8480/insert/0/influx``         the same against a VictoriaMetrics
``?read_url=http://vmselect:8481/select/0/prometheus``      cluster (tenant 0)
==========================================================  ===================================

Influx 2 / VictoriaMetrics URLs may carry a path: it prefixes the write path (a cluster's
``vminsert``, or a store behind a reverse proxy); ``read_url=`` is the base of the reads where
they are served elsewhere (a cluster's ``vmselect``). Default: the write base.

Common query parameters: ``timeout_s`` (default 30), ``ca_file`` (a CA bundle for HTTPS),
``verify_tls=0`` (tests only). Influx 2: ``read=influxql|victoriametrics`` (default
``influxql``; ``victoriametrics://`` implies ``victoriametrics``), ``db=`` (the database name
InfluxQL reads use; default the bucket, via a DBRP mapping), ``reading_id=1|0`` (write the
``reading_id`` string field; default 1 except when reading through VictoriaMetrics, which stores
strings as 0). Secrets: instead of ``token=``/``password=`` in the URL (visible in process
lists), set ``VITALGATE_STORE_TOKEN`` / ``VITALGATE_STORE_PASSWORD``; a value in the URL wins.
SQLite: ``synchronous=NORMAL|FULL`` (default NORMAL).
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping

from vitalgate.cloud_sync.store import ReadingStore
from vitalgate.cloud_sync.stores.base import StoreRejectedError, StoreUnavailableError
from vitalgate.errors import ConfigError

__all__ = ["StoreRejectedError", "StoreUnavailableError", "open_store", "redact_url"]

TOKEN_ENV = "VITALGATE_STORE_TOKEN"
PASSWORD_ENV = "VITALGATE_STORE_PASSWORD"

_KNOWN_PARAMS = frozenset(
    {
        "api",
        "db",
        "rp",
        "user",
        "password",
        "org",
        "bucket",
        "token",
        "read",
        "read_url",
        "reading_id",
        "timeout_s",
        "ca_file",
        "verify_tls",
        "synchronous",
    }
)


def redact_url(url: str) -> str:
    """The URL with secrets (token, password, userinfo password) replaced by ``***``."""
    parts = urllib.parse.urlsplit(url)
    query = [
        (k, "***" if k in ("token", "password") else v)
        for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    ]
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        netloc = f"{userinfo.split(':', 1)[0]}:***@{host}"
    return urllib.parse.urlunsplit(
        parts._replace(netloc=netloc, query=urllib.parse.urlencode(query))
    )


def _flag(params: Mapping[str, str], key: str, default: bool) -> bool:
    value = params.get(key)
    if value is None:
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(key, f"must be 1 or 0, got {value!r}")


def _float(params: Mapping[str, str], key: str, default: float) -> float:
    value = params.get(key)
    if value is None:
        return default
    try:
        out = float(value)
    except ValueError:
        raise ConfigError(key, f"must be a number, got {value!r}") from None
    if not out > 0:
        raise ConfigError(key, f"must be positive, got {value!r}")
    return out


def open_store(url: str) -> ReadingStore:
    """Open the store a URL names (see the module docstring); raises ConfigError."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    params = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(params) - _KNOWN_PARAMS)
    if unknown:
        raise ConfigError("store", f"unknown parameter(s) {unknown} in {redact_url(url)}")

    if scheme == "sqlite":
        from vitalgate.cloud_sync.stores.sqlite import SqliteStore

        path = parts.path if parts.netloc in ("", "localhost") else None
        if not path:
            raise ConfigError("store", f"sqlite URL needs a path: {url!r}")
        sync = params.get("synchronous", "NORMAL").upper()
        if sync not in ("NORMAL", "FULL"):
            raise ConfigError("synchronous", f"must be NORMAL or FULL, got {sync!r}")
        return SqliteStore(path, synchronous=sync)  # type: ignore[arg-type]

    if not parts.hostname:
        raise ConfigError("store", f"store URL needs a host: {redact_url(url)}")
    api = params.get("api", "")
    if scheme in ("influxdb1", "influxdb1s") or (scheme in ("http", "https") and api == "v1"):
        kind = "v1"
    elif scheme in ("influxdb2", "influxdb2s", "victoriametrics") or (
        scheme in ("http", "https") and api == "v2"
    ):
        kind = "v2"
    elif scheme in ("http", "https"):
        raise ConfigError("store", f"http(s) store URL needs api=v1 or api=v2: {redact_url(url)}")
    else:
        raise ConfigError("store", f"unknown store URL scheme {scheme!r}")
    http_scheme = "https" if scheme in ("https", "influxdb1s", "influxdb2s") else "http"
    port = parts.port or (8428 if scheme == "victoriametrics" else 8086)
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    base_url = f"{http_scheme}://{host}:{port}"
    timeout_s = _float(params, "timeout_s", 30.0)
    verify_tls = _flag(params, "verify_tls", True)
    ca_file = params.get("ca_file") or None

    if kind == "v1":
        from vitalgate.cloud_sync.stores.influx1 import Influx1Store

        path_db = parts.path.strip("/") if scheme.startswith("influxdb1") else ""
        database = params.get("db") or path_db
        if not database:
            raise ConfigError("db", f"an InfluxDB 1.x URL needs a database: {redact_url(url)}")
        return Influx1Store(
            base_url,
            database,
            retention_policy=params.get("rp", ""),
            username=params.get("user") or parts.username or "",
            password=params.get("password") or parts.password or os.environ.get(PASSWORD_ENV, ""),
            timeout_s=timeout_s,
            verify_tls=verify_tls,
            ca_file=ca_file,
        )

    from vitalgate.cloud_sync.stores.influx2 import Influx2Store

    read = params.get("read", "victoriametrics" if scheme == "victoriametrics" else "influxql")
    if read not in ("influxql", "victoriametrics"):
        raise ConfigError("read", f"must be influxql or victoriametrics, got {read!r}")
    bucket = params.get("bucket", "vitalgate" if scheme == "victoriametrics" else "")
    org = params.get("org", "vitalgate" if scheme == "victoriametrics" else "")
    if not bucket or not org:
        raise ConfigError(
            "bucket", f"an InfluxDB 2.x URL needs org= and bucket=: {redact_url(url)}"
        )
    include_id = params.get("reading_id")
    read_url = params.get("read_url") or None
    if read_url is not None:
        read_parts = urllib.parse.urlsplit(read_url)
        if read_parts.scheme not in ("http", "https") or not read_parts.hostname:
            raise ConfigError("read_url", f"must be an http(s) URL, got {read_url!r}")
    return Influx2Store(
        base_url + parts.path.rstrip("/"),
        read_url=read_url,
        org=org,
        bucket=bucket,
        token=params.get("token") or os.environ.get(TOKEN_ENV, ""),
        read=read,  # type: ignore[arg-type]
        database=params.get("db") or None,
        include_reading_id=None if include_id is None else _flag(params, "reading_id", True),
        timeout_s=timeout_s,
        verify_tls=verify_tls,
        ca_file=ca_file,
    )
