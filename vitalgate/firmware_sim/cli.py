"""``vitalgate sim``: list the simulated device kinds, serve a scenario, print its ground truth.

* ``vitalgate sim list`` -- the device kinds with their GATT services;
* ``vitalgate sim serve --scenario FILE`` -- run the scenario's devices in this process on a
  simulated radio that gateway processes attach to over TCP (:mod:`vitalgate.firmware_sim.relay`);
  prints the relay URL and the devices (address, name, passkey: what their owners would read
  off the display) and, with ``--info-file``, writes them as JSON (mode 0600). With
  ``--truth-out`` the ground truth is (re)written every 30 s and at exit (mode 0600).
* ``vitalgate sim truth --scenario FILE [--days N]`` -- run the scenario on a stepped clock for
  N days (default: the scenario's) and print every record the devices produced as JSON lines.

``--scenario`` takes a file or the name of a built-in scenario (``household``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from vitalgate.errors import ConfigError
from vitalgate.files import write_private
from vitalgate.firmware_sim.clock import SimClock
from vitalgate.firmware_sim.scenario import (
    DEVICE_TYPES,
    Scenario,
    ScenarioRun,
    builtin_scenario,
    load_scenario,
    start_scenario,
)
from vitalgate.firmware_sim.truth import TruthLog
from vitalgate.firmware_sim.world import SimWorld

__all__ = ["register"]

_log = logging.getLogger(__name__)
_TRUTH_WRITE_INTERVAL_S = 30.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sim = subparsers.add_parser("sim", help="simulated BLE health devices")
    sub = sim.add_subparsers(dest="sim_command", metavar="SIM_COMMAND", required=True)

    list_parser = sub.add_parser("list", help="the simulated device kinds and their services")
    list_parser.add_argument("--json", action="store_true", help="machine-readable output")
    list_parser.set_defaults(func=_cmd_list)

    serve = sub.add_parser("serve", help="run a scenario's devices for gateways to connect to")
    serve.add_argument("--scenario", required=True, help="scenario TOML file or built-in name")
    serve.add_argument("--host", default="127.0.0.1", help="relay listen address")
    serve.add_argument("--port", type=int, default=0, help="relay TCP port (0: any free port)")
    serve.add_argument("--info-file", type=Path, help="write relay URL + devices as JSON here")
    serve.add_argument("--truth-out", type=Path, help="keep the ground truth (JSONL) here")
    serve.add_argument("--speed", type=float, help="override the scenario's speed factor")
    serve.add_argument(
        "--truth-interval-s",
        type=float,
        default=_TRUTH_WRITE_INTERVAL_S,
        help="rewrite --truth-out this often (default %(default)s s)",
    )
    serve.set_defaults(func=_cmd_serve)

    truth = sub.add_parser("truth", help="the ground truth of a scenario as JSON lines")
    truth.add_argument("--scenario", required=True, help="scenario TOML file or built-in name")
    truth.add_argument("--days", type=float, help="simulated days (default: the scenario's)")
    truth.add_argument("--output", type=Path, help="write here (mode 0600) instead of stdout")
    truth.set_defaults(func=_cmd_truth)


def _scenario(arg: str) -> Scenario:
    path = Path(arg)
    if path.suffix == ".toml" or path.exists():
        return load_scenario(path)
    return builtin_scenario(arg)


# ------------------------------------------------------------------------------ list
def _cmd_list(args: argparse.Namespace) -> int:
    rows = [
        {"kind": str(kind), "class": cls.__name__, "services": list(cls.SERVICES)}
        for kind, cls in DEVICE_TYPES.items()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        print(f"{row['kind']}  ({row['class']})")
        for service in row["services"]:
            print(f"    {service}")
    return 0


# ------------------------------------------------------------------------------ truth
def _cmd_truth(args: argparse.Namespace) -> int:
    scenario = _scenario(args.scenario)
    days = scenario.days if args.days is None else float(args.days)
    if days <= 0:
        raise ConfigError("--days", "must be positive")
    log = asyncio.run(run_truth(scenario, days=days))
    if args.output is not None:
        log.write_jsonl(args.output)
    else:
        sys.stdout.write(log.to_jsonl())
    return 0


async def run_truth(scenario: Scenario, *, days: float) -> TruthLog:
    """Run ``scenario`` on a stepped clock for ``days`` and return its truth log."""
    start = scenario.start
    if start is None:
        from datetime import UTC, datetime

        start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    clock = SimClock(start)
    async with SimWorld(seed=scenario.seed, with_central=False) as world:
        run = await start_scenario(scenario, world, clock=clock)
        await clock.advance(timedelta(days=days))
        return run.truth


# ------------------------------------------------------------------------------ serve
def _cmd_serve(args: argparse.Namespace) -> int:
    scenario = _scenario(args.scenario)
    if args.speed is not None:
        if args.speed < 0:
            raise ConfigError("--speed", "must be >= 0")
        from dataclasses import replace

        scenario = replace(scenario, speed=float(args.speed))
    if scenario.speed <= 0:
        raise ConfigError("speed", "sim serve runs in (accelerated) real time: give speed > 0")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            serve(
                scenario,
                host=args.host,
                port=args.port,
                info_file=args.info_file,
                truth_out=args.truth_out,
                truth_interval_s=args.truth_interval_s,
            )
        )
    return 0


def describe(run: ScenarioRun, url: str) -> dict[str, Any]:
    """What a gateway needs to find and pair with the devices (no health data)."""
    return {
        "relay_url": url,
        "devices": [
            {
                "kind": str(device.KIND),
                "serial": serial,
                "name": device.name,
                "address": device.address,
                "passkey": run.scenario.device(serial).passkey,
                "user_ids": {
                    str(user_id): patient.patient_id
                    for user_id, patient in device.setup.patients.items()
                },
            }
            for serial, device in run.devices.items()
        ],
    }


async def serve(
    scenario: Scenario,
    *,
    host: str,
    port: int,
    info_file: Path | None,
    truth_out: Path | None,
    truth_interval_s: float = _TRUTH_WRITE_INTERVAL_S,
) -> None:
    """Run the scenario's devices and the relay until cancelled (Ctrl-C or SIGTERM)."""
    import signal
    import time

    from vitalgate.firmware_sim.relay import serve_world

    async with SimWorld(seed=scenario.seed, with_central=False) as world:
        run = await start_scenario(scenario, world)
        async with serve_world(world, host=host, port=port) as server:
            info = describe(run, server.url)
            # The simulated clock's anchor: a gateway given this file (`vitalgate run
            # --sim-info`) keeps its clock in step with the devices' accelerated time.
            info["clock"] = {
                "sim_at": run.clock.now().isoformat(),
                "wall_at": time.time(),
                "speed": scenario.speed,
            }
            print(f"relay: {server.url}", flush=True)
            for device in info["devices"]:
                print(
                    f"  {device['kind']:<15} {device['serial']:<14} {device['address']}  "
                    f"{device['name']}  passkey={device['passkey']}",
                    flush=True,
                )
            if info_file is not None:
                await asyncio.to_thread(write_private, info_file, json.dumps(info, indent=2))
            stop = asyncio.Event()
            with contextlib.suppress(NotImplementedError):
                asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
            try:
                async with asyncio.TaskGroup() as tg:
                    serving = tg.create_task(server.serve_forever())
                    keeping = None
                    if truth_out is not None:
                        keeping = tg.create_task(
                            _keep_truth(run.truth, truth_out, truth_interval_s)
                        )
                    await stop.wait()
                    serving.cancel()
                    if keeping is not None:
                        keeping.cancel()
            finally:
                if truth_out is not None:
                    await asyncio.to_thread(_write_truth, run.truth, truth_out)


def _write_truth(truth: TruthLog, path: Path) -> None:
    """Replace the truth file atomically (a reader never sees half of it); mode 0600."""
    temp = path.with_name(path.name + ".tmp")
    truth.write_jsonl(temp)
    os.replace(temp, path)


async def _keep_truth(truth: TruthLog, path: Path, interval_s: float) -> None:
    while True:
        await asyncio.to_thread(_write_truth, truth, path)
        await asyncio.sleep(interval_s)
