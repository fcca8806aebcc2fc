"""The whole chain in separate processes, a seeded fault schedule, and the invariant checker.

Processes (each started, killed -9 and restarted by PID, never by name):

* devices: ``vitalgate sim serve --info-file I --truth-out T --truth-interval-s 0.5`` with a
  scenario of registered devices and one stranger device nobody paired;
* gateway: ``vitalgate run --sim-info I`` attached to the devices' radio over the relay, on the
  simulation's accelerated clock, after ``vitalgate pair --sim-info I ...`` for each device (the
  soak, which samples the gateway's asyncio tasks from inside, runs the same daemon through
  ``tests.faults.gateway_proc run --stats-file``);
* broker: a Mosquitto of its own (persistence on) from ``tests.support.servers``;
* ingest: the ``vitalgate ingest`` CLI writing to a SQLite store.

:class:`Chain` runs them; :func:`fault_schedule` draws a seeded list of faults (gateway kill -9,
ingest kill -9, broker restart, a partition between the gateway and the broker made by freezing
the broker with SIGSTOP so packets go unanswered as on a cut link, a frozen radio);
:func:`check_invariant` compares the store with the devices' ground truth: every truth record
of a registered device up to the cutoff is stored exactly once (one reading_id), nothing is
stored that no device measured, nothing of the stranger device is stored, and the outbox holds
nothing older than the cutoff.
"""

from __future__ import annotations

import functools
import json
import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from tests.support.servers import Mosquitto
from vitalgate.firmware_sim.truth import TruthLog, TruthRecord

ROOT = Path(__file__).resolve().parents[2]
GATEWAY_ID = "gw-faults"
STRANGER_SERIAL = "GM-STRANGER-9"
TZ = ZoneInfo("Europe/Berlin")
#: Names the gateway config gives the patients (a log line must never carry them).
PATIENT_NAMES = {"anna": "Anna Quellmalz", "bert": "Bert Vogelsang"}


def scenario_toml(*, seed: int, speed: float, start: datetime) -> str:
    """Two patients, four registered record-keeping devices, one stranger device."""
    return f"""
seed = {seed}
timezone = "Europe/Berlin"
start = "{start.strftime("%Y-%m-%dT%H:%M:%SZ")}"
speed = {speed}
days = 60

[[patients]]
id = "anna"
profile = "hypertensive"

[[patients]]
id = "bert"
profile = "type2_diabetic_hypertensive"

[[devices]]
kind = "bp_monitor"
serial = "BP-FAULT-1"
model = "BP7310"
manufacturer = "Sim Health"
firmware = "1.4.2"
passkey = 246810
users = {{ 1 = "anna", 2 = "bert" }}

[[devices]]
kind = "glucose_meter"
serial = "GM-FAULT-1"
model = "GlucoCheck 502"
manufacturer = "Sim Health"
firmware = "3.0.1"
passkey = 135790
patient = "bert"

[[devices]]
kind = "cgm"
serial = "CGM-FAULT-1"
model = "Sense14"
manufacturer = "Sim Health"
firmware = "2.2.0"
passkey = 112233
patient = "bert"
options = {{ e2e_crc = true, interval_min = 5 }}

[[devices]]
kind = "thermometer"
serial = "TH-FAULT-1"
model = "Therm 1"
manufacturer = "Sim Health"
firmware = "1.0"
passkey = 424242
patient = "anna"

[[devices]]
kind = "glucose_meter"
serial = "{STRANGER_SERIAL}"
model = "GlucoCheck 502"
manufacturer = "Sim Health"
firmware = "3.0.1"
passkey = 999999
patient = "anna"
"""


#: The gateway profile (``vitalgate pair --kind``) of each simulated device kind.
GATEWAY_KIND = {
    "bp_monitor": "blood_pressure",
    "glucose_meter": "glucose",
    "cgm": "cgm",
    "thermometer": "thermometer",
    "weight_scale": "weight_scale",
    "pulse_oximeter": "pulse_oximeter",
    "hr_wearable": "heart_rate",
}


