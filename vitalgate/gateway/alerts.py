"""Clinical alert rules, evaluated on the gateway so they work while the uplink is down.

Default thresholds follow the guidelines:

* **BP crisis** -- systolic >= 180 mmHg or diastolic >= 120 mmHg (Whelton PK et al., 2017 ACC/AHA
  guideline, Hypertension 2018;71:e13, section 11.2: severe elevation needing prompt review).
* **Severe hypoglycaemia on a meter** -- glucose < 54 mg/dL (level 2 hypoglycaemia, International
  Hypoglycaemia Study Group, Diabetes Care 2017;40:155).
* **Sustained CGM hypoglycaemia** -- CGM < 70 mg/dL for >= 15 minutes (a level 1 episode, Danne T
  et al., Diabetes Care 2017;40:1631; Battelino T et al., Diabetes Care 2019;42:1593); the alert is
  raised to ``critical`` when the same episode goes < 54 mg/dL for >= 15 minutes (level 2).
* **Sustained hypoxaemia** -- SpO2 < 90 % for >= 60 s, or in 3 consecutive readings (spot checks).

Rules never look at non-clinical readings (control solution, implausible: see
``Reading.is_clinical``); SpO2 readings flagged as motion artefact, low quality or without sensor
contact are skipped too (they are the usual source of false desaturation alarms). Skipped readings
neither start nor end an episode.

:class:`AlertEngine` is pure and fast: no I/O, no clock, no logging of values. The gateway feeds it
each batch of readings the pipeline accepted; it returns the alerts to publish. An alert keeps a
stable ``alert_id`` (derived from the patient, the rule and the reading that opened it), so a
re-downloaded reading or an updated alert maps onto the same record downstream. An alert is
emitted when its rule fires and again, with the same ``alert_id``, when it changes: a further
crisis reading within ``coalesce_s`` (count and ``last_at`` grow), a sustained episode that
deepens to level 2, and the end of a sustained episode (``ended=True``).

Publishing goes on ``vitalgate/v1/<gateway_id>/alerts`` with :func:`encode_alert_message`
(schema ``vitalgate.alert/1``, event type ``"clinical"``); :func:`decode_alert_message` reads it
back.

:class:`AlertingSink` puts the engine behind the gateway's pipeline: the readings the outbox
accepted are fed to the rules, and the alerts go into the same outbox (durably, before the
publisher is woken), so an alert raised offline is published when the uplink returns.
"""

from __future__ import annotations

import enum
import hashlib
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

import orjson

from vitalgate.cloud_sync.schema import (
    ALERT_SCHEMA,
    check_gateway_id,
    encode_alert,
    format_utc,
)
from vitalgate.errors import ConfigError, SchemaError
from vitalgate.readings import (
    BloodPressureReading,
    CgmReading,
    GlucoseReading,
    PulseOximetryReading,
    QualityFlag,
    Reading,
)

__all__ = [
    "ALERT_EVENT_TYPE",
    "Alert",
    "AlertEngine",
    "AlertRule",
    "AlertRules",
    "Severity",
    "decode_alert_message",
    "encode_alert_message",
    "make_alert_id",
]

#: The ``type`` of clinical alert events on the alerts topic.
ALERT_EVENT_TYPE: Final = "clinical"


class AlertRule(enum.StrEnum):
    """The clinical alert rules."""

    BP_CRISIS = "bp_crisis"
    GLUCOSE_SEVERE_LOW = "glucose_severe_low"
    CGM_LOW_SUSTAINED = "cgm_low_sustained"
    SPO2_LOW_SUSTAINED = "spo2_low_sustained"


