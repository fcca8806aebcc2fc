"""``vitalgate query`` against every store: rows, formats, bounds, counts and clear errors."""

from __future__ import annotations

import csv
import io
import os
import stat
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from vitalgate.cli import main
from vitalgate.cloud_sync.store import StoredReading
from vitalgate.cloud_sync.stores import open_store
from vitalgate.errors import ConfigError
from vitalgate.query import parse_time_bound
from vitalgate.readings import ReadingKind

T0 = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)


def bp(patient: str, i: int, device: str = "Omron|M7|SN1") -> StoredReading:
    values = {"systolic_mmhg": 120.0 + i, "diastolic_mmhg": 80.0 + i}
    if i % 2 == 0:
        values["pulse_rate_bpm"] = 60.0 + i
    return StoredReading(
        kind=ReadingKind.BLOOD_PRESSURE,
        reading_id=uuid.uuid5(uuid.NAMESPACE_OID, f"{patient}/{device}/{i}").hex,
        patient_id=patient,
        gateway_id="gw-1",
        device_id=device,
        measured_at=T0 + timedelta(hours=6 * i, microseconds=i),
        values=values,
        flags=frozenset({"irregular_pulse", "body_movement"} if i % 3 == 0 else ()),
    )


def cgm(patient: str, i: int) -> StoredReading:
    return StoredReading(
        kind=ReadingKind.CGM,
        reading_id=uuid.uuid5(uuid.NAMESPACE_OID, f"{patient}/cgm/{i}").hex,
        patient_id=patient,
        gateway_id="gw-1",
        device_id="Dexcom|G7|X1",
        measured_at=T0 + timedelta(minutes=5 * i),
        values={"glucose_mg_dl": 100.0 + i},
    )


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(["query", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(params=["sqlite", "influxdb1", "victoriametrics"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path}/readings.db", "sqlite"
    elif request.param == "influxdb1":
        host = urllib.parse.urlsplit(request.getfixturevalue("influxdb_url")).netloc
        yield f"influxdb1://{host}/vitalgate", "influxdb1"
    else:
        host = urllib.parse.urlsplit(request.getfixturevalue("victoria_metrics_url")).netloc
        yield f"victoriametrics://{host}", "victoriametrics"


def _write(url: str, readings: list[StoredReading]) -> None:
    store = open_store(url)
    try:
        store.write(readings)
    finally:
        store.close()
    if url.startswith("victoriametrics://"):
        host = urllib.parse.urlsplit(url).netloc
        urllib.request.urlopen(f"http://{host}/internal/force_flush", timeout=5).read()


def _poll(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


@pytest.mark.servers
def test_jsonl_csv_and_count_on_every_store(
    store_url: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    url, kind = store_url
    patient = f"p-{uuid.uuid4().hex[:10]}"
    readings = [bp(patient, i) for i in range(12)]
    _write(url, [*readings, *(cgm(patient, i) for i in range(30))])
    base = ["--store", url, "--patient", patient]

    def count(*extra: str) -> int:
        rc, out, _ = run_cli(capsys, *base, "--count", *extra)
        assert rc == 0
        return int(out)

    _poll(lambda: count() == 42)
    assert count("--kind", "cgm") == 30
    assert count("--kind", "blood_pressure", "--kind", "cgm") == 42

    # --from inclusive, --to exclusive: readings 2..5 (6 h apart, +i us; VictoriaMetrics trims
    # to ms, so there reading 2 sits exactly on --from and reading 6 exactly on --to).
    rc, out, err = run_cli(
        capsys,
        *base,
        "--kind",
        "blood_pressure",
        "--from",
        "2026-10-01T20:00:00Z",
        "--to",
        "2026-10-02T21:00:00+01:00",
    )
    assert rc == 0 and err == ""
    docs = [orjson.loads(line) for line in out.splitlines()]
    assert [d["values"]["systolic_mmhg"] for d in docs] == [122.0, 123.0, 124.0, 125.0]
    first = docs[0]
    assert first["patient_id"] == patient and first["kind"] == "blood_pressure"
    assert first["device"] == "Omron|M7|SN1"
    if kind == "victoriametrics":
        # VictoriaMetrics keeps milliseconds and no strings: no reading ids come back.
        assert first["measured_at"] == "2026-10-01T20:00:00.000000Z"
        assert first["reading_id"] is None
    else:
        assert first["measured_at"] == "2026-10-01T20:00:00.000002Z"
        assert first["reading_id"] == readings[2].reading_id
    assert first["values"] == {
        "systolic_mmhg": 122.0,
        "diastolic_mmhg": 82.0,
        "pulse_rate_bpm": 62.0,
    }
    assert docs[1]["values"] == {"systolic_mmhg": 123.0, "diastolic_mmhg": 83.0}  # no pulse
    assert docs[1]["flags"] == ["body_movement", "irregular_pulse"]
    assert docs[0]["flags"] == []

    rc, out, _ = run_cli(capsys, *base, "--kind", "blood_pressure", "--format", "csv")
    assert rc == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 12
    assert list(rows[0]) == [
        "measured_at",
        "patient_id",
        "kind",
        "reading_id",
        "device",
        "flags",
        "diastolic_mmhg",
        "pulse_rate_bpm",
        "systolic_mmhg",
    ]
    assert rows[0]["flags"] == "body_movement;irregular_pulse"
    assert rows[1]["pulse_rate_bpm"] == "" and float(rows[1]["systolic_mmhg"]) == 121.0
    assert [r["measured_at"][:19] for r in rows[:2]] == [
        "2026-10-01T08:00:00",
        "2026-10-01T14:00:00",
    ]


def test_sqlite_every_patient_dates_and_output_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite://{tmp_path}/r.db"
    _write(url, [*(bp("p-a", i) for i in range(8)), *(cgm("p-b", i) for i in range(5))])
    rc, out, _ = run_cli(capsys, "--store", url, "--count")
    assert (rc, out) == (0, "13\n")
    # A bare --to date is the end of that day: 2026-10-01 holds readings at 08 and 14 and 20 h.
    rc, out, _ = run_cli(
        capsys, "--store", url, "--patient", "p-a", "--from", "2026-10-01", "--to", "2026-10-01"
    )
    assert rc == 0 and len(out.splitlines()) == 3
    # Ordered by patient, then kind, then time.
    rc, out, _ = run_cli(capsys, "--store", url)
    patients = [orjson.loads(line)["patient_id"] for line in out.splitlines()]
    assert patients == ["p-a"] * 8 + ["p-b"] * 5
    target = tmp_path / "export.csv"
    target.write_text("old")
    os.chmod(target, 0o644)
    rc, out, _ = run_cli(capsys, "--store", url, "--format", "csv", "-o", str(target))
    assert rc == 0 and out == ""
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert len(target.read_text().splitlines()) == 14


def test_environment_names_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite://{tmp_path}/r.db"
    _write(url, [bp("p-a", 0)])
    env = {**os.environ, "VITALGATE_STORE_URL": url}
    done = subprocess.run(
        [sys.executable, "-m", "vitalgate", "query", "--count"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "1\n", "")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--count"], "give --store URL or set VITALGATE_STORE_URL"),
        (["--store", "ftp://x/y"], "unknown store URL scheme"),
        (["--store", "sqlite:///tmp/x.db", "--from", "yesterday"], "'yesterday' is not ISO 8601"),
        (["--store", "sqlite:///tmp/x.db", "--from", "2026-13-01"], "is not an ISO 8601 date"),
        (
            ["--store", "sqlite:///tmp/x.db", "--from", "2026-11-02", "--to", "2026-11-01"],
            "must be after --from",
        ),
    ],
    ids=["no-store", "bad-scheme", "bad-time", "bad-date", "inverted"],
)
def test_clear_errors(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("VITALGATE_STORE_URL", raising=False)
    rc, out, err = run_cli(capsys, *argv)
    assert rc == 1 and out == ""
    assert err.startswith("vitalgate: error: ") and message in err


def test_unreachable_store_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.support.servers import free_port

    url = f"influxdb1://127.0.0.1:{free_port()}/vitalgate?timeout_s=2"
    rc, out, err = run_cli(capsys, "--store", url, "--patient", "p-a", "--count")
    assert rc == 1 and out == ""
    assert err.startswith("vitalgate: error: ") and "/query" in err
    assert "Traceback" not in err


def test_unknown_kind_and_unknown_patient(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["query", "--store", "sqlite:///tmp/x.db", "--kind", "blood"])
    assert exc.value.code == 2
    assert "invalid choice: 'blood'" in capsys.readouterr().err
    url = f"sqlite://{tmp_path}/r.db"
    _write(url, [bp("p-a", 0)])
    rc, out, err = run_cli(capsys, "--store", url, "--patient", "p-nobody")
    assert (rc, out) == (0, "")
    assert "no readings at all for patient(s) ['p-nobody']" in err


@pytest.mark.parametrize(
    ("text", "end", "expected"),
    [
        ("2026-11-24", False, datetime(2026, 11, 24, tzinfo=UTC)),
        ("2026-11-24", True, datetime(2026, 11, 25, tzinfo=UTC)),
        ("2026-11-24T07:30", True, datetime(2026, 11, 24, 7, 30, tzinfo=UTC)),
        ("2026-11-24T07:30:00Z", False, datetime(2026, 11, 24, 7, 30, tzinfo=UTC)),
        ("2026-11-24T08:30:00+01:00", False, datetime(2026, 11, 24, 7, 30, tzinfo=UTC)),
        ("2026-11-24T07:30:00.123456z", False, datetime(2026, 11, 24, 7, 30, 0, 123456, UTC)),
    ],
)
def test_parse_time_bound(text: str, end: bool, expected: datetime) -> None:
    got = parse_time_bound(text, end=end, name="from")
    assert got == expected and got.tzinfo is UTC


def test_parse_time_bound_rejects_garbage() -> None:
    with pytest.raises(ConfigError, match="from"):
        parse_time_bound("  ", end=False, name="from")
