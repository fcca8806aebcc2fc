"""Nothing is lost when the broker restarts twice mid-run, or when the gateway's publisher
process is killed with SIGKILL and started again."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.integration.cloud_sync.mqtt_support import Collector, eventually
from tests.support.servers import Mosquitto
from tests.unit.cloud_sync.test_schema import sample_readings
from vitalgate.cloud_sync.mqtt import MqttConfig
from vitalgate.cloud_sync.outbox import Outbox
from vitalgate.cloud_sync.publisher import Batching, Publisher

pytestmark = [pytest.mark.servers, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def broker() -> Iterator[Mosquitto]:
    # Its own temporary directory (not tmp_path): Mosquitto drops to the mosquitto user, which
    # cannot enter pytest's 0700 tmp tree, and then silently persists nothing.
    server = Mosquitto()
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@contextlib.asynccontextmanager
async def running(publisher: Publisher) -> AsyncIterator[None]:
    task = asyncio.create_task(publisher.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.parametrize("protocol", [5, 311])
async def test_broker_restarted_twice_mid_run_loses_nothing(
    broker: Mosquitto, tmp_path: Path, protocol: int
) -> None:
    total = 12_000
    readings = sample_readings(total)
    config = MqttConfig(
        url=broker.url,
        client_id="gw-restart",
        protocol=protocol,  # type: ignore[arg-type]
        backoff_initial_s=0.05,
        backoff_max_s=0.5,
        keepalive_s=5,
    )
    with (
        Collector(
            broker.url, client_id="col-restart", gateway="gw-restart", persistent=True
        ) as col,
        Outbox(tmp_path / "o.db") as ob,
    ):
        pub = Publisher(config, ob, batching=Batching(max_readings=50, max_in_flight=8))
        async with running(pub):

            async def feed() -> None:
                for i in range(0, total, 400):
                    await asyncio.to_thread(ob.add, readings[i : i + 400])
                    pub.notify()
                    await asyncio.sleep(0.02)

            feeder = asyncio.create_task(feed())
            for fraction in (0.25, 0.6):
                await eventually(
                    lambda f=fraction: col.count_distinct() >= total * f,  # type: ignore[misc]
                    60,
                    f"{fraction:.0%} delivered",
                )
                await asyncio.to_thread(broker.restart)
            await feeder
            await asyncio.wait_for(pub.wait_drained(), 60)
            await eventually(lambda: col.count_distinct() == total, 30, "every reading")
        assert set(col.ids) == {r.reading_id for r in readings}
        assert not col.errors
        assert ob.pending_count() == 0
        assert pub.stats.connects >= 3
        # At least once: some readings may have arrived twice (re-sent after a restart).
        assert sum(col.ids.values()) >= total


# The child publisher claims its batches slowly (10 ms a claim of at most 4 x 20 readings:
# <= 8k readings/s) so the kill lands mid-run however fast or loaded the machine is.
CHILD = """
import asyncio, signal, sys, time
from pathlib import Path
from vitalgate.cloud_sync.mqtt import MqttConfig
from vitalgate.cloud_sync.outbox import Outbox
from vitalgate.cloud_sync.publisher import Batching, Publisher

class SlowOutbox(Outbox):
    def next_batches(self, *args, **kwargs):
        time.sleep(0.01)
        return super().next_batches(*args, **kwargs)

async def main() -> None:
    ob = SlowOutbox(Path(sys.argv[1]))
    config = MqttConfig(url=sys.argv[2], client_id="gw-killed", backoff_initial_s=0.05,
                        backoff_max_s=0.5)
    task = asyncio.create_task(
        Publisher(config, ob, batching=Batching(max_readings=20, max_in_flight=4)).run())
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        pass
    ob.close()

asyncio.run(main())
"""


def _start_child(db: Path, url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", CHILD, str(db), url], cwd=REPO)


async def test_publisher_killed_9_mid_run_and_restarted_loses_nothing(
    broker: Mosquitto, tmp_path: Path
) -> None:
    total = 8_000
    readings = sample_readings(total)
    db = tmp_path / "o.db"
    with Outbox(db) as ob:
        assert ob.add(readings) == total
    with Collector(broker.url, client_id="col-killed", gateway="gw-killed", persistent=True) as col:
        child = _start_child(db, broker.url)
        try:
            await eventually(lambda: col.count_distinct() >= total // 4, 60, "a quarter")
            os.kill(child.pid, signal.SIGKILL)
            child.wait(10)
            # The broker saw the socket die: the Last Will says "offline" (retained).
            await eventually(lambda: ("gw-killed", "offline", False) in col.status, 10, "will")
            assert col.count_distinct() < total
            child = _start_child(db, broker.url)
            await eventually(lambda: col.count_distinct() == total, 60, "every reading")
            child.send_signal(signal.SIGTERM)  # clean shutdown: "offline" from the gateway
            assert child.wait(15) == 0
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(10)
        assert set(col.ids) == {r.reading_id for r in readings}
        assert not col.errors
    with Outbox(db) as ob:
        assert ob.pending_count() == 0