class Severity(enum.StrEnum):
    """How urgent an alert is: ``critical`` needs action today, ``warning`` a look soon."""

    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertRules:
    """One patient's alert thresholds; the defaults are the guideline values (module docstring).

    Build a patient's overrides with :meth:`from_mapping` (a TOML table); disabled rules are
    listed in ``disabled``.
    """

    bp_systolic_mmhg: float = 180.0
    bp_diastolic_mmhg: float = 120.0
    glucose_low_mg_dl: float = 54.0
    cgm_low_mg_dl: float = 70.0
    cgm_very_low_mg_dl: float = 54.0
    cgm_min_duration_s: float = 900.0
    #: A gap longer than this between CGM readings ends an episode (no interpolation across it).
    cgm_max_gap_s: float = 900.0
    spo2_low_pct: float = 90.0
    spo2_min_duration_s: float = 60.0
    spo2_min_consecutive: int = 3
    #: A gap longer than this between SpO2 readings ends a run.
    spo2_max_gap_s: float = 900.0
    #: Further crisis / severe-low readings within this window update the open alert.
    coalesce_s: float = 1800.0
    disabled: frozenset[AlertRule] = frozenset()

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name == "disabled":
                continue
            value = getattr(self, f.name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ConfigError(f"alerts.{f.name}", f"must be a positive number, got {value!r}")
        if self.cgm_very_low_mg_dl > self.cgm_low_mg_dl:
            raise ConfigError("alerts.cgm_very_low_mg_dl", "must not exceed cgm_low_mg_dl")
        if not isinstance(self.disabled, frozenset):
            object.__setattr__(self, "disabled", frozenset(self.disabled))
        for rule in self.disabled:
            if not isinstance(rule, AlertRule):
                raise ConfigError("alerts.disabled", f"unknown rule {rule!r}")

    @classmethod
    def from_mapping(
        cls, table: Mapping[str, Any], *, base: AlertRules | None = None
    ) -> AlertRules:
        """Rules from a config table, over ``base`` (default: the guideline defaults).

        Unknown keys and unknown rule names raise :class:`ConfigError`.
        """
        start = base if base is not None else cls()
        known = {f.name for f in fields(cls)}
        changes: dict[str, Any] = {}
        for key, value in table.items():
            if key not in known:
                raise ConfigError(f"alerts.{key}", f"unknown key; known: {sorted(known)}")
            if key == "disabled":
                if not isinstance(value, list | tuple | frozenset | set):
                    raise ConfigError("alerts.disabled", "must be a list of rule names")
                try:
                    changes[key] = frozenset(AlertRule(v) for v in value)
                except ValueError as exc:
                    raise ConfigError("alerts.disabled", str(exc)) from None
            elif isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"alerts.{key}", f"must be a number, got {value!r}")
            elif key == "spo2_min_consecutive":
                if int(value) != value:
                    raise ConfigError(f"alerts.{key}", f"must be an integer, got {value!r}")
                changes[key] = int(value)
            else:
                changes[key] = float(value)
        return replace(start, **changes)

    def enabled(self, rule: AlertRule) -> bool:
        return rule not in self.disabled


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """One clinical alert. Times are UTC; ``value`` is the worst value seen, in ``unit``.

    ``summary`` is a short human text of the values ("186/122 mmHg"); it is health data: never
    log it at INFO or above.
    """

    alert_id: str
    patient_id: str
    rule: AlertRule
    severity: Severity
    first_at: datetime
    last_at: datetime
    value: float
    unit: str
    summary: str
    count: int
    device_id: str
    reading_ids: tuple[str, ...] = ()
    ended: bool = False

    def __post_init__(self) -> None:
        for name in ("first_at", "last_at"):
            when: datetime = getattr(self, name)
            if when.tzinfo is None or when.utcoffset() != timedelta(0):
                raise ValueError(f"{name} must be timezone-aware UTC, got {when!r}")
        if self.last_at < self.first_at:
            raise ValueError("last_at must not be before first_at")
        if self.count < 1:
            raise ValueError(f"count must be >= 1, got {self.count}")

    @property
    def duration_s(self) -> float:
        return (self.last_at - self.first_at).total_seconds()

    def to_event(self) -> dict[str, Any]:
        """The event body for the alerts topic (without the envelope)."""
        return {
            "type": ALERT_EVENT_TYPE,
            "alert_id": self.alert_id,
            "patient_id": self.patient_id,
            "rule": str(self.rule),
            "severity": str(self.severity),
            "first_at": format_utc(self.first_at),
            "last_at": format_utc(self.last_at),
            "value": self.value,
            "unit": self.unit,
            "summary": self.summary,
            "count": self.count,
            "device_id": self.device_id,
            "reading_ids": list(self.reading_ids),
            "ended": self.ended,
        }

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> Alert:
        """Inverse of :meth:`to_event`; raises :class:`SchemaError` naming the bad field."""
        if event.get("type") != ALERT_EVENT_TYPE:
            raise SchemaError(f"alert.type: expected {ALERT_EVENT_TYPE!r}")
        try:
            first_at = _parse_utc(event["first_at"])
            last_at = _parse_utc(event["last_at"])
            value = event["value"]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise SchemaError("alert.value: must be a number")
            count = event["count"]
            if isinstance(count, bool) or not isinstance(count, int):
                raise SchemaError("alert.count: must be an integer")
            reading_ids = event.get("reading_ids", [])
            if not isinstance(reading_ids, list) or not all(
                isinstance(r, str) for r in reading_ids
            ):
                raise SchemaError("alert.reading_ids: must be a list of strings")
            strings = {}
            for key in ("alert_id", "patient_id", "unit", "summary", "device_id"):
                v = event[key]
                if not isinstance(v, str):
                    raise SchemaError(f"alert.{key}: must be a string")
                strings[key] = v
            ended = event.get("ended", False)
            if not isinstance(ended, bool):
                raise SchemaError("alert.ended: must be a boolean")
            return cls(
                rule=AlertRule(event["rule"]),
                severity=Severity(event["severity"]),
                first_at=first_at,
                last_at=last_at,
                value=float(value),
                count=count,
                reading_ids=tuple(reading_ids),
                ended=ended,
                **strings,
            )
        except KeyError as exc:
            raise SchemaError(f"alert.{exc.args[0]}: missing") from None
        except ValueError as exc:
            if isinstance(exc, SchemaError):
                raise
            raise SchemaError(f"alert: {exc}") from None


