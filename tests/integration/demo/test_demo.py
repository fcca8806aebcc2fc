"""``vitalgate demo``: headless runs count what the devices produced against the store, and the
interactive demo brings data from both patients to the dashboard.

The headless acceptance run: ``vitalgate demo --headless --days 3 --seed 1`` reports zero lost
and zero duplicated, and ``vitalgate query`` returns the same count of readings. Each run starts
the whole chain (simulated devices, gateway daemon, broker, ingest, store) in one process.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.servers import free_port

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]


def vitalgate(*argv: str, timeout_s: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vitalgate", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def summary_of(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    lines = done.stdout.strip().splitlines()
    assert lines, f"no output; stderr:\n{done.stderr[-3000:]}"
    assert len(lines) == 1, done.stdout[-2000:]  # one line of JSON
    return dict(json.loads(lines[0]))


def check_summary(summary: dict[str, Any]) -> None:
    assert summary["lost"] == 0 and summary["duplicates"] == 0, json.dumps(summary)
    # Stored = every device record once + the heart rate the gateway derived from the PPG stream.
    assert summary["derived"] > 0, summary
    assert summary["stored"] == summary["generated"] + summary["derived"], summary
    assert summary["devices_paired"] == 5
    # Every kind of the household reached the store: BP (both users), glucose, CGM, HR, SpO2.
    expected = dict(summary["generated_by_kind"])
    expected["heart_rate"] += summary["derived"]
    assert summary["stored_by_kind"] == expected
    assert set(summary["generated_by_kind"]) == {
        "blood_pressure",
        "glucose",
        "cgm",
        "heart_rate",
        "pulse_oximetry",
    }


def test_headless_demo_loses_nothing_and_query_agrees(tmp_path: Path) -> None:
    state = tmp_path / "state"
    done = vitalgate("demo", "--headless", "--days", "3", "--seed", "1", "--state-dir", str(state))
    summary = summary_of(done)
    check_summary(summary)
    assert done.returncode == 0
    assert summary["broker"] == "embedded" and summary["seed"] == 1
    count = vitalgate("query", "--store", f"sqlite://{state}/readings.db", "--count")
    assert count.returncode == 0, count.stderr
    assert int(count.stdout) == summary["stored"]
    for patient in ("anna", "bert"):
        one = vitalgate(
            "query", "--store", f"sqlite://{state}/readings.db", "--patient", patient, "--count"
        )
        assert int(one.stdout) > 0
    # The store file holds health data: 0600.
    assert (state / "readings.db").stat().st_mode & 0o077 == 0


@pytest.mark.servers
def test_headless_demo_with_real_mosquitto_and_influxdb(mqtt_url: str, influxdb_url: str) -> None:
    db = f"demo_{uuid.uuid4().hex[:10]}"
    gateway = f"gw-demo-{uuid.uuid4().hex[:6]}"
    done = vitalgate(
        "demo",
        "--headless",
        "--days",
        "2",
        "--seed",
        "7",
        "--broker",
        mqtt_url,
        "--influx-url",
        f"{influxdb_url}/{db}",
        "--gateway-id",
        gateway,
    )
    summary = summary_of(done)
    check_summary(summary)
    assert done.returncode == 0
    assert summary["broker"] == mqtt_url
    host = urllib.parse.urlsplit(influxdb_url).netloc
    count = vitalgate("query", "--store", f"influxdb1://{host}/{db}", "--count")
    assert count.returncode == 0, count.stderr
    assert int(count.stdout) == summary["stored"]


def test_interactive_demo_serves_both_patients_within_a_minute(tmp_path: Path) -> None:
    port = free_port()
    state = tmp_path / "state"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vitalgate",
            "demo",
            "--days",
            "2",
            "--port",
            str(port),
            "--state-dir",
            str(state),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    t0 = time.monotonic()
    output: list[str] = []
    try:
        assert proc.stdout is not None
        password = None
        while password is None:
            line = proc.stdout.readline()
            assert line, f"demo exited: {''.join(output)}"
            output.append(line)
            m = re.search(r"password '([^']+)'", line)
            if m:
                password = m.group(1)
        assert f"http://127.0.0.1:{port}/" in "".join(output)
        assert "paired:" in "".join(output)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as web:
            form = web.get("/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert csrf is not None
            signed_in = web.post(
                "/login",
                data={"username": "doctor", "password": password, "csrf": csrf.group(1)},
            )
            assert signed_in.status_code in (200, 303), signed_in.text[:500]
            seen: dict[str, int] = {}
            while time.monotonic() - t0 < 60 and len(seen) < 2:
                for patient in ("anna", "bert"):
                    page = web.get(f"/api/patients/{patient}/page")
                    if page.status_code == 200 and _has_points(page.json()):
                        seen[patient] = 1
                time.sleep(1)
            assert set(seen) == {"anna", "bert"}, (
                f"dashboard data after {time.monotonic() - t0:.0f} s"
            )
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == 0


def _has_points(doc: Any) -> bool:
    """True when the page data holds at least one numeric time point."""
    if isinstance(doc, dict):
        return any(_has_points(v) for v in doc.values())
    if isinstance(doc, list):
        return any(isinstance(v, int | float) and not isinstance(v, bool) for v in doc) or any(
            _has_points(v) for v in doc
        )
    return False
