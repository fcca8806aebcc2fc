"""Gateway config: a good file loads into the typed object; each bad key fails with its name."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from vitalgate.errors import ConfigError
from vitalgate.gateway.config import GatewayConfig, Limits, load_config, parse_config

GOOD = """
gateway_id = "gw-0001"
state_dir = "state"

[[patients]]
id = "p-anna"
timezone = "Europe/Berlin"
name = "Anna"

[[patients]]
id = "p-ben"
timezone = "America/New_York"

[broker]
host = "broker.local"
port = 8883
tls = true
username = "gw-0001"
password_file = "pw.txt"

[limits]
max_concurrent_connections = 2
quiet_period_s = 1.5

[devices]
set_clock = false
"""


def test_good_file_loads(tmp_path: Path) -> None:
    (tmp_path / "pw.txt").write_text("s3cret\n")
    path = tmp_path / "gateway.toml"
    path.write_text(GOOD)
    cfg = load_config(path)
    assert isinstance(cfg, GatewayConfig)
    assert cfg.gateway_id == "gw-0001"
    assert cfg.state_dir == (tmp_path / "state").resolve()
    assert list(cfg.patients) == ["p-anna", "p-ben"]
    assert str(cfg.patient("p-ben").timezone) == "America/New_York"
    assert cfg.broker.password == "s3cret"
    assert cfg.broker.url == "mqtts://broker.local:8883"
    assert cfg.broker.client_id == "gw-0001"
    assert "s3cret" not in repr(cfg.broker)
    assert cfg.limits.max_concurrent_connections == 2
    assert cfg.limits.quiet_period_s == 1.5
    assert cfg.limits.connect_attempts == Limits().connect_attempts
    assert cfg.devices.set_clock is False
    assert cfg.registry_path.parent == cfg.state_dir
    with pytest.raises(ConfigError) as err:
        cfg.patient("nobody")
    assert err.value.key == "patients"


def _base(**over: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "gateway_id": "gw-1",
        "state_dir": "/var/lib/vitalgate",
        "patients": [{"id": "p1", "timezone": "UTC"}],
    }
    raw.update(over)
    return raw


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"gateway_id": "gw/1"}, "gateway_id"),
        ({"gateway_id": 7}, "gateway_id"),
        ({"state_dir": "relative"}, "state_dir"),
        ({"patients": []}, "patients"),
        ({"patients": [{"id": "p1", "timezone": "Mars/Olympus"}]}, "patients[0].timezone"),
        ({"patients": [{"id": "p 1", "timezone": "UTC"}]}, "patients[0].id"),
        (
            {"patients": [{"id": "p1", "timezone": "UTC"}, {"id": "p1", "timezone": "UTC"}]},
            "patients[1].id",
        ),
        ({"patients": [{"id": "p1", "timezone": "UTC", "age": 3}]}, "patients[0].age"),
        ({"broker": {"port": 0}}, "broker.port"),
        ({"broker": {"port": "1883"}}, "broker.port"),
        ({"broker": {"tls": "yes"}}, "broker.tls"),
        ({"broker": {"password_file": "/nonexistent/pw"}}, "broker.password_file"),
        ({"limits": {"max_concurrent_connections": 0}}, "limits.max_concurrent_connections"),
        ({"limits": {"quiet_period_s": float("nan")}}, "limits.quiet_period_s"),
        ({"limits": {"backoff_initial_s": 5.0, "backoff_max_s": 1.0}}, "limits.backoff_max_s"),
        ({"limits": {"turbo": True}}, "limits.turbo"),
        ({"devices": {"clock_tolerance_s": -1}}, "devices.clock_tolerance_s"),
        ({"devices": "yes"}, "devices"),
        ({"colour": "blue"}, "colour"),
    ],
    ids=lambda v: str(v) if isinstance(v, str) else None,
)
def test_bad_values_name_their_key(raw: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(_base(**raw))
    assert err.value.key == key


def test_missing_required_keys() -> None:
    for missing in ("gateway_id", "state_dir", "patients"):
        raw = _base()
        del raw[missing]
        with pytest.raises(ConfigError) as err:
            parse_config(raw)
        assert err.value.key == missing


def test_bad_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("gateway_id = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    assert stat.S_ISREG(bad.stat().st_mode)
