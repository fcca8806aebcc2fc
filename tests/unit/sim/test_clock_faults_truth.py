"""SimClock stepping, device clocks, fault plans and the truth log."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from vitalgate.errors import ConfigError
from vitalgate.firmware_sim.clock import CLOCK_RESET_TIME, DeviceClock, SimClock
from vitalgate.firmware_sim.faults import Fault, FaultKind, FaultPlan
from vitalgate.firmware_sim.truth import TruthLog, TruthRecord
from vitalgate.readings import ReadingKind

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def test_advance_wakes_sleepers_in_order() -> None:
    clock = SimClock(T0)
    seen: list[tuple[str, datetime]] = []

    async def every(name: str, minutes: int) -> None:
        while True:
            await clock.sleep(timedelta(minutes=minutes))
            seen.append((name, clock.now()))

    async with asyncio.TaskGroup() as tg:
        a = tg.create_task(every("a", 5))
        b = tg.create_task(every("b", 7))
        await clock.advance(timedelta(days=1))
        a.cancel()
        b.cancel()
    assert len([s for s in seen if s[0] == "a"]) == 288
    assert [t for _, t in seen] == sorted(t for _, t in seen)
    assert clock.now() == T0 + timedelta(days=1)


async def test_accelerated_clock_runs() -> None:
    clock = SimClock(T0, speed=3600.0)
    start = clock.now()
    await clock.sleep(timedelta(minutes=1))  # ~17 ms of real time
    assert clock.now() - start >= timedelta(minutes=1)


async def test_device_clock_drift_reset_and_set() -> None:
    clock = SimClock(T0)
    dc = DeviceClock(clock, local_offset=timedelta(hours=1), drift_ppm=100.0)
    assert dc.now() == datetime(2026, 1, 1, 1, 0)
    await clock.advance(timedelta(days=1))
    assert dc.error() == timedelta(seconds=8.64)
    dc.reset()
    assert dc.now() == CLOCK_RESET_TIME
    dc.set_correct()
    assert dc.error() == timedelta(0)


def test_fault_plan_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "faults.toml"
    path.write_text(
        'seed = 4\n[[faults]]\ndevice = "GM-1"\nkind = "disconnect_mid_transfer"\n'
        'after_records = 3\n[[faults]]\ndevice = "BP-1"\nkind = "clock_drift"\nppm = 50\n'
    )
    plan = FaultPlan.from_toml(path)
    assert plan.seed == 4
    assert plan.for_device("GM-1")[0] == Fault(
        kind=FaultKind.DISCONNECT_MID_TRANSFER, device="GM-1", after_records=3
    )


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        ({"device": "X", "kind": "nope"}, "faults[0].kind"),
        ({"kind": "vanish", "at_s": 1}, "faults[0].device"),
        ({"device": "X", "kind": "clock_drift"}, "faults[0]"),
        ({"device": "X", "kind": "low_battery", "battery_pct": 1.5}, "faults[0].battery_pct"),
        (
            {"device": "X", "kind": "corrupt_packet", "after_records": 1, "bogus": 1},
            "faults[0].bogus",
        ),
    ],
)
def test_bad_fault_is_a_config_error(entry: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        FaultPlan.from_mapping({"faults": [entry]}, seed=0)
    assert info.value.key == key


def test_packet_faults_are_reproducible() -> None:
    fault = Fault(kind=FaultKind.TRUNCATED_PACKET, device="D", probability=0.3)
    runs = []
    for _ in range(2):
        injector = FaultPlan((fault,), seed=9).injector("D")
        runs.append([injector.packet(b"\x00" * 10, i).payloads for i in range(50)])
    assert runs[0] == runs[1]
    assert any(len(p[0]) < 10 for p in runs[0])


def test_truth_round_trip_and_file_mode(tmp_path: Path) -> None:
    record = TruthRecord(
        kind=ReadingKind.GLUCOSE,
        device_serial="S",
        device_model="M",
        device_manufacturer="V",
        device_address="C0:00:00:00:00:01",
        patient_id="p",
        sequence_number=3,
        user_id=None,
        device_time=datetime(2026, 1, 1, 8, 0),
        measured_at=T0,
        values={"glucose_mg_dl": 120.0},
        attributes={"meal": "fasting"},
    )
    log = TruthLog([record])
    path = tmp_path / "truth.jsonl"
    log.write_jsonl(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert list(TruthLog.read_jsonl(path)) == [record]
