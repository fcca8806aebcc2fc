"""kill -9 in the middle of a RACP download, restart: nothing lost, nothing duplicated.

The devices live in this process (a SimWorld served over the relay); the gateway runs in its
own process (``gateway_proc``) with the real outbox and registry, and is killed with SIGKILL
while it downloads a glucose meter's memory.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from vitalgate.cloud_sync.outbox import Outbox
from vitalgate.cloud_sync.schema import reading_from_dict
from vitalgate.firmware_sim.clock import SimClock
from vitalgate.firmware_sim.devices.common import PatientProfile
from vitalgate.firmware_sim.devices.glucose_meter import GlucoseMeter
from vitalgate.firmware_sim.faults import Fault, FaultInjector, FaultKind
from vitalgate.firmware_sim.relay import serve_world
from vitalgate.firmware_sim.truth import TruthLog
from vitalgate.firmware_sim.world import SimWorld
from vitalgate.gateway.registry import DeviceRegistry

from .helpers import TZ, make_patient, make_setup, match_truth, pending_measurements, wait_until

ROOT = Path(__file__).resolve().parents[3]


def _write_config(path: Path, state_dir: Path) -> None:
    patients = "\n".join(
        f'[[patients]]\nid = "{pid}"\ntimezone = "{tz}"\n' for pid, tz in TZ.items()
    )
    path.write_text(
        f'gateway_id = "gw-kill"\nstate_dir = "{state_dir}"\n{patients}\n'
        "[limits]\nquiet_period_s = 0.5\nprocedure_timeout_s = 10.0\nconnect_timeout_s = 5.0\n"
        "download_batch = 5\n"
        "[devices]\nclock_tolerance_s = 1.0\nreconnect_interval_s = 3600.0\n"
    )


def _outbox_count(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0) as db:
            return int(db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


async def _spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.gateway.gateway_proc",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_kill9_mid_racp_download(tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(days=45)
    clock = SimClock(start, speed=1.0)
    truth = TruthLog()
    anna = make_patient("p-anna", PatientProfile.TYPE2_DIABETIC, seed=3, start=start)
    state = tmp_path / "state"
    config_path = tmp_path / "gateway.toml"
    _write_config(config_path, state)
    async with SimWorld(seed=9, with_central=False) as world:
        # Each record packet is delayed, so the download of ~200 records takes seconds.
        slow = FaultInjector(
            (Fault(kind=FaultKind.SLOW_RESPONSES, device="GM-K", latency_s=0.02),),
            seed=1,
            serial="GM-K",
        )
        meter = await world.add(
            GlucoseMeter(
                make_setup("GM-K", 41, {1: anna}, clock_error_s=0.0),
                clock=clock,
                truth=truth,
                faults=slow,
            )
        )
        async with serve_world(world) as server:
            offset_s = (clock.now() - datetime.now(UTC)).total_seconds()
            common = ["--config", str(config_path), "--url", server.url]
            common += ["--clock-offset-s", str(offset_s)]
            await meter.start_advertising()
            pair = await _spawn(
                "pair",
                *common,
                "--address",
                meter.address,
                "--kind",
                "glucose",
                "--patient",
                "p-anna",
                "--passkey",
                str(meter.setup.passkey),
            )
            _out, err = await pair.communicate()
            assert pair.returncode == 0, err.decode()
            await meter.stop_advertising()
            meter.start()
            await clock.advance(timedelta(days=44))
            offset_s = (clock.now() - datetime.now(UTC)).total_seconds()
            common[-1] = str(offset_s)
            expected = len(truth)
            assert expected > 150

            outbox_path = state / "outbox.sqlite3"
            first = await _spawn("run", *common)
            try:
                started = await wait_until(lambda: _outbox_count(outbox_path) > 5, 30.0)
                assert started, "the download never started"
                assert _outbox_count(outbox_path) < expected, "download finished before kill"
                first.send_signal(signal.SIGKILL)
                await first.wait()
            finally:
                if first.returncode is None:
                    first.kill()
                    await first.wait()
            partial = _outbox_count(outbox_path)
            assert 0 < partial < expected
            with DeviceRegistry(state / "registry.sqlite3") as registry:
                assert registry.get(meter.address).sync.last_racp_seq is None

            # The meter re-advertises after the link dropped; the new gateway resumes.
            second = await _spawn("run", *common)
            try:
                done = await wait_until(lambda: _outbox_count(outbox_path) >= expected, 60.0)
                assert done, (_outbox_count(outbox_path), expected)
                with DeviceRegistry(state / "registry.sqlite3") as registry:
                    ok = await wait_until(
                        lambda: registry.get(meter.address).sync.last_racp_seq is not None, 10.0
                    )
                    assert ok
            finally:
                second.send_signal(signal.SIGTERM)
                try:
                    async with asyncio.timeout(20):
                        await second.wait()
                except TimeoutError:
                    second.kill()
                    await second.wait()
            assert second.returncode == 0, (await second.stderr.read()).decode()[-2000:]

    with Outbox(outbox_path) as outbox:
        assert pending_measurements(outbox) == expected
    with sqlite3.connect(outbox_path) as db:
        rows = db.execute(
            "SELECT kind, payload FROM outbox WHERE kind != 'device_status'"
        ).fetchall()
    readings = [reading_from_dict(orjson.loads(payload), kind) for kind, payload in rows]
    assert len({r.reading_id for r in readings}) == len(readings) == expected
    assert match_truth(list(truth), readings) == []
    assert stat_mode(outbox_path) == 0o600


def stat_mode(path: Path) -> int:
    return os.stat(path).st_mode & 0o777