def _parse_utc(value: object) -> datetime:
    if not isinstance(value, str) or not value.endswith("Z"):
        raise SchemaError(f"alert time must be RFC 3339 UTC with 'Z', got {value!r}")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise SchemaError(f"alert time is not RFC 3339: {value!r}") from None


def make_alert_id(patient_id: str, rule: AlertRule, opening_reading_id: str) -> str:
    """The stable id of an alert: 32 hex characters of patient, rule and opening reading."""
    text = "\x1f".join(("alert", patient_id, str(rule), opening_reading_id))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def encode_alert_message(gateway_id: str, alert: Alert, at: datetime) -> bytes:
    """The payload for ``vitalgate/v1/<gateway_id>/alerts`` (schema ``vitalgate.alert/1``)."""
    return encode_alert(gateway_id, alert.to_event(), at)


def decode_alert_message(payload: bytes) -> tuple[str, Alert]:
    """``(gateway_id, alert)`` of an alerts-topic payload; raises :class:`SchemaError`.

    Raises :class:`SchemaError` too for alert events of another ``type`` (such as the gateway's
    operational ``outbox_full``): check ``type`` first when a topic carries both.
    """
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise SchemaError(f"alert: not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise SchemaError("alert: must be a JSON object")
    if obj.get("schema") != ALERT_SCHEMA:
        raise SchemaError(f"alert.schema: must be {ALERT_SCHEMA!r}")
    gateway_id = obj.get("gateway_id")
    if not isinstance(gateway_id, str):
        raise SchemaError("alert.gateway_id: must be a string")
    try:
        check_gateway_id(gateway_id)
    except ValueError as exc:
        raise SchemaError(f"alert.gateway_id: {exc}") from None
    _parse_utc(obj.get("at"))
    return gateway_id, Alert.from_event(obj)


# --------------------------------------------------------------------------------------------
# The engine


_SPO2_SKIP: Final = frozenset(
    {QualityFlag.MOTION_ARTIFACT, QualityFlag.LOW_QUALITY, QualityFlag.NO_SENSOR_CONTACT}
)


@dataclass(slots=True)
class _Episode:
    """An open run of readings beyond a threshold in one stream (patient, rule, device)."""

    opening_id: str
    first_at: datetime
    last_at: datetime
    count: int
    extreme: float
    device_id: str
    reading_ids: list[str] = field(default_factory=list)
    very_low_since: datetime | None = None
    fired: Alert | None = None

    def duration_s(self) -> float:
        return (self.last_at - self.first_at).total_seconds()


def _is_clinical(reading: Reading) -> bool:
    if not reading.is_clinical:
        return False
    return not (isinstance(reading, GlucoseReading) and reading.is_control_solution)


def _fmt(x: float) -> str:
    return f"{x:.0f}" if abs(x - round(x)) < 0.05 else f"{x:.1f}"


class AlertEngine:
    """Stateful evaluation of the alert rules over a stream of readings.

    ``rules`` maps patient ids to their :class:`AlertRules`; others get ``default``. Readings may
    arrive in batches in any order: each batch is sorted by time; a reading older than the last
    one already seen in its stream cannot extend or end a sustained episode (it is still checked
    by the single-reading rules). ``max_streams`` bounds the per-stream state (least recently
    used streams are forgotten when full; an open episode then starts over).

    Not thread-safe: one engine per pipeline task.
    """

    def __init__(
        self,
        rules: Mapping[str, AlertRules] | None = None,
        *,
        default: AlertRules | None = None,
        max_streams: int = 10_000,
    ) -> None:
        if max_streams < 1:
            raise ValueError(f"max_streams must be >= 1, got {max_streams}")
        self._rules = dict(rules or {})
        self._default = default if default is not None else AlertRules()
        self._max_streams = max_streams
        self._episodes: OrderedDict[tuple[str, AlertRule, str], _Episode] = OrderedDict()
        self._last_seen: OrderedDict[tuple[str, AlertRule, str], datetime] = OrderedDict()
        self._coalesce: OrderedDict[tuple[str, AlertRule], _Episode] = OrderedDict()

    def rules_for(self, patient_id: str) -> AlertRules:
        return self._rules.get(patient_id, self._default)

    def set_rules(self, patient_id: str, rules: AlertRules) -> None:
        """Replace one patient's rules (open episodes continue under the new thresholds)."""
        self._rules[patient_id] = rules

    def open_alerts(self) -> list[Alert]:
        """Sustained-episode alerts that fired and have not ended yet."""
        return [e.fired for e in self._episodes.values() if e.fired is not None]

    def feed(self, readings: Iterable[Reading]) -> list[Alert]:
        """Evaluate a batch; returns new and updated alerts in time order."""
        batch = sorted(readings, key=lambda r: (r.measured_at, r.reading_id))
        out: list[Alert] = []
        for reading in batch:
            if not _is_clinical(reading):
                continue
            rules = self.rules_for(reading.patient_id)
            if isinstance(reading, BloodPressureReading):
                self._bp(reading, rules, out)
            elif isinstance(reading, GlucoseReading):
                self._meter(reading, rules, out)
            elif isinstance(reading, CgmReading):
                self._cgm(reading, rules, out)
            elif isinstance(reading, PulseOximetryReading):
                self._spo2(reading, rules, out)
        return out

    # -- single-reading rules, coalesced ---------------------------------------------------

    def _single(
        self,
        reading: Reading,
        rule: AlertRule,
        *,
        value: float,
        score: float,
        unit: str,
        summary: str,
        coalesce_s: float,
        out: list[Alert],
    ) -> None:
        """A rule firing on one reading; more within ``coalesce_s`` update the open alert.

        ``score`` orders readings by how bad they are (higher is worse): the alert shows the
        worst reading's value and summary.
        """
        key = (reading.patient_id, rule)
        ep = self._coalesce.get(key)
        at = reading.measured_at
        if ep is not None and ep.fired is not None:
            if reading.reading_id in ep.reading_ids:
                return  # the same reading again (a re-download)
            if ep.first_at <= at <= ep.last_at + timedelta(seconds=coalesce_s):
                ep.count += 1
                ep.last_at = max(ep.last_at, at)
                ep.reading_ids.append(reading.reading_id)
                alert = ep.fired
                if score > ep.extreme:
                    ep.extreme = score
                    alert = replace(alert, value=value, summary=summary)
                ep.fired = replace(
                    alert, count=ep.count, last_at=ep.last_at, reading_ids=tuple(ep.reading_ids)
                )
                self._coalesce.move_to_end(key)
                out.append(ep.fired)
                return
        alert = Alert(
            alert_id=make_alert_id(reading.patient_id, rule, reading.reading_id),
            patient_id=reading.patient_id,
            rule=rule,
            severity=Severity.CRITICAL,
            first_at=at,
            last_at=at,
            value=value,
            unit=unit,
            summary=summary,
            count=1,
            device_id=reading.device.key,
            reading_ids=(reading.reading_id,),
        )
        self._coalesce[key] = _Episode(
            opening_id=reading.reading_id,
            first_at=at,
            last_at=at,
            count=1,
            extreme=score,
            device_id=reading.device.key,
            reading_ids=[reading.reading_id],
            fired=alert,
        )
        self._coalesce.move_to_end(key)
        self._trim(self._coalesce)
        out.append(alert)

    def _bp(self, r: BloodPressureReading, rules: AlertRules, out: list[Alert]) -> None:
        rule = AlertRule.BP_CRISIS
        s, d = float(r.systolic_mmhg), float(r.diastolic_mmhg)
        if not rules.enabled(rule) or not (math.isfinite(s) and math.isfinite(d)):
            return
        if s < rules.bp_systolic_mmhg and d < rules.bp_diastolic_mmhg:
            return
        # How far above the thresholds, so the worst reading of a cluster is the one shown.
        score = max(s - rules.bp_systolic_mmhg, d - rules.bp_diastolic_mmhg)
        summary = f"{_fmt(s)}/{_fmt(d)} mmHg"
        self._single(
            r,
            rule,
            value=s,
            score=score,
            unit="mm[Hg]",
            summary=summary,
            coalesce_s=rules.coalesce_s,
            out=out,
        )

    def _meter(self, r: GlucoseReading, rules: AlertRules, out: list[Alert]) -> None:
        rule = AlertRule.GLUCOSE_SEVERE_LOW
        g = float(r.glucose_mg_dl)
        if not rules.enabled(rule) or not math.isfinite(g) or g >= rules.glucose_low_mg_dl:
            return
        self._single(
            r,
            rule,
            value=g,
            score=-g,
            unit="mg/dL",
            summary=f"{_fmt(g)} mg/dL",
            coalesce_s=rules.coalesce_s,
            out=out,
        )

    # -- sustained rules --------------------------------------------------------------------

    def _stream_time(self, key: tuple[str, AlertRule, str], at: datetime) -> bool:
        """Record ``at`` as the stream's newest time; False when the reading is out of order."""
        last = self._last_seen.get(key)
        if last is not None and at <= last:
            return False
        self._last_seen[key] = at
        self._last_seen.move_to_end(key)
        self._trim(self._last_seen)
        return True

    def _trim(self, d: OrderedDict[Any, Any]) -> None:
        while len(d) > self._max_streams:
            d.popitem(last=False)

    def _close(self, key: tuple[str, AlertRule, str], out: list[Alert]) -> None:
        ep = self._episodes.pop(key, None)
        if ep is not None and ep.fired is not None:
            out.append(replace(ep.fired, ended=True))

    def _sustained_alert(
        self, patient_id: str, rule: AlertRule, ep: _Episode, severity: Severity, summary: str
    ) -> Alert:
        return Alert(
            alert_id=make_alert_id(patient_id, rule, ep.opening_id),
            patient_id=patient_id,
            rule=rule,
            severity=severity,
            first_at=ep.first_at,
            last_at=ep.last_at,
            value=ep.extreme,
            unit="mg/dL" if rule is AlertRule.CGM_LOW_SUSTAINED else "%",
            summary=summary,
            count=ep.count,
            device_id=ep.device_id,
            reading_ids=tuple(ep.reading_ids[:1] + ep.reading_ids[-1:])
            if ep.count > 1
            else tuple(ep.reading_ids),
        )

    def _advance(
        self,
        key: tuple[str, AlertRule, str],
        r: Reading,
        *,
        value: float,
        beyond: bool,
        max_gap_s: float,
        out: list[Alert],
    ) -> _Episode | None:
        """Extend, open or close the stream's episode; the open episode after this reading."""
        at = r.measured_at
        ep = self._episodes.get(key)
        if ep is not None and (at - ep.last_at).total_seconds() > max_gap_s:
            self._close(key, out)  # a gap ends the episode: nothing is known across it
            ep = None
        if not beyond:
            if ep is not None:
                self._close(key, out)
            return None
        if ep is None:
            ep = _Episode(
                opening_id=r.reading_id,
                first_at=at,
                last_at=at,
                count=1,
                extreme=value,
                device_id=r.device.key,
                reading_ids=[r.reading_id],
            )
            self._episodes[key] = ep
            self._trim(self._episodes)
        else:
            ep.last_at = at
            ep.count += 1
            ep.extreme = min(ep.extreme, value)
            ep.reading_ids.append(r.reading_id)
        self._episodes.move_to_end(key)
        return ep

    def _cgm(self, r: CgmReading, rules: AlertRules, out: list[Alert]) -> None:
        rule = AlertRule.CGM_LOW_SUSTAINED
        g = float(r.glucose_mg_dl)
        if not rules.enabled(rule) or not math.isfinite(g):
            return
        key = (r.patient_id, rule, r.device.key)
        if not self._stream_time(key, r.measured_at):
            return
        ep = self._advance(
            key, r, value=g, beyond=g < rules.cgm_low_mg_dl, max_gap_s=rules.cgm_max_gap_s, out=out
        )
        if ep is None:
            return
        if g < rules.cgm_very_low_mg_dl:
            if ep.very_low_since is None:
                ep.very_low_since = r.measured_at
        else:
            ep.very_low_since = None
        level2 = (
            ep.very_low_since is not None
            and (r.measured_at - ep.very_low_since).total_seconds() >= rules.cgm_min_duration_s
        )
        severity = Severity.CRITICAL if level2 else Severity.WARNING
        if ep.fired is not None and ep.fired.severity is Severity.CRITICAL:
            severity = Severity.CRITICAL
        long_enough = ep.duration_s() >= rules.cgm_min_duration_s
        if not long_enough:
            return
        minutes = ep.duration_s() / 60
        summary = (
            f"< {_fmt(rules.cgm_low_mg_dl)} mg/dL for {minutes:.0f} min,"
            f" nadir {_fmt(ep.extreme)} mg/dL"
        )
        if ep.fired is None or ep.fired.severity is not severity:
            ep.fired = self._sustained_alert(r.patient_id, rule, ep, severity, summary)
            out.append(ep.fired)
        else:
            ep.fired = self._sustained_alert(r.patient_id, rule, ep, severity, summary)

    def _spo2(self, r: PulseOximetryReading, rules: AlertRules, out: list[Alert]) -> None:
        rule = AlertRule.SPO2_LOW_SUSTAINED
        v = float(r.spo2_pct)
        if not rules.enabled(rule) or not math.isfinite(v) or r.flags & _SPO2_SKIP:
            return
        key = (r.patient_id, rule, r.device.key)
        if not self._stream_time(key, r.measured_at):
            return
        ep = self._advance(
            key, r, value=v, beyond=v < rules.spo2_low_pct, max_gap_s=rules.spo2_max_gap_s, out=out
        )
        if ep is None:
            return
        sustained = (
            ep.duration_s() >= rules.spo2_min_duration_s or ep.count >= rules.spo2_min_consecutive
        )
        if not sustained:
            return
        summary = (
            f"SpO2 < {_fmt(rules.spo2_low_pct)} % in {ep.count} readings,"
            f" lowest {_fmt(ep.extreme)} %"
        )
        severity = Severity.CRITICAL
        first = ep.fired is None
        ep.fired = self._sustained_alert(r.patient_id, rule, ep, severity, summary)
        if first:
            out.append(ep.fired)


class _AlertOutbox(Protocol):
    def add(self, readings: Sequence[Reading]) -> int: ...

    def add_alert(self, event: Mapping[str, Any]) -> None: ...


class AlertingSink:
    """The pipeline's sink: the outbox, with the alert rules evaluated on what it accepted.

    ``add`` stores the readings (durable on return), feeds the ones not fed before to the
    engine (a re-downloaded record neither re-raises nor extends an alert; the last
    ``remember`` reading ids are kept), queues the resulting alert events in the outbox and
    calls ``on_alert`` (e.g. ``Publisher.notify``; it runs in the caller's thread). Thread-safe.
    """

    def __init__(
        self,
        outbox: _AlertOutbox,
        engine: AlertEngine,
        *,
        on_alert: Callable[[], None] | None = None,
        remember: int = 100_000,
    ) -> None:
        if remember < 1:
            raise ValueError(f"remember must be >= 1, got {remember}")
        self._outbox = outbox
        self._engine = engine
        self._on_alert = on_alert
        self._remember = remember
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        self.alerts = 0

    def set_on_alert(self, on_alert: Callable[[], None] | None) -> None:
        self._on_alert = on_alert

    def add(self, readings: Sequence[Reading]) -> int:
        added = self._outbox.add(readings)
        with self._lock:
            fresh = []
            for r in readings:
                if r.reading_id in self._seen:
                    self._seen.move_to_end(r.reading_id)
                    continue
                self._seen[r.reading_id] = None
                fresh.append(r)
            while len(self._seen) > self._remember:
                self._seen.popitem(last=False)
            alerts = self._engine.feed(fresh) if fresh else []
            for alert in alerts:
                self._outbox.add_alert(alert.to_event())
            self.alerts += len(alerts)
        if alerts and self._on_alert is not None:
            self._on_alert()
        return added
