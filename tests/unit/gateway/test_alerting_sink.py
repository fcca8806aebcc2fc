"""The gateway evaluates the alert rules on what its outbox accepted (``vitalgate run``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from vitalgate.cloud_sync.outbox import Outbox
from vitalgate.errors import ConfigError
from vitalgate.gateway.alerts import AlertEngine, AlertingSink, AlertRule
from vitalgate.gateway.config import parse_config
from vitalgate.gateway.service import alerting_sink
from vitalgate.readings import BloodPressureReading, DeviceIdentity

T0 = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
DEV = DeviceIdentity(address="AA:BB:CC:DD:EE:01", manufacturer="Acme", model="BP", serial="1")


def bp(minutes: int, systolic: float, patient: str = "p-anna") -> BloodPressureReading:
    return BloodPressureReading(
        patient_id=patient,
        device=DEV,
        measured_at=T0 + timedelta(minutes=minutes),
        received_at=T0 + timedelta(hours=1),
        device_time=(T0 + timedelta(minutes=minutes)).replace(tzinfo=None),
        systolic_mmhg=systolic,
        diastolic_mmhg=90.0,
    )


def config(tmp_path: Path, **anna: object) -> dict[str, object]:
    return {
        "gateway_id": "gw-1",
        "state_dir": str(tmp_path / "state"),
        "patients": [
            {"id": "p-anna", "timezone": "Europe/Berlin", **anna},
            {"id": "p-bert", "timezone": "Europe/Berlin"},
        ],
    }


def test_alerts_are_queued_durably_once_and_the_publisher_is_woken(tmp_path: Path) -> None:
    woken = []
    with Outbox(tmp_path / "outbox.sqlite3") as outbox:
        sink = AlertingSink(outbox, AlertEngine(), on_alert=lambda: woken.append(1))
        assert sink.add([bp(0, 128.0), bp(5, 186.0)]) == 2
        alerts = outbox.next_alerts()
        assert [a.event["rule"] for a in alerts] == ["bp_crisis"]
        assert woken == [1]
        # The same records downloaded again: stored once, no second alert, no wake-up.
        assert sink.add([bp(0, 128.0), bp(5, 186.0)]) == 0
        assert len(outbox.next_alerts()) == 1 and woken == [1]
        assert outbox.pending_count() == 2


def test_per_patient_rules_come_from_the_gateway_config(tmp_path: Path) -> None:
    cfg = parse_config(config(tmp_path, alerts={"bp_systolic_mmhg": 170, "disabled": []}))
    assert cfg.patients["p-anna"].alerts.bp_systolic_mmhg == 170.0
    assert cfg.patients["p-bert"].alerts.bp_systolic_mmhg == 180.0
    with Outbox(tmp_path / "outbox.sqlite3") as outbox:
        sink = alerting_sink(cfg, outbox)
        sink.add([bp(0, 175.0, "p-anna"), bp(0, 175.0, "p-bert")])
        assert [a.event["patient_id"] for a in outbox.next_alerts()] == ["p-anna"]
    off = parse_config(config(tmp_path, alerts={"disabled": ["bp_crisis"]}))
    assert not off.patients["p-anna"].alerts.enabled(AlertRule.BP_CRISIS)


@pytest.mark.parametrize(
    ("alerts", "key"),
    [
        ({"spo2_low_pct": "low"}, "patients[0].alerts.spo2_low_pct"),
        ({"nonsense": 1}, "patients[0].alerts.nonsense"),
        ({"disabled": ["no_such_rule"]}, "patients[0].alerts.disabled"),
        ("180", "patients[0].alerts"),
    ],
)
def test_bad_alert_config_names_the_key(tmp_path: Path, alerts: object, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(config(tmp_path, alerts=alerts))
    assert err.value.key == key
