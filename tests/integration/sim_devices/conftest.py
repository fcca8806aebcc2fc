"""Set-up helpers for tests that drive simulated health devices through plain bleak.

Only device set-up lives here; the tests talk to the devices with ``BleakScanner`` /
``BleakClient`` exactly as the gateway does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from vitalgate.firmware_sim.clock import SimClock
from vitalgate.firmware_sim.devices.common import (
    DeviceSetup,
    Patient,
    PatientProfile,
    SimHealthDevice,
)
from vitalgate.firmware_sim.faults import Fault, FaultPlan
from vitalgate.firmware_sim.pytest_plugin import sim_world
from vitalgate.firmware_sim.truth import TruthLog
from vitalgate.firmware_sim.world import SimWorld

__all__ = ["sim_world"]

START = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)  # a Monday, 06:00 in Berlin
TZ = ZoneInfo("Europe/Berlin")


@dataclass
class Household:
    """A stepped simulated clock, a truth log and helpers to add devices to the world."""

    world: SimWorld
    clock: SimClock
    truth: TruthLog
    patients: dict[str, Patient]

    def patient(self, patient_id: str, profile: PatientProfile) -> Patient:
        if patient_id not in self.patients:
            self.patients[patient_id] = Patient(
                patient_id=patient_id,
                profile=profile,
                start=START,
                timezone=TZ,
                seed=len(self.patients) + 1,
            )
        return self.patients[patient_id]

    async def add(
        self,
        cls: type[SimHealthDevice],
        *,
        serial: str,
        seed: int,
        users: Mapping[int, Patient],
        passkey: int | None = 123456,
        faults: tuple[Fault, ...] = (),
        start: bool = True,
        **options: Any,
    ) -> Any:
        setup = DeviceSetup(
            serial=serial,
            model=f"Sim-{cls.KIND}",
            manufacturer="Vitalgate Sim",
            firmware="1.0.0",
            name=f"{cls.KIND}-{serial}",
            seed=seed,
            passkey=passkey,
            patients=users,
        )
        plan = FaultPlan(faults, seed=seed)
        device = cls(
            setup, clock=self.clock, truth=self.truth, faults=plan.injector(serial), **options
        )
        await self.world.add(device, register_passkey=False)
        if passkey is not None:
            self.world.known_passkeys[device.address] = passkey
        if start:
            device.start()
        return device


@pytest.fixture
async def household(sim_world: SimWorld) -> Household:
    return Household(sim_world, SimClock(START), TruthLog(), {})


AddDevice = Callable[..., Any]