def gateway_toml(*, state_dir: Path, broker_port: int, max_connections: int = 3) -> str:
    return f"""
gateway_id = "{GATEWAY_ID}"
state_dir = "{state_dir}"

[[patients]]
id = "anna"
timezone = "Europe/Berlin"
name = "{PATIENT_NAMES["anna"]}"

[[patients]]
id = "bert"
timezone = "Europe/Berlin"
name = "{PATIENT_NAMES["bert"]}"

[broker]
host = "127.0.0.1"
port = {broker_port}
tls = false
keepalive_s = 5
connect_timeout_s = 3.0
reconnect_initial_s = 0.2
reconnect_max_s = 2.0

[limits]
max_concurrent_connections = {max_connections}
connect_timeout_s = 5.0
connect_attempts = 3
backoff_initial_s = 0.2
backoff_max_s = 1.0
quiet_period_s = 0.5
procedure_timeout_s = 10.0
# one reading per outbox transaction: at 600x a live CGM value arrives every 0.5 s real, more
# often than a session's idle flush would fire, so larger batches would wait for 16 values
download_batch = 1

[devices]
set_clock = false
clock_tolerance_s = 600.0
reconnect_interval_s = 600.0
stream_reconnect_s = 0.5
"""


# ---------------------------------------------------------------------------------------------
# processes


