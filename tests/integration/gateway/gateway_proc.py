"""The gateway in its own process, attached to a simulated radio served by another process.

Used by the kill -9 test and the benchmark::

    python -m tests.integration.gateway.gateway_proc pair --config C --url tcp://.. \\
        --clock-offset-s S --address A --kind glucose --patient p-anna --passkey 123456
    python -m tests.integration.gateway.gateway_proc run --config C --url tcp://.. \\
        --clock-offset-s S

``--clock-offset-s`` shifts the gateway clock so it agrees with the devices' simulated clock
(which runs at real speed after the test advanced it). SIGTERM stops ``run`` gracefully.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from datetime import UTC, datetime, timedelta

from vitalgate.firmware_sim.backend import use_simulation
from vitalgate.firmware_sim.relay import connect_remote_world
from vitalgate.gateway.config import load_config
from vitalgate.gateway.daemon import Daemon
from vitalgate.gateway.kinds import DeviceKind
from vitalgate.gateway.pairing import pair_device
from vitalgate.gateway.pipeline import Pipeline
from vitalgate.gateway.registry import DeviceRegistry
from vitalgate.gateway.service import close_outbox, open_outbox


class OffsetClock:
    def __init__(self, offset_s: float) -> None:
        self._offset = timedelta(seconds=offset_s)

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    async def sleep(self, delay: timedelta) -> None:
        await asyncio.sleep(max(0.0, delay.total_seconds()))


async def main(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    clock = OffsetClock(args.clock_offset_s)
    bonds = config.state_dir / "bonds.json"
    async with connect_remote_world(args.url, seed=7, bond_store_path=bonds) as world:
        with use_simulation(world), DeviceRegistry(config.registry_path) as registry:
            if args.command == "pair":

                async def passkey(address: str, name: str) -> int | None:
                    return int(args.passkey)

                users = {}
                for item in args.user_id:
                    uid, _, pid = item.partition("=")
                    users[int(uid)] = pid
                await pair_device(
                    config=config,
                    registry=registry,
                    clock=clock,
                    device=args.address,
                    kind=DeviceKind(args.kind),
                    patient_id=args.patient,
                    passkey=passkey,
                    user_patients=users,
                )
                return 0
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGTERM, stop.set)
            outbox = open_outbox(config)
            try:
                daemon = Daemon(config, registry, Pipeline(outbox), clock=clock)
                print("ready", flush=True)
                await daemon.run(stop)
            finally:
                close_outbox(outbox)
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["pair", "run"])
    p.add_argument("--config", required=True)
    p.add_argument("--url", required=True)
    p.add_argument("--clock-offset-s", type=float, default=0.0)
    p.add_argument("--address")
    p.add_argument("--kind")
    p.add_argument("--patient")
    p.add_argument("--passkey")
    p.add_argument("--user-id", action="append", default=[])
    return p


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    sys.exit(asyncio.run(main(_parser().parse_args())))
