"""The gateway configuration: one TOML file loaded into one frozen, typed object.

A bad file fails at start with :class:`~vitalgate.errors.ConfigError` naming the key and the
reason; nothing reads the file again later, and the object is passed down explicitly.

Example (every key shown; the ones with a value in ``[limits]`` / ``[devices]`` / ``[broker]``
have the default given here)::

    gateway_id = "gw-0001"
    state_dir = "/var/lib/vitalgate"

    [[patients]]
    id = "p-anna"
    timezone = "Europe/Berlin"
    name = "Anna"                      # optional, shown by `vitalgate pair`
    # optional: this patient's alert thresholds over the guideline defaults
    # (vitalgate.gateway.alerts.AlertRules; e.g. a patient whose usual SpO2 is lower)
    alerts = { spo2_low_pct = 88, disabled = ["bp_crisis"] }

    [broker]
    host = "mqtt.example.org"
    port = 8883
    tls = true
    username = "gw-0001"               # optional
    password_file = "/etc/vitalgate/mqtt-password"   # optional, read at start
    keepalive_s = 30
    connect_timeout_s = 10.0
    reconnect_initial_s = 0.5          # reconnect back-off with full jitter, doubling up to
    reconnect_max_s = 60.0             # this (the outbox keeps everything meanwhile)
    # ca_file / cert_file / key_file = "..."  (TLS: CA bundle, client certificate)
    # protocol = 5                     # or 311

    [limits]
    max_concurrent_connections = 3     # BLE links held at once
    connect_timeout_s = 20.0
    connect_attempts = 4               # per advertisement, with backoff and jitter
    backoff_initial_s = 0.5
    backoff_max_s = 15.0
    quiet_period_s = 3.0               # BP: disconnect after this long without an indication
    procedure_timeout_s = 60.0         # RACP download / whole session bound
    stream_buffer = 2048               # HR/PPG/CGM live readings buffered per device
    download_batch = 256               # readings per outbox transaction in a long download
    outbox_max_bytes = 536870912       # disk budget of the outbox (512 MiB)

    [devices]
    set_clock = true                   # write Current Time on sync where the device allows
    clock_tolerance_s = 2.0            # a device clock off by more is corrected
    reconnect_interval_s = 60.0        # do not reconnect a device sooner than this after a sync
    stream_reconnect_s = 5.0           # streaming devices (HR/PPG/CGM) are kept connected
    silent_after_h = 72.0              # warn when a BP monitor, meter, scale or thermometer
                                       # has not synced for this long (0: never)
    stream_silent_after_h = 1.0        # ... a CGM, heart-rate strap or oximeter (0: never)
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vitalgate.cloud_sync.mqtt import MqttConfig
from vitalgate.errors import ConfigError
from vitalgate.gateway.alerts import AlertRules

__all__ = [
    "DevicePolicy",
    "GatewayConfig",
    "Limits",
    "MqttConfig",
    "Patient",
    "load_config",
    "parse_config",
]

_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True, slots=True)
class Patient:
    """A person whose devices the gateway serves; ``timezone`` is their devices' local time."""

    id: str
    timezone: ZoneInfo
    name: str = ""
    alerts: AlertRules = field(default_factory=AlertRules)


