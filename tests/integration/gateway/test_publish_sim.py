"""The daemon with the publisher alongside: readings reach a real Mosquitto and leave the outbox."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from vitalgate.cloud_sync.outbox import Outbox
from vitalgate.firmware_sim.clock import SimClock
from vitalgate.firmware_sim.devices.common import PatientProfile
from vitalgate.firmware_sim.devices.glucose_meter import GlucoseMeter
from vitalgate.firmware_sim.truth import TruthLog
from vitalgate.firmware_sim.world import SimWorld
from vitalgate.gateway.daemon import Daemon
from vitalgate.gateway.kinds import DeviceKind
from vitalgate.gateway.pipeline import Pipeline
from vitalgate.gateway.registry import DeviceRegistry
from vitalgate.gateway.service import publisher_for

from .helpers import START, make_config, make_patient, make_setup, pair_all, wait_until


async def test_readings_are_published(sim_world: SimWorld, tmp_path: Path, mqtt_url: str) -> None:
    clock = SimClock(START)
    truth = TruthLog()
    anna = make_patient("p-anna", PatientProfile.TYPE2_DIABETIC, seed=1)
    meter = await sim_world.add(
        GlucoseMeter(make_setup("GM-P", 81, {1: anna}), clock=clock, truth=truth)
    )
    config = make_config(tmp_path)
    # MQTT 3.1.1: the publisher treats MQTT 5 reason 0x10 "no matching subscribers" as a
    # refusal (reported to its owner); with 3.1.1 an unsubscribed topic is simply accepted.
    broker = replace(config.broker, url=mqtt_url, client_id="gw-pub-test", protocol=311)
    config = replace(config, broker=broker)
    with DeviceRegistry(config.registry_path) as registry, Outbox(config.outbox_path) as outbox:
        await pair_all(config, registry, clock, [(meter, DeviceKind.GLUCOSE, "p-anna", None)])
        daemon = Daemon(
            config, registry, Pipeline(outbox), clock=clock, publisher=publisher_for(config, outbox)
        )
        stop = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(daemon.run(stop))
            meter.start()
            for _ in range(4):
                await clock.advance(timedelta(hours=6))
                await asyncio.sleep(0.2)
            synced = await wait_until(
                lambda: registry.get(meter.address).sync.last_racp_seq is not None, 10.0
            )
            drained = await wait_until(
                lambda: outbox.pending_count() == 0 and outbox.stats().acked_total >= len(truth),
                15.0,
            )
            stop.set()
            await task
        assert synced and len(truth) > 0
        assert drained, outbox.stats()
        assert outbox.stats().acked_total >= len(truth)
        assert daemon.stats.unexpected_errors == 0
