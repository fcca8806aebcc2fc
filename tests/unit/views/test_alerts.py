"""The gateway's clinical alert rules (vitalgate.gateway.alerts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vitalgate.errors import ConfigError, SchemaError
from vitalgate.gateway.alerts import (
    Alert,
    AlertEngine,
    AlertRule,
    AlertRules,
    Severity,
    decode_alert_message,
    encode_alert_message,
)
from vitalgate.readings import (
    BloodPressureReading,
    CgmReading,
    DeviceIdentity,
    GlucoseReading,
    HeartRateReading,
    PulseOximetryReading,
    QualityFlag,
)

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
DEV = DeviceIdentity(address="AA:BB:CC:DD:EE:01", manufacturer="Acme", model="M1", serial="1")


def bp(minutes: float, s: float, d: float, patient: str = "p-1") -> BloodPressureReading:
    at = T0 + timedelta(minutes=minutes)
    return BloodPressureReading(
        patient_id=patient,
        device=DEV,
        measured_at=at,
        received_at=at,
        device_time=at.replace(tzinfo=None),
        systolic_mmhg=s,
        diastolic_mmhg=d,
    )


def cgm(minutes: int, g: float, patient: str = "p-1") -> CgmReading:
    at = T0 + timedelta(minutes=minutes)
    return CgmReading(
        patient_id=patient,
        device=DEV,
        measured_at=at,
        received_at=at,
        glucose_mg_dl=g,
        time_offset_min=minutes,
        sequence_number=minutes,
        session_start=T0,
    )


def spo2(
    seconds: float, v: float, flags: frozenset[QualityFlag] = frozenset()
) -> PulseOximetryReading:
    at = T0 + timedelta(seconds=seconds)
    return PulseOximetryReading(
        patient_id="p-1",
        device=DEV,
        measured_at=at,
        received_at=at,
        spo2_pct=v,
        flags=flags,
        sequence_number=int(seconds),
    )


def meter(minutes: int, g: float, **kw: object) -> GlucoseReading:
    at = T0 + timedelta(minutes=minutes)
    return GlucoseReading(
        patient_id="p-1",
        device=DEV,
        measured_at=at,
        received_at=at,
        glucose_mg_dl=g,
        sequence_number=minutes,
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("s", "d", "fires"),
    [(179, 119, False), (180, 90, True), (150, 120, True), (200, 130, True), (120, 80, False)],
    ids=["below", "sys-180", "dia-120", "both", "normal"],
)
def test_bp_crisis_threshold(s: float, d: float, fires: bool) -> None:
    alerts = AlertEngine().feed([bp(0, s, d)])
    assert bool(alerts) is fires
    if fires:
        (a,) = alerts
        assert a.rule is AlertRule.BP_CRISIS and a.severity is Severity.CRITICAL
        assert a.summary == f"{s}/{d} mmHg" and a.count == 1 and a.first_at == a.last_at


def test_bp_crisis_coalesces_and_keeps_worst() -> None:
    engine = AlertEngine()
    first = engine.feed([bp(0, 182, 100)])
    second = engine.feed([bp(1, 195, 110)])
    third = engine.feed([bp(2, 181, 95)])
    assert first[0].alert_id == second[0].alert_id == third[0].alert_id
    assert third[0].count == 3 and third[0].summary == "195/110 mmHg"
    assert third[0].last_at == T0 + timedelta(minutes=2)
    # a re-download of the same reading changes nothing
    assert engine.feed([bp(1, 195, 110)]) == []
    # a new crisis hours later is a new alert
    later = engine.feed([bp(240, 185, 100)])
    assert later[0].alert_id != first[0].alert_id and later[0].count == 1


def test_alert_id_is_stable_across_engines() -> None:
    a = AlertEngine().feed([bp(0, 190, 100)])
    b = AlertEngine().feed([bp(0, 190, 100)])
    assert a == b


def test_meter_severe_low_and_non_clinical_ignored() -> None:
    engine = AlertEngine()
    assert engine.feed([meter(0, 54.0)]) == []
    assert engine.feed([meter(1, 40.0, is_control_solution=True)]) == []
    assert engine.feed([meter(2, 40.0, flags=frozenset({QualityFlag.CONTROL_SOLUTION}))]) == []
    assert engine.feed([meter(3, 30.0, flags=frozenset({QualityFlag.IMPLAUSIBLE}))]) == []
    (a,) = engine.feed([meter(4, 48.0)])
    assert a.rule is AlertRule.GLUCOSE_SEVERE_LOW and a.value == 48.0 and a.unit == "mg/dL"


def test_cgm_low_needs_15_minutes() -> None:
    engine = AlertEngine()
    assert engine.feed([cgm(m, 65) for m in (0, 5, 10)]) == []  # 10 min only
    (a,) = engine.feed([cgm(15, 62)])
    assert a.rule is AlertRule.CGM_LOW_SUSTAINED and a.severity is Severity.WARNING
    assert a.first_at == T0 and a.last_at == T0 + timedelta(minutes=15) and a.value == 62
    assert engine.feed([cgm(20, 64)]) == []  # still the same episode: no repeat
    (end,) = engine.feed([cgm(25, 90)])
    assert end.ended and end.alert_id == a.alert_id and end.last_at == T0 + timedelta(minutes=20)
    assert engine.open_alerts() == []


def test_cgm_escalates_to_level_2() -> None:
    engine = AlertEngine()
    out = engine.feed([cgm(m, 66 if m < 15 else 50) for m in range(0, 40, 5)])
    assert [a.severity for a in out] == [Severity.WARNING, Severity.CRITICAL]
    assert out[0].alert_id == out[1].alert_id and out[1].value == 50


def test_cgm_gap_breaks_episode() -> None:
    engine = AlertEngine()
    # 10 min low, a 30-min gap, 10 min low: never 15 continuous minutes
    assert engine.feed([cgm(m, 60) for m in (0, 5, 10, 40, 45, 50)]) == []


def test_cgm_out_of_order_batch_is_sorted() -> None:
    readings = [cgm(m, 60) for m in (15, 0, 10, 5)]
    (a,) = AlertEngine().feed(readings)
    assert a.first_at == T0


def test_spo2_sustained_by_time_or_count() -> None:
    engine = AlertEngine()
    assert engine.feed([spo2(0, 88), spo2(30, 87)]) == []
    (a,) = engine.feed([spo2(60, 86)])  # 60 s and 3 readings
    assert a.rule is AlertRule.SPO2_LOW_SUSTAINED and a.value == 86
    # spot checks: 3 consecutive readings minutes apart
    engine2 = AlertEngine()
    out = engine2.feed([spo2(0, 89), spo2(1, 89), spo2(2, 89)])
    assert len(out) == 1 and out[0].count == 3


def test_spo2_artefacts_do_not_count() -> None:
    motion = frozenset({QualityFlag.MOTION_ARTIFACT})
    out = AlertEngine().feed([spo2(t, 80, motion) for t in range(0, 120, 10)])
    assert out == []


def test_other_kinds_are_ignored() -> None:
    at = T0
    hr = HeartRateReading(
        patient_id="p-1", device=DEV, measured_at=at, received_at=at, heart_rate_bpm=190.0
    )
    assert AlertEngine().feed([hr]) == []


def test_per_patient_rules_and_disabled() -> None:
    strict = AlertRules.from_mapping({"bp_systolic_mmhg": 170, "disabled": ["spo2_low_sustained"]})
    engine = AlertEngine({"p-2": strict})
    assert engine.feed([bp(0, 175, 90, patient="p-1")]) == []
    assert len(engine.feed([bp(0, 175, 90, patient="p-2")])) == 1
    assert not strict.enabled(AlertRule.SPO2_LOW_SUSTAINED)


@pytest.mark.parametrize(
    "table",
    [
        {"bp_sys": 1},
        {"bp_systolic_mmhg": "x"},
        {"bp_systolic_mmhg": -1},
        {"disabled": ["x"]},
        {"spo2_min_consecutive": 2.5},
        {"cgm_very_low_mg_dl": 80},
    ],
)
def test_bad_rules_config(table: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        AlertRules.from_mapping(table)


def test_encode_decode_round_trip() -> None:
    (a,) = AlertEngine().feed([bp(0, 190, 125)])
    payload = encode_alert_message("gw-1", a, T0)
    gw, back = decode_alert_message(payload)
    assert gw == "gw-1" and back == a


def test_encoded_alert_matches_json_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    import orjson

    from vitalgate.cloud_sync.schema import ALERT_SCHEMA, json_schema

    (a,) = AlertEngine().feed([cgm(m, 60) for m in range(0, 20, 5)])
    jsonschema.validate(
        orjson.loads(encode_alert_message("gw-1", a, T0)), json_schema(ALERT_SCHEMA)
    )


@pytest.mark.parametrize(
    "payload",
    [
        b"nope",
        b"[]",
        b'{"schema":"vitalgate.alert/1","gateway_id":"gw","at":"2026-11-20T08:00:00.000000Z","type":"outbox_full"}',
        b'{"schema":"x","gateway_id":"gw","at":"2026-11-20T08:00:00.000000Z","type":"clinical"}',
    ],
    ids=["not-json", "array", "other-type", "wrong-schema"],
)
def test_decode_rejects(payload: bytes) -> None:
    with pytest.raises(SchemaError):
        decode_alert_message(payload)


def test_decode_rejects_missing_field() -> None:
    (a,) = AlertEngine().feed([bp(0, 190, 125)])
    import orjson

    obj = orjson.loads(encode_alert_message("gw-1", a, T0))
    del obj["rule"]
    with pytest.raises(SchemaError, match="rule"):
        decode_alert_message(orjson.dumps(obj))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=30, max_value=250), min_size=1, max_size=60), st.randoms())
def test_cgm_order_independent_within_batch(values: list[float], rnd: object) -> None:
    readings = [cgm(5 * i, v) for i, v in enumerate(values)]
    shuffled = list(readings)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert AlertEngine().feed(readings) == AlertEngine().feed(shuffled)


def test_alert_requires_utc() -> None:
    with pytest.raises(ValueError, match="UTC"):
        Alert(
            alert_id="x",
            patient_id="p",
            rule=AlertRule.BP_CRISIS,
            severity=Severity.CRITICAL,
            first_at=datetime(2026, 1, 1),
            last_at=datetime(2026, 1, 1),
            value=1.0,
            unit="",
            summary="",
            count=1,
            device_id="d",
        )
