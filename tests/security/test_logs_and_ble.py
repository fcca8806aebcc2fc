"""A full chain run with logging at INFO: no personal health data in the logs; unknown BLE
devices are ignored.

The chain of the fault suite (:mod:`tests.faults.chain`: simulated devices in their own process,
the gateway daemon, Mosquitto, ``vitalgate -v ingest`` into a SQLite store) runs for a while with
one gateway kill -9 in the middle (error paths log too). Then:

* the gateway's and the ingest's logs (INFO and above, as deployed) carry no patient name, no
  value field name, no payload, and no line with a patient id next to a number that is one of
  the readings' values;
* the scenario's stranger device (advertising a health service, never paired) never appears in
  the gateway's log or registry, and none of its readings reach the store, while the registered
  devices' readings do.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator

import pytest

from tests.faults.chain import (
    PATIENT_NAMES,
    STRANGER_SERIAL,
    Chain,
    read_store,
    read_truth,
    running_chain,
    settle,
)

pytestmark = [pytest.mark.servers, pytest.mark.slow]

VALUE_FIELDS = (
    "systolic_mmhg",
    "diastolic_mmhg",
    "mean_arterial_pressure_mmhg",
    "pulse_rate_bpm",
    "glucose_mg_dl",
    "carbohydrate_g",
    "temperature_c",
    "trend_mg_dl_per_min",
    "quality_pct",
    "spo2_pct",
    "weight_kg",
)
_NUMBER = re.compile(r"(?<![\w.:-])\d+(?:\.\d+)?(?![\w.:-])")


@pytest.fixture(scope="module")
def chain(request: pytest.FixtureRequest) -> Iterator[Chain]:
    with running_chain(request, seed=3, prefix="vg-logs-") as c:
        time.sleep(4.0)
        c.gateway.kill()
        c.gateway.start()
        report = settle(c)
        assert report.ok, report.problems[:20]
        yield c


def _log_lines(chain: Chain) -> list[str]:
    lines = []
    for proc in (chain.gateway, chain.ingest):
        lines += [
            f"{proc.name}: {line}"
            for line in proc.log_path.read_text(errors="replace").splitlines()
            if line.strip() and not line.startswith("--- start")
        ]
    return lines


def test_logs_hold_no_personal_health_data(chain: Chain) -> None:
    lines = _log_lines(chain)
    assert any(" INFO " in line for line in lines), "the processes did not log at INFO"
    truth = read_truth(chain.truth_path)
    values = {v for t in truth for v in t.values.values()}
    value_texts = {f"{v:g}" for v in values} | {repr(v) for v in values}
    patient_ids = {t.patient_id for t in truth}
    problems = []
    for line in lines:
        for name in PATIENT_NAMES.values():
            if name in line or name.split()[-1] in line:
                problems.append(f"patient name: {line}")
        for field in VALUE_FIELDS:
            if field in line:
                problems.append(f"value field {field}: {line}")
        if '"values"' in line or "payload_b64" in line:
            problems.append(f"payload: {line}")
        if any(re.search(rf"\b{re.escape(pid)}\b", line) for pid in patient_ids):
            body = line.split(" ", 3)[-1]  # not the timestamp
            numbers = set(_NUMBER.findall(body))
            if numbers & value_texts:
                problems.append(f"patient id next to a reading value: {line}")
    assert not problems, "\n".join(problems[:20])


def test_unregistered_device_is_ignored(chain: Chain) -> None:
    stranger = next(d for d in chain.info["devices"] if d["serial"] == STRANGER_SERIAL)
    rows = read_store(chain.store_path)
    assert rows, "the registered devices' readings must flow"
    assert not [r for r in rows if r.serial == STRANGER_SERIAL]
    gateway_log = chain.gateway.log_path.read_text(errors="replace")
    assert stranger["address"] not in gateway_log, "the gateway touched an unregistered device"
    with sqlite3.connect(f"file:{chain.state_dir / 'registry.sqlite3'}?mode=ro", uri=True) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        dump = "\n".join(
            str(row) for table in tables for row in db.execute(f"SELECT * FROM {table}")
        )
    assert stranger["address"] not in dump and STRANGER_SERIAL not in dump
    for device in chain.info["devices"]:
        if device["serial"] != STRANGER_SERIAL:
            assert device["address"] in dump, f"{device['serial']} should be registered"


def test_gateway_state_is_private(chain: Chain) -> None:
    assert chain.state_dir.stat().st_mode & 0o777 == 0o700
    files = [p for p in chain.state_dir.iterdir() if p.is_file()]
    assert {"outbox.sqlite3", "registry.sqlite3", "sim-bonds.json"} <= {p.name for p in files}
    for p in files:
        assert p.stat().st_mode & 0o777 == 0o600, f"{p.name}: {p.stat().st_mode & 0o777:o}"
    for p in (chain.store_path, chain.truth_path, chain.info_path):
        assert p.stat().st_mode & 0o777 == 0o600, p
