"""The gateway CLI: argument parsing and the commands that need no radio."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from vitalgate.cli import main
from vitalgate.errors import ConfigError
from vitalgate.gateway.cli import parse_user_ids
from vitalgate.gateway.config import load_config
from vitalgate.gateway.kinds import DeviceKind
from vitalgate.gateway.registry import DeviceRegistry

CONFIG = """
gateway_id = "gw-1"
state_dir = "state"
[[patients]]
id = "p-anna"
timezone = "Europe/Berlin"
[[patients]]
id = "p-ben"
timezone = "Europe/Berlin"
"""


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(CONFIG)
    return path


def test_parse_user_ids(config_path: Path) -> None:
    config = load_config(config_path)
    assert parse_user_ids(["1=p-anna", "2=p-ben"], config) == {1: "p-anna", 2: "p-ben"}
    for bad in ("x=p-anna", "1", "300=p-anna", "1="):
        with pytest.raises(ConfigError):
            parse_user_ids([bad], config)
    with pytest.raises(ConfigError):
        parse_user_ids(["1=nobody"], config)


def test_status_devices_and_remove(config_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = load_config(config_path)
    with DeviceRegistry(config.registry_path) as registry:
        registry.add_device(
            address="AA:00:00:00:00:01",
            kind=DeviceKind.GLUCOSE,
            patient_id="p-anna",
            paired_at=datetime(2026, 11, 25, tzinfo=UTC),
        )
    assert main(["status", "--config", str(config_path)]) == 0
    assert "AA:00:00:00:00:01" in capsys.readouterr().out
    assert main(["devices", "--config", str(config_path), "list", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["patient_id"] == "p-anna"
    assert main(["devices", "--config", str(config_path), "remove", "aa:00:00:00:00:01"]) == 0
    assert main(["devices", "--config", str(config_path), "remove", "aa:00:00:00:00:01"]) == 1


def test_bad_config_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('gateway_id = "gw 1"\nstate_dir = "/x"\n[[patients]]\nid="p"\ntimezone="UTC"\n')
    assert main(["status", "--config", str(path)]) == 1
    assert "gateway_id" in capsys.readouterr().err


def test_sim_info_gives_the_radio_and_the_simulations_clock(tmp_path: Path) -> None:
    import argparse
    import time

    from vitalgate.gateway.cli import _clock, _sim_info
    from vitalgate.gateway.timefix import FollowedClock, SystemClock

    info = tmp_path / "sim.json"
    sim_at = datetime(2026, 1, 1, tzinfo=UTC)
    info.write_text(
        json.dumps(
            {
                "relay_url": "tcp://127.0.0.1:1",
                "devices": [],
                "clock": {"sim_at": sim_at.isoformat(), "wall_at": time.time(), "speed": 600.0},
            }
        )
    )
    args = argparse.Namespace(sim_info=info, sim_radio=None)
    assert _sim_info(args)["relay_url"] == "tcp://127.0.0.1:1"  # type: ignore[index]
    clock = _clock(args)
    assert isinstance(clock, FollowedClock)
    ahead_s = (clock.now() - sim_at).total_seconds()
    assert 0.0 <= ahead_s < 600.0 * 60  # 600x real time since the anchor
    assert isinstance(_clock(argparse.Namespace(sim_info=None)), SystemClock)
    info.write_text("{not json")
    with pytest.raises(ConfigError, match="--sim-info"):
        _sim_info(args)


def test_broker_reconnect_settings(tmp_path: Path) -> None:
    from vitalgate.gateway.config import parse_config

    base = {
        "gateway_id": "gw-1",
        "state_dir": str(tmp_path),
        "patients": [{"id": "p-1", "timezone": "UTC"}],
    }
    cfg = parse_config(
        {
            **base,
            "broker": {"reconnect_initial_s": 0.2, "reconnect_max_s": 2, "connect_timeout_s": 3},
        }
    )
    assert (cfg.broker.backoff_initial_s, cfg.broker.backoff_max_s) == (0.2, 2.0)
    assert cfg.broker.connect_timeout_s == 3.0
    with pytest.raises(ConfigError, match="reconnect_initial_s"):
        parse_config({**base, "broker": {"reconnect_initial_s": 5, "reconnect_max_s": 1}})
