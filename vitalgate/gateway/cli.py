"""Gateway subcommands: ``pair``, ``devices``, ``run``, ``status``.

Every command reads the gateway config (``--config``, default ``$VITALGATE_CONFIG`` or
``/etc/vitalgate/gateway.toml``); a bad config stops it with the key and the reason.

Examples::

    vitalgate pair                                   # scan, choose, type the passkey
    vitalgate pair --address C4:7C:8D:6A:11:02 --patient p-anna --passkey 123456
    vitalgate pair --address D0:1B:49:00:AA:10 --user-id 1=p-anna --user-id 2=p-ben
    vitalgate devices list
    vitalgate devices remove C4:7C:8D:6A:11:02
    vitalgate run
    vitalgate status [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vitalgate.errors import ConfigError, DeviceError
from vitalgate.gateway.config import GatewayConfig, load_config
from vitalgate.gateway.kinds import DeviceKind
from vitalgate.gateway.registry import DeviceRegistry
from vitalgate.gateway.status import format_status, status_to_json
from vitalgate.gateway.timefix import FollowedClock, GatewayClock, SystemClock

__all__ = ["parse_user_ids", "register"]

_log = logging.getLogger(__name__)

DEFAULT_CONFIG = "/etc/vitalgate/gateway.toml"


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        default=os.environ.get("VITALGATE_CONFIG", DEFAULT_CONFIG),
        help="gateway TOML file (default $VITALGATE_CONFIG or %(default)s)",
    )


def _radio_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--sim-radio",
        metavar="URL",
        default=os.environ.get("VITALGATE_SIM_RADIO") or None,
        help="use the simulated radio served by `vitalgate sim serve` at URL (tcp://host:port) "
        "instead of the host's Bluetooth adapter (default $VITALGATE_SIM_RADIO)",
    )
    p.add_argument(
        "--sim-info",
        metavar="FILE",
        type=Path,
        default=None,
        help="the --info-file of `vitalgate sim serve`: its radio, and its (accelerated) clock "
        "as the gateway's clock",
    )


def _sim_info(args: argparse.Namespace) -> dict[str, Any] | None:
    path: Path | None = getattr(args, "sim_info", None)
    if path is None:
        return None
    try:
        info: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        str(info["relay_url"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError("--sim-info", f"cannot read {path}: {exc}") from exc
    return info


def _clock(args: argparse.Namespace) -> GatewayClock:
    """The system clock, or with ``--sim-info`` the simulation's (accelerated) clock."""
    info = _sim_info(args)
    if info is None or "clock" not in info:
        return SystemClock()
    try:
        c = info["clock"]
        return FollowedClock(
            datetime.fromisoformat(c["sim_at"]).astimezone(UTC),
            float(c["wall_at"]),
            float(c["speed"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError("--sim-info", f"bad clock in {args.sim_info}: {exc}") from exc


@contextlib.asynccontextmanager
async def _bluetooth(args: argparse.Namespace, config: GatewayConfig) -> AsyncIterator[None]:
    """The Bluetooth stack bleak uses: the host's adapter, or with ``--sim-radio`` a central
    attached to a simulated radio (bonds kept in the state directory, so a later ``run``
    reconnects bonded to what ``pair`` paired)."""
    url = getattr(args, "sim_radio", None)
    info = _sim_info(args)
    if info is not None:
        url = str(info["relay_url"])
    if url is None:
        yield
        return
    from vitalgate.firmware_sim.backend import use_simulation
    from vitalgate.firmware_sim.relay import connect_remote_world

    config.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    bonds = config.state_dir / "sim-bonds.json"
    async with connect_remote_world(url, seed=0, bond_store_path=bonds) as world:
        with use_simulation(world):
            yield


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pair = subparsers.add_parser(
        "pair",
        help="pair a health device and assign it to a patient",
        description="Scan for health devices, bond with passkey entry, read Device "
        "Information, set the device clock and register the device. Without --address it "
        "asks interactively.",
    )
    _config_arg(pair)
    _radio_arg(pair)
    pair.add_argument("--address", help="device address (skip the interactive choice)")
    pair.add_argument("--patient", help="patient id from the config")
    pair.add_argument(
        "--user-id",
        action="append",
        default=[],
        metavar="N=PATIENT",
        help="map a device user ID to a patient (shared BP monitor / scale); repeatable",
    )
    pair.add_argument("--passkey", type=int, help="the 6-digit passkey shown on the device")
    pair.add_argument(
        "--kind",
        choices=[k.value for k in DeviceKind],
        help="device kind (default: from its advertisement)",
    )
    pair.add_argument("--name", default="", help="a label for the device")
    pair.add_argument("--scan-seconds", type=float, default=8.0)
    pair.set_defaults(func=_cmd_pair)

    devices = subparsers.add_parser("devices", help="list or remove registered devices")
    _config_arg(devices)
    dsub = devices.add_subparsers(dest="devices_command", metavar="ACTION")
    dlist = dsub.add_parser("list", help="list registered devices")
    dlist.add_argument("--json", action="store_true")
    dlist.set_defaults(func=_cmd_status)
    dremove = dsub.add_parser("remove", help="forget a device (it keeps its bond on the OS)")
    dremove.add_argument("address")
    dremove.set_defaults(func=_cmd_remove)
    devices.set_defaults(func=_cmd_status, json=False)

    run = subparsers.add_parser("run", help="run the gateway daemon (devices -> outbox -> MQTT)")
    _config_arg(run)
    _radio_arg(run)
    run.add_argument(
        "--no-publish", action="store_true", help="collect into the outbox only (no MQTT)"
    )
    run.set_defaults(func=_cmd_run)

    status = subparsers.add_parser("status", help="per device: last seen, sync, battery, clock")
    _config_arg(status)
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=_cmd_status)


def parse_user_ids(values: Sequence[str], config: GatewayConfig) -> dict[int, str]:
    """``["1=p-anna", "2=p-ben"]`` -> ``{1: "p-anna", 2: "p-ben"}`` (patients checked)."""
    out: dict[int, str] = {}
    for value in values:
        uid_text, sep, patient = value.partition("=")
        try:
            uid = int(uid_text)
        except ValueError:
            uid = -1
        if not sep or not 0 <= uid <= 254 or not patient:
            raise ConfigError("--user-id", f"expected N=PATIENT with N in 0..254, got {value!r}")
        config.patient(patient)
        out[uid] = patient
    return out


def _load(args: argparse.Namespace) -> GatewayConfig:
    return load_config(Path(args.config))


def _registry(config: GatewayConfig) -> DeviceRegistry:
    return DeviceRegistry(config.registry_path)


def _cmd_status(args: argparse.Namespace) -> int:
    config = _load(args)
    with _registry(config) as registry:
        records = registry.devices()
    if getattr(args, "json", False):
        print(json.dumps(status_to_json(records), indent=2))
    else:
        print(format_status(records, SystemClock().now()))
    return 0


def _cmd_remove(args: argparse.Namespace) -> int:
    config = _load(args)
    with _registry(config) as registry:
        if not registry.remove(args.address):
            print(f"vitalgate: no device {args.address} registered", file=sys.stderr)
            return 1
    print(f"removed {args.address.upper()}")
    return 0


# --- pair -------------------------------------------------------------------------------------


async def _ask(prompt: str) -> str:
    return (await asyncio.to_thread(input, prompt)).strip()


async def _pair(args: argparse.Namespace, config: GatewayConfig) -> int:
    from vitalgate.gateway.pairing import FoundDevice, pair_device, scan_health_devices

    clock = _clock(args)
    users = parse_user_ids(args.user_id, config)
    if args.patient is not None:
        config.patient(args.patient)
    target: str
    kind = DeviceKind(args.kind) if args.kind else None
    name = args.name
    if args.address is None or kind is None:
        print(f"scanning for health devices ({args.scan_seconds:.0f} s)...")
        found: list[FoundDevice] = await scan_health_devices(args.scan_seconds)
        if args.address is not None:
            found = [f for f in found if f.device.address.upper() == args.address.upper()]
            if not found:
                raise DeviceError(
                    f"{args.address} is not advertising a health service: put it in pairing "
                    "mode, or give --kind"
                )
        if not found:
            raise DeviceError("no health device found: put the device in pairing mode")
        for i, f in enumerate(found, 1):
            print(
                f"  {i}. {f.name or '(no name)':24} {f.kind.value:16} {f.device.address}  "
                f"{f.rssi_dbm} dBm"
            )
        choice = found[0]
        if len(found) > 1 or args.address is None:
            answer = await _ask(f"device [1-{len(found)}]: ")
            try:
                choice = found[int(answer) - 1]
            except (ValueError, IndexError):
                raise ConfigError("device", f"no device number {answer!r}") from None
        target = choice.device.address
        kind = kind or choice.kind
        name = name or choice.name
    else:
        target = args.address
    patient = args.patient
    if patient is None and not users:
        ids = list(config.patients)
        for i, pid in enumerate(ids, 1):
            label = config.patients[pid].name
            print(f"  {i}. {pid}{f' ({label})' if label else ''}")
        answer = await _ask(f"patient [1-{len(ids)}]: ")
        try:
            patient = ids[int(answer) - 1]
        except (ValueError, IndexError):
            raise ConfigError("patient", f"no patient number {answer!r}") from None

    async def passkey(address: str, device_name: str) -> int | None:
        if args.passkey is not None:
            return int(args.passkey)
        answer = await _ask(f"passkey shown on {device_name or address}: ")
        return int(answer) if answer.isdigit() else None

    with _registry(config) as registry:
        record = await pair_device(
            config=config,
            registry=registry,
            clock=clock,
            device=target,
            kind=kind,
            patient_id=patient,
            passkey=passkey,
            user_patients=users,
            name=name,
        )
    print(
        f"paired {record.address}: {record.manufacturer} {record.model} "
        f"(serial {record.serial or '-'}), {record.kind.value}"
    )
    return 0


def _cmd_pair(args: argparse.Namespace) -> int:
    config = _load(args)

    async def main() -> int:
        async with _bluetooth(args, config):
            return await _pair(args, config)

    return asyncio.run(main())


# --- run --------------------------------------------------------------------------------------


async def _run(args: argparse.Namespace, config: GatewayConfig, *, publish: bool) -> int:
    async with _bluetooth(args, config):
        return await _run_daemon(config, publish=publish, clock=_clock(args))


async def _run_daemon(
    config: GatewayConfig, *, publish: bool, clock: GatewayClock | None = None
) -> int:
    from vitalgate.gateway.daemon import Daemon
    from vitalgate.gateway.pipeline import Pipeline
    from vitalgate.gateway.service import alerting_sink, close_outbox, open_outbox, publisher_for

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    outbox = await asyncio.to_thread(open_outbox, config)
    try:
        with _registry(config) as registry:
            publisher = publisher_for(config, outbox) if publish else None
            # The alert rules run here, on the gateway, so they work while the uplink is down.
            sink = alerting_sink(
                config, outbox, on_alert=publisher.notify if publisher is not None else None
            )
            daemon = Daemon(
                config,
                registry,
                Pipeline(sink),
                clock=clock if clock is not None else SystemClock(),
                publisher=publisher,
                events=outbox,
            )
            await daemon.run(stop)
    finally:
        await asyncio.to_thread(close_outbox, outbox)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    config = _load(args)
    config.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return asyncio.run(_run(args, config, publish=not args.no_publish))
