"""Scenario files: the shipped household, and clear ConfigErrors for bad ones."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from vitalgate.cli import main
from vitalgate.errors import ConfigError
from vitalgate.firmware_sim.devices.common import DeviceKind, PatientProfile
from vitalgate.firmware_sim.scenario import builtin_scenario, load_scenario, parse_scenario

HOUSEHOLD = Path(__file__).parents[3] / "vitalgate/firmware_sim/scenarios/household.toml"


def test_household_scenario() -> None:
    scenario = builtin_scenario("household")
    assert scenario == load_scenario(HOUSEHOLD)
    kinds = {d.kind for d in scenario.devices}
    assert {
        DeviceKind.BP_MONITOR,
        DeviceKind.GLUCOSE_METER,
        DeviceKind.CGM,
        DeviceKind.HR_WEARABLE,
        DeviceKind.PULSE_OXIMETER,
    } <= kinds
    bp = next(d for d in scenario.devices if d.kind is DeviceKind.BP_MONITOR)
    assert dict(bp.users) == {1: "anna", 2: "bert"}
    profiles = {p.patient_id: p.profile for p in scenario.patients}
    assert profiles["anna"] is PatientProfile.HYPERTENSIVE
    assert "diabetic" in profiles["bert"]


def _base() -> dict[str, Any]:
    return tomllib.loads(HOUSEHOLD.read_text())


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        (lambda d: d.pop("seed"), "seed"),
        (lambda d: d.update(timezone="Mars/Olympus"), "timezone"),
        (lambda d: d.update(start="yesterday"), "start"),
        (lambda d: d.update(speed=-1), "speed"),
        (lambda d: d["patients"][0].update(profile="vampire"), "patients[0].profile"),
        (lambda d: d["patients"].append(dict(d["patients"][0])), "patients[2].id"),
        (lambda d: d["devices"][0].update(kind="toaster"), "devices[0].kind"),
        (lambda d: d["devices"][1].update(serial="BP-7310-0001"), "devices[1].serial"),
        (lambda d: d["devices"][0]["users"].update({"2": "nobody"}), "devices[0].users.2"),
        (lambda d: d["devices"][0].update(passkey=1_000_000), "devices[0].passkey"),
        (lambda d: d["devices"][0].update(colour="red"), "devices[0].colour"),
        (lambda d: d["devices"][1]["options"].update(warp=9), "devices[1].options.warp"),
        (lambda d: d["faults"][0].update(device="NOPE"), "faults[0].device"),
        (lambda d: d["faults"][0].update(kind="gremlins"), "faults[0].kind"),
    ],
)
def test_bad_scenario_names_the_key(mutate: Any, key: str) -> None:
    data = _base()
    mutate(data)
    with pytest.raises(ConfigError) as info:
        parse_scenario(data)
    assert info.value.key == key


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_scenario(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("seed = = 1")
    with pytest.raises(ConfigError):
        load_scenario(bad)


def test_cli_list_and_truth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "list", "--json"]) == 0
    kinds = {row["kind"] for row in json.loads(capsys.readouterr().out)}
    assert kinds == {k.value for k in DeviceKind}
    out = tmp_path / "truth.jsonl"
    assert (
        main(["sim", "truth", "--scenario", str(HOUSEHOLD), "--days", "1", "--output", str(out)])
        == 0
    )
    assert out.stat().st_mode & 0o777 == 0o600
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert {line["kind"] for line in lines} >= {"blood_pressure", "cgm", "glucose"}
    assert {line["patient_id"] for line in lines if line["kind"] == "blood_pressure"} == {
        "anna",
        "bert",
    }


async def test_truth_is_reproducible_by_seed() -> None:
    from dataclasses import replace
    from datetime import UTC, datetime

    from vitalgate.firmware_sim.cli import run_truth

    scenario = replace(builtin_scenario("household"), start=datetime(2026, 3, 2, tzinfo=UTC))
    first = (await run_truth(scenario, days=1)).to_jsonl()
    second = (await run_truth(scenario, days=1)).to_jsonl()
    assert first == second
    other = (await run_truth(replace(scenario, seed=43), days=1)).to_jsonl()
    assert other != first
