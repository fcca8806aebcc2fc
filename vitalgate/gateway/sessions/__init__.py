"""One session per Bluetooth SIG profile; :data:`SESSIONS` maps a device kind to its session."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType

from vitalgate.gateway.kinds import DeviceKind
from vitalgate.gateway.sessions.base import SessionEnv, SessionResult
from vitalgate.gateway.sessions.blood_pressure import run_blood_pressure
from vitalgate.gateway.sessions.cgm import run_cgm
from vitalgate.gateway.sessions.glucose import run_glucose
from vitalgate.gateway.sessions.heart_rate import run_heart_rate
from vitalgate.gateway.sessions.spot import run_pulse_oximeter, run_thermometer, run_weight_scale

__all__ = ["SESSIONS", "Session"]

Session = Callable[[SessionEnv], Awaitable[SessionResult]]

SESSIONS: Mapping[DeviceKind, Session] = MappingProxyType(
    {
        DeviceKind.BLOOD_PRESSURE: run_blood_pressure,
        DeviceKind.GLUCOSE: run_glucose,
        DeviceKind.CGM: run_cgm,
        DeviceKind.HEART_RATE: run_heart_rate,
        DeviceKind.PULSE_OXIMETER: run_pulse_oximeter,
        DeviceKind.THERMOMETER: run_thermometer,
        DeviceKind.WEIGHT_SCALE: run_weight_scale,
    }
)
