"""The daemon's watchdog: a device that stops syncing is reported once, and again when back."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from vitalgate.errors import ConfigError
from vitalgate.gateway.config import parse_config
from vitalgate.gateway.daemon import Daemon
from vitalgate.gateway.kinds import DeviceKind
from vitalgate.gateway.pipeline import Pipeline
from vitalgate.gateway.registry import DeviceRegistry, SyncPoint
from vitalgate.readings import Reading

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


class ManualClock:
    def __init__(self, now: datetime) -> None:
        self.at = now

    def now(self) -> datetime:
        return self.at

    async def sleep(self, delay: timedelta) -> None:  # pragma: no cover - not run here
        raise AssertionError("the test drives the watchdog itself")


class Events:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def add_alert(self, event: Mapping[str, Any]) -> None:
        self.events.append(dict(event))


class NullSink:
    def add(self, readings: list[Reading]) -> int:  # pragma: no cover - nothing delivered
        return len(readings)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[DeviceRegistry]:
    with DeviceRegistry(tmp_path / "registry.sqlite3") as reg:
        reg.add_device(
            address="AA:00:00:00:00:01",
            kind=DeviceKind.BLOOD_PRESSURE,
            patient_id="p1",
            name="BP",
            paired_at=T0 - timedelta(days=10),
        )
        reg.add_device(
            address="AA:00:00:00:00:02",
            kind=DeviceKind.CGM,
            patient_id="p1",
            name="CGM",
            paired_at=T0 - timedelta(days=10),
        )
        reg.advance_sync("AA:00:00:00:00:01", SyncPoint(), at=T0 - timedelta(days=5))
        reg.advance_sync("AA:00:00:00:00:02", SyncPoint(), at=T0 - timedelta(days=5))
        yield reg


def _daemon(registry: DeviceRegistry, clock: ManualClock, events: Events, **devices: Any) -> Daemon:
    config = parse_config(
        {
            "gateway_id": "gw-1",
            "state_dir": "/tmp/vg-silent",
            "patients": [{"id": "p1", "timezone": "UTC"}],
            "devices": devices,
        }
    )
    return Daemon(config, registry, Pipeline(NullSink()), clock=clock, events=events)


async def test_silent_devices_are_reported_once_counting_from_the_daemon_start(
    registry: DeviceRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    clock, events = ManualClock(T0), Events()
    daemon = _daemon(registry, clock, events)
    await daemon._refresh()
    daemon._started = clock.now()
    # Both last synced 5 days ago, but the gateway itself only just started: not their fault.
    await daemon._report_silent()
    assert events.events == []
    clock.at = T0 + timedelta(hours=1, minutes=1)  # past the stream limit (1 h), not the spot one
    with caplog.at_level(logging.WARNING, logger="vitalgate.gateway.daemon"):
        await daemon._report_silent()
        await daemon._report_silent()  # once per silence
    assert [(e["device"], e["device_kind"], e["resolved"]) for e in events.events] == [
        ("AA:00:00:00:00:02", "cgm", False)
    ]
    assert events.events[0]["patient_id"] == "p1"
    assert events.events[0]["last_sync"] == "2026-11-19T08:00:00.000000Z"  # as every time
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "AA:00:00:00:00:02" in caplog.messages[0] and "no sync for 1.0 h" in caplog.messages[0]
    clock.at = T0 + timedelta(hours=73)
    await daemon._report_silent()
    assert [e["device"] for e in events.events] == ["AA:00:00:00:00:02", "AA:00:00:00:00:01"]
    assert events.events[1]["silent_h"] == 73.0


async def test_a_sync_after_silence_resolves_it(
    registry: DeviceRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock, events = ManualClock(T0 + timedelta(hours=2)), Events()
    daemon = _daemon(registry, clock, events)
    await daemon._refresh()
    daemon._started = T0
    await daemon._report_silent()
    assert [e["device"] for e in events.events] == ["AA:00:00:00:00:02"]

    async def synced(*_args: object) -> SimpleNamespace:
        return SimpleNamespace(offered=3, added=3, rejected=(), problem=None, sync=None)

    monkeypatch.setattr("vitalgate.gateway.daemon.sync_device", synced)
    ctx = SimpleNamespace(config=daemon._config)
    record = registry.get("AA:00:00:00:00:02")
    await daemon._supervise(ctx, None, record)  # type: ignore[arg-type]
    assert events.events[-1]["resolved"] is True
    assert events.events[-1]["device"] == "AA:00:00:00:00:02"
    await daemon._refresh()
    await daemon._report_silent()  # synced just now: silent no longer
    assert len(events.events) == 2


async def test_a_device_being_served_or_recently_synced_is_not_silent(
    registry: DeviceRegistry,
) -> None:
    clock, events = ManualClock(T0 + timedelta(hours=2)), Events()
    daemon = _daemon(registry, clock, events)
    registry.advance_sync("AA:00:00:00:00:01", SyncPoint(), at=T0 + timedelta(hours=1))
    await daemon._refresh()
    daemon._started = T0
    daemon._busy.add("AA:00:00:00:00:02")  # the CGM is connected and streaming
    await daemon._report_silent()
    assert events.events == []


async def test_zero_turns_the_watchdog_off(registry: DeviceRegistry) -> None:
    clock, events = ManualClock(T0 + timedelta(days=30)), Events()
    daemon = _daemon(registry, clock, events, silent_after_h=0, stream_silent_after_h=0)
    await daemon._refresh()
    daemon._started = T0
    await daemon._report_silent()
    assert events.events == []


def test_limits_are_validated() -> None:
    with pytest.raises(ConfigError, match=r"devices\.silent_after_h"):
        parse_config(
            {
                "gateway_id": "gw-1",
                "state_dir": "/tmp/vg-silent",
                "patients": [{"id": "p1", "timezone": "UTC"}],
                "devices": {"silent_after_h": -1},
            }
        )