@dataclass
class Proc:
    """One child process with its log file; killed and restarted by PID."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, f"{self.name} still runs"
        with self.log_path.open("ab") as log:
            log.write(f"\n--- start {self.starts} at {time.time():.3f}\n".encode())
            self.proc = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
        self.starts += 1

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive:
            assert self.proc is not None
            os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def stop(self, timeout_s: float = 20.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None


def _python(*args: str) -> list[str]:
    return [sys.executable, *args]


@dataclass
class Chain:
    """The whole chain in ``root``; ``start()`` pairs the devices and starts everything."""

    root: Path
    seed: int = 1
    speed: float = 600.0
    start_at: datetime = datetime(2026, 11, 20, 5, 0, tzinfo=UTC)
    #: A scenario TOML instead of the default household (see :func:`scenario_toml`).
    scenario_text: str | None = None
    #: Have the gateway sample its RSS, open files and asyncio tasks into ``stats.jsonl``.
    gateway_stats: bool = False
    #: ``[limits] max_concurrent_connections`` of the gateway (streaming devices hold a link).
    max_connections: int = 3
    broker: Mosquitto = field(init=False)
    devices: Proc = field(init=False)
    gateway: Proc = field(init=False)
    ingest: Proc = field(init=False)
    info: dict[str, Any] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.state_dir = self.root / "gateway-state"
        self.store_path = self.root / "store.sqlite3"
        self.truth_path = self.root / "truth.jsonl"
        self.info_path = self.root / "devices.json"
        self.scenario_path = self.root / "scenario.toml"
        self.config_path = self.root / "gateway.toml"
        broker_dir = self.root / "broker"
        broker_dir.mkdir(exist_ok=True)
        broker_dir.chmod(0o777)
        self.broker = Mosquitto(name="mosquitto-faults", data_dir=broker_dir)
        self.stats_path = self.root / "stats.jsonl"
        self.scenario_path.write_text(
            self.scenario_text
            or scenario_toml(seed=self.seed, speed=self.speed, start=self.start_at)
        )
        self.config_path.write_text(
            gateway_toml(
                state_dir=self.state_dir,
                broker_port=self.broker.port,
                max_connections=self.max_connections,
            )
        )
        self.devices = Proc(
            "devices",
            _python(
                "-m",
                "vitalgate",
                "sim",
                "serve",
                "--scenario",
                str(self.scenario_path),
                "--info-file",
                str(self.info_path),
                "--truth-out",
                str(self.truth_path),
                "--truth-interval-s",
                "0.5",
            ),
            self.root / "devices.log",
        )
        if self.gateway_stats:
            gateway_argv = _python(
                "-m",
                "tests.faults.gateway_proc",
                "run",
                "--config",
                str(self.config_path),
                "--info",
                str(self.info_path),
                "--stats-file",
                str(self.stats_path),
            )
        else:
            gateway_argv = _python(
                "-m",
                "vitalgate",
                "-v",  # INFO, as a deployment logs
                "run",
                "--config",
                str(self.config_path),
                "--sim-info",
                str(self.info_path),
            )
        self.gateway = Proc("gateway", gateway_argv, self.root / "gateway.log")
        self.ingest = Proc(
            "ingest",
            _python(
                "-m",
                "vitalgate",
                "-v",  # INFO, as a deployment logs
                "ingest",
                "--broker",
                f"mqtt://127.0.0.1:{self.broker.port}",
                "--store",
                f"sqlite://{self.store_path}",
                "--group",
                "faults",
                "--client-id-prefix",
                "faults-ingest",
                "--session-expiry-s",
                "86400",
                "--linger-ms",
                "20",
            ),
            self.root / "ingest.log",
        )

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self.broker.start()
        self.ingest.start()
        self.devices.start()
        wait_for(self.info_path.exists, 60, "the devices' info file", self.devices)
        self.info = json.loads(self.info_path.read_text())
        self.pair_all()  # every device but the stranger, which the gateway must ignore
        self.gateway.start()

    def pair_all(self) -> None:
        """Pair every device but the stranger with ``vitalgate pair``, one process each."""
        for device in self.info["devices"]:
            if device["serial"] == STRANGER_SERIAL:
                continue
            users = {int(k): v for k, v in device["user_ids"].items()}
            who = (
                ["--patient", next(iter(users.values()))]
                if len(users) == 1
                else [
                    a for uid, pid in sorted(users.items()) for a in ("--user-id", f"{uid}={pid}")
                ]
            )
            passkey = [] if device["passkey"] is None else ["--passkey", str(device["passkey"])]
            for _attempt in range(3):  # a pairing can race the simulated radio: retry
                done = subprocess.run(
                    _python(
                        "-m",
                        "vitalgate",
                        "pair",
                        "--config",
                        str(self.config_path),
                        "--sim-info",
                        str(self.info_path),
                        "--address",
                        device["address"],
                        "--kind",
                        GATEWAY_KIND[device["kind"]],
                        *who,
                        *passkey,
                    ),
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    timeout=120,
                    check=False,
                )
                if done.returncode == 0:
                    break
            else:
                raise AssertionError(
                    f"pairing {device['serial']} failed:\n{done.stdout}\n{done.stderr[-4000:]}"
                )

    def close(self) -> None:
        for p in (self.gateway, self.ingest, self.devices):
            p.stop()
        if self.broker.proc is not None:
            os.kill(self.broker.proc.pid, signal.SIGCONT)
        self.broker.stop()

    def sim_now(self) -> datetime:
        clock = self.info["clock"]
        sim_at = datetime.fromisoformat(clock["sim_at"]).astimezone(UTC)
        elapsed = time.time() - float(clock["wall_at"])
        return sim_at + timedelta(seconds=elapsed * float(clock["speed"]))

    def logs(self, tail: int = 3000) -> str:
        out = []
        for p in (self.devices, self.gateway, self.ingest):
            text = p.log_path.read_text(errors="replace") if p.log_path.exists() else ""
            out.append(f"===== {p.name} (started {p.starts}x)\n{text[-tail:]}")
        return "\n".join(out)

    # -- faults -------------------------------------------------------------------------------

    def apply(self, fault: Fault) -> None:
        """Start one fault (its end comes at ``fault.at_s + fault.duration_s``)."""
        match fault.kind:
            case "gateway_kill":
                self.gateway.kill()
            case "ingest_kill":
                self.ingest.kill()
            case "broker_restart":
                self.broker.stop()
            case "broker_kill":
                self.broker.kill()
            case "partition":
                assert self.broker.proc is not None
                os.kill(self.broker.proc.pid, signal.SIGSTOP)
            case "radio_freeze":
                self.devices.signal(signal.SIGSTOP)

    def heal(self, fault: Fault) -> None:
        match fault.kind:
            case "gateway_kill":
                self.gateway.start()
            case "ingest_kill":
                self.ingest.start()
            case "broker_restart" | "broker_kill":
                self.broker.start()
            case "partition":
                assert self.broker.proc is not None
                os.kill(self.broker.proc.pid, signal.SIGCONT)
            case "radio_freeze":
                self.devices.signal(signal.SIGCONT)

    def run_schedule(self, faults: list[Fault]) -> None:
        """Apply and heal ``faults`` at their times (real seconds from now), in order."""
        events: list[tuple[float, int, Callable[[], None]]] = []
        for i, f in enumerate(faults):
            events.append((f.at_s, i * 2, functools.partial(self.apply, f)))
            events.append((f.at_s + f.duration_s, i * 2 + 1, functools.partial(self.heal, f)))
        t0 = time.monotonic()
        for at_s, _, action in sorted(events, key=lambda e: (e[0], e[1])):
            delay = t0 + at_s - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            action()


@dataclass(frozen=True)
class Fault:
    kind: str
    at_s: float
    duration_s: float


#: What the seeded runs draw from. Not here: kill -9 of the devices' process (a real device
#: does not lose its memory and bonds when the gateway misbehaves; the simulated one would) and
#: kill -9 of the broker (Mosquitto keeps queued messages in memory between autosaves, so a
#: SIGKILL loses what it had acknowledged but not yet saved: a documented limit of the broker,
#: see deploy/mosquitto/vitalgate.conf; "broker_kill" can be chosen through
#: VITALGATE_FAULT_KINDS to explore it).
FAULT_KINDS: tuple[str, ...] = ("gateway_kill", "ingest_kill", "broker_restart", "partition")
ALL_FAULT_KINDS = (*FAULT_KINDS, "broker_kill", "radio_freeze")
_TARGET = {
    "gateway_kill": "gateway",
    "ingest_kill": "ingest",
    "broker_restart": "broker",
    "broker_kill": "broker",
    "partition": "broker",
    "radio_freeze": "devices",
}


def fault_schedule(
    seed: int, *, window_s: float = 4.0, kinds_from: tuple[str, ...] = FAULT_KINDS
) -> list[Fault]:
    """2-3 faults at seeded random points in ``window_s``; one process per kind at a time."""
    rng = random.Random(seed)
    kinds = rng.sample(kinds_from, min(len(kinds_from), rng.randint(2, 3)))
    if "gateway_kill" in kinds_from and "gateway_kill" not in kinds and rng.random() < 0.5:
        kinds[0] = "gateway_kill"  # the gateway is the most interesting thing to kill
    faults = []
    busy_until: dict[str, float] = {}  # faults on one process never overlap
    for kind in kinds:
        duration = {
            "gateway_kill": rng.uniform(0.0, 1.5),
            "ingest_kill": rng.uniform(0.0, 1.5),
            "broker_restart": rng.uniform(0.2, 1.5),
            "broker_kill": rng.uniform(0.2, 1.5),
            "partition": rng.uniform(0.5, 2.5),
            "radio_freeze": rng.uniform(0.3, 1.5),
        }[kind]
        target = _TARGET[kind]
        at = max(rng.uniform(0.0, window_s), busy_until.get(target, 0.0) + 0.2)
        busy_until[target] = at + duration
        faults.append(Fault(kind, round(at, 3), round(duration, 3)))
    return sorted(faults, key=lambda f: f.at_s)


# ---------------------------------------------------------------------------------------------
# the invariant


@dataclass(frozen=True)
class StoredRow:
    reading_id: str
    kind: str
    patient: str
    device: str
    measured_at: datetime
    values: dict[str, float]

    @property
    def serial(self) -> str:
        return self.device.rsplit("|", 1)[-1]


def read_store(path: Path) -> list[StoredRow]:
    if not path.exists():
        return []
    with closing_ro(path) as conn:
        try:
            rows = conn.execute(
                "SELECT reading_id, kind, patient, device, measured_at_ns, values_json "
                "FROM readings WHERE kind != 'device_status'"  # device health: no truth record
            ).fetchall()
        except sqlite3.OperationalError:
            return []
    return [
        StoredRow(
            rid,
            kind,
            patient,
            device,
            datetime.fromtimestamp(ns / 1e9, UTC),
            {k: float(v) for k, v in orjson.loads(values).items()},
        )
        for rid, kind, patient, device, ns, values in rows
    ]


def read_outbox(path: Path) -> list[tuple[str, datetime]]:
    """(reading_id, measured_at) of every reading still in the gateway's outbox."""
    if not path.exists():
        return []
    with closing_ro(path) as conn:
        try:
            rows = conn.execute("SELECT reading_id, payload FROM outbox").fetchall()
        except sqlite3.OperationalError:
            return []
    out = []
    for rid, payload in rows:
        m = orjson.loads(payload)["measured_at"]
        out.append((rid, datetime.fromisoformat(m).astimezone(UTC)))
    return out


