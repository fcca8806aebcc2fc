"""A glucose meter over many syncs (the 7-day soak's glucose losses after ~240 connections).

The soak lost every glucose-meter reading after simulated day 5.6: each of the gateway's
connections to a meter left one advertising set behind in the simulated peripheral's bumble
device, which has 240 advertising handles (0x00-0xEF); the 241st re-advertisement failed with
``OutOfResourcesError``, the meter never advertised again and its later records were never
fetched (the peripheral must remove the set a connection ended before it advertises again).
The first test syncs one meter more often than that and requires every record to arrive; the
second makes sure records a full meter overwrote before the gateway fetched them are reported.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from vitalgate.firmware_sim.clock import SimClock
from vitalgate.firmware_sim.devices.common import PatientProfile
from vitalgate.firmware_sim.devices.glucose_meter import GlucoseMeter
from vitalgate.firmware_sim.truth import TruthLog
from vitalgate.firmware_sim.world import SimWorld
from vitalgate.gateway.kinds import DeviceKind
from vitalgate.gateway.registry import DeviceRegistry
from vitalgate.gateway.runner import sync_device
from vitalgate.gateway.sessions.glucose import missing_sequence_ranges

from .helpers import (
    START,
    MemorySink,
    make_config,
    make_context,
    make_patient,
    make_setup,
    match_truth,
    pair_all,
    wait_until,
)

#: More connections than bumble's advertising handles (0x00..0xEF).
SYNCS = 260


@pytest.mark.slow
async def test_meter_keeps_advertising_over_many_syncs(sim_world: SimWorld, tmp_path: Path) -> None:
    clock = SimClock(START)
    truth = TruthLog()
    anna = make_patient("p-anna", PatientProfile.TYPE2_DIABETIC_HYPERTENSIVE, seed=1)
    meter = await sim_world.add(
        GlucoseMeter(make_setup("GM-LONG", 21, {1: anna}), clock=clock, truth=truth)
    )
    config = make_config(tmp_path)
    sink = MemorySink()
    with DeviceRegistry(config.registry_path) as registry:
        ctx = make_context(config, registry, sink, clock)
        await pair_all(config, registry, clock, [(meter, DeviceKind.GLUCOSE, "p-anna", None)])
        await meter.start_advertising()
        for i in range(SYNCS):
            if i % 20 == 0:
                meter.measure(meal=None, carbohydrate_id=None)
            assert await wait_until(lambda: meter.is_advertising, 5.0), (
                f"the meter stopped advertising after {i} syncs"
            )
            result = await sync_device(ctx, meter.address, registry.get(meter.address))
            assert result.problem is None, result.problem
            await clock.advance(timedelta(minutes=30))
        meter.measure(meal=None, carbohydrate_id=None)
        assert await wait_until(lambda: meter.is_advertising, 5.0), "no advertising at the end"
        result = await sync_device(ctx, meter.address, registry.get(meter.address))
        assert result.problem is None, result.problem

    readings = list(sink.readings.values())
    assert match_truth(list(truth), readings) == []
    assert len(readings) == len(truth) == SYNCS // 20 + 1


async def test_records_overwritten_before_the_sync_are_reported(
    sim_world: SimWorld, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A full meter overwrites its oldest records: the gap in sequence numbers is an error."""
    clock = SimClock(START)
    truth = TruthLog()
    anna = make_patient("p-anna", PatientProfile.TYPE2_DIABETIC_HYPERTENSIVE, seed=1)
    meter = await sim_world.add(
        GlucoseMeter(
            make_setup("GM-FULL", 22, {1: anna}), clock=clock, truth=truth, memory_capacity=5
        )
    )
    config = make_config(tmp_path)
    sink = MemorySink()
    with DeviceRegistry(config.registry_path) as registry:
        ctx = make_context(config, registry, sink, clock)
        await pair_all(config, registry, clock, [(meter, DeviceKind.GLUCOSE, "p-anna", None)])

        async def sync() -> str | None:
            await meter.start_advertising()
            result = await sync_device(ctx, meter.address, registry.get(meter.address))
            await meter.stop_advertising()
            return result.problem

        for _ in range(3):  # sequence numbers 1-3
            meter.measure(meal=None, carbohydrate_id=None)
            await clock.advance(timedelta(hours=5))
        assert await sync() is None
        assert registry.get(meter.address).sync.last_racp_seq == 3
        for _ in range(8):  # 4-11: the memory of 5 keeps 7-11, 4-6 are overwritten
            meter.measure(meal=None, carbohydrate_id=None)
            await clock.advance(timedelta(hours=5))
        caplog.clear()
        problem = await sync()
        assert problem is not None
        assert "3 glucose record(s) lost on the meter" in problem
        assert "sequence numbers 4-6" in problem
        errors = [r for r in caplog.records if r.levelname == "ERROR"]
        assert len(errors) == 1 and "sequence numbers 4-6" in errors[0].getMessage()
        assert registry.get(meter.address).sync.last_racp_seq == 11
        # Nothing more is missing: the next sync is clean.
        meter.measure(meal=None, carbohydrate_id=None)
        assert await sync() is None

    # The meter overwrote 1-7 in the end; 1-3 and 7 had been fetched before, 4-6 had not.
    assert {t.sequence_number for t in meter.overwritten} == set(range(1, 8))
    kept = [t for t in truth if t.sequence_number not in {4, 5, 6}]
    readings = list(sink.readings.values())
    assert match_truth(kept, readings) == []
    assert sorted(r.sequence_number or 0 for r in readings) == [1, 2, 3, *range(7, 13)]


@pytest.mark.parametrize(
    ("first", "received", "newest", "runs"),
    [
        (4, {4, 5, 6}, 6, []),
        (4, {7, 8}, 8, [(4, 6)]),
        (1, {1, 3, 6}, 6, [(2, 2), (4, 5)]),
        (65534, {65535}, 65535, [(65534, 65534)]),
        (10, {9, 10}, 10, []),
    ],
    ids=["none", "oldest-overwritten", "holes", "top-of-u16", "older-extra"],
)
def test_missing_sequence_ranges(
    first: int, received: set[int], newest: int, runs: list[tuple[int, int]]
) -> None:
    assert missing_sequence_ranges(first, received, newest) == runs
