"""``vitalgate demo``: the whole product on a simulated household, in one process.

What runs (all real components, in one event loop):

* the ``household`` scenario of :mod:`vitalgate.firmware_sim`: anna (hypertension: BP monitor as
  user 1, fingertip pulse oximeter) and bert (type 2 diabetes: CGM, glucose meter, HR/PPG
  wearable, the same BP monitor as user 2), as BLE peripherals on bumble's virtual radio;
* the gateway daemon (:class:`vitalgate.gateway.daemon.Daemon`): it pairs with every device
  non-interactively (the passkeys the scenario's owners were given), syncs them, corrects their
  clocks, checks each reading, keeps it in the durable outbox, evaluates the clinical alert
  rules, and publishes readings and alerts over MQTT;
* the broker: the embedded amqtt broker (MQTT 3.1.1) or ``--broker URL``;
* one ingest worker into the store: the embedded SQLite store or ``--influx-url URL``;
* (interactive) the dashboard at a printed URL, with a demo doctor account.

Time: the simulated clock starts ``--days`` days ago and runs as fast as the machine allows
until it reaches the present (the backfill), then follows real time (``--speed`` times real
time). The HR wearable and the oximeter's continuous stream send one sample per second each
while connected (86,400 readings a day each): they are paired when the backfill is done (in
``--headless`` mode for the last ``--stream-hours`` simulated hours), so the history that the
dashboard shows within seconds holds BP, glucose, CGM and SpO2 spot checks, and the streams
join live.

``--headless`` runs a bounded simulation and prints one line of JSON::

    {"generated": ..., "stored": ..., "lost": 0, "duplicates": 0, ...}

``generated`` is the number of records the paired simulated devices produced (their ground
truth), ``stored`` the readings of the demo's patients in the store; every ground-truth record
is matched to the reading the gateway made of it (stored records by device time and sequence
number, live samples by time and values) and that reading is looked up *by reading_id* in the
store:
``lost`` counts records with no reading in the store, ``duplicates`` stored readings beyond one
per record. ``derived`` counts the stored readings the gateway computed itself (heart rate from
the wearable's PPG stream, flag ``derived``): no device record stands behind them, so they are
part of ``stored`` but not of ``generated``. ``device_status`` counts the device-health rows
(battery, clock error; one per device, patient and sync), which are not readings of the patients
and are in neither. The exit code is 0 only when lost and duplicates are both zero.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

import orjson

from vitalgate.errors import ConfigError, VitalgateError
from vitalgate.readings import QualityFlag, Reading, ReadingKind

if TYPE_CHECKING:
    from vitalgate.gateway.alerts import AlertingSink

__all__ = [
    "DEMO_DOCTOR",
    "DemoOptions",
    "DemoSummary",
    "register",
    "run_demo",
]

log = logging.getLogger(__name__)

DEMO_DOCTOR: Final = "doctor"
# Simulated time per step while the clock runs ahead of real time. Shorter than the CGM's
# 5-minute interval: with two CGM measurements inside one step the gateway was seen to miss
# both (reported to the gateway's owner); one per step is also the realistic pacing.
_STEP: Final = timedelta(minutes=4)
_STREAMING_KINDS: Final = frozenset({"hr_wearable", "pulse_oximeter"})
_PATIENT_NAMES: Final = {
    "anna": "Anna (hypertension)",
    "bert": "Bert (type 2 diabetes, CGM)",
}


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """Everything ``vitalgate demo`` takes (see ``vitalgate demo --help``)."""

    headless: bool = False
    days: float = 3.0
    seed: int | None = None
    broker_url: str | None = None
    influx_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    state_dir: Path | None = None
    speed: float = 1.0
    stream_hours: float = 1.0
    gateway_id: str = "gw-demo"
    settle_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if not 0 < self.days <= 60:
            raise ConfigError("days", f"must be in (0, 60], got {self.days}")
        if not self.speed > 0:
            raise ConfigError("speed", f"must be positive, got {self.speed}")
        if not 0 <= self.stream_hours <= 24 * self.days:
            raise ConfigError("stream-hours", "must be between 0 and the simulated span")


@dataclass(slots=True)
class DemoSummary:
    """The outcome of a headless run (the JSON line)."""

    generated: int
    stored: int
    lost: int
    duplicates: int
    seed: int
    days: float
    sim_start: str
    sim_end: str
    broker: str
    store: str
    devices_paired: int
    alerts: int
    generated_by_kind: dict[str, int]
    stored_by_kind: dict[str, int]
    elapsed_s: float
    derived: int = 0
    device_status: int = 0
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return orjson.dumps(dataclasses.asdict(self)).decode()


# ---------------------------------------------------------------------------------------------
# the gateway side: a sink that records what the gateway produced and raises alerts


@dataclass(frozen=True, slots=True)
class _Made:
    """What the gateway made of a record (for matching it to the ground truth)."""

    reading_id: str
    kind: ReadingKind
    serial: str
    device_time: datetime | None
    sequence_number: int | None
    measured_at: datetime
    values: tuple[tuple[str, float], ...] = ()
    #: Computed by the gateway (heart rate from PPG): no device record stands behind it.
    derived: bool = False

    def same_values(self, truth_values: Any) -> bool:
        mine = dict(self.values)
        return all(
            name in mine and abs(mine[name] - float(v)) <= 1e-6 * max(1.0, abs(float(v)))
            for name, v in truth_values.items()
        )


class _GatewayClock:
    """The gateway's view of the simulated clock: never the same instant twice.

    Between two steps the simulated clock stands still, while a real clock always moves on; a
    gateway stamping live samples (heart rate, continuous SpO2) with their receipt time would
    give several samples one timestamp, and a store keyed by series and timestamp (InfluxDB)
    would keep only one of them. Each reading of the time is at least 1 us after the previous.
    Nor is a real gateway's clock phase-locked to the devices': it runs ``_PHASE`` behind the
    simulated second, so a live sample's receipt time never equals, to the microsecond, the
    whole second at which a device stamped a stored record of the same series.
    """

    _PHASE = timedelta(microseconds=417)

    def __init__(self, clock: Any) -> None:
        self._clock = clock
        self._last: datetime | None = None

    def now(self) -> datetime:
        now: datetime = self._clock.now() + self._PHASE
        if self._last is not None and now <= self._last:
            now = self._last + timedelta(microseconds=1)
        self._last = now
        return now

    async def sleep(self, delay: timedelta) -> None:
        await self._clock.sleep(delay)


class _GatewaySink:
    """What ``vitalgate run`` puts behind its pipeline (the outbox with the alert rules:
    :class:`~vitalgate.gateway.alerts.AlertingSink`), plus (headless) a record of every reading
    the gateway made, for the reconciliation. ``add`` runs in the pipeline's worker thread.
    """

    def __init__(self, inner: AlertingSink, *, record: bool) -> None:
        self._inner = inner
        self._record = record
        self._lock = threading.Lock()
        self.made: dict[str, _Made] = {}
        self.added = 0

    @property
    def alerts(self) -> int:
        return self._inner.alerts

    def add(self, readings: Sequence[Reading]) -> int:
        added = self._inner.add(readings)
        with self._lock:
            self.added += added
            if self._record:
                for r in readings:
                    if r.kind is ReadingKind.DEVICE_STATUS:
                        continue  # device health: no device record behind it
                    if r.reading_id not in self.made:
                        self.made[r.reading_id] = _Made(
                            r.reading_id,
                            r.kind,
                            r.device.serial,
                            r.device_time,
                            r.sequence_number,
                            r.measured_at,
                            tuple(sorted(r.values().items())),
                            derived=QualityFlag.DERIVED in r.flags,
                        )
        return added


# ---------------------------------------------------------------------------------------------
# reconciliation: ground truth -> gateway readings -> store, by reading_id


def _match_live(truth: list[Any], made: list[_Made], tolerance_s: float) -> list[str | None]:
    """Pair live samples (no device time, no sequence number): in time order, each record with
    the first unused reading within ``tolerance_s`` that carries the same values."""
    out: list[str | None] = []
    made = sorted(made, key=lambda m: m.measured_at)
    used = [False] * len(made)
    start = 0
    for t in sorted(truth, key=lambda r: r.measured_at):
        while start < len(made) and (
            used[start] or (t.measured_at - made[start].measured_at).total_seconds() > tolerance_s
        ):
            start += 1
        found = None
        j = start
        while j < len(made) and (made[j].measured_at - t.measured_at).total_seconds() <= (
            tolerance_s
        ):
            if not used[j] and made[j].same_values(t.values):
                found = j
                break
            j += 1
        if found is None:
            out.append(None)
        else:
            used[found] = True
            out.append(made[found].reading_id)
    return out


def reconcile(
    truth: Sequence[Any], made: Sequence[_Made], stored_ids: Counter[str]
) -> tuple[int, int, list[str]]:
    """``(lost, duplicates, problems)`` of ground-truth records against the store.

    Each truth record is matched to the reading the gateway made of it (stored records by kind,
    device serial, device time and sequence number; live samples by time); the reading is then
    looked up by ``reading_id`` in ``stored_ids`` (reading id -> rows in the store). Readings the
    gateway derived itself (flag ``derived``: heart rate from PPG) have no device record: they
    count neither as matches nor as strays, but a second copy of one is still a duplicate.
    """
    Key = tuple[str, str, datetime | None, int | None]
    by_key: dict[Key, list[_Made]] = {}
    live_made: dict[tuple[str, str], list[_Made]] = {}
    derived_ids = {m.reading_id for m in made if m.derived}
    for m in made:
        if m.derived:
            continue
        if m.device_time is None and m.sequence_number is None:
            live_made.setdefault((str(m.kind), m.serial), []).append(m)
        else:
            by_key.setdefault((str(m.kind), m.serial, m.device_time, m.sequence_number), []).append(
                m
            )
    expected: list[tuple[str | None, str]] = []
    live_truth: dict[tuple[str, str], list[Any]] = {}
    problems: list[str] = []
    duplicates = 0
    for t in truth:
        if t.device_time is None and t.sequence_number is None:
            live_truth.setdefault((str(t.kind), t.device_serial), []).append(t)
            continue
        key: Key = (str(t.kind), t.device_serial, t.device_time, t.sequence_number)
        candidates = by_key.get(key)
        if not candidates:
            expected.append((None, str(t.kind)))
            problems.append(f"{t.kind} from {t.device_serial} at {_iso(t.measured_at)}: no reading")
            continue
        if len(candidates) > 1:
            duplicates += len(candidates) - 1
            problems.append(f"{t.kind} from {t.device_serial}: {len(candidates)} readings")
        expected.append((candidates[0].reading_id, str(t.kind)))
    for live_key, records in live_truth.items():
        matches = _match_live(records, live_made.get(live_key, []), tolerance_s=2.0)
        expected.extend((rid, live_key[0]) for rid in matches)
    lost = 0
    lost_by_kind: Counter[str] = Counter()
    matched: set[str] = set()
    made_by_id = {m.reading_id: m for m in made}
    for rid, kind in expected:
        if rid is None or stored_ids.get(rid, 0) == 0:
            lost += 1
            lost_by_kind[kind] += 1
            if rid is not None and lost <= 5:
                m = made_by_id[rid]
                problems.append(
                    f"{kind} from {m.serial} at {_iso(m.measured_at)}: made, not in the store"
                )
            continue
        matched.add(rid)
    duplicates += sum(n - 1 for n in stored_ids.values() if n > 1)
    extras = set(stored_ids) - matched - derived_ids
    if extras:
        problems.append(f"{len(extras)} stored reading(s) match no ground-truth record")
        duplicates += sum(stored_ids[rid] for rid in extras)
    if lost:
        by_kind = ", ".join(f"{k} {n}" for k, n in sorted(lost_by_kind.items()))
        problems.append(f"{lost} ground-truth record(s) not in the store ({by_kind})")
    return lost, duplicates, problems


# ---------------------------------------------------------------------------------------------
# the stack


def _store_url(opts: DemoOptions, state: Path) -> str:
    """The store URL: embedded SQLite, or ``--influx-url`` (any ``open_store`` URL; a plain
    ``http(s)://host:port[/db]`` means InfluxDB 1.x database ``db``, default ``vitalgate``,
    created if missing)."""
    if opts.influx_url is None:
        return f"sqlite://{state / 'readings.db'}"
    parts = urllib.parse.urlsplit(opts.influx_url)
    if parts.scheme not in ("http", "https") or parts.query:
        return opts.influx_url
    db = parts.path.strip("/") or "vitalgate"
    if not db.replace("_", "").replace("-", "").isalnum():
        raise ConfigError("influx-url", f"database name must be alphanumeric, got {db!r}")
    base = f"{parts.scheme}://{parts.netloc}"
    query = urllib.parse.urlencode({"q": f'CREATE DATABASE "{db}"'}).encode()
    try:
        with urllib.request.urlopen(f"{base}/query", data=query, timeout=10) as resp:
            resp.read()
    except OSError as exc:
        raise ConfigError("influx-url", f"cannot reach InfluxDB at {base}: {exc}") from exc
    scheme = "influxdb1s" if parts.scheme == "https" else "influxdb1"
    return f"{scheme}://{parts.netloc}/{db}"


def _ingest_worker(broker_url: str, store: Any, gateway_id: str, *, embedded: bool) -> Any:
    """One ingest worker for the demo's gateway topics.

    With the embedded broker (amqtt: MQTT 3.1.1, no shared subscriptions) the worker must
    connect with MQTT 3.1.1 on a plain subscription: ``IngestWorker(..., protocol=311,
    shared=False)``.
    """
    import inspect

    from vitalgate.cloud_sync.ingest import IngestWorker

    kwargs: dict[str, Any] = {
        "client_id": f"vitalgate-demo-ingest-{uuid.uuid4().hex[:8]}",
        "topic_filter": f"vitalgate/v1/{gateway_id}/readings/+",
        "linger_s": 0.2,
        "session_expiry_s": 60,
    }
    if embedded:
        params = inspect.signature(IngestWorker).parameters
        if "protocol" not in params or "shared" not in params:
            raise VitalgateError(
                "this ingest cannot use the embedded broker yet: it needs MQTT 3.1.1 on a plain"
                " subscription (IngestWorker(..., protocol=311, shared=False)); run the demo"
                " with --broker mqtt://HOST:PORT (an MQTT 5 broker such as Mosquitto) meanwhile"
            )
        kwargs.update(protocol=311, shared=False)
    return IngestWorker(broker_url, store, f"vitalgate-demo-{uuid.uuid4().hex[:8]}", **kwargs)


@dataclass
class _Counters:
    paired: list[str] = field(default_factory=list)
    alerts_received: int = 0


def _stored_ids(store: Any, patients: Sequence[str]) -> tuple[Counter[str], Counter[str], int]:
    """(reading id -> rows, rows per kind, rows) of the demo's patients' measurements in the
    store (device-health rows, kind ``device_status``, are counted in the kinds only).

    A store without reading ids (VictoriaMetrics) is keyed by series and millisecond instead.
    """
    from vitalgate.query import iter_rows

    ids: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    n = 0
    for row in iter_rows(store, patients=list(patients), kinds=list(ReadingKind)):
        if row.kind is ReadingKind.DEVICE_STATUS:
            kinds[str(row.kind)] += 1
            continue
        n += 1
        kinds[str(row.kind)] += 1
        key = row.reading_id or f"{row.kind}|{row.device}|{row.measured_at:%Y%m%d%H%M%S%f}"
        ids[key] += 1
    return ids, kinds, n


def _say(out: IO[str], text: str) -> None:
    out.write(text + "\n")
    out.flush()


async def run_demo(opts: DemoOptions, out: IO[str] = sys.stdout) -> DemoSummary | None:
    """Run the demo; headless returns the summary, interactive runs until interrupted."""
    from vitalgate.firmware_sim.scenario import builtin_scenario

    scenario = builtin_scenario("household")
    if opts.seed is not None:
        scenario = dataclasses.replace(scenario, seed=opts.seed)
    created = opts.state_dir is None
    state = opts.state_dir or Path(tempfile.mkdtemp(prefix="vitalgate-demo-"))
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(state, 0o700)
    try:
        return await _DemoRun(opts, scenario, state, out).run()
    finally:
        if created:
            shutil.rmtree(state, ignore_errors=True)


@contextlib.asynccontextmanager
async def _broker(opts: DemoOptions) -> AsyncIterator[tuple[str, int]]:
    """(broker URL, MQTT protocol) of the embedded broker or ``--broker``."""
    if opts.broker_url is not None:
        yield opts.broker_url, 5
        return
    from vitalgate.cloud_sync.embedded_broker import EmbeddedBroker

    async with EmbeddedBroker() as url:
        yield url, 311


class _DemoRun:
    """One run of the demo: the stack's parts, shared by the phases below."""

    def __init__(self, opts: DemoOptions, scenario: Any, state: Path, out: IO[str]) -> None:
        self.opts = opts
        self.scenario = scenario
        self.state = state
        self.out = out
        self.patients = [p.patient_id for p in scenario.patients]
        self.paired: list[str] = []
        self.alerts_received = 0
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        self.sim_start = now - timedelta(days=opts.days)
        self.sim_end = now
        # Set by run():
        self.clock: Any = None
        self.sim: Any = None  # the ScenarioRun
        self.config: Any = None
        self.registry: Any = None
        self.sink: _GatewaySink | None = None
        self.store: Any = None
        self.outbox: Any = None
        self.publisher: Any = None
        self.ingest: Any = None
        self.daemon_task: asyncio.Task[None] | None = None
        self.gateway_clock: _GatewayClock | None = None

    def say(self, text: str) -> None:
        _say(self.out, text)

    async def run(self) -> DemoSummary | None:
        from vitalgate.cloud_sync.mqtt import MqttConfig, MqttConnection
        from vitalgate.cloud_sync.outbox import Outbox
        from vitalgate.cloud_sync.publisher import Batching, Publisher
        from vitalgate.cloud_sync.stores import open_store, redact_url
        from vitalgate.firmware_sim.backend import use_simulation
        from vitalgate.firmware_sim.clock import SimClock
        from vitalgate.firmware_sim.scenario import start_scenario
        from vitalgate.firmware_sim.world import SimWorld
        from vitalgate.gateway.alerts import AlertEngine, AlertingSink
        from vitalgate.gateway.config import parse_config
        from vitalgate.gateway.daemon import Daemon
        from vitalgate.gateway.pipeline import Pipeline
        from vitalgate.gateway.registry import DeviceRegistry
        from vitalgate.views.alerts_store import AlertStore

        opts = self.opts
        t_start = time.monotonic()
        self.clock = clock = SimClock(self.sim_start)
        store_url = _store_url(opts, self.state)
        if not opts.headless:
            self.say("vitalgate demo: a simulated household, the gateway, a broker, the store")
            self.say(f"  patients: {', '.join(_PATIENT_NAMES.get(p, p) for p in self.patients)}")

        async with contextlib.AsyncExitStack() as stack:
            broker_url, protocol = await stack.enter_async_context(_broker(opts))
            store = self.store = open_store(store_url)
            stack.callback(store.close)
            alert_store = AlertStore(self.state / "alerts.db")
            stack.callback(alert_store.close)
            if not opts.headless:
                where = "embedded amqtt, MQTT 3.1.1" if opts.broker_url is None else "real"
                self.say(f"  broker:   {redact_url(broker_url)} ({where})")
                self.say(f"  store:    {redact_url(store_url)}")
            self.ingest = ingest = _ingest_worker(
                broker_url, store, opts.gateway_id, embedded=opts.broker_url is None
            )
            self.config = config = parse_config(
                {
                    "gateway_id": opts.gateway_id,
                    "state_dir": str(self.state / "gateway"),
                    "patients": [
                        {"id": p, "timezone": self.scenario.timezone} for p in self.patients
                    ],
                    # Five links: the CGM, the wearable and the oximeter's continuous stream stay
                    # connected, the BP monitor and the meter still get a link when they
                    # advertise. A 3-s quiet period keeps a 1-Hz continuous SpO2 stream open.
                    "limits": {
                        "max_concurrent_connections": 5,
                        "quiet_period_s": 3.0,
                        "procedure_timeout_s": 30.0,
                    },
                    "devices": {"reconnect_interval_s": 0.0},
                }
            )
            config.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.outbox = outbox = Outbox(
                config.outbox_path, max_bytes=config.limits.outbox_max_bytes
            )
            stack.callback(outbox.close)
            self.publisher = publisher = Publisher(
                MqttConfig(
                    url=broker_url,
                    client_id=opts.gateway_id,
                    protocol=protocol,  # type: ignore[arg-type]
                    backoff_initial_s=0.2,
                    backoff_max_s=5.0,
                ),
                outbox,
                batching=Batching(linger_s=0.2),
            )
            self.sink = sink = _GatewaySink(
                AlertingSink(outbox, AlertEngine(), on_alert=publisher.notify),
                record=opts.headless,
            )
            self.registry = stack.enter_context(DeviceRegistry(config.registry_path))

            def on_alert_message(message: Any) -> None:
                try:
                    alert = alert_store.record_payload(bytes(message.payload))
                    self.alerts_received += 1
                except VitalgateError as exc:
                    log.warning("demo: an alert message could not be recorded: %s", exc)
                    return
                if not opts.headless:
                    # Simulated patients: the terminal may show what the dashboard shows.
                    state = "ended" if alert.ended else "raised"
                    self.say(
                        f"\n  alert {state}: {alert.rule} for {alert.patient_id}"
                        f" ({alert.severity}: {alert.summary})"
                    )

            world = await stack.enter_async_context(SimWorld(seed=self.scenario.seed))
            stack.enter_context(use_simulation(world))
            self.sim = await start_scenario(self.scenario, world, clock=clock)
            self.gateway_clock = _GatewayClock(clock)
            daemon = Daemon(
                config,
                self.registry,
                Pipeline(sink),
                clock=self.gateway_clock,
                publisher=publisher,
            )
            stop = asyncio.Event()
            async with asyncio.TaskGroup() as tg:
                ingest_task = tg.create_task(ingest.run(), name="demo-ingest")
                alerts_conn = MqttConnection(
                    MqttConfig(
                        url=broker_url,
                        client_id=f"vitalgate-demo-alerts-{uuid.uuid4().hex[:8]}",
                        protocol=protocol,  # type: ignore[arg-type]
                        clean_start=True,
                    ),
                    on_message=on_alert_message,
                )
                await alerts_conn.open()
                await alerts_conn.subscribe([(f"vitalgate/v1/{opts.gateway_id}/alerts", 1)])
                await ingest.wait_connected(30)
                await self.pair(streaming=False)
                self.daemon_task = daemon_task = tg.create_task(
                    daemon.run(stop), name="demo-gateway"
                )
                server = None
                try:
                    if opts.headless:
                        stream_from = self.sim_end - timedelta(hours=opts.stream_hours)
                        await self.advance_to(stream_from)
                        log.info("demo: history simulated after %.1f s", time.monotonic() - t_start)
                        if opts.stream_hours > 0:
                            await self.pair(streaming=True)
                            await self.wait_streaming()
                        await self.advance_to(self.sim_end)
                        log.info("demo: simulation done after %.1f s", time.monotonic() - t_start)
                        await self.settle()
                        log.info("demo: settled after %.1f s", time.monotonic() - t_start)
                    else:
                        server = await self.start_dashboard(store, alert_store, tg)
                        progress = tg.create_task(self.progress(), name="demo-progress")
                        await self.backfill()
                        await self.pair(streaming=True)
                        await self.wait_streaming()
                        self.say("  live: the wearable and the oximeter stream now (Ctrl-C stops)")
                        await self.live(server)
                        progress.cancel()
                finally:
                    stop.set()
                    if server is not None:
                        server.should_exit = True
                    await asyncio.wait({daemon_task}, timeout=30)
                    log.info("demo: gateway stopped after %.1f s", time.monotonic() - t_start)
                    if opts.headless:
                        # What the gateway published on its way out is still written and acked.
                        await _wait_for(lambda: outbox.pending_count() == 0, 10)
                    ingest.stop()
                    await asyncio.wait({ingest_task}, timeout=30)
                    log.info("demo: ingest stopped after %.1f s", time.monotonic() - t_start)
                    with contextlib.suppress(Exception):
                        await alerts_conn.close()

            if not opts.headless:
                return None
            ids, kinds, n = await asyncio.to_thread(_stored_ids, store, self.patients)
            # What the paired devices produced (a device never paired was never synced).
            truth = [t for t in self.sim.truth if t.device_serial in self.paired]
            made = list(sink.made.values())
            lost, duplicates, problems = reconcile(truth, made, ids)
            derived = sum(1 for m in made if m.derived and ids.get(m.reading_id, 0) > 0)
            device_status = kinds.pop(str(ReadingKind.DEVICE_STATUS), 0)
            return DemoSummary(
                generated=len(truth),
                stored=n,
                lost=lost,
                duplicates=duplicates,
                seed=self.scenario.seed,
                days=opts.days,
                sim_start=_iso(self.sim_start),
                sim_end=_iso(self.sim_end),
                broker="embedded" if opts.broker_url is None else redact_url(broker_url),
                store="sqlite (embedded)" if opts.influx_url is None else redact_url(store_url),
                devices_paired=len(self.paired),
                alerts=sink.alerts,
                generated_by_kind=dict(sorted(Counter(str(t.kind) for t in truth).items())),
                stored_by_kind=dict(sorted(kinds.items())),
                elapsed_s=round(time.monotonic() - t_start, 1),
                problems=problems[:20],
                derived=derived,
                device_status=device_status,
            )

    async def pair(self, *, streaming: bool) -> None:
        """Pair the scenario's record-keeping devices (or the streaming ones) as ``vitalgate
        pair --passkey`` does: with the passkey the scenario's owner was given."""
        from vitalgate.gateway.kinds import DeviceKind as GatewayKind
        from vitalgate.gateway.pairing import pair_device

        assert self.gateway_clock is not None
        kinds = {
            "bp_monitor": GatewayKind.BLOOD_PRESSURE,
            "glucose_meter": GatewayKind.GLUCOSE,
            "cgm": GatewayKind.CGM,
            "hr_wearable": GatewayKind.HEART_RATE,
            "pulse_oximeter": GatewayKind.PULSE_OXIMETER,
            "thermometer": GatewayKind.THERMOMETER,
            "weight_scale": GatewayKind.WEIGHT_SCALE,
        }
        for spec in self.scenario.devices:
            if (str(spec.kind) in _STREAMING_KINDS) != streaming:
                continue
            device = self.sim.devices[spec.serial]
            users = dict(spec.users)
            shared = len(users) > 1

            async def passkey(_a: str, _n: str, _key: int | None = spec.passkey) -> int | None:
                return _key

            await device.start_advertising()
            await pair_device(
                config=self.config,
                registry=self.registry,
                clock=self.gateway_clock,
                device=device.address,
                kind=kinds[str(spec.kind)],
                patient_id=None if shared else next(iter(users.values())),
                passkey=passkey,
                user_patients=users if shared else None,
                name=spec.name,
            )
            self.paired.append(spec.serial)
            if not self.opts.headless:
                whom = (
                    ", ".join(f"user {u} = {p}" for u, p in users.items())
                    if shared
                    else next(iter(users.values()))
                )
                self.say(f"  paired:   {spec.manufacturer} {spec.model} ({spec.kind}; {whom})")

    def _check_gateway(self) -> None:
        task = self.daemon_task
        if task is not None and task.done():
            task.result()  # re-raise what stopped the gateway
            raise VitalgateError("the gateway stopped during the simulation")

    def _devices_busy(self) -> bool:
        """True while a simulated device is still sending (a RACP transfer or a live record).

        A real device measures minutes apart, long after its last transfer ended; with the clock
        compressed, the next simulated minutes wait until the devices are done, as they would
        be in real life (a busy device skips a live notification, leaving the record to the
        gateway's gap back-fill).
        """
        for device in self.sim.devices.values():
            racp = getattr(device, "racp", None)
            if racp is not None and racp.busy:
                return True
        return False

    async def advance_to(self, until: datetime) -> None:
        """Step the simulated clock to ``until``, letting the gateway work between steps."""
        while self.clock.now() < until:
            self._check_gateway()
            await self.clock.advance(min(_STEP, until - self.clock.now()))
            await asyncio.sleep(0.005)
            await _wait_for(lambda: not self._devices_busy(), 2.0, poll_s=0.005)

    async def wait_streaming(self) -> None:
        """Wait (real time, the clock stopped) until the gateway is connected to the streaming
        devices: a stream sends only to a connected central."""
        serials = [
            spec.serial for spec in self.scenario.devices if str(spec.kind) in _STREAMING_KINDS
        ]
        devices = [self.sim.devices[s] for s in serials]

        def streaming(device: Any) -> bool:
            char = getattr(device, "hr_char", None) or getattr(device, "continuous_char", None)
            return bool(device.is_connected and char is not None and device.is_subscribed(char))

        ok = await _wait_for(lambda: all(streaming(d) for d in devices), 30)
        if not ok:
            log.warning("demo: the gateway did not connect to every streaming device in 30 s")

    async def settle(self) -> None:
        """With the clock stopped: wait until the gateway made a reading of every record, the
        outbox is empty and the store holds every reading made (or nothing moves for 15 s)."""
        assert self.sink is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.opts.settle_timeout_s
        stable_since = loop.time()
        last = (-1, -1)
        while loop.time() < deadline:
            self._check_gateway()
            made_now = list(self.sink.made.values())
            made_ids = [m.reading_id for m in made_now]
            made = sum(1 for m in made_now if not m.derived)
            stored = self.ingest.stats.written_readings
            produced = sum(1 for t in self.sim.truth if t.device_serial in self.paired)
            if made >= produced and self.outbox.pending_count() == 0 and stored >= made:
                # The ingest's count includes redeliveries: ask the store itself.
                ids, _, _ = await asyncio.to_thread(_stored_ids, self.store, self.patients)
                if all(rid in ids for rid in made_ids):
                    return
            if (made, stored) != last:
                last, stable_since = (made, stored), loop.time()
            elif loop.time() - stable_since > 15:
                return  # nothing moves any more: report what there is
            await asyncio.sleep(0.2)

    async def backfill(self) -> None:
        self.say(f"  backfill: {self.opts.days:g} day(s) of history, time-accelerated ...")
        # The present moves on while we backfill: catch up with it.
        while self.clock.now() < datetime.now(UTC) - timedelta(seconds=1):
            target = min(self.clock.now() + timedelta(hours=6), datetime.now(UTC))
            await self.advance_to(target)
        self.say("  backfill: done; the simulation now runs in real time")

    async def live(self, server: Any) -> None:
        """Follow real time (times ``--speed``) until interrupted or the dashboard stops."""
        loop = asyncio.get_running_loop()
        last = loop.time()
        while not server.should_exit:
            self._check_gateway()
            await asyncio.sleep(0.25)
            t = loop.time()
            await self.clock.advance(timedelta(seconds=(t - last) * self.opts.speed))
            last = t

    async def progress(self) -> None:
        """A status line: devices, readings at each hop, alerts (every second on a terminal)."""
        assert self.sink is not None
        tty = self.out.isatty()
        while True:
            await asyncio.sleep(1.0 if tty else 10.0)
            line = (
                f"  [{self.clock.now():%Y-%m-%d %H:%M} UTC] devices paired {len(self.paired)}"
                f" | readings measured {len(self.sim.truth)}, synced {self.sink.added},"
                f" published {self.publisher.stats.readings_acked},"
                f" stored {self.ingest.stats.written_readings} | alerts raised {self.sink.alerts}"
            )
            if tty:
                self.out.write("\r" + line[:160].ljust(160))
                self.out.flush()
            else:
                self.say(line)

    async def start_dashboard(self, store: Any, alert_store: Any, tg: asyncio.TaskGroup) -> Any:
        import uvicorn

        from vitalgate.views.app import DashboardConfig, create_app
        from vitalgate.views.auth import Role, UserStore, add_user
        from vitalgate.views.patients import load_patients

        opts = self.opts
        users_path = self.state / "users.json"
        password = secrets.token_urlsafe(12)
        add_user(users_path, DEMO_DOCTOR, password, Role.DOCTOR, None)
        patients_path = self.state / "patients.toml"
        patients_path.write_text(
            "".join(
                f'[[patient]]\nid = "{p}"\nname = "{_PATIENT_NAMES.get(p, p)}"\n'
                f'timezone = "{self.scenario.timezone}"\n\n'
                for p in self.patients
            )
        )
        app = create_app(
            DashboardConfig(
                store=store,
                users=UserStore(users_path),
                alerts=alert_store,
                patients=load_patients(str(patients_path)),
            )
        )
        config = uvicorn.Config(
            app,
            host=opts.host,
            port=opts.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        server = uvicorn.Server(config)
        tg.create_task(server.serve(), name="demo-dashboard")
        ok = await _wait_for(lambda: bool(server.started) or server.should_exit, 15)
        if not ok or not server.started:
            raise ConfigError("port", f"the dashboard could not listen on {opts.host}:{opts.port}")
        self.say(f"  dashboard: http://{opts.host}:{opts.port}/")
        self.say(
            f"             sign in as {DEMO_DOCTOR!r} with password {password!r} (demo account)"
        )
        return server


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


async def _wait_for(predicate: Callable[[], bool], timeout_s: float, poll_s: float = 0.1) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(poll_s)
    return True


# ---------------------------------------------------------------------------------------------
# the command


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "demo",
        help="run the whole product on a simulated household (make demo)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--headless", action="store_true", help="bounded run, one JSON line out")
    p.add_argument("--days", type=float, default=3.0, help="simulated days of history (3)")
    p.add_argument("--seed", type=int, default=None, help="scenario seed (household: 42)")
    p.add_argument("--broker", default=None, metavar="URL", help="a real MQTT 5 broker")
    p.add_argument(
        "--influx-url",
        default=None,
        metavar="URL",
        help="a real store: http://host:8086[/db] (InfluxDB 1.x, the database is created) or an"
        " influxdb1:// / influxdb2:// store URL (the summary counts by reading_id, which"
        " VictoriaMetrics does not keep)",
    )
    p.add_argument("--host", default="127.0.0.1", help="dashboard address (127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="dashboard port (8080)")
    p.add_argument("--state-dir", type=Path, default=None, help="keep state here (default: temp)")
    p.add_argument("--speed", type=float, default=1.0, help="live phase: x real time (1)")
    p.add_argument(
        "--stream-hours",
        type=float,
        default=1.0,
        help="headless: simulated hours at the end with the streaming devices paired (1)",
    )
    p.add_argument("--gateway-id", default="gw-demo", help="the demo gateway's id (gw-demo)")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    opts = DemoOptions(
        headless=args.headless,
        days=args.days,
        seed=args.seed,
        broker_url=args.broker,
        influx_url=args.influx_url,
        host=args.host,
        port=args.port,
        state_dir=args.state_dir,
        speed=args.speed,
        stream_hours=args.stream_hours,
        gateway_id=args.gateway_id,
    )
    try:
        summary = asyncio.run(run_demo(opts))
    except KeyboardInterrupt:
        print("\nvitalgate demo: stopped", file=sys.stderr)
        return 0
    if summary is None:
        return 0
    print(summary.to_json())
    return 0 if summary.lost == 0 and summary.duplicates == 0 else 1
