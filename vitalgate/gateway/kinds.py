"""Kinds of device the gateway serves, and how to recognise them from their advertisements."""

from __future__ import annotations

import enum
from collections.abc import Iterable

from vitalgate.drivers import uuids

__all__ = ["SERVICE_KINDS", "DeviceKind", "kind_from_services"]


class DeviceKind(enum.StrEnum):
    """One per Bluetooth SIG health profile the gateway has a session for."""

    BLOOD_PRESSURE = "blood_pressure"
    GLUCOSE = "glucose"
    CGM = "cgm"
    HEART_RATE = "heart_rate"
    PULSE_OXIMETER = "pulse_oximeter"
    THERMOMETER = "thermometer"
    WEIGHT_SCALE = "weight_scale"

    @property
    def streaming(self) -> bool:
        """Streaming devices are kept connected; the others connect, sync and disconnect."""
        return self in (DeviceKind.CGM, DeviceKind.HEART_RATE)

    @property
    def service_uuid(self) -> str:
        return _KIND_SERVICE[self]


_KIND_SERVICE: dict[DeviceKind, str] = {
    DeviceKind.BLOOD_PRESSURE: uuids.BLOOD_PRESSURE_SERVICE,
    DeviceKind.GLUCOSE: uuids.GLUCOSE_SERVICE,
    DeviceKind.CGM: uuids.CGM_SERVICE,
    DeviceKind.HEART_RATE: uuids.HEART_RATE_SERVICE,
    DeviceKind.PULSE_OXIMETER: uuids.PULSE_OXIMETER_SERVICE,
    DeviceKind.THERMOMETER: uuids.HEALTH_THERMOMETER_SERVICE,
    DeviceKind.WEIGHT_SCALE: uuids.WEIGHT_SCALE_SERVICE,
}

#: Advertised primary service (128-bit, lowercase) -> device kind.
SERVICE_KINDS: dict[str, DeviceKind] = {v: k for k, v in _KIND_SERVICE.items()}

# A CGM also exposes Glucose-like RACP; a device advertising several health services is
# classified by the most specific one first.
_PRIORITY = (
    DeviceKind.CGM,
    DeviceKind.GLUCOSE,
    DeviceKind.BLOOD_PRESSURE,
    DeviceKind.PULSE_OXIMETER,
    DeviceKind.HEART_RATE,
    DeviceKind.THERMOMETER,
    DeviceKind.WEIGHT_SCALE,
)


def kind_from_services(service_uuids: Iterable[str]) -> DeviceKind | None:
    """The device kind advertised by these service UUIDs (any case), or None."""
    found = {SERVICE_KINDS[u.lower()] for u in service_uuids if u.lower() in SERVICE_KINDS}
    for kind in _PRIORITY:
        if kind in found:
            return kind
    return None
