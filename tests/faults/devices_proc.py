"""The simulated devices in their own process: ``vitalgate sim serve`` plus a live truth file.

Usage::

    python -m tests.faults.devices_proc --scenario S.toml --info-file I.json --truth-out T.jsonl

It runs exactly what ``vitalgate sim serve`` runs (:func:`start_scenario` on a
:class:`SimWorld` served by :func:`serve_world`, the same ``describe`` info) and adds two things
the fault suite needs: the truth file is rewritten every ``--truth-interval-s`` (``sim serve``
rewrites it every 30 s, too slow to check an invariant after each seeded run), and the info file
records the simulated clock's anchor (``sim_at`` = the simulated time at wall-clock ``wall_at``)
so the gateway process can run its clock in step with the devices' accelerated clock.
SIGTERM writes the final truth and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import time
from pathlib import Path

from vitalgate.firmware_sim.cli import _write_private, describe
from vitalgate.firmware_sim.relay import serve_world
from vitalgate.firmware_sim.scenario import load_scenario, start_scenario
from vitalgate.firmware_sim.truth import TruthLog
from vitalgate.firmware_sim.world import SimWorld


async def main(args: argparse.Namespace) -> None:
    scenario = load_scenario(args.scenario)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with SimWorld(seed=scenario.seed, with_central=False) as world:
        run = await start_scenario(scenario, world)
        async with serve_world(world, port=0) as server:
            info = describe(run, server.url)
            sim_at = run.clock.now()
            info.update(sim_at=sim_at.isoformat(), wall_at=time.time(), speed=scenario.speed)
            await asyncio.to_thread(_write_private, args.info_file, json.dumps(info, indent=2))

            async def keep_truth() -> None:
                while True:
                    await asyncio.to_thread(_write_truth, run.truth, args.truth_out)
                    await asyncio.sleep(args.truth_interval_s)

            async with asyncio.TaskGroup() as tg:
                serving = tg.create_task(server.serve_forever())
                keeping = tg.create_task(keep_truth())
                await stop.wait()
                serving.cancel()
                keeping.cancel()
        await asyncio.to_thread(_write_truth, run.truth, args.truth_out)


def _write_truth(truth: TruthLog, path: Path) -> None:
    """Replace the truth file atomically (a reader never sees half of it); mode 0600."""
    temp = path.with_name(path.name + ".tmp")
    truth.write_jsonl(temp)
    os.replace(temp, path)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenario", type=Path, required=True)
    parser.add_argument("--info-file", type=Path, required=True)
    parser.add_argument("--truth-out", type=Path, required=True)
    parser.add_argument("--truth-interval-s", type=float, default=0.5)
    asyncio.run(main(parser.parse_args()))