@dataclass(frozen=True, slots=True)
class Limits:
    """Connection limits, retry policy and buffer bounds."""

    max_concurrent_connections: int = 3
    connect_timeout_s: float = 20.0
    connect_attempts: int = 4
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 15.0
    quiet_period_s: float = 3.0
    procedure_timeout_s: float = 60.0
    stream_buffer: int = 2048
    download_batch: int = 256
    outbox_max_bytes: int = 512 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class DevicePolicy:
    """How the gateway treats devices' clocks and reconnections."""

    set_clock: bool = True
    clock_tolerance_s: float = 2.0
    reconnect_interval_s: float = 60.0
    stream_reconnect_s: float = 5.0
    silent_after_h: float = 72.0
    stream_silent_after_h: float = 1.0

    def silent_after_s(self, streaming: bool) -> float:
        """How long a device may go without a sync before it is reported silent (0: never)."""
        return 3600.0 * (self.stream_silent_after_h if streaming else self.silent_after_h)


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """The whole gateway configuration."""

    gateway_id: str
    state_dir: Path
    patients: Mapping[str, Patient]
    broker: MqttConfig
    limits: Limits = Limits()
    devices: DevicePolicy = DevicePolicy()

    @property
    def registry_path(self) -> Path:
        return self.state_dir / "registry.sqlite3"

    @property
    def outbox_path(self) -> Path:
        return self.state_dir / "outbox.sqlite3"

    def patient(self, patient_id: str) -> Patient:
        """The patient with this id; ConfigError if the config does not name them."""
        try:
            return self.patients[patient_id]
        except KeyError:
            raise ConfigError("patients", f"no patient with id {patient_id!r}") from None


