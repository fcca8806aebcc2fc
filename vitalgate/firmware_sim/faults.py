"""Scriptable, seed-reproducible device faults.

A :class:`FaultPlan` is a list of :class:`Fault` entries, each aimed at one device (by serial
number). It is part of a scenario file or a TOML file of its own::

    [[faults]]
    device = "GM-0001"
    kind = "disconnect_mid_transfer"
    after_records = 5                # drop the link after 5 records of a transfer

    [[faults]]
    device = "BP-0001"
    kind = "clock_reset"             # device clock jumps to 2000-01-01 00:00:00
    at_s = 3600                      # one simulated hour into the run (0 / absent: at start)

Kinds and their parameters (``FaultKind``):

==========================  ===================================================================
kind                        parameters
==========================  ===================================================================
disconnect_mid_transfer     ``after_records`` (k >= 0): HCI 0x08 disconnect once k records of
                            a transfer went out; ``times`` (default 1)
vanish                      ``after_records`` (mid-transfer) or ``at_s``: goes silent, no
                            disconnect; ``duration_s`` (real seconds) until it reappears, or never
corrupt_packet              bit errors in the flags octet of a record packet (changes its layout,
                            so a decoder fails); ``after_records`` or ``probability``; ``times``
truncated_packet            the record packet loses its last 1..3 octets; same trigger options
overlong_packet             1..4 junk octets appended to the record packet; same trigger options
duplicate_resend            the record packet is sent twice; same trigger options
clock_reset                 ``at_s``: the device clock restarts at 2000-01-01 00:00:00
clock_drift                 ``ppm``: the device clock runs fast (+) or slow (-)
refuse_pairing              pairing requests are refused (SMP "pairing not supported")
wrong_passkey               the device shows a different passkey than the one its owner was given
slow_responses              ``latency_s``: every packet the device sends is delayed
low_battery                 ``battery_pct`` (0..100) from ``at_s``
full_memory                 ``capacity``: the record memory holds only this many; the oldest
                            are overwritten (what common monitors do)
==========================  ===================================================================

"After k records" counts record packets (measurements, not responses) sent since the current
connection began. Random triggers (``probability``) draw from a generator seeded by the plan's
seed and the device serial, so a run repeats exactly.
"""

from __future__ import annotations

import enum
import hashlib
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vitalgate.errors import ConfigError

__all__ = [
    "PACKET_FAULTS",
    "Fault",
    "FaultInjector",
    "FaultKind",
    "FaultPlan",
    "PacketAction",
]


class FaultKind(enum.StrEnum):
    DISCONNECT_MID_TRANSFER = "disconnect_mid_transfer"
    VANISH = "vanish"
    CORRUPT_PACKET = "corrupt_packet"
    TRUNCATED_PACKET = "truncated_packet"
    OVERLONG_PACKET = "overlong_packet"
    DUPLICATE_RESEND = "duplicate_resend"
    CLOCK_RESET = "clock_reset"
    CLOCK_DRIFT = "clock_drift"
    REFUSE_PAIRING = "refuse_pairing"
    WRONG_PASSKEY = "wrong_passkey"
    SLOW_RESPONSES = "slow_responses"
    LOW_BATTERY = "low_battery"
    FULL_MEMORY = "full_memory"


#: Faults that act on individual record packets.
PACKET_FAULTS = frozenset(
    {
        FaultKind.CORRUPT_PACKET,
        FaultKind.TRUNCATED_PACKET,
        FaultKind.OVERLONG_PACKET,
        FaultKind.DUPLICATE_RESEND,
    }
)
_TRANSFER_FAULTS = frozenset({FaultKind.DISCONNECT_MID_TRANSFER, FaultKind.VANISH})

