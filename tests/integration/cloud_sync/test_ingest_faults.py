"""Nothing lost, nothing duplicated: broker restarted twice, worker killed -9, store down 10 s.

200 simulated gateways x 500 readings are published (paced, so every fault lands mid-run) through
a Mosquitto of this test's own into a VictoriaMetrics of its own, by an ingest worker running as
``python -m vitalgate ingest`` in a subprocess. Afterwards every reading is in the store exactly
once, counted by series + timestamp (VictoriaMetrics' identity of a reading).
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.cloud_sync.ingest_helpers import make_workload, publish_all
from tests.integration.cloud_sync.test_ingest import vm_keys
from tests.support.servers import Mosquitto, VictoriaMetrics

pytestmark = [pytest.mark.servers, pytest.mark.slow]


@pytest.fixture
def own_servers() -> Iterator[tuple[Mosquitto, VictoriaMetrics]]:
    broker, vm = Mosquitto(), VictoriaMetrics()
    broker.start()
    vm.start()
    try:
        yield broker, vm
    finally:
        broker.cleanup()
        vm.cleanup()


class WorkerProcess:
    """``python -m vitalgate ingest`` as a child process, with a stable client id."""

    def __init__(self, broker: Mosquitto, vm: VictoriaMetrics, log_path: Path) -> None:
        self.cmd = [
            sys.executable,
            "-m",
            "vitalgate",
            "-v",
            "ingest",
            "--broker",
            broker.url,
            "--store",
            f"victoriametrics://127.0.0.1:{vm.port}?timeout_s=5",
            "--group",
            "faults",
            "--client-id-prefix",
            "faults-worker",
            "--session-expiry-s",
            "600",
        ]
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise


async def test_no_loss_no_duplicates_through_faults(
    own_servers: tuple[Mosquitto, VictoriaMetrics], tmp_path: Path
) -> None:
    broker, vm = own_servers
    wl = make_workload(f"f{uuid.uuid4().hex[:6]}", gateways=200, per_gateway=500)
    worker = WorkerProcess(broker, vm, tmp_path / "worker.log")
    worker.start()
    await asyncio.sleep(1.5)  # let it subscribe (its session then queues what it misses)
    events: list[str] = []
    t0 = time.monotonic()

    async def at(t: float) -> None:
        await asyncio.sleep(max(0.0, t0 + t - time.monotonic()))

    async def faults() -> None:
        await at(2)
        await asyncio.to_thread(broker.restart)
        events.append("broker restarted")
        await at(4)
        worker.kill9()
        events.append("worker killed -9")
        await at(5)
        worker.start()
        events.append("worker restarted")
        await at(6)
        await asyncio.to_thread(vm.stop)
        events.append("store stopped")
        await at(9)
        await asyncio.to_thread(broker.restart)
        events.append("broker restarted again")
        await at(16)
        await asyncio.to_thread(vm.start)
        events.append("store started after 10 s")

    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(faults())
            publishing = tg.create_task(
                asyncio.to_thread(
                    publish_all,
                    broker.url,
                    wl.messages,
                    client_prefix="faults",
                    connections=4,
                    rate_per_s=40.0,  # 4 x 40 msg/s x 50 readings: ~12 s for 100k readings
                    retry_s=3.0,
                    timeout_s=90.0,
                )
            )
        report = publishing.result()
        assert report.acked == len(wl.messages)
        assert len(events) == 6

        keys: list[tuple[str, str, str, int]] = []

        async def complete() -> bool:
            keys[:] = await asyncio.to_thread(vm_keys, vm.url, wl.patient_prefix)
            return len(set(keys)) >= wl.n_readings

        deadline = time.monotonic() + 60
        while not await complete():
            assert time.monotonic() < deadline, (
                f"{len(set(keys))} of {wl.n_readings} readings stored; events {events}; "
                f"worker log: {worker.log_path.read_text()[-3000:]}"
            )
            await asyncio.sleep(0.5)
        assert set(keys) == wl.keys  # nothing lost
        assert len(keys) == wl.n_readings  # nothing stored twice
    finally:
        rc = worker.stop()
    assert rc == 0, worker.log_path.read_text()[-3000:]
