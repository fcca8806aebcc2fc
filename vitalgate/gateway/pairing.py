"""Pairing: find health devices, bond with passkey entry, identify, set the clock, register.

The passkey is answered by the platform's agent (:func:`~vitalgate.gateway.agent.
get_platform_agent_type`: BlueZ's Agent1 over D-Bus on a Raspberry Pi; the simulation supplies
its own), so this code has no platform or simulation branch.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass

from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError

from vitalgate.drivers import current_time as cts_codec
from vitalgate.drivers import uuids
from vitalgate.errors import DeviceError, ParseError
from vitalgate.gateway import agent as agent_module
from vitalgate.gateway.agent import PasskeyHandler
from vitalgate.gateway.config import GatewayConfig
from vitalgate.gateway.kinds import SERVICE_KINDS, DeviceKind, kind_from_services
from vitalgate.gateway.link import Backoff, connect
from vitalgate.gateway.registry import ClockAnchor, DeviceRecord, DeviceRegistry
from vitalgate.gateway.runner import read_identity
from vitalgate.gateway.timefix import GatewayClock, measure_clock, utc_to_local

__all__ = ["FoundDevice", "pair_device", "scan_health_devices"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FoundDevice:
    """A health device seen while scanning."""

    device: BLEDevice
    name: str
    kind: DeviceKind
    rssi_dbm: int


async def scan_health_devices(timeout_s: float) -> list[FoundDevice]:
    """Scan for devices advertising a health service; strongest signal first."""
    seen: dict[str, FoundDevice] = {}

    def on_advertisement(device: BLEDevice, adv: AdvertisementData) -> None:
        kind = kind_from_services(adv.service_uuids)
        if kind is None:
            return
        seen[device.address] = FoundDevice(
            device=device,
            name=adv.local_name or device.name or "",
            kind=kind,
            rssi_dbm=adv.rssi,
        )

    try:
        async with BleakScanner(on_advertisement, service_uuids=list(SERVICE_KINDS)):
            await asyncio.sleep(timeout_s)
    except BleakError as exc:
        raise DeviceError(f"scanning failed: {exc}") from exc
    return sorted(seen.values(), key=lambda f: -f.rssi_dbm)


async def pair_device(
    *,
    config: GatewayConfig,
    registry: DeviceRegistry,
    clock: GatewayClock,
    device: BLEDevice | str,
    kind: DeviceKind,
    patient_id: str | None,
    passkey: PasskeyHandler,
    user_patients: Mapping[int, str] | None = None,
    name: str = "",
) -> DeviceRecord:
    """Bond with a device, read its identity, set its clock, and register it.

    Raises DeviceError when pairing fails (wrong passkey, refused, out of range) and
    ConfigError when a patient is not in the config.
    """
    users = dict(user_patients or {})
    for pid in [patient_id, *users.values()]:
        if pid is not None:
            config.patient(pid)  # ConfigError for an unknown patient
    tz_patient = patient_id if patient_id is not None else users[min(users)] if users else None
    if tz_patient is None:
        raise DeviceError("pairing needs a patient (or a user ID -> patient map)")
    tz = config.patient(tz_patient).timezone
    lim = config.limits
    agent_type = agent_module.get_platform_agent_type()  # resolved at call time
    async with (
        agent_type(passkey),
        connect(
            device,
            limiter=asyncio.Semaphore(1),
            timeout_s=lim.connect_timeout_s,
            backoff=Backoff(lim.backoff_initial_s, lim.backoff_max_s, lim.connect_attempts),
            rng=random.Random(),
        ) as link,
    ):
        try:
            await link.client.pair()
        except (BleakError, TimeoutError) as exc:
            raise DeviceError(
                f"{link.address}: pairing failed: {exc}. Check the passkey shown on the device, "
                "put the device in pairing mode and try again"
            ) from exc
        info = await read_identity(link)
        anchor: ClockAnchor | None = None
        check_offset: float | None = None
        if config.devices.set_clock and link.has(uuids.CURRENT_TIME):
            local_now = utc_to_local(clock.now(), tz)
            try:
                await link.write(uuids.CURRENT_TIME, cts_codec.encode_current_time(local_now))
                before = clock.now()
                readback = cts_codec.parse_current_time(await link.read(uuids.CURRENT_TIME))
                after = clock.now()
                check = measure_clock(readback.exact_time, before + (after - before) / 2, tz)
                round_trip_s = (after - before).total_seconds()
                if (
                    check.raw_offset_s is not None
                    and not check.unset
                    and round_trip_s <= config.devices.clock_tolerance_s
                ):
                    anchor = ClockAnchor(at=check.gateway_now, raw_offset_s=check.raw_offset_s)
                    check_offset = check.offset_s
            except (DeviceError, ParseError) as exc:
                _log.warning("%s: could not set the device clock: %s", link.address, exc)
        address = link.address
    record = await asyncio.to_thread(
        registry.add_device,
        address=address,
        kind=kind,
        patient_id=patient_id,
        name=name,
        manufacturer=info.manufacturer_name or "",
        model=info.model_number or "",
        serial=info.serial_number or "",
        firmware=info.firmware_revision or "",
        bonded=True,
        paired_at=clock.now(),
        user_patients=users,
    )
    if anchor is not None:
        await asyncio.to_thread(
            registry.record_clock,
            address,
            measured_offset_s=check_offset,
            checked_at=anchor.at,
            anchor=anchor,
        )
        record = await asyncio.to_thread(registry.get, address)
    return record
