"""Fixtures for gateway tests against the simulated devices (plain bleak on firmware_sim)."""

from __future__ import annotations

from vitalgate.firmware_sim.pytest_plugin import sim_world

__all__ = ["sim_world"]
