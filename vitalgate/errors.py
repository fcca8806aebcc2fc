"""The vitalgate error hierarchy.

Every error the package raises on purpose derives from :class:`VitalgateError`. Third-party
errors are wrapped with ``raise ... from exc`` so callers catch one family.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DeviceError",
    "ParseError",
    "SchemaError",
    "StoreError",
    "VitalgateError",
]


class VitalgateError(Exception):
    """Base class of every error vitalgate raises on purpose."""


class ParseError(VitalgateError, ValueError):
    """Bytes that do not decode per their Bluetooth SIG / IEEE 11073 specification.

    Carries the profile (for example ``"blood_pressure"``), the byte offset at which decoding
    failed and the whole payload, so a bug report or a dead-letter record has everything needed
    to reproduce the failure.
    """

    def __init__(
        self, profile: str, message: str, *, offset: int = 0, payload: bytes = b""
    ) -> None:
        self.profile = profile
        self.offset = offset
        self.payload = bytes(payload)
        self.reason = message
        super().__init__(f"{profile}: {message} (offset {offset}, payload {self.payload.hex()})")


class ConfigError(VitalgateError, ValueError):
    """A configuration file or value is invalid; names the key and the reason."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"config key {key!r}: {reason}")


class SchemaError(VitalgateError, ValueError):
    """An MQTT payload or topic does not match the vitalgate schema."""


class StoreError(VitalgateError):
    """A time-series store refused or failed a read or write."""


class DeviceError(VitalgateError):
    """A BLE device misbehaved: vanished, refused a procedure, or answered out of spec."""