_ALLOWED: Mapping[FaultKind, frozenset[str]] = {
    FaultKind.DISCONNECT_MID_TRANSFER: frozenset({"after_records", "times"}),
    FaultKind.VANISH: frozenset({"after_records", "at_s", "duration_s"}),
    FaultKind.CORRUPT_PACKET: frozenset({"after_records", "probability", "times"}),
    FaultKind.TRUNCATED_PACKET: frozenset({"after_records", "probability", "times"}),
    FaultKind.OVERLONG_PACKET: frozenset({"after_records", "probability", "times"}),
    FaultKind.DUPLICATE_RESEND: frozenset({"after_records", "probability", "times"}),
    FaultKind.CLOCK_RESET: frozenset({"at_s"}),
    FaultKind.CLOCK_DRIFT: frozenset({"ppm"}),
    FaultKind.REFUSE_PAIRING: frozenset(),
    FaultKind.WRONG_PASSKEY: frozenset(),
    FaultKind.SLOW_RESPONSES: frozenset({"latency_s"}),
    FaultKind.LOW_BATTERY: frozenset({"battery_pct", "at_s"}),
    FaultKind.FULL_MEMORY: frozenset({"capacity"}),
}
_REQUIRED: Mapping[FaultKind, frozenset[str]] = {
    FaultKind.CLOCK_DRIFT: frozenset({"ppm"}),
    FaultKind.SLOW_RESPONSES: frozenset({"latency_s"}),
    FaultKind.LOW_BATTERY: frozenset({"battery_pct"}),
    FaultKind.FULL_MEMORY: frozenset({"capacity"}),
    FaultKind.DISCONNECT_MID_TRANSFER: frozenset({"after_records"}),
}
_PARAMS = (
    "after_records",
    "at_s",
    "probability",
    "times",
    "duration_s",
    "ppm",
    "latency_s",
    "battery_pct",
    "capacity",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    """One fault aimed at one device (by serial). Unused parameters stay ``None``."""

    kind: FaultKind
    device: str
    after_records: int | None = None
    at_s: float | None = None
    probability: float | None = None
    times: int | None = None
    duration_s: float | None = None
    ppm: float | None = None
    latency_s: float | None = None
    battery_pct: int | None = None
    capacity: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", FaultKind(self.kind))
        if not self.device:
            raise ValueError("a fault needs the serial number of its device")
        given = {name for name in _PARAMS if getattr(self, name) is not None}
        extra = given - _ALLOWED[self.kind]
        if extra:
            raise ValueError(f"{self.kind} does not take {sorted(extra)}")
        missing = _REQUIRED.get(self.kind, frozenset()) - given
        if missing:
            raise ValueError(f"{self.kind} needs {sorted(missing)}")
        if self.kind in PACKET_FAULTS and (self.after_records is None) == (
            self.probability is None
        ):
            raise ValueError(f"{self.kind} needs exactly one of after_records or probability")
        if self.after_records is not None and self.after_records < 0:
            raise ValueError("after_records must be >= 0")
        if self.probability is not None and not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be in [0, 1]")
        if self.times is not None and self.times < 1:
            raise ValueError("times must be >= 1")
        if self.at_s is not None and self.at_s < 0:
            raise ValueError("at_s must be >= 0")
        if self.duration_s is not None and self.duration_s <= 0:
            raise ValueError("duration_s must be > 0")
        if self.latency_s is not None and not 0.0 <= self.latency_s <= 60.0:
            raise ValueError("latency_s must be in [0, 60]")
        if self.battery_pct is not None and not 0 <= self.battery_pct <= 100:
            raise ValueError("battery_pct must be in [0, 100]")
        if self.capacity is not None and self.capacity < 1:
            raise ValueError("capacity must be >= 1")
        if self.kind is FaultKind.VANISH and (self.after_records is None) == (self.at_s is None):
            raise ValueError("vanish needs exactly one of after_records or at_s")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, key: str) -> Fault:
        """Build from a TOML table; raises ConfigError naming ``key`` (e.g. ``faults[2]``)."""
        unknown = set(data) - {"kind", "device", *_PARAMS}
        if unknown:
            raise ConfigError(f"{key}.{sorted(unknown)[0]}", "unknown key")
        kind_raw = data.get("kind")
        if not isinstance(kind_raw, str):
            raise ConfigError(f"{key}.kind", "required, a string")
        try:
            kind = FaultKind(kind_raw)
        except ValueError:
            choices = ", ".join(k.value for k in FaultKind)
            raise ConfigError(
                f"{key}.kind", f"unknown fault {kind_raw!r}; one of {choices}"
            ) from None
        device = data.get("device")
        if not isinstance(device, str) or not device:
            raise ConfigError(f"{key}.device", "required, the serial number of a device")
        params: dict[str, Any] = {}
        for name in _PARAMS:
            if name not in data:
                continue
            value = data[name]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{key}.{name}", f"must be a number, got {value!r}")
            integral = name in {"after_records", "times", "battery_pct", "capacity"}
            if integral and not isinstance(value, int):
                raise ConfigError(f"{key}.{name}", f"must be an integer, got {value!r}")
            params[name] = value if integral else float(value)
        try:
            return cls(kind=kind, device=device, **params)
        except ValueError as exc:
            raise ConfigError(key, str(exc)) from exc


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """All faults of a run, with the seed their random triggers use."""

    faults: tuple[Fault, ...] = ()
    seed: int = 0

    def for_device(self, serial: str) -> tuple[Fault, ...]:
        return tuple(f for f in self.faults if f.device == serial)

    def injector(self, serial: str) -> FaultInjector:
        return FaultInjector(self.for_device(serial), seed=self.seed, serial=serial)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, seed: int, key: str = "faults") -> FaultPlan:
        entries = data.get("faults", [])
        if not isinstance(entries, list):
            raise ConfigError(key, "must be an array of tables ([[faults]])")
        faults = []
        for index, entry in enumerate(entries):
            if not isinstance(entry, Mapping):
                raise ConfigError(f"{key}[{index}]", "must be a table")
            faults.append(Fault.from_mapping(entry, key=f"{key}[{index}]"))
        return cls(tuple(faults), seed)

    @classmethod
    def from_toml(cls, path: Path, *, seed: int = 0) -> FaultPlan:
        """Load ``[[faults]]`` tables from a TOML file (a top-level ``seed`` overrides)."""
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(str(path), f"cannot read fault plan: {exc}") from exc
        file_seed = data.get("seed", seed)
        if isinstance(file_seed, bool) or not isinstance(file_seed, int):
            raise ConfigError("seed", "must be an integer")
        return cls.from_mapping(data, seed=file_seed)