@contextmanager
def closing_ro(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        yield conn
    finally:
        conn.close()


def read_truth(path: Path) -> list[TruthRecord]:
    for _ in range(20):  # the devices rewrite the file: retry a torn read
        try:
            return list(TruthLog.read_jsonl(path))
        except (ValueError, KeyError, FileNotFoundError):
            time.sleep(0.05)
    return list(TruthLog.read_jsonl(path))


def _same_values(truth: TruthRecord, row: StoredRow) -> bool:
    for name, value in truth.values.items():
        if not math.isfinite(value):
            continue
        got = row.values.get(name)
        if got is None or abs(got - value) > 1e-6 * max(1.0, abs(value)):
            return False
    return True


def _minute(at: datetime) -> int:
    """Whole minutes since 1970 of an aware datetime (an index bucket)."""
    return int(at.timestamp() // 60)


#: How far a stored time may sit from the device's stamp (or the true instant) and still be the
#: same record: the gateway corrects clocks (a CGM's timer rate is measured against arrival
#: times, which jitter by real milliseconds = simulated seconds at 600x). Records of one device
#: are minutes apart and their values are compared too, so this cannot pair the wrong ones.
MATCH_WINDOW_S = 150.0


def _distance_s(truth: TruthRecord, row: StoredRow) -> float:
    """Seconds between the stored time and the nearer of the device stamp and the true time."""
    d = abs((row.measured_at - truth.measured_at).total_seconds())
    if truth.device_time is not None:
        local = row.measured_at.astimezone(TZ).replace(tzinfo=None)
        d = min(d, abs((local - truth.device_time).total_seconds()))
    return d


def _matches(truth: TruthRecord, row: StoredRow) -> bool:
    """The same record: device, kind, values, and a time near the one the device reported
    (``device_time``: device-local, naive) or near the true instant ``measured_at``."""
    if row.serial != truth.device_serial or row.kind != str(truth.kind):
        return False
    near_true = abs((row.measured_at - truth.measured_at).total_seconds()) <= MATCH_WINDOW_S
    near_device = False
    if truth.device_time is not None:
        local = row.measured_at.astimezone(TZ).replace(tzinfo=None)
        near_device = abs((local - truth.device_time).total_seconds()) <= MATCH_WINDOW_S
    return (near_true or near_device) and _same_values(truth, row)


@dataclass
class InvariantReport:
    cutoff: datetime
    truth_checked: int = 0
    stored: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_invariant(
    truth: list[TruthRecord],
    stored: list[StoredRow],
    outbox: list[tuple[str, datetime]],
    *,
    cutoff: datetime,
) -> InvariantReport:
    """Compare the store with the ground truth up to ``cutoff`` (simulated UTC)."""
    report = InvariantReport(cutoff=cutoff, stored=len(stored))
    by_serial: dict[str, list[StoredRow]] = {}
    for row in stored:
        by_serial.setdefault(row.serial, []).append(row)
    if STRANGER_SERIAL in by_serial:
        report.problems.append(
            f"{len(by_serial[STRANGER_SERIAL])} readings of the unregistered device were stored"
        )
    # Index rows by (serial, kind, UTC minute) so a week of 20 devices checks fast.
    by_minute: dict[tuple[str, str, int], list[StoredRow]] = {}
    for row in stored:
        by_minute.setdefault((row.serial, row.kind, _minute(row.measured_at)), []).append(row)
    reach = int(MATCH_WINDOW_S // 60) + 1
    # Every (truth record, stored row) pair that could be the same record, closest first;
    # then a one-to-one assignment: each record claims at most one row and vice versa.
    pairs: list[tuple[float, int, str]] = []
    rows_by_id = {r.reading_id: r for r in stored}
    for i, t in enumerate(truth):
        if t.device_serial == STRANGER_SERIAL:
            continue
        minutes = {_minute(t.measured_at)}
        if t.device_time is not None:
            minutes.add(_minute(t.device_time.replace(tzinfo=TZ)))
        keys = {m + d for m in minutes for d in range(-reach, reach + 1)}
        for k in keys:
            for r in by_minute.get((t.device_serial, str(t.kind), k), []):
                if _matches(t, r):
                    pairs.append((_distance_s(t, r), i, r.reading_id))
    record_of_row: dict[str, int] = {}
    row_of_record: dict[int, str] = {}
    candidates_of_row: dict[str, list[int]] = {}
    for _, i, rid in sorted(pairs):
        candidates_of_row.setdefault(rid, []).append(i)
        if i not in row_of_record and rid not in record_of_row:
            row_of_record[i] = rid
            record_of_row[rid] = i
    for i, t in enumerate(truth):
        if t.device_serial == STRANGER_SERIAL or t.measured_at > cutoff:
            continue
        report.truth_checked += 1
        if i not in row_of_record:
            report.problems.append(f"lost: {t.device_serial} {t.kind} at {t.measured_at}")
    latest_truth = max((t.measured_at for t in truth), default=cutoff)
    for rid, row in rows_by_id.items():
        if row.serial == STRANGER_SERIAL or rid in record_of_row:
            continue
        if rid in candidates_of_row:
            t = truth[candidates_of_row[rid][0]]
            report.problems.append(
                f"duplicated: {t.device_serial} {t.kind} at {t.measured_at} stored again as {rid}"
            )
        elif row.measured_at <= latest_truth:
            report.problems.append(
                f"phantom: stored {rid} ({row.serial} {row.kind} {row.measured_at}) "
                "matches no device record"
            )
    stuck = [(rid, m) for rid, m in outbox if m <= cutoff - timedelta(minutes=1)]
    stored_ids = {r.reading_id for r in stored}
    for rid, m in stuck:
        if rid not in stored_ids:
            report.problems.append(f"stuck in the outbox: {rid} measured {m}")
    return report


def wait_for(
    check: Callable[[], bool], timeout_s: float, what: str, proc: Proc | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if proc is not None and not proc.alive:
            raise AssertionError(f"{proc.name} exited while waiting for {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.1)


def settle(chain: Chain, timeout_s: float = 45.0) -> InvariantReport:
    """Wait until the invariant holds up to now (simulated); the last report either way."""
    cutoff = chain.sim_now()
    deadline = time.monotonic() + timeout_s
    time.sleep(1.0)  # the truth file is rewritten every 0.5 s
    while True:
        for proc in (chain.gateway, chain.ingest, chain.devices):
            if not proc.alive:
                raise AssertionError(f"{proc.name} died on its own:\n{chain.logs()}")
        report = check_invariant(
            read_truth(chain.truth_path),
            read_store(chain.store_path),
            read_outbox(chain.state_dir / "outbox.sqlite3"),
            cutoff=cutoff,
        )
        if report.ok or time.monotonic() > deadline:
            return report
        time.sleep(0.5)


@contextmanager
def running_chain(request: Any, *, seed: int = 1, prefix: str = "vg-faults-") -> Iterator[Chain]:
    """A started chain in a fresh directory, removed afterwards unless a test failed."""
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    c = Chain(root, seed=seed)
    try:
        c.start()
        yield c
    finally:
        c.close()
    if not request.session.testsfailed:
        shutil.rmtree(root, ignore_errors=True)
