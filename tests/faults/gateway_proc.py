"""The gateway daemon in its own process, attached to the devices' relay, clock in step.

Usage::

    python -m tests.faults.gateway_proc pair --config C --info I --serial SERIAL
    python -m tests.faults.gateway_proc run --config C --info I

``run`` is what ``vitalgate run`` does (the daemon, the outbox, the MQTT publisher from the
config; SIGTERM stops it), with two differences a test needs: bleak resolves to the simulated
radio of the devices' process (``connect_remote_world`` + ``use_simulation``), and the clock is
the devices' accelerated simulated clock (from the anchor in the info file), so device clocks and
the gateway agree as they do in a real home. Logging goes to stderr at INFO, as a deployment
logs, so a test can read what the gateway logs.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from vitalgate.cloud_sync.outbox import Outbox
from vitalgate.cloud_sync.publisher import Publisher
from vitalgate.firmware_sim.backend import use_simulation
from vitalgate.firmware_sim.relay import connect_remote_world
from vitalgate.gateway.config import GatewayConfig, load_config
from vitalgate.gateway.daemon import Daemon
from vitalgate.gateway.kinds import DeviceKind
from vitalgate.gateway.pairing import pair_device
from vitalgate.gateway.pipeline import Pipeline
from vitalgate.gateway.registry import DeviceRegistry
from vitalgate.gateway.service import close_outbox, open_outbox


class SteppedWallClock:
    """The devices' simulated clock: ``sim_at + (wall - wall_at) * speed``; sleeps are real."""

    def __init__(self, sim_at: datetime, wall_at: float, speed: float) -> None:
        self._sim_at = sim_at
        self._wall_at = wall_at
        self._speed = speed

    def now(self) -> datetime:
        return self._sim_at + timedelta(seconds=(time.time() - self._wall_at) * self._speed)

    async def sleep(self, delay: timedelta) -> None:
        await asyncio.sleep(max(0.0, delay.total_seconds()))


def _publisher(config: GatewayConfig, outbox: Outbox) -> Publisher:
    """The MQTT publisher of ``vitalgate run`` (the config's ``[broker]``), with reconnect
    back-off capped at 2 s instead of 60 s so a seeded run settles in seconds."""
    broker = dataclasses.replace(
        config.broker, connect_timeout_s=3.0, backoff_initial_s=0.2, backoff_max_s=2.0
    )
    return Publisher(broker, outbox)


async def main(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    info = json.loads(Path(args.info).read_text())
    clock = SteppedWallClock(
        datetime.fromisoformat(info["sim_at"]).astimezone(UTC),
        float(info["wall_at"]),
        float(info["speed"]),
    )
    config.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    bonds = config.state_dir / "bonds.json"
    async with connect_remote_world(info["relay_url"], seed=7, bond_store_path=bonds) as world:
        with use_simulation(world), DeviceRegistry(config.registry_path) as registry:
            if args.command == "pair":
                (device,) = [d for d in info["devices"] if d["serial"] == args.serial]
                await _pair_one(config, registry, clock, device)
                return 0
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGTERM, stop.set)
            outbox = await asyncio.to_thread(open_outbox, config)
            try:
                daemon = Daemon(
                    config,
                    registry,
                    Pipeline(outbox),
                    clock=clock,
                    publisher=_publisher(config, outbox),
                )
                print("ready", flush=True)
                async with asyncio.TaskGroup() as tg:
                    if args.stats_file:
                        sampler = tg.create_task(_sample_stats(Path(args.stats_file)))
                    await daemon.run(stop)
                    if args.stats_file:
                        sampler.cancel()
            finally:
                await asyncio.to_thread(close_outbox, outbox)
    return 0


#: The gateway profile of each simulated device kind.
_GATEWAY_KIND = {
    "bp_monitor": "blood_pressure",
    "glucose_meter": "glucose",
    "cgm": "cgm",
    "thermometer": "thermometer",
    "weight_scale": "weight_scale",
    "pulse_oximeter": "pulse_oximeter",
    "hr_wearable": "heart_rate",
}


async def _pair_one(
    config: GatewayConfig, registry: DeviceRegistry, clock: SteppedWallClock, device: dict[str, Any]
) -> None:
    """Pair one device of the info file the way `vitalgate pair` does (3 attempts)."""
    users = {int(k): v for k, v in device["user_ids"].items()}

    async def passkey(address: str, name: str) -> int | None:
        return None if device["passkey"] is None else int(device["passkey"])

    for attempt in range(3):
        try:
            await pair_device(
                config=config,
                registry=registry,
                clock=clock,
                device=device["address"],
                kind=DeviceKind(_GATEWAY_KIND[device["kind"]]),
                patient_id=next(iter(users.values())) if len(users) == 1 else None,
                passkey=passkey,
                user_patients=users if len(users) > 1 else None,
            )
            return
        except Exception:
            if attempt == 2:
                raise
            await asyncio.sleep(0.5)


async def _sample_stats(path: Path) -> None:
    """Every second: RSS, open files and asyncio tasks of this process, as JSON lines."""
    import psutil  # type: ignore[import-untyped]

    me = psutil.Process()
    with path.open("a", encoding="utf-8") as out:
        while True:
            sample = {
                "t": time.time(),
                "rss": me.memory_info().rss,
                "fds": me.num_fds(),
                "tasks": len(asyncio.all_tasks()),
            }
            out.write(json.dumps(sample) + "\n")
            out.flush()
            await asyncio.sleep(1.0)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["pair", "run"])
    p.add_argument("--serial", help="pair: the device (from the info file) to pair")
    p.add_argument("--stats-file", help="run: append RSS / fds / tasks samples here")
    p.add_argument("--config", required=True)
    p.add_argument("--info", required=True)
    return p


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    sys.exit(asyncio.run(main(_parser().parse_args())))