@dataclass(frozen=True, slots=True)
class PacketAction:
    """What to do with one record packet: the bytes to send (one or more times)."""

    payloads: tuple[bytes, ...]
    faults: tuple[FaultKind, ...] = ()


@dataclass(slots=True)
class FaultInjector:
    """Runtime state of one device's faults: decides, reproducibly, when each one fires."""

    faults: Sequence[Fault]
    seed: int
    serial: str
    _fired: dict[int, int] = field(default_factory=dict)
    _rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        digest = hashlib.blake2b(f"{self.seed}|{self.serial}".encode(), digest_size=8).digest()
        self._rng = np.random.default_rng(int.from_bytes(digest, "little"))

    def of_kind(self, kind: FaultKind) -> list[Fault]:
        return [f for f in self.faults if f.kind is kind]

    def has(self, kind: FaultKind) -> bool:
        return any(f.kind is kind for f in self.faults)

    def first(self, kind: FaultKind) -> Fault | None:
        found = self.of_kind(kind)
        return found[0] if found else None

    def _fires(self, index: int, fault: Fault, records_sent: int) -> bool:
        limit = (
            fault.times
            if fault.times is not None
            else (1 if fault.after_records is not None else None)
        )
        if limit is not None and self._fired.get(index, 0) >= limit:
            return False
        if fault.after_records is not None:
            hit = records_sent >= fault.after_records
        else:
            hit = bool(self._rng.random() < (fault.probability or 0.0))
        if hit:
            self._fired[index] = self._fired.get(index, 0) + 1
        return hit

    def interrupt(self, records_sent: int) -> Fault | None:
        """The transfer fault (disconnect / vanish) due before sending record ``records_sent``."""
        for index, fault in enumerate(self.faults):
            if (
                fault.kind in _TRANSFER_FAULTS
                and fault.after_records is not None
                and self._fires(index, fault, records_sent)
            ):
                return fault
        return None

    def packet(self, payload: bytes, records_sent: int) -> PacketAction:
        """Apply the packet faults due for record number ``records_sent`` (0-based)."""
        data = bytes(payload)
        applied: list[FaultKind] = []
        copies = 1
        for index, fault in enumerate(self.faults):
            if fault.kind not in PACKET_FAULTS:
                continue
            if fault.after_records is not None and records_sent != fault.after_records:
                continue
            if not self._fires(index, fault, records_sent):
                continue
            applied.append(fault.kind)
            if fault.kind is FaultKind.CORRUPT_PACKET and data:
                # Flip presence bits in the flags octet: the record's layout no longer matches.
                data = bytes([data[0] ^ 0x1F]) + data[1:]
            elif fault.kind is FaultKind.TRUNCATED_PACKET and len(data) > 1:
                cut = int(self._rng.integers(1, min(3, len(data) - 1) + 1))
                data = data[:-cut]
            elif fault.kind is FaultKind.OVERLONG_PACKET:
                data = data + self._rng.bytes(int(self._rng.integers(1, 5)))
            elif fault.kind is FaultKind.DUPLICATE_RESEND:
                copies = 2
        return PacketAction((data,) * copies, tuple(applied))