def load_config(path: str | Path) -> GatewayConfig:
    """Read and validate a gateway TOML file."""
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("<file>", f"{p} does not exist") from None
    except OSError as exc:
        raise ConfigError("<file>", f"cannot read {p}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError("<file>", f"{p} is not UTF-8: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("<file>", f"{p} is not valid TOML: {exc}") from exc
    return parse_config(raw, base_dir=p.parent)


# --- validation helpers ---------------------------------------------------------------------


def _table(raw: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(path, f"must be a table, got {type(value).__name__}")
    return value


def _reject_unknown(raw: Mapping[str, Any], known: set[str], prefix: str) -> None:
    for key in raw:
        if key not in known:
            name = f"{prefix}.{key}" if prefix else key
            raise ConfigError(name, f"unknown key (known: {', '.join(sorted(known))})")


def _str(raw: Mapping[str, Any], key: str, path: str, default: str | None = None) -> str:
    value = raw.get(key, default)
    if value is None:
        raise ConfigError(path, "is required")
    if not isinstance(value, str):
        raise ConfigError(path, f"must be a string, got {type(value).__name__}")
    return value


def _int(raw: Mapping[str, Any], key: str, path: str, default: int, *, lo: int, hi: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(path, f"must be an integer, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise ConfigError(path, f"must be between {lo} and {hi}, got {value}")
    return value


def _float(
    raw: Mapping[str, Any], key: str, path: str, default: float, *, lo: float, hi: float
) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(path, f"must be a number, got {type(value).__name__}")
    fv = float(value)
    if not math.isfinite(fv) or not lo <= fv <= hi:
        raise ConfigError(path, f"must be between {lo} and {hi}, got {value}")
    return fv


def _bool(raw: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(path, f"must be true or false, got {type(value).__name__}")
    return value


def _zone(name: str, path: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(path, f"unknown IANA timezone {name!r}") from exc


def _patients(raw: Mapping[str, Any]) -> dict[str, Patient]:
    value = raw.get("patients")
    if value is None:
        raise ConfigError("patients", "is required: at least one [[patients]] entry")
    if not isinstance(value, list) or not value:
        raise ConfigError("patients", "must be a non-empty array of tables ([[patients]])")
    out: dict[str, Patient] = {}
    for i, entry in enumerate(value):
        path = f"patients[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(path, "must be a table")
        _reject_unknown(entry, {"id", "timezone", "name", "alerts"}, path)
        pid = _str(entry, "id", f"{path}.id")
        if not _ID_RE.match(pid):
            raise ConfigError(f"{path}.id", "must be 1-64 characters of [A-Za-z0-9_.-]")
        if pid in out:
            raise ConfigError(f"{path}.id", f"duplicate patient id {pid!r}")
        tz = _zone(_str(entry, "timezone", f"{path}.timezone"), f"{path}.timezone")
        rules = AlertRules()
        if "alerts" in entry:
            table = entry["alerts"]
            if not isinstance(table, dict):
                raise ConfigError(f"{path}.alerts", "must be a table")
            try:
                rules = AlertRules.from_mapping(table)
            except ConfigError as exc:
                raise ConfigError(f"{path}.{exc.key}", exc.reason) from None
        out[pid] = Patient(
            id=pid, timezone=tz, name=_str(entry, "name", f"{path}.name", ""), alerts=rules
        )
    return out


def _path(t: Mapping[str, Any], key: str, base_dir: Path | None) -> Path | None:
    if key not in t:
        return None
    p = Path(_str(t, key, f"broker.{key}"))
    if not p.is_absolute() and base_dir is not None:
        p = base_dir / p
    return p


def _broker(raw: Mapping[str, Any], base_dir: Path | None, gateway_id: str) -> MqttConfig:
    """The publisher's MQTT settings; the client id is the gateway id."""
    t = _table(raw, "broker", "broker")
    _reject_unknown(
        t,
        {
            "host",
            "port",
            "tls",
            "username",
            "password_file",
            "ca_file",
            "cert_file",
            "key_file",
            "keepalive_s",
            "protocol",
            "connect_timeout_s",
            "reconnect_initial_s",
            "reconnect_max_s",
        },
        "broker",
    )
    host = _str(t, "host", "broker.host", "localhost")
    if not host or any(c.isspace() or c in "/@" for c in host):
        raise ConfigError("broker.host", "must be a host name or address")
    tls = _bool(t, "tls", "broker.tls", False)
    port = _int(t, "port", "broker.port", 8883 if tls else 1883, lo=1, hi=65535)
    username = t.get("username")
    if username is not None and not isinstance(username, str):
        raise ConfigError("broker.username", "must be a string")
    password: str | None = None
    pw_path = _path(t, "password_file", base_dir)
    if pw_path is not None:
        try:
            password = pw_path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError("broker.password_file", f"cannot read {pw_path}: {exc}") from exc
    reconnect_initial_s = _float(
        t, "reconnect_initial_s", "broker.reconnect_initial_s", 0.5, lo=0.01, hi=3600.0
    )
    reconnect_max_s = _float(
        t, "reconnect_max_s", "broker.reconnect_max_s", 60.0, lo=0.01, hi=86_400.0
    )
    if reconnect_initial_s > reconnect_max_s:
        raise ConfigError("broker.reconnect_initial_s", "must not exceed reconnect_max_s")
    protocol = _int(t, "protocol", "broker.protocol", 5, lo=3, hi=311)
    if protocol not in (5, 311):
        raise ConfigError("broker.protocol", "must be 5 or 311")
    return MqttConfig(
        url=f"{'mqtts' if tls else 'mqtt'}://{host}:{port}",
        client_id=gateway_id,
        protocol=5 if protocol == 5 else 311,
        username=username,
        password=password,
        ca_file=_path(t, "ca_file", base_dir),
        cert_file=_path(t, "cert_file", base_dir),
        key_file=_path(t, "key_file", base_dir),
        keepalive_s=_int(t, "keepalive_s", "broker.keepalive_s", 30, lo=5, hi=3600),
        connect_timeout_s=_float(
            t, "connect_timeout_s", "broker.connect_timeout_s", 10.0, lo=0.5, hi=300.0
        ),
        backoff_initial_s=reconnect_initial_s,
        backoff_max_s=reconnect_max_s,
    )


def _limits(raw: Mapping[str, Any]) -> Limits:
    t = _table(raw, "limits", "limits")
    d = Limits()
    _reject_unknown(t, set(Limits.__dataclass_fields__), "limits")
    backoff_initial_s = _float(
        t, "backoff_initial_s", "limits.backoff_initial_s", d.backoff_initial_s, lo=0.0, hi=600.0
    )
    backoff_max_s = _float(
        t, "backoff_max_s", "limits.backoff_max_s", d.backoff_max_s, lo=0.0, hi=3600.0
    )
    if backoff_max_s < backoff_initial_s:
        raise ConfigError("limits.backoff_max_s", "must be >= limits.backoff_initial_s")
    return Limits(
        max_concurrent_connections=_int(
            t,
            "max_concurrent_connections",
            "limits.max_concurrent_connections",
            d.max_concurrent_connections,
            lo=1,
            hi=32,
        ),
        connect_timeout_s=_float(
            t, "connect_timeout_s", "limits.connect_timeout_s", d.connect_timeout_s, lo=0.1, hi=600
        ),
        connect_attempts=_int(
            t, "connect_attempts", "limits.connect_attempts", d.connect_attempts, lo=1, hi=100
        ),
        backoff_initial_s=backoff_initial_s,
        backoff_max_s=backoff_max_s,
        quiet_period_s=_float(
            t, "quiet_period_s", "limits.quiet_period_s", d.quiet_period_s, lo=0.01, hi=600
        ),
        procedure_timeout_s=_float(
            t,
            "procedure_timeout_s",
            "limits.procedure_timeout_s",
            d.procedure_timeout_s,
            lo=0.1,
            hi=3600,
        ),
        stream_buffer=_int(
            t, "stream_buffer", "limits.stream_buffer", d.stream_buffer, lo=1, hi=1_000_000
        ),
        download_batch=_int(
            t, "download_batch", "limits.download_batch", d.download_batch, lo=1, hi=100_000
        ),
        outbox_max_bytes=_int(
            t,
            "outbox_max_bytes",
            "limits.outbox_max_bytes",
            d.outbox_max_bytes,
            lo=64 * 1024,
            hi=1 << 44,
        ),
    )


def _devices(raw: Mapping[str, Any]) -> DevicePolicy:
    t = _table(raw, "devices", "devices")
    d = DevicePolicy()
    _reject_unknown(t, set(DevicePolicy.__dataclass_fields__), "devices")
    return DevicePolicy(
        set_clock=_bool(t, "set_clock", "devices.set_clock", d.set_clock),
        clock_tolerance_s=_float(
            t, "clock_tolerance_s", "devices.clock_tolerance_s", d.clock_tolerance_s, lo=0, hi=3600
        ),
        reconnect_interval_s=_float(
            t,
            "reconnect_interval_s",
            "devices.reconnect_interval_s",
            d.reconnect_interval_s,
            lo=0.0,
            hi=86400.0,
        ),
        stream_reconnect_s=_float(
            t,
            "stream_reconnect_s",
            "devices.stream_reconnect_s",
            d.stream_reconnect_s,
            lo=0.0,
            hi=3600.0,
        ),
        silent_after_h=_float(
            t, "silent_after_h", "devices.silent_after_h", d.silent_after_h, lo=0.0, hi=24 * 365
        ),
        stream_silent_after_h=_float(
            t,
            "stream_silent_after_h",
            "devices.stream_silent_after_h",
            d.stream_silent_after_h,
            lo=0.0,
            hi=24 * 365,
        ),
    )


def parse_config(raw: Mapping[str, Any], *, base_dir: Path | None = None) -> GatewayConfig:
    """Validate an already-parsed TOML mapping; relative paths resolve against ``base_dir``."""
    _reject_unknown(raw, {"gateway_id", "state_dir", "patients", "broker", "limits", "devices"}, "")
    gateway_id = _str(raw, "gateway_id", "gateway_id")
    if not _ID_RE.match(gateway_id):
        raise ConfigError("gateway_id", "must be 1-64 characters of [A-Za-z0-9_.-]")
    state_dir = Path(_str(raw, "state_dir", "state_dir"))
    if not state_dir.is_absolute():
        if base_dir is None:
            raise ConfigError("state_dir", "must be an absolute path")
        state_dir = (base_dir / state_dir).resolve()
    return GatewayConfig(
        gateway_id=gateway_id,
        state_dir=state_dir,
        patients=_patients(raw),
        broker=_broker(raw, base_dir, gateway_id),
        limits=_limits(raw),
        devices=_devices(raw),
    )
