"""A gateway offline for a simulated week replays its whole backlog: nothing lost."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.integration.cloud_sync.mqtt_support import Collector, eventually
from vitalgate.cloud_sync.mqtt import MqttConfig
from vitalgate.cloud_sync.outbox import Outbox
from vitalgate.cloud_sync.publisher import Publisher
from vitalgate.readings import CgmReading, DeviceIdentity, HeartRateReading, Reading

pytestmark = [pytest.mark.servers, pytest.mark.slow]


def offline_week(n: int) -> list[Reading]:
    """n readings spread over 7 days: CGM every 5 min per sensor plus heart rate."""
    start = datetime(2026, 11, 1, tzinfo=UTC)
    step = timedelta(days=7) / n
    sensors = [
        DeviceIdentity(f"AA:00:00:00:00:{i:02X}", "Acme", "CGM-7", f"S{i}") for i in range(4)
    ]
    hr = DeviceIdentity("BB:00:00:00:00:01", "Acme", "HR-2", "H1")
    out: list[Reading] = []
    for i in range(n):
        at = start + i * step
        common: dict[str, Any] = {
            "patient_id": f"p-{i % 4}",
            "measured_at": at,
            "received_at": start + timedelta(days=7, minutes=1),
        }
        if i % 5:
            out.append(
                CgmReading(
                    device=sensors[i % 4],
                    glucose_mg_dl=100.0 + i % 90,
                    time_offset_min=i,
                    session_start=start,
                    sequence_number=i,
                    **common,
                )
            )
        else:
            out.append(
                HeartRateReading(
                    device=hr, heart_rate_bpm=55.0 + i % 50, sequence_number=i, **common
                )
            )
    return out


async def test_offline_week_backlog_replays_completely(mqtt_url: str, tmp_path: Path) -> None:
    total = 100_000
    readings = offline_week(total)
    with Outbox(tmp_path / "o.db") as ob:
        # The week offline: readings pile up in the outbox, 2,000 per device download.
        for i in range(0, total, 2000):
            assert ob.add(readings[i : i + 2000]) == 2000
        assert ob.pending_count() == total
        with Collector(mqtt_url, client_id="col-backlog", gateway="gw-backlog") as col:
            pub = Publisher(MqttConfig(url=mqtt_url, client_id="gw-backlog"), ob)
            task = asyncio.create_task(pub.run())
            try:
                await asyncio.wait_for(pub.wait_drained(), 120)
                await eventually(
                    lambda: col.count_distinct() == total,
                    60,
                    lambda: f"the whole week ({col.count_distinct()}, {col.messages} messages)",
                )
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            assert set(col.ids) == {r.reading_id for r in readings}
            assert not col.errors
            assert col.messages <= total / 100  # many readings per message
        ob.flush_acks()
        assert ob._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0
